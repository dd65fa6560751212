package singleflight

import (
	"context"
	"errors"
	"sync"

	"go.opentelemetry.io/otel/trace"

	"github.com/otelpatterns/otelpatterns/errs"
)

// Group de-duplicates concurrent calls by key: see the package doc.
type Group[K comparable, V any] struct {
	inst  *instruments
	mu    sync.Mutex
	calls map[K]*flight[V]
}

type flight[V any] struct {
	done    chan struct{}
	v       V
	err     error
	waiters int
	cancel  context.CancelFunc
	sc      trace.SpanContext // the shared call's span
}

// New returns an empty group. It fails when WithName is given an empty
// name.
func New[K comparable, V any](opts ...Option) (*Group[K, V], error) {
	c := &config{name: "singleflight"}
	for _, o := range opts {
		if o != nil {
			o.apply(c)
		}
	}
	if c.name == "" {
		return nil, errors.New(`singleflight: WithName(""): the name must not be empty; it labels the group's spans and metrics`)
	}
	return &Group[K, V]{inst: newInstruments(c), calls: map[K]*flight[V]{}}, nil
}

// Do returns the result of fn for key: from a call already in flight for
// key, if there is one (shared is then true), or from a new one. It returns
// early with ctx's error when ctx ends first; the call goes on for the
// other callers, and is cancelled if none is left.
func (g *Group[K, V]) Do(ctx context.Context, key K, fn func(context.Context) (V, error)) (v V, shared bool, err error) {
	switch {
	case ctx == nil:
		return v, false, errors.New("singleflight: Do: nil context: pass context.Background() if there is none")
	case fn == nil:
		return v, false, errors.New("singleflight: Do(ctx, key, nil): the function must not be nil")
	}
	g.mu.Lock()
	f, shared := g.calls[key]
	if shared {
		f.waiters++
		g.mu.Unlock()
		g.inst.shared.Add(ctx, 1, g.inst.byName...)
		return g.wait(ctx, key, f, true)
	}
	f = &flight[V]{done: make(chan struct{}), waiters: 1}
	g.calls[key] = f
	callCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	callCtx, span := g.inst.start(callCtx, spanCall, trace.SpanKindInternal)
	f.cancel, f.sc = cancel, span.SpanContext()
	g.mu.Unlock()

	go func() {
		var out V
		err := errs.Try(func() (err error) {
			out, err = fn(callCtx)
			return err
		})
		errs.Record(span, err)
		span.End()
		g.mu.Lock()
		if g.calls[key] == f { // not if every caller left and a new call began
			delete(g.calls, key)
		}
		f.v, f.err = out, err
		g.mu.Unlock()
		close(f.done)
		cancel()
	}()
	return g.wait(ctx, key, f, false)
}

// Forget makes the next Do for key start a call of its own, even while a
// call for key is in flight: use it when that call's result is known to be
// stale. The callers waiting for the call in flight still get its result.
func (g *Group[K, V]) Forget(key K) {
	g.mu.Lock()
	delete(g.calls, key)
	g.mu.Unlock()
}

// wait waits for f, or leaves it when ctx ends, cancelling the call when
// the last caller leaves.
func (g *Group[K, V]) wait(ctx context.Context, key K, f *flight[V], shared bool) (V, bool, error) {
	span := trace.Span(nil)
	if shared {
		ctx, span = g.inst.startWait(ctx, f.sc)
		defer span.End()
	}
	select {
	case <-f.done:
		errs.Record(span, f.err)
		return f.v, shared, f.err
	case <-ctx.Done():
		g.mu.Lock()
		if f.waiters--; f.waiters == 0 {
			if g.calls[key] == f {
				delete(g.calls, key) // a later caller starts afresh
			}
			f.cancel() // no one is left to want it, forgotten or not
		}
		g.mu.Unlock()
		var zero V
		errs.Record(span, ctx.Err())
		return zero, shared, ctx.Err()
	}
}
