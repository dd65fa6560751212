package singleflight

import (
	"context"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/otelpatterns/otelpatterns/internal/telemetry"
)

// instruments is a Group's telemetry.
type instruments struct {
	tel    *telemetry.Telemetry
	name   attribute.KeyValue
	shared metric.Int64Counter
	byName []metric.AddOption
}

// ScopeName is the instrumentation scope of a group's telemetry.
const ScopeName = "github.com/otelpatterns/otelpatterns/concurrency/singleflight"

// The names this package emits; README.md's Telemetry reference lists them.
const (
	spanCall     = "singleflight.call"
	spanWait     = "singleflight.wait"
	keyFlight    = attribute.Key(telemetry.Prefix + "singleflight.name")
	metricShared = telemetry.Prefix + "singleflight.shared"
)

func newInstruments(c *config) *instruments {
	tel := telemetry.New(ScopeName, c.tel)
	name := keyFlight.String(c.name)
	return &instruments{
		tel:    tel,
		name:   name,
		shared: tel.Counter(metricShared, "{call}", "Calls that shared the result of a call already in flight."),
		byName: []metric.AddOption{metric.WithAttributeSet(attribute.NewSet(name))},
	}
}

func (in *instruments) start(ctx context.Context, name string, kind trace.SpanKind) (context.Context, trace.Span) {
	if !in.tel.Fine(ctx) {
		return ctx, telemetry.NoSpan
	}
	return in.tel.Tracer.Start(ctx, name, trace.WithSpanKind(kind), trace.WithAttributes(in.name))
}

// startWait starts a later caller's span, linked to the shared call's.
func (in *instruments) startWait(ctx context.Context, call trace.SpanContext) (context.Context, trace.Span) {
	if !in.tel.Fine(ctx) {
		return ctx, telemetry.NoSpan
	}
	opts := []trace.SpanStartOption{trace.WithAttributes(in.name)}
	if call.IsValid() {
		opts = append(opts, trace.WithLinks(trace.Link{SpanContext: call}))
	}
	return in.tel.Tracer.Start(ctx, spanWait, opts...)
}
