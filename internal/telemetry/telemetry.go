package telemetry

import (
	"context"

	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// Telemetry is what one constructor, or one cached set of package-level
// functions, emits through: a tracer and a meter whose scope is the package's
// import path, the propagators, and the span policy. Build it once with
// [New] (or through a [Cache]), never per call.
type Telemetry struct {
	Tracer      trace.Tracer
	Meter       metric.Meter
	Propagators propagation.TextMapPropagator
	rootSpans   bool
}

// New builds the tracer and the meter for scope (see [Scope]) from c, with
// [Version] and [SchemaURL].
func New(scope string, c Config) *Telemetry {
	return &Telemetry{
		Tracer: c.TracerProvider().Tracer(scope,
			trace.WithInstrumentationVersion(Version),
			trace.WithSchemaURL(SchemaURL)),
		Meter: c.MeterProvider().Meter(scope,
			metric.WithInstrumentationVersion(Version),
			metric.WithSchemaURL(SchemaURL)),
		Propagators: c.Propagators(),
		rootSpans:   c.rootSpans,
	}
}

// NoSpan is the non-recording span that stands in where no span is started,
// so that callers can End it and errs.Record on it alike: both do nothing.
var NoSpan = trace.SpanFromContext(context.Background())

// Fine reports whether fine-grained work under ctx (a pool task, a channel
// value, a pipeline item, a retry attempt) gets a span: only when the span in
// ctx is recording, or when the caller opted into root spans. A span nobody
// records is never started, so with telemetry off this costs one context
// lookup.
func (t *Telemetry) Fine(ctx context.Context) bool {
	return t.rootSpans || trace.SpanFromContext(ctx).IsRecording()
}

// Parent returns the span in ctx and whether fine-grained work under it
// gets a span (see Fine), with one context lookup, for callers that need
// both.
func (t *Telemetry) Parent(ctx context.Context) (parent trace.Span, fine bool) {
	parent = trace.SpanFromContext(ctx)
	return parent, t.rootSpans || parent.IsRecording()
}

// StartFine starts a span for fine-grained work when [Telemetry.Fine] allows
// it. Otherwise it returns ctx unchanged and a non-recording span, so the
// caller can treat both cases alike: End and errs.Record on that span do
// nothing.
func (t *Telemetry) StartFine(ctx context.Context, name string, opts ...trace.SpanStartOption) (context.Context, trace.Span) {
	if !t.Fine(ctx) {
		return ctx, NoSpan
	}
	return t.Tracer.Start(ctx, name, opts...)
}
