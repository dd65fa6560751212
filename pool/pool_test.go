package pool_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
	"golang.org/x/time/rate"

	"github.com/otelpatterns/otelpatterns/errs"
	"github.com/otelpatterns/otelpatterns/pool"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func double(_ context.Context, x int) (int, error) { return 2 * x, nil }

// mustNew builds a pool and closes it when the test ends.
func mustNew[In, Out any](t *testing.T, fn func(context.Context, In) (Out, error), opts ...pool.Option) *pool.WorkerPool[In, Out] {
	t.Helper()
	p, err := pool.New(fn, opts...)
	require.NoError(t, err)
	t.Cleanup(func() { _ = p.Close() })
	return p
}

// blocker is a process function whose calls wait for release, so a test can
// hold tasks running.
type blocker struct {
	started chan int
	release chan struct{}
}

func newBlocker() *blocker {
	return &blocker{started: make(chan int, 1000), release: make(chan struct{})}
}

func (b *blocker) process(ctx context.Context, x int) (int, error) {
	b.started <- x
	select {
	case <-b.release:
		return x, nil
	case <-ctx.Done():
		return 0, ctx.Err()
	}
}

func TestNewRejectsBadConfiguration(t *testing.T) {
	cases := map[string]struct {
		fn   func(context.Context, int) (int, error)
		opts []pool.Option
	}{
		"New(nil)":          {nil, nil},
		"WithWorkers(0)":    {double, []pool.Option{pool.WithWorkers(0)}},
		"WithWorkers(-3)":   {double, []pool.Option{pool.WithWorkers(-3)}},
		"WithQueueSize(-1)": {double, []pool.Option{pool.WithQueueSize(-1)}},
		`WithName("")`:      {double, []pool.Option{pool.WithName("")}},
		"WithRateLimit: the limiter's limit is 0": {double, []pool.Option{pool.WithRateLimit(rate.NewLimiter(0, 1))}},
		"WithRateLimit: the limiter's burst is 0": {double, []pool.Option{pool.WithRateLimit(rate.NewLimiter(10, 0))}},
	}
	for want, c := range cases {
		t.Run(want, func(t *testing.T) {
			p, err := pool.New(c.fn, c.opts...)
			assert.Nil(t, p)
			require.Error(t, err)
			assert.Contains(t, err.Error(), want, "the error names the option to fix")
		})
	}
	p, err := pool.New(double, pool.WithQueueSize(0), pool.WithRateLimit(rate.NewLimiter(rate.Inf, 0)), pool.WithRateLimit(nil), nil)
	require.NoError(t, err, "a queue of 0, no rate limit and a nil option are all valid")
	require.NoError(t, p.Close())
}

func TestSubmitAndWait(t *testing.T) {
	p := mustNew(t, double, pool.WithWorkers(3))
	ctx := context.Background()
	futs := make([]*pool.Future[int], 100)
	for i := range futs {
		f, err := p.Submit(ctx, i)
		require.NoError(t, err)
		futs[i] = f
	}
	for i, f := range futs {
		v, err := f.Wait(ctx)
		require.NoError(t, err)
		assert.Equal(t, 2*i, v)
		select {
		case <-f.Done():
		default:
			t.Fatal("Done must be closed once Wait has returned")
		}
	}
}

func TestFutureWaitHonoursContext(t *testing.T) {
	b := newBlocker()
	p := mustNew(t, b.process, pool.WithWorkers(1))
	f, err := p.Submit(context.Background(), 7)
	require.NoError(t, err)
	<-b.started

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	_, err = f.Wait(ctx)
	assert.ErrorIs(t, err, context.DeadlineExceeded)

	done := f.Done()
	close(b.release)
	<-done
	v, err := f.Wait(context.Background())
	assert.NoError(t, err, "the task went on, and a later Wait collects it")
	assert.Equal(t, 7, v)
}

