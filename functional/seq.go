package functional

import (
	"context"
	"iter"
)

// The lazy forms work on iter.Seq and iter.Seq2: nothing runs until the
// result is ranged over, each value flows through the whole chain before
// the next is pulled, and breaking out of the range stops the source. They
// compose with the standard library's iterators (slices.Values, maps.Keys,
// slices.Collect ...). A nil function is a programming error, found at the
// call, not while ranging: these forms panic on it, as the standard
// library's do.

// MapSeq returns a sequence of fn applied to each value of seq.
func MapSeq[T, R any](seq iter.Seq[T], fn func(T) R) iter.Seq[R] {
	mustFunc("MapSeq", fn == nil)
	return func(yield func(R) bool) {
		for v := range seq {
			if !yield(fn(v)) {
				return
			}
		}
	}
}

// FilterSeq returns a sequence of the values of seq for which pred is true.
func FilterSeq[T any](seq iter.Seq[T], pred func(T) bool) iter.Seq[T] {
	mustFunc("FilterSeq", pred == nil)
	return func(yield func(T) bool) {
		for v := range seq {
			if pred(v) && !yield(v) {
				return
			}
		}
	}
}

// ReduceSeq folds the values of seq into initial with fn.
func ReduceSeq[T, R any](seq iter.Seq[T], initial R, fn func(R, T) R) R {
	mustFunc("ReduceSeq", fn == nil)
	acc := initial
	for v := range seq {
		acc = fn(acc, v)
	}
	return acc
}

// MapSeq2 returns a sequence of fn applied to each pair of seq, such as the
// entries of maps.All.
func MapSeq2[K, V, R any](seq iter.Seq2[K, V], fn func(K, V) R) iter.Seq[R] {
	mustFunc("MapSeq2", fn == nil)
	return func(yield func(R) bool) {
		for k, v := range seq {
			if !yield(fn(k, v)) {
				return
			}
		}
	}
}

// FilterSeq2 returns a sequence of the pairs of seq for which pred is true.
func FilterSeq2[K, V any](seq iter.Seq2[K, V], pred func(K, V) bool) iter.Seq2[K, V] {
	mustFunc("FilterSeq2", pred == nil)
	return func(yield func(K, V) bool) {
		for k, v := range seq {
			if pred(k, v) && !yield(k, v) {
				return
			}
		}
	}
}

// MapSeqErr returns a sequence of fn applied to each value of seq, as
// (result, nil) pairs. At the first error it yields (zero, err) and stops;
// it looks at ctx every few hundred values and, once ctx is cancelled,
// yields (zero, ctx's error) and stops. A nil ctx or fn is yielded as an
// error too.
func MapSeqErr[T, R any](ctx context.Context, seq iter.Seq[T], fn func(context.Context, T) (R, error)) iter.Seq2[R, error] {
	return func(yield func(R, error) bool) {
		var zero R
		if err := check(ctx, fn == nil); err != nil {
			yield(zero, err)
			return
		}
		i := 0
		for v := range seq {
			if i%checkEvery == 0 && ctx.Err() != nil {
				yield(zero, ctx.Err())
				return
			}
			i++
			r, err := fn(ctx, v)
			if err != nil {
				yield(zero, err)
				return
			}
			if !yield(r, nil) {
				return
			}
		}
	}
}

func mustFunc(name string, isNil bool) {
	if isNil {
		panic("functional." + name + ": the function must not be nil")
	}
}
