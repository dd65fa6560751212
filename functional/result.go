package functional

import (
	"errors"
	"iter"
)

// Result is a value or the error that stands in its place, for the places a
// (T, error) pair cannot travel: a channel, an iter.Seq, a slice of
// outcomes. Elsewhere, return (T, error) as usual.
//
// The zero Result is Ok and holds the zero T.
type Result[T any] struct {
	value T
	err   error
}

// Ok returns a Result holding v.
func Ok[T any](v T) Result[T] { return Result[T]{value: v} }

// Err returns a Result holding err. Err(nil) is Ok with the zero T.
func Err[T any](err error) Result[T] { return Result[T]{err: err} }

// Of returns a Result from a (T, error) pair, as functions return them:
//
//	r := functional.Of(strconv.Atoi(s))
//
// A non-nil err makes a failed Result, whatever v is.
func Of[T any](v T, err error) Result[T] {
	if err != nil {
		return Result[T]{err: err}
	}
	return Result[T]{value: v}
}

// Value returns the value and the error, as a pair again. The value is the
// zero T when the Result failed.
func (r Result[T]) Value() (T, error) { return r.value, r.err }

// Err returns the error, or nil when the Result is Ok.
func (r Result[T]) Err() error { return r.err }

// IsOk reports whether the Result holds a value rather than an error.
func (r Result[T]) IsOk() bool { return r.err == nil }

// Or returns the value, or fallback when the Result failed.
func (r Result[T]) Or(fallback T) T {
	if r.err != nil {
		return fallback
	}
	return r.value
}

// MustValue returns the value, and panics with the error when the Result
// failed. Use it only where a failure is a bug, as in tests and examples.
func (r Result[T]) MustValue() T {
	if r.err != nil {
		panic(r.err)
	}
	return r.value
}

// MapResult returns fn applied to r's value, or r's error unchanged. It is
// a function, not a method, because Go methods cannot add type parameters.
func MapResult[T, R any](r Result[T], fn func(T) R) Result[R] {
	if r.err != nil {
		return Result[R]{err: r.err}
	}
	return Result[R]{value: fn(r.value)}
}

// Then returns fn applied to r's value, for a fn that can fail, or r's
// error unchanged.
func Then[T, R any](r Result[T], fn func(T) (R, error)) Result[R] {
	if r.err != nil {
		return Result[R]{err: r.err}
	}
	return Of(fn(r.value))
}

// Collect returns the values of rs in order if every Result is Ok. If some
// failed, it returns nil and all their errors, joined with errors.Join in
// order.
func Collect[T any](rs []Result[T]) ([]T, error) {
	var failed []error
	for _, r := range rs {
		if r.err != nil {
			failed = append(failed, r.err)
		}
	}
	if failed != nil {
		return nil, errors.Join(failed...)
	}
	out := make([]T, len(rs))
	for i, r := range rs {
		out[i] = r.value
	}
	return out, nil
}

// CollectSeq returns the values of seq in order, up to the first failed
// Result, whose error it returns with the values before it. It stops
// reading there, so it suits sequences without end.
func CollectSeq[T any](seq iter.Seq[Result[T]]) ([]T, error) {
	var out []T
	for r := range seq {
		if r.err != nil {
			return out, r.err
		}
		out = append(out, r.value)
	}
	return out, nil
}

// Results turns a sequence of (value, error) pairs, as MapSeqErr and
// ParallelMapSeq yield, into a sequence of Results, which can be sent on a
// channel or collected with CollectSeq.
func Results[T any](seq iter.Seq2[T, error]) iter.Seq[Result[T]] {
	return func(yield func(Result[T]) bool) {
		for v, err := range seq {
			if !yield(Of(v, err)) {
				return
			}
		}
	}
}

// Pairs turns a sequence of Results back into (value, error) pairs.
func Pairs[T any](seq iter.Seq[Result[T]]) iter.Seq2[T, error] {
	return func(yield func(T, error) bool) {
		for r := range seq {
			if !yield(r.value, r.err) {
				return
			}
		}
	}
}
