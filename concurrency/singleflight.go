package concurrency

import (
	"context"
	"errors"
	"sync"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/otelpatterns/otelpatterns/errs"
	"github.com/otelpatterns/otelpatterns/internal/telemetry"
)

// Singleflight de-duplicates concurrent calls by key: while a call for a
// key is in flight, later callers with the same key wait for its result
// instead of making their own. It is the cache-aside pattern's guard
// against a stampede: a thousand requests that miss the cache at once make
// one call to the database.
//
// The shared call runs on its own goroutine, with the first caller's
// context values but not its cancellation, so that the first caller
// leaving does not fail everyone else; it is cancelled when the last
// caller waiting for it leaves. A panic in it is returned to every caller
// as an *errs.PanicError.
//
// Under a recording span, the shared call has a singleflight.call span
// under the first caller's, and each later caller a singleflight.wait span
// linked to it; otelpatterns.singleflight.shared counts the later callers.
type Singleflight[K comparable, V any] struct {
	inst  *flightInstruments
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

// NewSingleflight returns an empty group. Of the options, WithName (for
// the otelpatterns.singleflight.name attribute), the providers and
// WithRootSpans apply.
func NewSingleflight[K comparable, V any](opts ...Option) (*Singleflight[K, V], error) {
	c := &config{name: "singleflight"}
	for _, o := range opts {
		if o != nil {
			o.apply(c)
		}
	}
	if c.name == "" {
		return nil, errors.New(`concurrency: WithName(""): the name must not be empty; it labels the group's spans and metrics`)
	}
	return &Singleflight[K, V]{inst: newFlightInstruments(c), calls: map[K]*flight[V]{}}, nil
}

// Do returns the result of fn for key: from a call already in flight for
// key, if there is one (shared is then true), or from a new one. It returns
// early with ctx's error when ctx ends first; the call goes on for the
// other callers, and is cancelled if none is left.
func (g *Singleflight[K, V]) Do(ctx context.Context, key K, fn func(context.Context) (V, error)) (v V, shared bool, err error) {
	switch {
	case ctx == nil:
		return v, false, errNilContext
	case fn == nil:
		return v, false, errors.New("concurrency: Singleflight.Do(ctx, key, nil): the function must not be nil")
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
	callCtx, span := g.inst.start(callCtx, "singleflight.call", trace.SpanKindInternal)
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

// wait waits for f, or leaves it when ctx ends, cancelling the call when
// the last caller leaves.
func (g *Singleflight[K, V]) wait(ctx context.Context, key K, f *flight[V], shared bool) (V, bool, error) {
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
		if f.waiters--; f.waiters == 0 && g.calls[key] == f {
			delete(g.calls, key) // a later caller starts afresh
			f.cancel()
		}
		g.mu.Unlock()
		var zero V
		errs.Record(span, ctx.Err())
		return zero, shared, ctx.Err()
	}
}

// flightInstruments is a Singleflight's telemetry.
type flightInstruments struct {
	tel    *telemetry.Telemetry
	name   attribute.KeyValue
	shared metric.Int64Counter
	byName []metric.AddOption
}

const (
	keyFlight    = attribute.Key(telemetry.Prefix + "singleflight.name")
	metricShared = telemetry.Prefix + "singleflight.shared"
)

func newFlightInstruments(c *config) *flightInstruments {
	tel := telemetry.New(telemetry.Scope("concurrency"), c.tel)
	name := keyFlight.String(c.name)
	return &flightInstruments{
		tel:    tel,
		name:   name,
		shared: tel.Counter(metricShared, "{call}", "Calls that shared the result of a call already in flight."),
		byName: []metric.AddOption{metric.WithAttributeSet(attribute.NewSet(name))},
	}
}

func (in *flightInstruments) start(ctx context.Context, name string, kind trace.SpanKind) (context.Context, trace.Span) {
	if !in.tel.Fine(ctx) {
		return ctx, telemetry.NoSpan
	}
	return in.tel.Tracer.Start(ctx, name, trace.WithSpanKind(kind), trace.WithAttributes(in.name))
}

// startWait starts a later caller's span, linked to the shared call's.
func (in *flightInstruments) startWait(ctx context.Context, call trace.SpanContext) (context.Context, trace.Span) {
	if !in.tel.Fine(ctx) {
		return ctx, telemetry.NoSpan
	}
	opts := []trace.SpanStartOption{trace.WithAttributes(in.name)}
	if call.IsValid() {
		opts = append(opts, trace.WithLinks(trace.Link{SpanContext: call}))
	}
	return in.tel.Tracer.Start(ctx, "singleflight.wait", opts...)
}
