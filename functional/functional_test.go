package functional_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/quick"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/otelpatterns/otelpatterns/errs"
	"github.com/otelpatterns/otelpatterns/functional"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var bg = context.Background()

func TestSequentialForms(t *testing.T) {
	in := []int{1, 2, 3, 4, 5}
	out, err := functional.Map(bg, in, func(x int) string { return strconv.Itoa(x * x) })
	require.NoError(t, err)
	assert.Equal(t, []string{"1", "4", "9", "16", "25"}, out)

	evens, err := functional.Filter(bg, in, func(x int) bool { return x%2 == 0 })
	require.NoError(t, err)
	assert.Equal(t, []int{2, 4}, evens)

	sum, err := functional.Reduce(bg, in, 100, func(acc, x int) int { return acc + x })
	require.NoError(t, err)
	assert.Equal(t, 115, sum)

	empty, err := functional.Map(bg, []int(nil), func(x int) int { return x })
	require.NoError(t, err)
	assert.Empty(t, empty)
}

func TestErrFormsStopAtFirstError(t *testing.T) {
	boom := errors.New("boom")
	var calls int
	fail3 := func(_ context.Context, x int) (int, error) {
		calls++
		if x == 3 {
			return 0, boom
		}
		return x * 10, nil
	}
	out, err := functional.MapErr(bg, []int{1, 2, 3, 4, 5}, fail3)
	assert.Equal(t, boom, err)
	assert.Equal(t, []int{10, 20}, out, "the results before the error")
	assert.Equal(t, 3, calls, "nothing runs after the error")

	kept, err := functional.FilterErr(bg, []int{1, 2, 3, 4}, func(_ context.Context, x int) (bool, error) {
		if x == 3 {
			return false, boom
		}
		return true, nil
	})
	assert.Equal(t, boom, err)
	assert.Equal(t, []int{1, 2}, kept)

	acc, err := functional.ReduceErr(bg, []int{1, 2, 3, 4}, 0, func(_ context.Context, acc, x int) (int, error) {
		if x == 3 {
			return 0, boom
		}
		return acc + x, nil
	})
	assert.Equal(t, boom, err)
	assert.Equal(t, 3, acc, "the accumulator before the error")
}

func TestSequentialFormsHonourCancellation(t *testing.T) {
	ctx, cancel := context.WithCancel(bg)
	var calls int
	items := make([]int, 10_000)
	out, err := functional.Map(ctx, items, func(x int) int {
		calls++
		if calls == 1000 {
			cancel()
		}
		return x
	})
	assert.ErrorIs(t, err, context.Canceled)
	assert.Less(t, calls, 1000+256+1, "stopped within one check interval")
	assert.Len(t, out, calls)

	_, err = functional.Filter(ctx, items, func(int) bool { return true })
	assert.ErrorIs(t, err, context.Canceled)
	_, err = functional.Reduce(ctx, items, 0, func(a, b int) int { return a + b })
	assert.ErrorIs(t, err, context.Canceled)
}

