package concurrency

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"sync"

	"go.opentelemetry.io/otel/baggage"
	"go.opentelemetry.io/otel/trace"

	"github.com/otelpatterns/otelpatterns/errs"
	"github.com/otelpatterns/otelpatterns/internal/ordered"
	"github.com/otelpatterns/otelpatterns/internal/telemetry"
)

var (
	// ErrClosed is returned by Send and TrySend on a closed channel, and by
	// Receive once a closed channel is drained.
	ErrClosed = errors.New("concurrency: channel closed")
	// ErrFull is returned by TrySend when the channel has no room.
	ErrFull = errors.New("concurrency: channel full")

	errNilContext = errors.New("concurrency: nil context: pass context.Background() if there is none")
)

// TracedChannel is a channel whose values carry the trace context of the
// code that sent them, so that the code that receives them is connected to
// the request that produced them.
//
// Each value travels with the sender's span context and baggage, in the
// channel itself: no propagator, and no allocation beyond the value's own
// when no span records. Send starts a "send {name}" PRODUCER span and
// Consume a "process {name}" CONSUMER span linked to it (or, with
// WithParentedConsumer, its child), as the OpenTelemetry messaging
// conventions describe; a bare Receive starts no span.
//
// A TracedChannel is safe for concurrent use by any number of senders and
// receivers. Close it when no more values will be sent.
type TracedChannel[T any] struct {
	ch       chan envelope[T]
	inst     *channelInstruments
	parented bool

	// Senders hold mu for reading while they send; Close takes it for
	// writing, so that nothing is sent on the closed channel.
	mu        sync.RWMutex
	closed    bool
	closing   chan struct{} // closed first: wakes blocked senders
	closeOnce sync.Once
	unobserve func()
}

// envelope is a value with the trace context it travels with.
type envelope[T any] struct {
	v   T
	sc  trace.SpanContext
	bag baggage.Baggage
}

// NewChannel returns a channel with room for capacity values (0 for a
// channel on which each Send waits for a Receive). It fails when capacity
// is negative or too large to make.
func NewChannel[T any](capacity int, opts ...Option) (*TracedChannel[T], error) {
	if capacity < 0 || capacity > ordered.MaxBuffer {
		return nil, fmt.Errorf("concurrency: NewChannel(%d): the capacity must be 0 to %d", capacity, ordered.MaxBuffer)
	}
	c := &config{name: "channel"}
	for _, o := range opts {
		if o != nil {
			o.apply(c)
		}
	}
	if c.name == "" {
		return nil, errors.New(`concurrency: WithName(""): the name must not be empty; it names the channel's spans and metrics`)
	}
	tc := &TracedChannel[T]{
		ch:       make(chan envelope[T], capacity),
		inst:     newChannelInstruments(c),
		parented: c.parented,
		closing:  make(chan struct{}),
	}
	tc.unobserve = tc.inst.observe(func() int64 { return int64(len(tc.ch)) })
	return tc, nil
}

// Send sends v with ctx's trace context. It waits for room, and returns
// early with ctx's error when ctx ends, or ErrClosed when the channel is
// closed (or closes while it waits).
func (c *TracedChannel[T]) Send(ctx context.Context, v T) error {
	return c.send(ctx, v, true)
}

// TrySend sends v if the channel has room now, and never waits: it returns
// ErrFull when there is none.
func (c *TracedChannel[T]) TrySend(ctx context.Context, v T) error {
	return c.send(ctx, v, false)
}

