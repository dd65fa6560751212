package functional

import (
	"context"
	"iter"
	"sync"

	"github.com/otelpatterns/otelpatterns/errs"
	"github.com/otelpatterns/otelpatterns/internal/ordered"
)

// ParallelMap returns fn applied to each item, in the items' order, run on
// up to WithWorkers goroutines (GOMAXPROCS by default; never more than
// there are items, never one per item). The goroutines claim items in turn,
// so an item costs one atomic add more than the call of fn.
//
// By default the first error cancels the context of the items in flight,
// starts no more, and is returned; with CollectAll every item runs and all
// errors are returned joined, in input order. A panic in fn is returned as
// an *errs.PanicError. When ctx ends, items not yet started are skipped and
// ParallelMap returns, once the items in flight have returned, with an
// error that matches ctx's. On error, out[i] still holds item i's result if
// it succeeded. No goroutine outlives the call.
//
// Each call has one functional.parallel_map span with the item count, the
// concurrency and the outcome.
func ParallelMap[T, R any](ctx context.Context, items []T, fn func(context.Context, T) (R, error), opts ...Option) ([]R, error) {
	if err := check(ctx, fn == nil); err != nil {
		return nil, err
	}
	return parallel(ctx, "parallel_map", items, fn, opts)
}

// ParallelFilter returns the items for which pred is true, in order, with
// pred run as ParallelMap runs fn.
func ParallelFilter[T any](ctx context.Context, items []T, pred func(context.Context, T) (bool, error), opts ...Option) ([]T, error) {
	if err := check(ctx, pred == nil); err != nil {
		return nil, err
	}
	keep, err := parallel(ctx, "parallel_filter", items, pred, opts)
	var out []T
	for i, k := range keep {
		if k {
			out = append(out, items[i])
		}
	}
	return out, err
}

// ParallelForEach calls fn for each item, run as ParallelMap runs it, and
// returns the error as ParallelMap does.
func ParallelForEach[T any](ctx context.Context, items []T, fn func(context.Context, T) error, opts ...Option) error {
	if err := check(ctx, fn == nil); err != nil {
		return err
	}
	_, err := parallel(ctx, "parallel_for_each", items, func(ctx context.Context, item T) (struct{}, error) {
		return struct{}{}, fn(ctx, item)
	}, opts)
	return err
}

func parallel[T, R any](ctx context.Context, op string, items []T, fn func(context.Context, T) (R, error), opts []Option) ([]R, error) {
	c, err := newConfig(opts)
	if err != nil {
		return nil, err
	}
	workers := max(1, min(c.workers, len(items)))
	ctx, call := startCall(ctx, c, op, len(items), workers)
	b := ordered.NewBatch(ctx, items, workers, c.mode(), func(ctx context.Context, _ int, item T) (R, error) {
		return fn(ctx, item)
	})
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() { b.Work(nil) })
	}
	out, err := b.Wait()
	wg.Wait()
	call.end(err)
	return out, err
}

// maxWindow bounds the values ParallelMapSeq holds pulled and not yet
// yielded, however many workers there are.
const maxWindow = 1 << 16

// ParallelMapSeq returns a sequence of fn applied to each value of seq, in
// seq's order, run on up to WithWorkers goroutines as ParallelMap runs
// it. Values are pulled from seq as goroutines free up, with at most twice
// the workers pulled and not yet yielded, so it suits inputs too large
// to hold in memory. Errors are yielded as ParallelMap returns them: by
// default the first error is the last thing yielded. Breaking out of the
// range cancels the items in flight and stops pulling from seq; the
// goroutines have ended when the range does.
//
// Each range over the sequence has one functional.parallel_map span.
func ParallelMapSeq[T, R any](ctx context.Context, seq iter.Seq[T], fn func(context.Context, T) (R, error), opts ...Option) iter.Seq2[R, error] {
	return func(yield func(R, error) bool) {
		var zero R
		if err := check(ctx, fn == nil); err != nil {
			yield(zero, err)
			return
		}
		c, err := newConfig(opts)
		if err != nil {
			yield(zero, err)
			return
		}
		ctx, call := startCall(ctx, c, "parallel_map", -1, c.workers)
		// The goroutines start as the values come, one more per value
		// pulled until there are c.workers: a short sequence under a
		// large concurrency starts no more than it needs. seq is pulled
		// by a runner, under the stream's lock, so started needs no lock
		// of its own, and the runner count cannot be zero when it grows.
		var wg sync.WaitGroup
		var s *ordered.Stream[T, R]
		started := 1
		grow := func(yield func(T) bool) {
			for v := range seq {
				if started < c.workers {
					started++
					s.AddRunner()
					wg.Go(func() { s.Work(nil) })
				}
				if !yield(v) {
					return
				}
			}
		}
		window := min(2*c.workers, maxWindow)
		s = ordered.NewStream(ctx, grow, 1, window, c.mode(), true,
			func(ctx context.Context, _ int, item T) (R, error) { return fn(ctx, item) })
		wg.Go(func() { s.Work(nil) })
		failed := errs.Collector{Limit: ordered.KeptErrors} // for the span, over a sequence of any length
		n := 0
		for r, err := range s.Results() {
			n++
			failed.Add(err)
			if !yield(r, err) {
				break
			}
		}
		wg.Wait()
		call.setItems(n)
		call.end(failed.Err())
	}
}

func (c *config) mode() ordered.Mode {
	if c.collectAll {
		return ordered.CollectAll
	}
	return ordered.FailFast
}