func TestSubmitBlockedOnFullQueueHonoursContext(t *testing.T) {
	b := newBlocker()
	p := mustNew(t, b.process, pool.WithWorkers(1), pool.WithQueueSize(1))
	defer close(b.release)
	_, err := p.Submit(context.Background(), 1) // runs
	require.NoError(t, err)
	<-b.started
	_, err = p.Submit(context.Background(), 2) // fills the queue
	require.NoError(t, err)

	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		time.Sleep(20 * time.Millisecond)
		cancel()
	}()
	start := time.Now()
	_, err = p.Submit(ctx, 3)
	assert.ErrorIs(t, err, context.Canceled)
	assert.Less(t, time.Since(start), 5*time.Second)

	_, err = p.Submit(ctx, 4)
	assert.ErrorIs(t, err, context.Canceled, "an already cancelled ctx is refused at once")
}

func TestTrySubmitDropsWhenFull(t *testing.T) {
	b := newBlocker()
	p := mustNew(t, b.process, pool.WithWorkers(1), pool.WithQueueSize(1))
	_, err := p.TrySubmit(context.Background(), 1)
	require.NoError(t, err)
	<-b.started
	_, err = p.TrySubmit(context.Background(), 2)
	require.NoError(t, err)
	f, err := p.TrySubmit(context.Background(), 3)
	assert.Nil(t, f)
	assert.ErrorIs(t, err, pool.ErrQueueFull)
	assert.EqualValues(t, 1, p.Stats().Dropped)
	close(b.release)
}

func TestCloseDrainsAndRefuses(t *testing.T) {
	var ran atomic.Int64
	p, err := pool.New(func(_ context.Context, x int) (int, error) {
		time.Sleep(100 * time.Microsecond)
		ran.Add(1)
		return x, nil
	}, pool.WithWorkers(2), pool.WithQueueSize(100))
	require.NoError(t, err)
	futs := make([]*pool.Future[int], 50)
	for i := range futs {
		futs[i], err = p.Submit(context.Background(), i)
		require.NoError(t, err)
	}
	require.NoError(t, p.Close())
	assert.EqualValues(t, 50, ran.Load(), "Close runs every queued task")
	for _, f := range futs {
		_, err := f.Wait(context.Background())
		assert.NoError(t, err)
	}
	require.NoError(t, p.Close(), "Close is idempotent")
	require.NoError(t, p.Shutdown(context.Background()), "and so is Shutdown after it")

	_, err = p.Submit(context.Background(), 1)
	assert.ErrorIs(t, err, pool.ErrClosed)
	_, err = p.TrySubmit(context.Background(), 1)
	assert.ErrorIs(t, err, pool.ErrClosed)
	assert.ErrorIs(t, p.Go(context.Background(), func(context.Context) error { return nil }), pool.ErrClosed)
	assert.ErrorIs(t, p.Resize(3), pool.ErrClosed)
	_, err = p.Process(context.Background(), []int{1})
	assert.ErrorIs(t, err, pool.ErrClosed)

	s := p.Stats()
	assert.EqualValues(t, 50, s.Submitted)
	assert.EqualValues(t, 50, s.Completed)
}

