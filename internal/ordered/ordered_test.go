package ordered_test

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/otelpatterns/otelpatterns/errs"
	"github.com/otelpatterns/otelpatterns/internal/ordered"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// runBatch runs a batch on k goroutines, as functional does.
func runBatch[In, Out any](ctx context.Context, in []In, k int, mode ordered.Mode, fn ordered.Func[In, Out]) ([]Out, error) {
	k = max(1, min(k, len(in)))
	b := ordered.NewBatch(ctx, in, k, mode, fn)
	var wg sync.WaitGroup
	for range k {
		wg.Go(func() { b.Work(nil) })
	}
	defer wg.Wait()
	return b.Wait()
}

func square(_ context.Context, _ int, x int) (int, error) { return x * x, nil }

func TestBatchKeepsOrder(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for range 200 {
		n, k := r.IntN(300), 1+r.IntN(8)
		in := make([]int, n)
		for i := range in {
			in[i] = r.IntN(1000)
		}
		out, err := runBatch(context.Background(), in, k, ordered.FailFast, square)
		require.NoError(t, err)
		want := make([]int, n)
		for i, x := range in {
			want[i] = x * x
		}
		require.Equal(t, want, out, "n=%d k=%d", n, k)
	}
}

func TestBatchFailFast(t *testing.T) {
	boom := errors.New("boom")
	var started atomic.Int64
	var sawCancel atomic.Bool
	in := make([]int, 1000)
	_, err := runBatch(context.Background(), in, 4, ordered.FailFast, func(ctx context.Context, i int, _ int) (int, error) {
		started.Add(1)
		if i == 10 {
			return 0, boom
		}
		if i < 2 { // in flight when item 10 fails: must see the cancellation
			select {
			case <-ctx.Done():
				sawCancel.Store(true)
			case <-time.After(5 * time.Second):
			}
		}
		return i, nil
	})
	assert.Equal(t, boom, err)
	assert.Less(t, started.Load(), int64(100), "no item starts after the first error, beyond those in flight")
	assert.True(t, sawCancel.Load(), "the items in flight see their context cancelled")
}

func TestBatchCollectAll(t *testing.T) {
	var ran atomic.Int64
	in := []int{0, 1, 2, 3, 4, 5, 6, 7}
	out, err := runBatch(context.Background(), in, 3, ordered.CollectAll, func(_ context.Context, i int, x int) (int, error) {
		ran.Add(1)
		if x%3 == 0 {
			return 0, fmt.Errorf("item %d", x)
		}
		return x * 10, nil
	})
	assert.EqualValues(t, len(in), ran.Load(), "every item runs")
	require.Error(t, err)
	assert.Equal(t, "item 0\nitem 3\nitem 6", err.Error(), "errors are joined in input order")
	assert.Equal(t, []int{0, 10, 20, 0, 40, 50, 0, 70}, out)
}

func TestBatchPanicIsAnError(t *testing.T) {
	_, err := runBatch(context.Background(), []int{1, 2, 3}, 2, ordered.FailFast, func(_ context.Context, _ int, x int) (int, error) {
		if x == 2 {
			panic("bad item")
		}
		return x, nil
	})
	var p *errs.PanicError
	require.ErrorAs(t, err, &p)
	assert.Equal(t, "bad item", p.Value)
}

func TestBatchCancelReturnsPromptly(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	var started atomic.Int64
	in := make([]int, 100)
	go func() {
		for started.Load() < 2 {
			time.Sleep(time.Millisecond)
		}
		cancel()
	}()
	start := time.Now()
	_, err := runBatch(ctx, in, 2, ordered.CollectAll, func(ctx context.Context, _ int, _ int) (int, error) {
		started.Add(1)
		<-ctx.Done()
		return 0, ctx.Err()
	})
	assert.ErrorIs(t, err, context.Canceled)
	assert.Less(t, time.Since(start), 5*time.Second)
	assert.EqualValues(t, 2, started.Load(), "no item starts after the cancellation")
}