func TestBadInputIsAnError(t *testing.T) {
	_, err := functional.Map[int, int](bg, []int{1}, nil)
	assert.ErrorContains(t, err, "must not be nil")
	//lint:ignore SA1012 passing nil is the point of the test
	_, err = functional.Map(nil, []int{1}, func(x int) int { return x }) //nolint:staticcheck
	assert.ErrorContains(t, err, "nil context")
	_, err = functional.ParallelMap[int, int](bg, []int{1}, nil)
	assert.ErrorContains(t, err, "must not be nil")
	_, err = functional.ParallelMap(bg, []int{1}, func(_ context.Context, x int) (int, error) { return x, nil }, functional.WithWorkers(0))
	assert.ErrorContains(t, err, "WithWorkers(0)")
	_, err = functional.Map(bg, []int{1}, func(x int) int { return x }, functional.WithWorkers(-1))
	assert.ErrorContains(t, err, "WithWorkers(-1)")
	// Every sequential form refuses a nil function, a nil context and a bad
	// option, with nil, or with initial for Reduce's forms.
	type form func(ctx context.Context, nilFunc bool, opts ...functional.Option) (any, error)
	forms := map[string]form{
		"Map": func(ctx context.Context, nilFunc bool, opts ...functional.Option) (any, error) {
			return functional.Map(ctx, []int{1}, cond(nilFunc, nil, func(x int) int { return x }), opts...)
		},
		"MapErr": func(ctx context.Context, nilFunc bool, opts ...functional.Option) (any, error) {
			return functional.MapErr(ctx, []int{1}, cond(nilFunc, nil, func(_ context.Context, x int) (int, error) { return x, nil }), opts...)
		},
		"Filter": func(ctx context.Context, nilFunc bool, opts ...functional.Option) (any, error) {
			return functional.Filter(ctx, []int{1}, cond(nilFunc, nil, func(int) bool { return true }), opts...)
		},
		"FilterErr": func(ctx context.Context, nilFunc bool, opts ...functional.Option) (any, error) {
			return functional.FilterErr(ctx, []int{1}, cond(nilFunc, nil, func(context.Context, int) (bool, error) { return true, nil }), opts...)
		},
		"Reduce": func(ctx context.Context, nilFunc bool, opts ...functional.Option) (any, error) {
			return functional.Reduce(ctx, []int{1}, 7, cond(nilFunc, nil, func(a, b int) int { return a + b }), opts...)
		},
		"ReduceErr": func(ctx context.Context, nilFunc bool, opts ...functional.Option) (any, error) {
			return functional.ReduceErr(ctx, []int{1}, 7, cond(nilFunc, nil, func(_ context.Context, a, b int) (int, error) { return a + b, nil }), opts...)
		},
	}
	refusals := []struct {
		name    string
		ctx     context.Context
		nilFunc bool
		opts    []functional.Option
		want    string
	}{
		{name: "nil function", ctx: bg, nilFunc: true, want: "must not be nil"},
		{name: "nil context", want: "nil context"},
		{name: "bad option", ctx: bg, opts: []functional.Option{functional.WithWorkers(-1)}, want: "WithWorkers(-1)"},
	}
	for name, call := range forms {
		for _, c := range refusals {
			t.Run(name+"/"+c.name, func(t *testing.T) {
				got, err := call(c.ctx, c.nilFunc, c.opts...)
				assert.ErrorContains(t, err, c.want)
				if strings.HasPrefix(name, "Reduce") {
					assert.Equal(t, 7, got, "a refused Reduce returns initial")
				} else {
					assert.Nil(t, got)
				}
			})
		}
	}
	for _, err := range functional.MapSeqErr[int, int](bg, slices.Values([]int{1}), nil) {
		assert.ErrorContains(t, err, "must not be nil")
	}
	assert.PanicsWithValue(t, "functional.MapSeq: the function must not be nil", func() {
		functional.MapSeq[int, int](slices.Values([]int{1}), nil)
	}, "a nil function for a lazy form is found at the call")
}

// once fails the test if yield is called again after it returned false.
func once[T any](t *testing.T, seq func(func(T) bool), stopAfter int) []T {
	var got []T
	stopped := false
	seq(func(v T) bool {
		require.False(t, stopped, "yield called after it returned false")
		got = append(got, v)
		if len(got) == stopAfter {
			stopped = true
			return false
		}
		return true
	})
	return got
}

func TestLazyForms(t *testing.T) {
	var pulled int
	source := func(yield func(int) bool) {
		for i := 1; ; i++ {
			pulled++
			if !yield(i) {
				return
			}
		}
	}
	odd := functional.FilterSeq(source, func(x int) bool { return x%2 == 1 })
	squares := functional.MapSeq(odd, func(x int) int { return x * x })
	assert.Equal(t, []int{1, 9, 25}, once(t, squares, 3))
	assert.Equal(t, 5, pulled, "breaking out stops the source: nothing is pulled ahead")

	words := map[string]int{"a": 1, "bb": 2, "ccc": 3}
	long := functional.FilterSeq2(maps.All(words), func(k string, _ int) bool { return len(k) > 1 })
	lines := slices.Sorted(functional.MapSeq2(long, func(k string, v int) string { return fmt.Sprint(k, "=", v) }))
	assert.Equal(t, []string{"bb=2", "ccc=3"}, lines, "composes with maps and slices")

	assert.Equal(t, 10, functional.ReduceSeq(slices.Values([]int{1, 2, 3, 4}), 0, func(a, x int) int { return a + x }))

	pairs := functional.MapSeqErr(bg, slices.Values([]string{"1", "2", "x", "4"}), func(_ context.Context, s string) (int, error) {
		return strconv.Atoi(s)
	})
	var got []int
	var gotErr error
	for v, err := range pairs {
		if err != nil {
			gotErr = err
			continue
		}
		got = append(got, v)
	}
	assert.Equal(t, []int{1, 2}, got)
	assert.ErrorContains(t, gotErr, `parsing "x"`)
}

