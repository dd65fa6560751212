package functional

import (
	"context"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/otelpatterns/otelpatterns/errs"
	"github.com/otelpatterns/otelpatterns/internal/telemetry"
)

// ScopeName is the instrumentation scope of the package's telemetry.
const ScopeName = "github.com/otelpatterns/otelpatterns/functional"

// The names this package emits; README.md's Telemetry reference lists them.
const (
	keyItems       = attribute.Key(telemetry.Prefix + "functional.items")
	keyConcurrency = attribute.Key(telemetry.Prefix + "functional.concurrency")
	keyOperation   = attribute.Key(telemetry.Prefix + "functional.operation")

	metricDuration = telemetry.Prefix + "functional.duration"
)

// instruments are built once per pair of providers and shared by every
// call that passes the same ones.
var instruments = telemetry.NewCache(ScopeName, newInstruments)

type instrumentSet struct {
	tel      *telemetry.Telemetry
	duration metric.Float64Histogram
}

func newInstruments(tel *telemetry.Telemetry) *instrumentSet {
	return &instrumentSet{
		tel:      tel,
		duration: tel.Duration(metricDuration, "How long calls of the parallel functions, and of the sequential ones with WithSpan, took."),
	}
}

// call is the telemetry of one call: its span, and its duration.
type call struct {
	ctx  context.Context
	in   *instrumentSet
	span trace.Span
	op   string
	ran  telemetry.Stopwatch
}

// startCall starts the span of a call of op over n items (-1 when not yet
// known) and the stopwatch of its duration.
func startCall(ctx context.Context, c *config, op string, n int, concurrency int) (context.Context, call) {
	in := instruments.Get(c.tel)
	attrs := make([]attribute.KeyValue, 0, 2)
	if n >= 0 {
		attrs = append(attrs, keyItems.Int(n))
	}
	if concurrency > 0 {
		attrs = append(attrs, keyConcurrency.Int(concurrency))
	}
	ctx, span := in.tel.Tracer.Start(ctx, "functional."+op, trace.WithAttributes(attrs...))
	return ctx, call{ctx: ctx, in: in, span: span, op: op,
		ran: telemetry.StartStopwatch(telemetry.Measuring(ctx, span, in.duration))}
}

// setItems records the item count once it is known.
func (c call) setItems(n int) {
	if c.span.IsRecording() {
		c.span.SetAttributes(keyItems.Int(n))
	}
}

// end records how the call ended and ends its span.
func (c call) end(err error) {
	outcome := telemetry.Outcome(err)
	if c.span.IsRecording() {
		c.span.SetAttributes(telemetry.KeyOutcome.String(outcome))
	}
	errs.Record(c.span, err)
	c.span.End()
	if c.ran.Running() && c.in.duration.Enabled(c.ctx) {
		attrs := []attribute.KeyValue{keyOperation.String(c.op), telemetry.KeyOutcome.String(outcome)}
		if err != nil {
			attrs = append(attrs, errs.ErrorType(err))
		}
		c.in.duration.Record(c.ctx, c.ran.Seconds(), metric.WithAttributes(attrs...))
	}
}
