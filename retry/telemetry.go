package retry

import (
	"context"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/otelpatterns/otelpatterns/errs"
	"github.com/otelpatterns/otelpatterns/internal/telemetry"
)

// The names this package emits; README.md's Telemetry reference lists them.
const (
	spanOperation = "retry"
	spanAttempt   = "retry.attempt"

	keyPolicy  = attribute.Key(telemetry.Prefix + "retry.policy")
	keyAttempt = attribute.Key(telemetry.Prefix + "retry.attempt")
	keyCount   = attribute.Key(telemetry.Prefix + "retry.attempts")

	metricAttempts   = telemetry.Prefix + "retry.attempts"
	metricDuration   = telemetry.Prefix + "retry.duration"
	metricRejections = telemetry.Prefix + "retry.budget.rejections"
)

// ScopeName is the instrumentation scope of the package's telemetry.
const ScopeName = "github.com/otelpatterns/otelpatterns/retry"

// policyInstruments is a Policy's telemetry, built once in New.
type policyInstruments struct {
	tel        *telemetry.Telemetry
	name       attribute.KeyValue
	attempts   metric.Int64Counter
	duration   metric.Float64Histogram
	rejections metric.Int64Counter
	byName     []metric.AddOption
	byOutcome  map[string][]metric.AddOption
	okDuration []metric.RecordOption
}

func newPolicyInstruments(cfg telemetry.Config, name string) *policyInstruments {
	tel := telemetry.New(ScopeName, cfg)
	in := &policyInstruments{
		tel:        tel,
		name:       keyPolicy.String(name),
		attempts:   tel.Counter(metricAttempts, "{attempt}", "Calls of operations under a retry policy, by outcome."),
		duration:   tel.Duration(metricDuration, "How long operations under a retry policy took, retries and waits included."),
		rejections: tel.Counter(metricRejections, "{retry}", "Retries that a retry budget refused."),
		byOutcome:  map[string][]metric.AddOption{},
	}
	set := attribute.NewSet(in.name)
	in.byName = []metric.AddOption{metric.WithAttributeSet(set)}
	in.okDuration = []metric.RecordOption{metric.WithAttributeSet(set)}
	for _, o := range []string{telemetry.OutcomeSuccess, telemetry.OutcomeError, telemetry.OutcomeCanceled} {
		in.byOutcome[o] = []metric.AddOption{metric.WithAttributeSet(attribute.NewSet(in.name, telemetry.KeyOutcome.String(o)))}
	}
	return in
}

// startOperation starts the operation's span when ctx allows fine-grained
// spans.
func (in *policyInstruments) startOperation(ctx context.Context) (context.Context, trace.Span) {
	if !in.tel.Fine(ctx) {
		return ctx, telemetry.NoSpan
	}
	return in.tel.Tracer.Start(ctx, spanOperation, trace.WithAttributes(in.name))
}

// startAttempt starts attempt n's span, under the operation's in ctx.
func (in *policyInstruments) startAttempt(ctx context.Context, n int) (context.Context, trace.Span) {
	return in.tel.Tracer.Start(ctx, spanAttempt, trace.WithAttributes(keyAttempt.Int(n)))
}

// attempted counts an attempt by its outcome.
func (in *policyInstruments) attempted(ctx context.Context, err error) {
	o := telemetry.Outcome(err)
	if o == telemetry.OutcomePanic {
		o = telemetry.OutcomeError
	}
	in.attempts.Add(ctx, 1, in.byOutcome[o]...)
}

// finish ends the operation: its span shows only the final outcome.
func (in *policyInstruments) finish(ctx context.Context, w watch, span trace.Span, ran telemetry.Stopwatch, attempts int, err error) {
	if w.traced {
		span.SetAttributes(keyCount.Int(attempts))
		errs.Record(span, err)
		span.End()
	}
	if ran.Running() && in.duration.Enabled(ctx) {
		if err == nil {
			in.duration.Record(ctx, ran.Seconds(), in.okDuration...)
		} else {
			in.duration.Record(ctx, ran.Seconds(), metric.WithAttributes(in.name, errs.ErrorType(err)))
		}
	}
}

func (in *policyInstruments) rejected(ctx context.Context) {
	in.rejections.Add(ctx, 1, in.byName...)
}