// highWater tracks the most calls running at once.
type highWater struct {
	now, high atomic.Int64
}

func (h *highWater) enter() {
	n := h.now.Add(1)
	for {
		old := h.high.Load()
		if n <= old || h.high.CompareAndSwap(old, n) {
			return
		}
	}
}

func (h *highWater) leave() { h.now.Add(-1) }

func TestParallelMatchesSequential(t *testing.T) {
	check := func(in []int16, conc uint8) bool {
		n := 1 + int(conc%8)
		var hw highWater
		fn := func(_ context.Context, x int16) (int, error) {
			hw.enter()
			defer hw.leave()
			if x%7 == 0 {
				time.Sleep(10 * time.Microsecond)
			}
			return int(x) * 2, nil
		}
		par, err := functional.ParallelMap(bg, in, fn, functional.WithWorkers(n))
		if err != nil || hw.high.Load() > int64(n) {
			return false
		}
		seq, _ := functional.MapErr(bg, in, fn)
		if !slices.Equal(par, seq) {
			return false
		}
		pred := func(_ context.Context, x int16) (bool, error) { return x%3 == 0, nil }
		pf, _ := functional.ParallelFilter(bg, in, pred, functional.WithWorkers(n))
		sf, _ := functional.FilterErr(bg, in, pred)
		if !slices.Equal(pf, sf) {
			return false
		}
		var ps []int
		for v, err := range functional.ParallelMapSeq(bg, slices.Values(in), fn, functional.WithWorkers(n)) {
			if err != nil {
				return false
			}
			ps = append(ps, v)
		}
		return slices.Equal(ps, seq) || len(ps) == 0 && len(seq) == 0
	}
	require.NoError(t, quick.Check(check, &quick.Config{MaxCount: 100}))
}

func TestParallelNeverExceedsConcurrency(t *testing.T) {
	var hw highWater
	err := functional.ParallelForEach(bg, make([]int, 200), func(context.Context, int) error {
		hw.enter()
		defer hw.leave()
		time.Sleep(50 * time.Microsecond)
		return nil
	}, functional.WithWorkers(3))
	require.NoError(t, err)
	assert.Equal(t, int64(3), hw.high.Load())
}

func TestParallelFailFastAndCollectAll(t *testing.T) {
	var started atomic.Int64
	fn := func(ctx context.Context, x int) (int, error) {
		started.Add(1)
		if x%50 == 7 {
			return 0, fmt.Errorf("bad %d", x)
		}
		time.Sleep(20 * time.Microsecond)
		return x, ctx.Err()
	}
	items := make([]int, 1000)
	for i := range items {
		items[i] = i
	}
	_, err := functional.ParallelMap(bg, items, fn, functional.WithWorkers(2))
	assert.EqualError(t, err, "bad 7")
	assert.Less(t, started.Load(), int64(100), "the first error stops the rest")

	started.Store(0)
	out, err := functional.ParallelMap(bg, items, fn, functional.WithWorkers(4), functional.CollectAll())
	assert.EqualValues(t, 1000, started.Load())
	require.Error(t, err)
	assert.Len(t, err.(interface{ Unwrap() []error }).Unwrap(), 20)
	assert.Equal(t, 8, out[8])
}

func TestParallelPanicAndCancel(t *testing.T) {
	_, err := functional.ParallelMap(bg, []int{1, 2, 3}, func(_ context.Context, x int) (int, error) {
		if x == 2 {
			panic("two")
		}
		return x, nil
	})
	var pe *errs.PanicError
	require.ErrorAs(t, err, &pe)
	assert.Equal(t, "two", pe.Value)

	ctx, cancel := context.WithCancel(bg)
	var started atomic.Int64
	err = functional.ParallelForEach(ctx, make([]int, 100), func(ctx context.Context, _ int) error {
		if started.Add(1) == 2 {
			cancel()
		}
		<-ctx.Done()
		return ctx.Err()
	}, functional.WithWorkers(2))
	assert.ErrorIs(t, err, context.Canceled)
	assert.LessOrEqual(t, started.Load(), int64(2), "no item starts after the cancellation")
}

func TestParallelMapSeqEarlyBreak(t *testing.T) {
	var pulled atomic.Int64
	endless := func(yield func(int) bool) {
		for i := 0; ; i++ {
			pulled.Add(1)
			if !yield(i) {
				return
			}
		}
	}
	n := 0
	for v, err := range functional.ParallelMapSeq(bg, endless, func(_ context.Context, x int) (int, error) { return x, nil }, functional.WithWorkers(3)) {
		require.NoError(t, err)
		require.Equal(t, n, v)
		if n++; n == 20 {
			break
		}
	}
	after := pulled.Load()
	time.Sleep(2 * time.Millisecond)
	assert.Equal(t, after, pulled.Load(), "nothing is pulled after the break; goleak checks the goroutines")
}