func TestShutdownGivesUp(t *testing.T) {
	b := newBlocker()
	p, err := pool.New(b.process, pool.WithWorkers(2), pool.WithQueueSize(10))
	require.NoError(t, err)
	var running []*pool.Future[int]
	for i := range 2 {
		f, err := p.Submit(context.Background(), i)
		require.NoError(t, err)
		running = append(running, f)
		<-b.started
	}
	// A running task submitted with a cancellable context of its own.
	var queued []*pool.Future[int]
	for i := range 5 {
		f, err := p.Submit(context.Background(), 10+i)
		require.NoError(t, err)
		queued = append(queued, f)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	err = p.Shutdown(ctx)
	assert.ErrorIs(t, err, context.DeadlineExceeded)

	for _, f := range running {
		_, err := f.Wait(context.Background())
		assert.ErrorIs(t, err, context.Canceled, "the running tasks' contexts were cancelled")
	}
	for _, f := range queued {
		_, err := f.Wait(context.Background())
		assert.ErrorIs(t, err, context.DeadlineExceeded, "queued tasks fail with the context error")
	}
	s := p.Stats()
	assert.EqualValues(t, 7, s.Canceled)
	assert.Zero(t, s.Running)
}

func TestShutdownCancelsTasksWithTheirOwnContext(t *testing.T) {
	b := newBlocker()
	p, err := pool.New(b.process, pool.WithWorkers(1))
	require.NoError(t, err)
	parent, stop := context.WithCancel(context.Background())
	defer stop()
	f, err := p.Submit(context.WithValue(parent, ctxKey{}, "v"), 1)
	require.NoError(t, err)
	<-b.started
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	assert.ErrorIs(t, p.Shutdown(ctx), context.Canceled)
	_, err = f.Wait(context.Background())
	assert.ErrorIs(t, err, context.Canceled)
}

type ctxKey struct{}

func TestTaskContextCarriesSubmitters(t *testing.T) {
	got := make(chan any, 1)
	p := mustNew(t, func(ctx context.Context, _ int) (int, error) {
		got <- ctx.Value(ctxKey{})
		dl, ok := ctx.Deadline()
		if !ok || time.Until(dl) > time.Hour {
			return 0, errors.New("no deadline")
		}
		return 0, nil
	})
	ctx, cancel := context.WithTimeout(context.WithValue(context.Background(), ctxKey{}, "request-1"), time.Minute)
	defer cancel()
	f, err := p.Submit(ctx, 0)
	require.NoError(t, err)
	_, err = f.Wait(ctx)
	require.NoError(t, err)
	assert.Equal(t, "request-1", <-got)

	// Cancelling the submitter's context cancels the task's.
	b := newBlocker()
	p2 := mustNew(t, b.process, pool.WithWorkers(1))
	ctx2, cancel2 := context.WithCancel(context.Background())
	f, err = p2.Submit(ctx2, 1)
	require.NoError(t, err)
	<-b.started
	cancel2()
	_, err = f.Wait(context.Background())
	assert.ErrorIs(t, err, context.Canceled)
}

func TestPanicBecomesErrorAndWorkerSurvives(t *testing.T) {
	p := mustNew(t, func(_ context.Context, x int) (int, error) {
		if x == 0 {
			panic("zero")
		}
		return x, nil
	}, pool.WithWorkers(1))
	f, err := p.Submit(context.Background(), 0)
	require.NoError(t, err)
	_, err = f.Wait(context.Background())
	var pe *errs.PanicError
	require.ErrorAs(t, err, &pe)
	assert.Equal(t, "zero", pe.Value)
	assert.NotEmpty(t, pe.Stack)

	f, err = p.Submit(context.Background(), 5)
	require.NoError(t, err)
	v, err := f.Wait(context.Background())
	assert.NoError(t, err, "the worker survived the panic")
	assert.Equal(t, 5, v)
	require.NoError(t, p.Close())
	assert.EqualValues(t, 1, p.Stats().Panicked)
}

func TestGo(t *testing.T) {
	p, err := pool.NewTasks(pool.WithWorkers(2))
	require.NoError(t, err)
	var sum atomic.Int64
	for i := range 100 {
		require.NoError(t, p.Go(context.Background(), func(context.Context) error {
			sum.Add(int64(i))
			return nil
		}))
	}
	require.NoError(t, p.Go(context.Background(), func(context.Context) error { return io.EOF }))
	require.NoError(t, p.Go(context.Background(), func(context.Context) error { panic("go") }))
	assert.ErrorContains(t, p.Go(context.Background(), nil), "must not be nil")
	require.NoError(t, p.Close())
	assert.EqualValues(t, 4950, sum.Load())
	s := p.Stats()
	assert.EqualValues(t, 102, s.Submitted)
	assert.EqualValues(t, 100, s.Completed)
	assert.EqualValues(t, 1, s.Failed)
	assert.EqualValues(t, 1, s.Panicked)
}

// concurrency tracks how many tasks run at once, and the most that did.
type concurrency struct {
	mu        sync.Mutex
	now, high int
}

func (c *concurrency) enter() {
	c.mu.Lock()
	c.now++
	c.high = max(c.high, c.now)
	c.mu.Unlock()
}

func (c *concurrency) leave() {
	c.mu.Lock()
	c.now--
	c.mu.Unlock()
}

func (c *concurrency) reset() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	h := c.high
	c.high = c.now
	return h
}

