package pool_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/otelpatterns/otelpatterns/errs"
	"github.com/otelpatterns/otelpatterns/pool"
)

func mustTasks(t *testing.T, opts ...pool.Option) *pool.Tasks {
	t.Helper()
	p, err := pool.NewTasks(opts...)
	require.NoError(t, err)
	t.Cleanup(func() { _ = p.Close() })
	return p
}

// The first failure cancels the group: tasks still queued behind it never
// run, and Wait returns that failure.
func TestGroupFailsFast(t *testing.T) {
	p := mustTasks(t, pool.WithWorkers(1))
	release := make(chan struct{})
	boom := errors.New("boom")
	g := p.Group(context.Background())
	require.NoError(t, g.Go(func(ctx context.Context) error {
		<-release
		return boom
	}))
	var ran atomic.Int32
	for range 4 {
		require.NoError(t, g.Go(func(context.Context) error { ran.Add(1); return nil }))
	}
	close(release)
	err := g.Wait()
	require.ErrorIs(t, err, boom)
	assert.Zero(t, ran.Load(), "tasks queued behind the failure must not start")
	assert.EqualValues(t, 4, p.Stats().Canceled)
}

func TestGroupCancelsItsContextOnFailure(t *testing.T) {
	p := mustTasks(t, pool.WithWorkers(2))
	boom := errors.New("boom")
	g := p.Group(context.Background())
	cancelled := make(chan error, 1)
	require.NoError(t, g.Go(func(ctx context.Context) error {
		<-ctx.Done()
		cancelled <- context.Cause(ctx)
		return ctx.Err()
	}))
	require.NoError(t, g.Go(func(context.Context) error { return boom }))
	require.ErrorIs(t, g.Wait(), boom)
	assert.ErrorIs(t, <-cancelled, boom, "a running task sees the group's first error as its context's cause")
}

func TestGroupCollectAll(t *testing.T) {
	p := mustTasks(t, pool.WithWorkers(2))
	g := p.Group(context.Background(), pool.CollectAll())
	e1, e2 := errors.New("one"), errors.New("two")
	var ran atomic.Int32
	for _, e := range []error{e1, nil, e2, nil} {
		require.NoError(t, g.Go(func(context.Context) error { ran.Add(1); return e }))
	}
	err := g.Wait()
	assert.ErrorIs(t, err, e1)
	assert.ErrorIs(t, err, e2)
	assert.EqualValues(t, 4, ran.Load())
}

func TestGroupWaitsForEveryTaskWithinTheBound(t *testing.T) {
	const workers, tasks = 3, 50
	p := mustTasks(t, pool.WithWorkers(workers))
	g := p.Group(context.Background())
	var running, most, done atomic.Int32
	for range tasks {
		require.NoError(t, g.Go(func(context.Context) error {
			n := running.Add(1)
			for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
			}
			time.Sleep(100 * time.Microsecond)
			running.Add(-1)
			done.Add(1)
			return nil
		}))
	}
	require.NoError(t, g.Wait())
	assert.EqualValues(t, tasks, done.Load(), "Wait returned before every task ended")
	assert.LessOrEqual(t, most.Load(), int32(workers))
}

// Tasks may add tasks to their own group; Wait covers them too.
func TestGroupTasksAddTasks(t *testing.T) {
	p := mustTasks(t, pool.WithWorkers(2))
	g := p.Group(context.Background())
	var leaves atomic.Int32
	var spawn func(depth int) func(context.Context) error
	spawn = func(depth int) func(context.Context) error {
		return func(context.Context) error {
			if depth == 0 {
				leaves.Add(1)
				return nil
			}
			for range 2 {
				if err := g.Go(spawn(depth - 1)); err != nil {
					return err
				}
			}
			return nil
		}
	}
	require.NoError(t, g.Go(spawn(6)))
	require.NoError(t, g.Wait())
	assert.EqualValues(t, 64, leaves.Load())
}

func TestGroupPanicIsAnError(t *testing.T) {
	p := mustTasks(t, pool.WithWorkers(1))
	g := p.Group(context.Background())
	require.NoError(t, g.Go(func(context.Context) error { panic("kaboom") }))
	err := g.Wait()
	var pe *errs.PanicError
	require.ErrorAs(t, err, &pe)
	// The worker survived.
	g = p.Group(context.Background())
	require.NoError(t, g.Go(func(context.Context) error { return nil }))
	require.NoError(t, g.Wait())
}