func TestResult(t *testing.T) {
	var zero functional.Result[int]
	v, err := zero.Value()
	assert.True(t, zero.IsOk(), "the zero Result is Ok")
	assert.Equal(t, 0, v)
	assert.NoError(t, err)

	bad := functional.Of(strconv.Atoi("x"))
	assert.False(t, bad.IsOk())
	assert.Equal(t, 7, bad.Or(7))
	assert.Panics(t, func() { bad.MustValue() })
	assert.Equal(t, 12, functional.Of(strconv.Atoi("12")).MustValue())
	assert.True(t, functional.Err[int](nil).IsOk(), "Err(nil) is Ok")

	s := functional.MapResult(functional.Ok(21), func(x int) string { return strconv.Itoa(2 * x) })
	assert.Equal(t, "42", s.MustValue())
	assert.Equal(t, bad.Err(), functional.MapResult(bad, func(x int) int { return x }).Err())
	assert.Equal(t, 5, functional.Then(functional.Ok("5"), strconv.Atoi).MustValue())

	all, err := functional.Collect([]functional.Result[int]{functional.Ok(1), functional.Ok(2)})
	assert.NoError(t, err)
	assert.Equal(t, []int{1, 2}, all)
	e1, e2 := errors.New("e1"), errors.New("e2")
	all, err = functional.Collect([]functional.Result[int]{functional.Err[int](e1), functional.Ok(2), functional.Err[int](e2)})
	assert.Nil(t, all)
	assert.ErrorIs(t, err, e1)
	assert.ErrorIs(t, err, e2)

	var pulled int
	results := func(yield func(functional.Result[int]) bool) {
		for _, r := range []functional.Result[int]{functional.Ok(1), functional.Err[int](e1), functional.Ok(3)} {
			pulled++
			if !yield(r) {
				return
			}
		}
	}
	vals, err := functional.CollectSeq(results)
	assert.Equal(t, []int{1}, vals)
	assert.Equal(t, e1, err)
	assert.Equal(t, 2, pulled, "CollectSeq stops at the first error")

	// Results travel on a channel where a pair cannot.
	ch := make(chan functional.Result[int], 3)
	var wg sync.WaitGroup
	wg.Go(func() {
		defer close(ch)
		for r := range functional.Results(functional.MapSeqErr(bg, slices.Values([]string{"1", "2"}), func(_ context.Context, s string) (int, error) { return strconv.Atoi(s) })) {
			ch <- r
		}
	})
	var got []int
	for v, err := range functional.Pairs(func(yield func(functional.Result[int]) bool) {
		for r := range ch {
			if !yield(r) {
				return
			}
		}
	}) {
		require.NoError(t, err)
		got = append(got, v)
	}
	wg.Wait()
	assert.Equal(t, []int{1, 2}, got)
}

// A concurrency too large to run is an error; a large one over a short
// sequence starts no more goroutines than it needs.
func TestParallelMapSeqConcurrencyBounds(t *testing.T) {
	double := func(_ context.Context, n int) (int, error) { return 2 * n, nil }
	for _, err := range functional.ParallelMapSeq(context.Background(), slices.Values([]int{1}), double, functional.WithWorkers(math.MaxInt)) {
		if err == nil || !strings.Contains(err.Error(), "WithWorkers") {
			t.Fatalf("WithWorkers(MaxInt): %v; want an error naming it", err)
		}
	}
	before := runtime.NumGoroutine()
	most := 0
	var mu sync.Mutex
	watch := func(_ context.Context, n int) (int, error) {
		mu.Lock()
		most = max(most, runtime.NumGoroutine()-before)
		mu.Unlock()
		return 2 * n, nil
	}
	var got []int
	for v, err := range functional.ParallelMapSeq(context.Background(), slices.Values([]int{1, 2, 3}), watch, functional.WithWorkers(100_000)) {
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, v)
	}
	if !slices.Equal(got, []int{2, 4, 6}) || most > 6 {
		t.Fatalf("got %v with up to %d more goroutines; want [2 4 6] with a handful", got, most)
	}
}

// cond is a if c, else b.
func cond[T any](c bool, a, b T) T {
	if c {
		return a
	}
	return b
}
