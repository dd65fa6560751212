package pool_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync/atomic"
	"testing"
	"testing/quick"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/otelpatterns/otelpatterns/errs"
	"github.com/otelpatterns/otelpatterns/pool"
)

func TestProcessKeepsOrder(t *testing.T) {
	check := func(in []int16, workers uint8) bool {
		p, err := pool.New(func(_ context.Context, x int16) (int, error) {
			if x%5 == 0 {
				time.Sleep(time.Duration(rand.IntN(20)) * time.Microsecond)
			}
			return int(x) * 3, nil
		}, pool.WithWorkers(1+int(workers%8)))
		if err != nil {
			return false
		}
		defer p.Close()
		out, err := p.Process(context.Background(), in)
		if err != nil || len(out) != len(in) {
			return false
		}
		for i, x := range in {
			if out[i] != int(x)*3 {
				return false
			}
		}
		return true
	}
	require.NoError(t, quick.Check(check, &quick.Config{MaxCount: 60}))
}

func TestProcessFailFast(t *testing.T) {
	boom := errors.New("boom")
	var started atomic.Int64
	p := mustNew(t, func(ctx context.Context, x int) (int, error) {
		started.Add(1)
		if x == 5 {
			return 0, boom
		}
		time.Sleep(50 * time.Microsecond)
		return x, ctx.Err()
	}, pool.WithWorkers(2))
	items := make([]int, 2000)
	for i := range items {
		items[i] = i
	}
	out, err := p.Process(context.Background(), items)
	assert.Equal(t, boom, err)
	assert.Len(t, out, len(items))
	assert.Less(t, started.Load(), int64(100), "the first error stops the batch")
}

func TestProcessCollectAll(t *testing.T) {
	p := mustNew(t, func(_ context.Context, x int) (int, error) {
		if x%4 == 0 {
			return 0, fmt.Errorf("bad %d", x)
		}
		return x, nil
	}, pool.WithWorkers(3))
	out, err := p.Process(context.Background(), []int{1, 4, 5, 8, 9}, pool.CollectAll())
	assert.EqualError(t, err, "bad 4\nbad 8")
	assert.Equal(t, []int{1, 0, 5, 0, 9}, out)
}

func TestProcessPanic(t *testing.T) {
	p := mustNew(t, func(_ context.Context, x int) (int, error) {
		if x == 2 {
			panic(fmt.Sprintf("item %d", x))
		}
		return x, nil
	})
	_, err := p.Process(context.Background(), []int{1, 2, 3})
	var pe *errs.PanicError
	require.ErrorAs(t, err, &pe)
	assert.Equal(t, "item 2", pe.Value)
}

func TestProcessCancel(t *testing.T) {
	b := newBlocker()
	p := mustNew(t, b.process, pool.WithWorkers(2))
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		<-b.started
		<-b.started
		cancel()
	}()
	_, err := p.Process(ctx, make([]int, 100))
	assert.ErrorIs(t, err, context.Canceled)
	assert.Len(t, b.started, 0, "no item started after the cancellation")

	out, err := p.Process(context.Background(), []int{})
	assert.NoError(t, err)
	assert.Empty(t, out)
}

func TestProcessSeq(t *testing.T) {
	p := mustNew(t, double, pool.WithWorkers(3))
	var got []int
	for v, err := range p.ProcessSeq(context.Background(), slices.Values([]int{1, 2, 3, 4, 5, 6, 7})) {
		require.NoError(t, err)
		got = append(got, v)
	}
	assert.Equal(t, []int{2, 4, 6, 8, 10, 12, 14}, got)

	got = got[:0]
	for v, err := range p.ProcessSeq(context.Background(), slices.Values([]int{1, 2, 3, 4}), pool.Unordered()) {
		require.NoError(t, err)
		got = append(got, v)
	}
	slices.Sort(got)
	assert.Equal(t, []int{2, 4, 6, 8}, got)
}

func TestProcessSeqEarlyBreakStopsPulling(t *testing.T) {
	p := mustNew(t, double, pool.WithWorkers(2))
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
	for _, err := range p.ProcessSeq(context.Background(), endless) {
		require.NoError(t, err)
		if n++; n == 10 {
			break
		}
	}
	after := pulled.Load()
	time.Sleep(5 * time.Millisecond)
	assert.Equal(t, after, pulled.Load(), "nothing is pulled after the break")
	assert.LessOrEqual(t, after, int64(10+2*2+1), "at most the window ahead of the consumer")
}

func TestProcessSeqErrors(t *testing.T) {
	p := mustNew(t, func(_ context.Context, x int) (int, error) {
		if x == 3 {
			return 0, errors.New("three")
		}
		return x, nil
	}, pool.WithWorkers(1))
	var errs []error
	for _, err := range p.ProcessSeq(context.Background(), slices.Values([]int{1, 2, 3, 4, 5})) {
		if err != nil {
			errs = append(errs, err)
		}
	}
	require.Len(t, errs, 1)
	assert.EqualError(t, errs[0], "three")

	require.NoError(t, p.Close())
	for _, err := range p.ProcessSeq(context.Background(), slices.Values([]int{1})) {
		assert.ErrorIs(t, err, pool.ErrClosed)
	}
}

func TestBatchSpanSummarisesErrors(t *testing.T) {
	r := newRecorders(t)
	p := mustNew(t, func(_ context.Context, x int) (int, error) { return 0, fmt.Errorf("bad %d", x) }, r.options(pool.WithWorkers(1))...)
	_, err := p.Process(context.Background(), []int{1, 2, 3}, pool.CollectAll())
	require.Error(t, err)
	assert.Equal(t, "bad 1 (and 2 more)", r.Ended("pool.process")[0].Status().Description)

	for range p.ProcessSeq(context.Background(), slices.Values([]int{4, 5}), pool.CollectAll()) {
	}
	assert.Equal(t, "bad 4 (and 1 more)", r.Ended("pool.process")[1].Status().Description)
}