func TestBatchAbandoned(t *testing.T) {
	closed := errors.New("pool closed")
	b := ordered.NewBatch(context.Background(), []int{1, 2, 3}, 2, ordered.FailFast, square)
	b.Abandon(closed)
	b.Abandon(closed)
	_, err := b.Wait()
	assert.Equal(t, closed, err, "when no runner will ever run, the items fail")

	b = ordered.NewBatch(context.Background(), []int{1, 2, 3}, 2, ordered.FailFast, square)
	b.Abandon(closed)
	go b.Work(nil)
	out, err := b.Wait()
	assert.NoError(t, err, "one runner is enough")
	assert.Equal(t, []int{1, 4, 9}, out)
}

func TestBatchLateRunnerTouchesNothing(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	b := ordered.NewBatch(ctx, []int{1, 2, 3}, 1, ordered.FailFast, square)
	out, err := b.Wait()
	assert.ErrorIs(t, err, context.Canceled)
	b.Work(nil) // a runner dequeued after the caller left: must not write into out
	assert.Equal(t, []int{0, 0, 0}, out)
}

func TestBatchEmpty(t *testing.T) {
	out, err := runBatch(context.Background(), []int{}, 4, ordered.FailFast, square)
	assert.NoError(t, err)
	assert.Empty(t, out)
}

// runStream runs a stream on k goroutines and collects what it yields.
func runStream[In, Out any](ctx context.Context, seq iter.Seq[In], k, window int, mode ordered.Mode, keepOrder bool, fn ordered.Func[In, Out]) ([]Out, []error) {
	s := ordered.NewStream(ctx, seq, k, window, mode, keepOrder, fn)
	var wg sync.WaitGroup
	for range k {
		wg.Go(func() { s.Work(nil) })
	}
	defer wg.Wait()
	var outs []Out
	var errors []error
	for out, err := range s.Results() {
		if err != nil {
			errors = append(errors, err)
			continue
		}
		outs = append(outs, out)
	}
	return outs, errors
}

func TestStreamKeepsOrder(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for range 100 {
		n, k := r.IntN(200), 1+r.IntN(8)
		window := k + r.IntN(8)
		in := make([]int, n)
		for i := range in {
			in[i] = r.IntN(1000)
		}
		out, errs := runStream(context.Background(), slices.Values(in), k, window, ordered.FailFast, true,
			func(_ context.Context, _ int, x int) (int, error) {
				if x%7 == 0 {
					time.Sleep(time.Duration(x%3) * 50 * time.Microsecond) // finish out of order
				}
				return x * x, nil
			})
		require.Empty(t, errs)
		want := make([]int, 0, n)
		for _, x := range in {
			want = append(want, x*x)
		}
		if n == 0 {
			want = nil
		}
		require.Equal(t, want, out, "n=%d k=%d window=%d", n, k, window)
	}
}

func TestStreamUnordered(t *testing.T) {
	in := make([]int, 500)
	for i := range in {
		in[i] = i
	}
	out, errs := runStream(context.Background(), slices.Values(in), 4, 8, ordered.FailFast, false, square)
	require.Empty(t, errs)
	slices.Sort(out)
	for i, x := range out {
		require.Equal(t, i*i, x)
	}
	require.Len(t, out, len(in))
}

func TestStreamWindowBoundsInFlight(t *testing.T) {
	const window = 5
	var pulled, yielded, highWater atomic.Int64
	seq := func(yield func(int) bool) {
		for i := range 300 {
			if d := pulled.Add(1) - yielded.Load(); d > highWater.Load() {
				highWater.Store(d)
			}
			if !yield(i) {
				return
			}
		}
	}
	s := ordered.NewStream(context.Background(), seq, 3, window, ordered.FailFast, true,
		func(_ context.Context, i int, x int) (int, error) {
			if i%10 == 0 {
				time.Sleep(200 * time.Microsecond) // the head of the line is slow
			}
			return x, nil
		})
	var wg sync.WaitGroup
	for range 3 {
		wg.Go(func() { s.Work(nil) })
	}
	n := 0
	for out, err := range s.Results() {
		require.NoError(t, err)
		require.Equal(t, n, out)
		n++
		yielded.Add(1)
	}
	wg.Wait()
	assert.Equal(t, 300, n)
	assert.LessOrEqual(t, highWater.Load(), int64(window), "never more than the window pulled and not yet yielded")
}

