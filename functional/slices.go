package functional

import (
	"context"
	"errors"
)

// checkEvery is how many items pass between two looks at ctx: often enough
// to stop promptly, rarely enough that a cheap fn does not pay for it.
const checkEvery = 256

var (
	errNilContext = errors.New("functional: nil context: pass context.Background() if there is none")
	errNilFunc    = errors.New("functional: the function must not be nil")
)

// Map returns fn applied to each item, in order. It looks at ctx every few
// hundred items and, once it is cancelled, returns the results so far with
// ctx's error. With WithSpan, the call has a functional.map span.
func Map[T, R any](ctx context.Context, items []T, fn func(T) R, opts ...Option) ([]R, error) {
	if len(opts) > 0 || ctx == nil || fn == nil {
		return withOptions(ctx, opts, fn == nil, "map", len(items), nil, func(ctx context.Context) ([]R, error) {
			return Map(ctx, items, fn)
		})
	}
	out := make([]R, len(items))
	for start := 0; start < len(items); start += checkEvery {
		if err := ctx.Err(); err != nil {
			return out[:start], err
		}
		// A plain loop over the chunk, with no check inside, so that the
		// compiler drops the bounds checks.
		chunk := items[start:min(start+checkEvery, len(items))]
		dst := out[start:][:len(chunk)]
		for i, item := range chunk {
			dst[i] = fn(item)
		}
	}
	return out, nil
}

// MapErr is Map for a function that can fail: it stops at the first error,
// and returns it with the results before it.
func MapErr[T, R any](ctx context.Context, items []T, fn func(context.Context, T) (R, error), opts ...Option) ([]R, error) {
	if len(opts) > 0 || ctx == nil || fn == nil {
		return withOptions(ctx, opts, fn == nil, "map", len(items), nil, func(ctx context.Context) ([]R, error) {
			return MapErr(ctx, items, fn)
		})
	}
	out := make([]R, len(items))
	for i, item := range items {
		if i%checkEvery == 0 && ctx.Err() != nil {
			return out[:i], ctx.Err()
		}
		r, err := fn(ctx, item)
		if err != nil {
			return out[:i], err
		}
		out[i] = r
	}
	return out, nil
}

// Filter returns the items for which pred is true, in order. It looks at
// ctx every few hundred items and, once it is cancelled, returns the items
// kept so far with ctx's error.
func Filter[T any](ctx context.Context, items []T, pred func(T) bool, opts ...Option) ([]T, error) {
	if len(opts) > 0 || ctx == nil || pred == nil {
		return withOptions(ctx, opts, pred == nil, "filter", len(items), nil, func(ctx context.Context) ([]T, error) {
			return Filter(ctx, items, pred)
		})
	}
	var out []T
	for i, item := range items {
		if i%checkEvery == 0 && ctx.Err() != nil {
			return out, ctx.Err()
		}
		if pred(item) {
			out = append(out, item)
		}
	}
	return out, nil
}

// FilterErr is Filter for a predicate that can fail: it stops at the first
// error, and returns it with the items kept before it.
func FilterErr[T any](ctx context.Context, items []T, pred func(context.Context, T) (bool, error), opts ...Option) ([]T, error) {
	if len(opts) > 0 || ctx == nil || pred == nil {
		return withOptions(ctx, opts, pred == nil, "filter", len(items), nil, func(ctx context.Context) ([]T, error) {
			return FilterErr(ctx, items, pred)
		})
	}
	var out []T
	for i, item := range items {
		if i%checkEvery == 0 && ctx.Err() != nil {
			return out, ctx.Err()
		}
		keep, err := pred(ctx, item)
		if err != nil {
			return out, err
		}
		if keep {
			out = append(out, item)
		}
	}
	return out, nil
}

// Reduce folds the items into initial with fn, in order. It looks at ctx
// every few hundred items and, once it is cancelled, returns the
// accumulator so far with ctx's error. A call it refuses (a nil ctx or fn,
// a bad option) returns initial with the error.
func Reduce[T, R any](ctx context.Context, items []T, initial R, fn func(R, T) R, opts ...Option) (R, error) {
	if len(opts) > 0 || ctx == nil || fn == nil {
		return withOptions(ctx, opts, fn == nil, "reduce", len(items), initial, func(ctx context.Context) (R, error) {
			return Reduce(ctx, items, initial, fn)
		})
	}
	acc := initial
	for i, item := range items {
		if i%checkEvery == 0 && ctx.Err() != nil {
			return acc, ctx.Err()
		}
		acc = fn(acc, item)
	}
	return acc, nil
}

// ReduceErr is Reduce for a function that can fail: it stops at the first
// error, and returns it with the accumulator before it. A call it refuses
// returns initial with the error.
func ReduceErr[T, R any](ctx context.Context, items []T, initial R, fn func(context.Context, R, T) (R, error), opts ...Option) (R, error) {
	if len(opts) > 0 || ctx == nil || fn == nil {
		return withOptions(ctx, opts, fn == nil, "reduce", len(items), initial, func(ctx context.Context) (R, error) {
			return ReduceErr(ctx, items, initial, fn)
		})
	}
	acc := initial
	for i, item := range items {
		if i%checkEvery == 0 && ctx.Err() != nil {
			return acc, ctx.Err()
		}
		next, err := fn(ctx, acc, item)
		if err != nil {
			return acc, err
		}
		acc = next
	}
	return acc, nil
}

func check(ctx context.Context, nilFunc bool) error {
	switch {
	case ctx == nil:
		return errNilContext
	case nilFunc:
		return errNilFunc
	}
	return nil
}

// withOptions is the slow path of the sequential functions, for a call
// with options or with a nil ctx or function. It refuses a nil ctx or
// function and bad options, returning refused with the error; otherwise it
// calls again (the same function without options), inside a span when the
// options ask for one (WithSpan).
//
// The functions keep their loops in their own bodies and come here only
// for such calls, so that under profile-guided optimisation (go build
// -pgo) a hot call inlines whole, and a small fn inlines into it: a plain
// loop's speed. Without a profile the compiler inlines none of them: a
// loop that looks at ctx makes two calls, more than the inliner's budget
// allows, and each item then costs one indirect call of fn.
func withOptions[R any](ctx context.Context, opts []Option, nilFunc bool, op string, n int, refused R, again func(context.Context) (R, error)) (R, error) {
	if err := check(ctx, nilFunc); err != nil {
		return refused, err
	}
	c, err := newConfig(opts)
	if err != nil {
		return refused, err
	}
	if !c.span {
		return again(ctx)
	}
	ctx, call := startCall(ctx, c, op, n, 0)
	r, err := again(ctx)
	call.end(err)
	return r, err
}