func (c *TracedChannel[T]) send(ctx context.Context, v T, wait bool) (err error) {
	if ctx == nil {
		return errNilContext
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	ctx, span, sc := c.startSend(ctx)
	env := envelope[T]{v: v, sc: sc, bag: baggage.FromContext(ctx)}
	blocked := telemetry.Stopwatch{}

	c.mu.RLock()
	switch {
	case c.closed:
		err = ErrClosed
	default:
		select {
		case c.ch <- env:
		default:
			if !wait {
				err = ErrFull
				break
			}
			blocked = telemetry.StartStopwatch(span != nil || c.inst.blocked.Enabled(ctx))
			select {
			case c.ch <- env:
			case <-ctx.Done():
				err = ctx.Err()
			case <-c.closing:
				err = ErrClosed
			}
		}
	}
	c.mu.RUnlock()

	if blocked.Running() {
		c.inst.blocked.Record(ctx, blocked.Seconds(), c.inst.recName...)
	}
	if err == nil {
		c.inst.sent.Add(ctx, 1, c.inst.byName...)
	}
	if span != nil {
		errs.Record(span, err)
		span.End()
	}
	return err
}

// startSend starts the send span, a PRODUCER under the sender's span, when
// that span records or root spans were asked for, and returns the span
// context the value travels with: the send span's, or else the sender's.
// The span is nil when none was started.
func (c *TracedChannel[T]) startSend(ctx context.Context) (context.Context, trace.Span, trace.SpanContext) {
	parent, fine := c.inst.tel.Parent(ctx)
	if !fine {
		return ctx, nil, parent.SpanContext()
	}
	ctx, span := c.inst.tel.Tracer.Start(ctx, c.inst.sendName,
		trace.WithSpanKind(trace.SpanKindProducer), trace.WithAttributes(c.inst.sendAttrs...))
	return ctx, span, span.SpanContext()
}

// Receive returns the next value and the span context it was sent with. It
// waits for a value, and returns early with ctx's error when ctx ends, or
// ErrClosed once the channel is closed and drained. It starts no span.
func (c *TracedChannel[T]) Receive(ctx context.Context) (T, trace.SpanContext, error) {
	env, err := c.receive(ctx)
	return env.v, env.sc, err
}

func (c *TracedChannel[T]) receive(ctx context.Context) (envelope[T], error) {
	if ctx == nil {
		return envelope[T]{}, errNilContext
	}
	var env envelope[T]
	var ok bool
	if done := ctx.Done(); done == nil {
		env, ok = <-c.ch // a context that cannot end: a plain receive is cheaper
	} else {
		select {
		case env, ok = <-c.ch:
		case <-done:
			return envelope[T]{}, ctx.Err()
		}
	}
	if !ok {
		return envelope[T]{}, ErrClosed
	}
	c.inst.received.Add(ctx, 1, c.inst.byName...)
	return env, nil
}

// Consume calls fn for each value, in order, until the channel is closed
// and drained (then it returns nil), ctx ends (ctx's error), or fn fails
// (fn's error, after which it receives no more).
//
// fn's context is ctx with the sender's baggage. Each call runs inside a
// "process {name}" CONSUMER span, linked to the sender's span (or its
// child, with WithParentedConsumer), when ctx holds a recording span, the
// sender's span was sampled, or root spans were asked for; fn's error is
// recorded on it.
func (c *TracedChannel[T]) Consume(ctx context.Context, fn func(context.Context, T) error) error {
	if fn == nil {
		return errors.New("concurrency: Consume(ctx, nil): the function must not be nil")
	}
	for {
		env, err := c.receive(ctx)
		if errors.Is(err, ErrClosed) {
			return nil
		}
		if err != nil {
			return err
		}
		if err := c.process(ctx, env, fn); err != nil {
			return err
		}
	}
}

// process calls fn for one value inside its process span, which ends with
// fn's error, or with its panic before the panic goes on up.
func (c *TracedChannel[T]) process(ctx context.Context, env envelope[T], fn func(context.Context, T) error) error {
	ctx, span := c.startProcess(ctx, env)
	defer errs.EndOnPanic(span)
	err := fn(ctx, env.v)
	errs.Record(span, err)
	span.End()
	return err
}

// startProcess gives fn its context: the sender's baggage, and the process
// span when one is due.
func (c *TracedChannel[T]) startProcess(ctx context.Context, env envelope[T]) (context.Context, trace.Span) {
	if env.bag.Len() > 0 {
		ctx = baggage.ContextWithBaggage(ctx, env.bag)
	}
	if !c.inst.tel.Fine(ctx) && !env.sc.IsSampled() {
		return ctx, telemetry.NoSpan
	}
	opts := []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindConsumer), trace.WithAttributes(c.inst.procAttrs...)}
	if c.parented && env.sc.IsValid() {
		ctx = trace.ContextWithSpanContext(ctx, env.sc)
	} else if env.sc.IsValid() {
		opts = append(opts, trace.WithLinks(trace.Link{SpanContext: env.sc}))
	}
	return c.inst.tel.Tracer.Start(ctx, c.inst.procName, opts...)
}

// All returns an iterator over the values, as Receive returns them. It
// ends when the channel is closed and drained, or when ctx ends; check
// ctx.Err() after the loop to tell the two apart.
func (c *TracedChannel[T]) All(ctx context.Context) iter.Seq[T] {
	return func(yield func(T) bool) {
		for {
			v, _, err := c.Receive(ctx)
			if err != nil || !yield(v) {
				return
			}
		}
	}
}

// Close closes the channel: later sends fail with ErrClosed, senders
// waiting for room return ErrClosed, and receivers get the values already
// sent before ErrClosed. It is idempotent and always returns nil.
func (c *TracedChannel[T]) Close() error {
	c.closeOnce.Do(func() {
		close(c.closing)
		c.mu.Lock()
		c.closed = true
		close(c.ch)
		c.mu.Unlock()
		c.unobserve()
	})
	return nil
}

// Len returns the number of values waiting in the channel.
func (c *TracedChannel[T]) Len() int { return len(c.ch) }

// Cap returns the channel's capacity.
func (c *TracedChannel[T]) Cap() int { return cap(c.ch) }