func TestStreamEarlyBreakStopsEverything(t *testing.T) {
	var seqStopped atomic.Bool
	seq := func(yield func(int) bool) {
		defer seqStopped.Store(true)
		for i := 0; ; i++ {
			if !yield(i) {
				return
			}
		}
	}
	s := ordered.NewStream(context.Background(), seq, 4, 8, ordered.FailFast, true, square)
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() { s.Work(nil) })
	}
	got := 0
	for range s.Results() {
		got++
		if got == 50 {
			break
		}
	}
	assert.True(t, seqStopped.Load(), "the input is released when Results returns")
	wg.Wait() // goleak in TestMain checks that nothing is left
}

func TestStreamFailFastAndCollectAll(t *testing.T) {
	in := []int{1, 2, 3, 4, 5, 6}
	fn := func(_ context.Context, _ int, x int) (int, error) {
		if x%2 == 0 {
			return 0, fmt.Errorf("even %d", x)
		}
		return x, nil
	}
	out, errs := runStream(context.Background(), slices.Values(in), 1, 1, ordered.FailFast, true, fn)
	assert.Equal(t, []int{1}, out)
	require.Len(t, errs, 1, "fail-fast: the first error is the last thing yielded")
	assert.EqualError(t, errs[0], "even 2")

	out, errs = runStream(context.Background(), slices.Values(in), 3, 4, ordered.CollectAll, true, fn)
	assert.Equal(t, []int{1, 3, 5}, out)
	require.Len(t, errs, 3)
	assert.EqualError(t, errors.Join(errs...), "even 2\neven 4\neven 6")
}

func TestStreamPanics(t *testing.T) {
	_, es := runStream(context.Background(), slices.Values([]int{1, 2, 3}), 2, 2, ordered.CollectAll, true,
		func(_ context.Context, _ int, x int) (int, error) {
			if x == 2 {
				panic("in fn")
			}
			return x, nil
		})
	require.Len(t, es, 1)
	var p *errs.PanicError
	assert.ErrorAs(t, es[0], &p)

	badSeq := func(yield func(int) bool) {
		yield(1)
		panic("in seq")
	}
	out, es := runStream(context.Background(), badSeq, 2, 2, ordered.CollectAll, true, square)
	assert.Equal(t, []int{1}, out)
	require.Len(t, es, 1, "a panic in the input is yielded once, in its place")
	assert.ErrorAs(t, es[0], &p)
	assert.Equal(t, "in seq", p.Value)
}

func TestStreamCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	seq := func(yield func(int) bool) {
		for i := 0; ; i++ {
			if i == 20 {
				cancel()
			}
			if !yield(i) {
				return
			}
		}
	}
	_, es := runStream(ctx, seq, 2, 4, ordered.CollectAll, true, func(ctx context.Context, _ int, x int) (int, error) {
		return x, ctx.Err()
	})
	require.NotEmpty(t, es)
	assert.ErrorIs(t, es[len(es)-1], context.Canceled)
}

func TestStreamAbandoned(t *testing.T) {
	closed := errors.New("pool closed")
	s := ordered.NewStream(context.Background(), slices.Values([]int{1, 2}), 2, 2, ordered.FailFast, true, square)
	s.Abandon(closed)
	s.Abandon(closed)
	var es []error
	for _, err := range s.Results() {
		es = append(es, err)
	}
	assert.Equal(t, []error{closed}, es)
}
