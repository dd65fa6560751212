package pool_test

import (
	"context"
	"errors"
	"math"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"golang.org/x/time/rate"

	"github.com/otelpatterns/otelpatterns/internal/telemetry/telemetrytest"
	"github.com/otelpatterns/otelpatterns/pool"
)

func TestProcessReturnsPromptlyWhenItsRunnersAreStuckInTheQueue(t *testing.T) {
	b := newBlocker()
	p := mustNew(t, b.process, pool.WithWorkers(1), pool.WithQueueSize(10))
	defer close(b.release)
	_, err := p.Submit(context.Background(), 1) // holds the only worker
	require.NoError(t, err)
	<-b.started

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err = p.Process(ctx, []int{1, 2, 3})
	assert.ErrorIs(t, err, context.DeadlineExceeded)
	assert.Less(t, time.Since(start), 5*time.Second, "no wait for the queued runner to be dequeued")
}

func TestFutureDoneAfterCompletion(t *testing.T) {
	p := mustNew(t, double)
	f, err := p.Submit(context.Background(), 2)
	require.NoError(t, err)
	_, err = f.Wait(context.Background())
	require.NoError(t, err)
	select {
	case <-f.Done():
	case <-time.After(time.Second):
		t.Fatal("Done of a finished task must be closed")
	}
	// Many waiters at once all see the result.
	b := newBlocker()
	p2 := mustNew(t, b.process, pool.WithWorkers(1))
	f2, err := p2.Submit(context.Background(), 9)
	require.NoError(t, err)
	<-b.started
	var wg sync.WaitGroup
	results := make([]int, 8)
	for i := range results {
		wg.Go(func() {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			results[i], _ = f2.Wait(ctx)
		})
	}
	time.Sleep(time.Millisecond)
	close(b.release)
	wg.Wait()
	for _, r := range results {
		assert.Equal(t, 9, r)
	}
}

func TestConcurrentResizeSubmitAndClose(t *testing.T) {
	p, err := pool.New(double, pool.WithWorkers(3), pool.WithQueueSize(4))
	require.NoError(t, err)
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				if f, err := p.Submit(context.Background(), 1); err == nil {
					_, _ = f.Wait(context.Background())
				}
			}
		})
	}
	wg.Go(func() {
		for n := 1; ; n = n%5 + 1 {
			select {
			case <-stop:
				return
			default:
			}
			_ = p.Resize(n)
		}
	})
	time.Sleep(30 * time.Millisecond)
	require.NoError(t, p.Close())
	close(stop)
	wg.Wait()
	s := p.Stats()
	assert.Equal(t, s.Submitted, s.Completed, "every accepted task ran")
	assert.Zero(t, s.Running)
	assert.ErrorIs(t, p.Resize(2), pool.ErrClosed)
}

func TestShutdownWithNothingQueuedReturnsNil(t *testing.T) {
	p, err := pool.New(double)
	require.NoError(t, err)
	f, err := p.Submit(context.Background(), 1)
	require.NoError(t, err)
	_, _ = f.Wait(context.Background())
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	assert.NoError(t, p.Shutdown(ctx))
	assert.NoError(t, p.Shutdown(ctx), "idempotent")
}

// Sizes too large to make are constructor errors that name the option,
// never a makechan panic.
func TestHugeSizesAreErrors(t *testing.T) {
	for name, opt := range map[string]pool.Option{"WithQueueSize": pool.WithQueueSize(math.MaxInt), "WithWorkers": pool.WithWorkers(math.MaxInt)} {
		p, err := pool.NewTasks(opt)
		if err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("%s(MaxInt): %v, %v; want an error naming it", name, p, err)
		}
	}
}