func TestResizeBoundsConcurrency(t *testing.T) {
	var c concurrency
	hold := make(chan struct{})
	p := mustNew(t, func(_ context.Context, x int) (int, error) {
		c.enter()
		defer c.leave()
		if x < 0 {
			<-hold // the first wave runs until released
		} else {
			time.Sleep(50 * time.Microsecond)
		}
		return x, nil
	}, pool.WithWorkers(8), pool.WithQueueSize(2000))
	submit := func(from, n int) (futs []*pool.Future[int]) {
		for i := range n {
			f, err := p.Submit(context.Background(), from+i)
			require.NoError(t, err)
			futs = append(futs, f)
		}
		return futs
	}
	waitAll := func(futs []*pool.Future[int]) {
		for _, f := range futs {
			_, err := f.Wait(context.Background())
			require.NoError(t, err)
		}
	}

	first := submit(-8, 8)
	require.Eventually(t, func() bool { return p.Stats().Running == 8 }, 5*time.Second, time.Millisecond)
	rest := submit(0, 400)
	require.NoError(t, p.Resize(2))
	c.reset()
	close(hold) // the 8 running tasks finish; no new one may start while 2 or more run
	waitAll(first)
	waitAll(rest[:200])
	assert.LessOrEqual(t, c.reset(), 8, "the first wave itself")
	more := submit(1000, 300)
	waitAll(rest[200:])
	waitAll(more)
	assert.LessOrEqual(t, c.reset(), 2, "after Resize(2), at most 2 run at once")

	require.NoError(t, p.Resize(6))
	waitAll(submit(2000, 600))
	high := c.reset()
	assert.LessOrEqual(t, high, 6, "after Resize(6), at most 6")
	assert.Greater(t, high, 2, "and more than before")
	assert.Equal(t, 6, p.Stats().Workers)

	assert.ErrorContains(t, p.Resize(0), "Resize(0)")
}

func TestResizeDownWhileBatchRuns(t *testing.T) {
	var c concurrency
	p := mustNew(t, func(_ context.Context, x int) (int, error) {
		c.enter()
		defer c.leave()
		time.Sleep(20 * time.Microsecond)
		return x, nil
	}, pool.WithWorkers(6))
	items := make([]int, 3000)
	done := make(chan error)
	go func() {
		_, err := p.Process(context.Background(), items)
		done <- err
	}()
	time.Sleep(2 * time.Millisecond)
	require.NoError(t, p.Resize(2))
	time.Sleep(5 * time.Millisecond) // the items in flight at the Resize finish
	c.reset()
	require.NoError(t, <-done)
	assert.LessOrEqual(t, c.reset(), 2, "batch runners obey a Resize down between items")
}

func TestSubmitFromTaskToFullPoolDoesNotHang(t *testing.T) {
	var p *pool.WorkerPool[int, int]
	p = mustNew(t, func(ctx context.Context, depth int) (int, error) {
		if depth == 0 {
			return 1, nil
		}
		// Every worker does this at once, with a queue of 1: without the
		// caller-runs rule they would all wait for room forever.
		var futs []*pool.Future[int]
		for range 3 {
			f, err := p.Submit(ctx, depth-1)
			if err != nil {
				return 0, err
			}
			futs = append(futs, f)
		}
		sum := 0
		for _, f := range futs {
			v, err := f.Wait(ctx)
			if err != nil {
				return 0, err
			}
			sum += v
		}
		return sum, nil
	}, pool.WithWorkers(2), pool.WithQueueSize(1))

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var futs []*pool.Future[int]
	for range 4 {
		f, err := p.Submit(ctx, 3)
		require.NoError(t, err)
		futs = append(futs, f)
	}
	for _, f := range futs {
		v, err := f.Wait(ctx)
		require.NoError(t, err, "no deadlock")
		assert.Equal(t, 27, v)
	}
}