func TestGroupBadUse(t *testing.T) {
	p := mustTasks(t, pool.WithWorkers(1))

	g := p.Group(context.Background())
	assert.ErrorContains(t, g.Go(nil), "must not be nil")
	require.NoError(t, g.Wait(), "a refused nil task is not a task of the group")
	assert.ErrorContains(t, g.Go(func(context.Context) error { return nil }), "after Wait")

	//lint:ignore SA1012 the nil context is what is tested
	g = p.Group(nil) //nolint:staticcheck
	err := g.Go(func(context.Context) error { t.Error("ran with a nil context"); return nil })
	assert.ErrorContains(t, err, "nil context")
	assert.ErrorContains(t, g.Wait(), "nil context", "Wait reports what Go refused")

	assert.NoError(t, p.Group(context.Background()).Wait(), "an empty group")
}

func TestGroupOnAClosedPool(t *testing.T) {
	p := mustTasks(t, pool.WithWorkers(1))
	require.NoError(t, p.Close())
	g := p.Group(context.Background())
	require.ErrorIs(t, g.Go(func(context.Context) error { return nil }), pool.ErrClosed)
	require.ErrorIs(t, g.Wait(), pool.ErrClosed, "Wait reports a task that could not be queued")
}

// Go blocks while the queue is full; when the group's parent context ends
// meanwhile, it returns that error and so does Wait.
func TestGroupGoOnAFullQueueEndsWithItsContext(t *testing.T) {
	p := mustTasks(t, pool.WithWorkers(1), pool.WithQueueSize(0))
	ctx, cancel := context.WithCancel(context.Background())
	g := p.Group(ctx, pool.CollectAll())
	hold := make(chan struct{})
	require.NoError(t, g.Go(func(context.Context) error { <-hold; return nil }))
	blocked := make(chan error, 1)
	go func() { blocked <- g.Go(func(context.Context) error { return nil }) }()
	select {
	case err := <-blocked:
		t.Fatalf("Go returned %v with the only worker busy and no queue", err)
	case <-time.After(20 * time.Millisecond):
	}
	cancel()
	require.ErrorIs(t, <-blocked, context.Canceled)
	close(hold)
	require.ErrorIs(t, g.Wait(), context.Canceled)
}

// When Shutdown gives up, queued tasks of a group are discarded: Wait
// still returns, with the reason.
func TestGroupWaitReturnsWhenShutdownDiscards(t *testing.T) {
	p, err := pool.NewTasks(pool.WithWorkers(1))
	require.NoError(t, err)
	g := p.Group(context.Background(), pool.CollectAll())
	started := make(chan struct{})
	require.NoError(t, g.Go(func(ctx context.Context) error { close(started); <-ctx.Done(); return ctx.Err() }))
	require.NoError(t, g.Go(func(context.Context) error { t.Error("a discarded task ran"); return nil }))
	<-started
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	require.ErrorIs(t, p.Shutdown(sctx), context.DeadlineExceeded)
	require.ErrorIs(t, g.Wait(), context.DeadlineExceeded)
}

// A group's tasks are traced like the pool's other tasks: each a pool.task
// span under the span of the group's context, decided when Go is called.
func TestGroupTasksAreTraced(t *testing.T) {
	r := newRecorders(t)
	p, err := pool.NewTasks(r.options(pool.WithWorkers(1))...)
	require.NoError(t, err)
	defer p.Close()
	ctx, parent := r.TracerProvider.Tracer("test").Start(context.Background(), "request")
	g := p.Group(ctx)
	boom := errors.New("boom")
	hold := make(chan struct{})
	require.NoError(t, g.Go(func(context.Context) error { <-hold; return boom }))
	parent.End() // before the tasks run
	close(hold)
	require.ErrorIs(t, g.Wait(), boom)
	tasks := r.Ended("pool.task")
	require.Len(t, tasks, 1)
	assert.Equal(t, parent.SpanContext().SpanID(), tasks[0].Parent().SpanID())
	assert.Equal(t, "Error", tasks[0].Status().Code.String())
}

// Many goroutines add to one group while its tasks end and fail: Wait
// returns only after every accepted task ended, with one of their errors.
func TestGroupConcurrentGoAndFailures(t *testing.T) {
	p := mustTasks(t, pool.WithWorkers(3), pool.WithQueueSize(2))
	for round := range 20 {
		g := p.Group(context.Background(), pool.CollectAll())
		var accepted, ended atomic.Int32
		failing := errors.New("failing")
		done := make(chan struct{})
		for w := range 4 {
			go func() {
				defer func() { done <- struct{}{} }()
				for i := range 25 {
					fail := (round+w+i)%7 == 0
					if g.Go(func(context.Context) error {
						ended.Add(1)
						if fail {
							return failing
						}
						return nil
					}) == nil {
						accepted.Add(1)
					}
				}
			}()
		}
		for range 4 {
			<-done
		}
		err := g.Wait()
		require.Equal(t, accepted.Load(), ended.Load(), "round %d: Wait returned before its tasks ended", round)
		require.EqualValues(t, 100, accepted.Load())
		require.ErrorIs(t, err, failing)
	}
}
