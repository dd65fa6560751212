package pool_test

import (
	"context"
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

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
		p, err := pool.NewFunc(opt)
		if err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("%s(MaxInt): %v, %v; want an error naming it", name, p, err)
		}
	}
}