func TestProcessFromTaskDoesNotHang(t *testing.T) {
	var inner *pool.WorkerPool[int, int]
	inner = mustNew(t, func(ctx context.Context, x int) (int, error) {
		if x < 10 {
			return x, nil
		}
		out, err := inner.Process(ctx, []int{1, 2, 3, 4, 5})
		if err != nil {
			return 0, err
		}
		sum := 0
		for _, v := range out {
			sum += v
		}
		return sum, nil
	}, pool.WithWorkers(2), pool.WithQueueSize(0))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := inner.Process(ctx, []int{10, 10, 10, 10})
	require.NoError(t, err)
	assert.Equal(t, []int{15, 15, 15, 15}, out)
}

func TestRateLimit(t *testing.T) {
	p := mustNew(t, double, pool.WithWorkers(4), pool.WithRateLimit(rate.NewLimiter(200, 1)))
	start := time.Now()
	out, err := p.Process(context.Background(), make([]int, 11))
	require.NoError(t, err)
	assert.Len(t, out, 11)
	assert.GreaterOrEqual(t, time.Since(start), 45*time.Millisecond, "11 starts at 200/s, burst 1, take at least 50ms")
}

func TestStatsAfterMixedWork(t *testing.T) {
	p, err := pool.New(func(ctx context.Context, x int) (int, error) {
		switch x {
		case 1:
			return 0, fmt.Errorf("failed")
		case 2:
			return 0, context.Canceled
		}
		return x, nil
	}, pool.WithWorkers(2))
	require.NoError(t, err)
	for _, x := range []int{0, 1, 2, 3} {
		_, err := p.Submit(context.Background(), x)
		require.NoError(t, err)
	}
	_, err = p.Process(context.Background(), []int{0, 0, 1}, pool.CollectAll())
	require.Error(t, err)
	require.NoError(t, p.Close())
	assert.Equal(t, pool.Stats{Workers: 2, Submitted: 7, Completed: 4, Failed: 2, Canceled: 1}, p.Stats())
}

func TestNilContextIsAnError(t *testing.T) {
	p := mustNew(t, double)
	//lint:ignore SA1012 passing nil is the point of the test
	_, err := p.Submit(nil, 1) //nolint:staticcheck
	assert.ErrorContains(t, err, "nil context")
	//lint:ignore SA1012 passing nil is the point of the test
	_, err = p.TrySubmit(nil, 1) //nolint:staticcheck
	assert.ErrorContains(t, err, "nil context")
	//lint:ignore SA1012 passing nil is the point of the test
	assert.ErrorContains(t, p.Go(nil, func(context.Context) error { return nil }), "nil context") //nolint:staticcheck
	//lint:ignore SA1012 passing nil is the point of the test
	_, err = p.Process(nil, []int{1}) //nolint:staticcheck
	assert.ErrorContains(t, err, "nil context")
	//lint:ignore SA1012 passing nil is the point of the test
	for _, err := range p.ProcessSeq(nil, func(func(int) bool) {}) { //nolint:staticcheck
		assert.ErrorContains(t, err, "nil context")
	}
	f, err := p.Submit(context.Background(), 1)
	require.NoError(t, err)
	//lint:ignore SA1012 passing nil is the point of the test
	_, err = f.Wait(nil) //nolint:staticcheck
	if err != nil {      // the result may be in already; a wait that must block says nil context
		assert.ErrorContains(t, err, "nil context")
	}
	//lint:ignore SA1012 passing nil is the point of the test
	assert.ErrorContains(t, p.Shutdown(nil), "nil context") //nolint:staticcheck
}