// A task that the rate limit cannot start before its deadline fails with
// ErrRateLimited, which matches the deadline too, and is counted as
// rate_limited, not canceled.
func TestRateLimitedTaskMissesItsDeadline(t *testing.T) {
	rec := telemetrytest.NewRecorders(t)
	p, err := pool.New(func(_ context.Context, n int) (int, error) { return n, nil },
		pool.WithRateLimit(rate.NewLimiter(1, 1)), pool.WithWorkers(1), pool.WithMeterProvider(rec.MeterProvider))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	ctx := context.Background()
	if _, err := p.Process(ctx, []int{1}); err != nil { // takes the one token
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond) // the next token comes in a second
	defer cancel()
	_, err = p.Process(short, []int{2})
	if !errors.Is(err, pool.ErrRateLimited) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Process = %v; want ErrRateLimited matching the deadline", err)
	}
	m := rec.Metrics(t)["otelpatterns.pool.tasks"]
	found := false
	for _, dp := range m.Data.(metricdata.Sum[int64]).DataPoints {
		if o, _ := dp.Attributes.Value("otelpatterns.outcome"); o.AsString() == "rate_limited" && dp.Value == 1 {
			found = true
		}
	}
	if !found {
		t.Fatalf("no task counted as rate_limited: %+v", m.Data)
	}
}

// The pool waits on the limiter it is given, so pools and retry policies
// that share one limiter share its budget: tokens taken elsewhere are
// gone for the pool's tasks too.
func TestRateLimitIsShared(t *testing.T) {
	shared := rate.NewLimiter(rate.Every(time.Hour), 1)
	p := mustNew(t, func(_ context.Context, n int) (int, error) { return n, nil },
		pool.WithRateLimit(shared), pool.WithWorkers(1))
	if !shared.Allow() { // someone else spends the one token
		t.Fatal("a fresh limiter refused its first token")
	}
	short, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := p.Process(short, []int{1}); !errors.Is(err, pool.ErrRateLimited) {
		t.Fatalf("Process after the shared token was spent = %v; want ErrRateLimited", err)
	}
}

// A task's context keeps the whole contract for as long as it is held: a
// child task started with it, running after its parent returned, sees
// Done close when the request is cancelled, as Err says.
func TestTaskContextOutlivesItsTask(t *testing.T) {
	p, err := pool.NewTasks(pool.WithWorkers(2))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	req, cancel := context.WithCancel(context.Background())
	parentDone := make(chan struct{})
	childSaw := make(chan error, 1)
	if err := p.Go(req, func(ctx context.Context) error {
		defer close(parentDone)
		return p.Go(ctx, func(ctx context.Context) error {
			<-parentDone
			time.Sleep(10 * time.Millisecond) // the parent has returned and been released
			cancel()
			select {
			case <-ctx.Done():
				childSaw <- ctx.Err()
			case <-time.After(5 * time.Second):
				childSaw <- errors.New("Done never closed")
			}
			return nil
		})
	}); err != nil {
		t.Fatal(err)
	}
	if err := <-childSaw; !errors.Is(err, context.Canceled) {
		t.Fatalf("the child's context: %v; want Done closed with Canceled", err)
	}
}

// Contexts derived inside a task follow it without a goroutine each.
func TestDerivingATaskContextStartsNoGoroutine(t *testing.T) {
	p, err := pool.NewTasks(pool.WithWorkers(1))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	req, cancel := context.WithCancel(context.Background())
	defer cancel()
	extra := make(chan int, 1)
	if err := p.Go(req, func(ctx context.Context) error {
		before := runtime.NumGoroutine()
		var cancels []context.CancelFunc
		for range 100 {
			_, c := context.WithTimeout(ctx, time.Hour)
			cancels = append(cancels, c)
		}
		extra <- runtime.NumGoroutine() - before
		for _, c := range cancels {
			c()
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if n := <-extra; n > 5 {
		t.Fatalf("100 contexts derived in a task started %d goroutines", n)
	}
	cancel()
}

// Shutdown that gives up on a running task ends its context: Done closes
// and Err says why.
func TestShutdownEndsARunningTasksContext(t *testing.T) {
	p, err := pool.NewTasks(pool.WithWorkers(1))
	if err != nil {
		t.Fatal(err)
	}
	req, cancel := context.WithCancel(context.Background())
	defer cancel()
	saw := make(chan error, 1)
	started := make(chan struct{})
	if err := p.Go(req, func(ctx context.Context) error {
		close(started)
		<-ctx.Done()
		saw <- ctx.Err()
		return ctx.Err()
	}); err != nil {
		t.Fatal(err)
	}
	<-started
	short, stop := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer stop()
	_ = p.Shutdown(short)
	if err := <-saw; err == nil {
		t.Fatal("Done closed with a nil Err")
	}
}
