package telemetry

import (
	"context"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/otelpatterns/otelpatterns/errs"
)

// LazySpan is a span for an operation that is often a no-op, such as a
// recovery that finds nothing to recover: it is started only once there
// is something to trace (Context) or an error (End), backdated to when
// the operation began, so that an idle start emits no trace at all.
type LazySpan struct {
	tracer trace.Tracer
	name   string
	opts   []trace.SpanStartOption
	parent context.Context
	begun  time.Time
	ctx    context.Context
	span   trace.Span
}

// Lazy returns a span named name under parent that has not started yet.
func Lazy(parent context.Context, tracer trace.Tracer, name string, opts ...trace.SpanStartOption) *LazySpan {
	return &LazySpan{tracer: tracer, name: name, opts: opts, parent: parent, begun: time.Now()}
}

// Context starts the span, if it has not started, and returns its context.
func (l *LazySpan) Context() context.Context {
	if l.span == nil {
		opts := append(l.opts[:len(l.opts):len(l.opts)], trace.WithTimestamp(l.begun))
		l.ctx, l.span = l.tracer.Start(l.parent, l.name, opts...)
	}
	return l.ctx
}

// Span starts the span, if it has not started, and returns it.
func (l *LazySpan) Span() trace.Span {
	l.Context()
	return l.span
}

// End ends the operation: it records err, starting the span for it if it
// had not started, and ends the span if there is one.
func (l *LazySpan) End(err error) {
	if err != nil {
		l.Context()
	}
	if l.span == nil {
		return
	}
	errs.Record(l.span, err)
	l.span.End()
}
