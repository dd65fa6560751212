package saga

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
	spanSaga       = "saga "            // + the definition's name
	spanStep       = "saga.step "       // + the step's name
	spanCompensate = "saga.compensate " // + the step's name
	spanRecover    = "saga.recover"

	keyName      = attribute.Key(telemetry.Prefix + "saga.name")
	keyID        = attribute.Key(telemetry.Prefix + "saga.id")
	keyStep      = attribute.Key(telemetry.Prefix + "saga.step")
	keyAttempt   = attribute.Key(telemetry.Prefix + "saga.attempt")
	keyOutcome   = attribute.Key(telemetry.Prefix + "saga.outcome")
	keyRecovered = attribute.Key(telemetry.Prefix + "saga.recovered")

	metricSagas         = telemetry.Prefix + "saga.sagas"
	metricDuration      = telemetry.Prefix + "saga.duration"
	metricStepDuration  = telemetry.Prefix + "saga.step.duration"
	metricCompensations = telemetry.Prefix + "saga.compensations"
	metricActive        = telemetry.Prefix + "saga.active"
	metricStuck         = telemetry.Prefix + "saga.stuck"
	metricLeaseClaimed  = telemetry.Prefix + "saga.lease.claimed"
	metricLeaseRenewed  = telemetry.Prefix + "saga.lease.renewed"
	metricLeaseLost     = telemetry.Prefix + "saga.lease.lost"
)

// ScopeName is the instrumentation scope of the package's telemetry.
const ScopeName = "github.com/otelpatterns/otelpatterns/saga"

// instruments is a Runner's telemetry, built once by NewRunner.
type instruments struct {
	tel           *telemetry.Telemetry
	sagas         metric.Int64Counter
	duration      metric.Float64Histogram
	stepDuration  metric.Float64Histogram
	compensations metric.Int64Counter
	active        metric.Int64UpDownCounter
	stuck         metric.Int64UpDownCounter
	claimed       metric.Int64Counter
	renewed       metric.Int64Counter
	lost          metric.Int64Counter
}

func newInstruments(cfg telemetry.Config) *instruments {
	tel := telemetry.New(ScopeName, cfg)
	return &instruments{
		tel:           tel,
		sagas:         tel.Counter(metricSagas, "{saga}", "Sagas that reached an outcome, by outcome."),
		duration:      tel.Duration(metricDuration, "How long sagas took in this process, until their outcome."),
		stepDuration:  tel.Duration(metricStepDuration, "How long step actions took, by attempt outcome."),
		compensations: tel.Counter(metricCompensations, "{compensation}", "Compensation attempts, by outcome."),
		active:        tel.UpDownCounter(metricActive, "{saga}", "Sagas running in this process."),
		stuck:         tel.UpDownCounter(metricStuck, "{saga}", "Sagas this process found or left stuck, until retried or resolved."),
		claimed:       tel.Counter(metricLeaseClaimed, "{saga}", "Sagas whose lease this runner claimed to take them over: unowned, or their runner's lease expired."),
		renewed:       tel.Counter(metricLeaseRenewed, "{saga}", "Leases of live sagas renewed."),
		lost:          tel.Counter(metricLeaseLost, "{saga}", "Sagas stopped because their lease passed to another runner or could not be renewed in time."),
	}
}

func (in *instruments) leasesClaimed(n int) { in.claimed.Add(context.Background(), int64(n)) }

func (in *instruments) leasesRenewed(n int) { in.renewed.Add(context.Background(), int64(n)) }

func (in *instruments) leaseLost(name string) {
	in.lost.Add(context.Background(), 1, metric.WithAttributes(keyName.String(name)))
}

// sagaTelemetry is the telemetry of one saga run: its span and the
// attribute sets of its definition.
type sagaTelemetry struct {
	in     *instruments
	name   attribute.KeyValue
	byName metric.MeasurementOption
	span   trace.Span
	clock  telemetry.Stopwatch
}

// start starts the saga's span under ctx, linked to the trace that began
// it when it is resumed, and counts it active.
func (in *instruments) start(ctx context.Context, name, id string, resumed bool, begun trace.SpanContext) (context.Context, *sagaTelemetry) {
	st := &sagaTelemetry{in: in, name: keyName.String(name)}
	st.byName = metric.WithAttributeSet(attribute.NewSet(st.name))
	opts := []trace.SpanStartOption{trace.WithAttributes(st.name, keyID.String(id))}
	if resumed {
		opts = append(opts, trace.WithAttributes(keyRecovered.Bool(true)))
		if begun.IsValid() {
			opts = append(opts, trace.WithLinks(trace.Link{SpanContext: begun}))
		}
	}
	ctx, st.span = in.tel.Tracer.Start(ctx, spanSaga+name, opts...)
	st.clock = telemetry.StartStopwatch(in.duration.Enabled(ctx))
	in.active.Add(ctx, 1, st.byName)
	return ctx, st
}

// end ends the saga's span with its outcome, and counts it.
func (st *sagaTelemetry) end(ctx context.Context, o Outcome, err error) {
	in := st.in
	in.active.Add(ctx, -1, st.byName)
	st.span.SetAttributes(keyOutcome.String(o.String()))
	if o != Completed {
		errs.Record(st.span, err)
	}
	st.span.End()
	if o == Pending || o == Aborting {
		return
	}
	if in.sagas.Enabled(ctx) || st.clock.Running() {
		set := metric.WithAttributes(st.name, keyOutcome.String(o.String()))
		in.sagas.Add(ctx, 1, set)
		if st.clock.Running() {
			in.duration.Record(ctx, st.clock.Seconds(), set)
		}
	}
}

// startAttempt starts the span of an attempt of a step's action or
// compensation, under the saga's span when it is recording: an attempt is
// fine-grained work, and a saga that nobody records starts none.
func (st *sagaTelemetry) startAttempt(ctx context.Context, step string, attempt int, compensating bool) (context.Context, trace.Span, telemetry.Stopwatch) {
	sw := telemetry.StartStopwatch(!compensating && st.in.stepDuration.Enabled(ctx))
	if !st.span.IsRecording() {
		return ctx, telemetry.NoSpan, sw
	}
	name := spanStep + step
	if compensating {
		name = spanCompensate + step
	}
	ctx, span := st.in.tel.Tracer.Start(trace.ContextWithSpan(ctx, st.span), name,
		trace.WithAttributes(st.name, keyStep.String(step), keyAttempt.Int(attempt)))
	return ctx, span, sw
}

// endAttempt ends an attempt's span, and measures it.
func (st *sagaTelemetry) endAttempt(ctx context.Context, span trace.Span, sw telemetry.Stopwatch, step string, compensating bool, err error) {
	errs.Record(span, err)
	span.End()
	in := st.in
	if compensating {
		if in.compensations.Enabled(ctx) {
			in.compensations.Add(ctx, 1, metric.WithAttributes(st.name, keyStep.String(step), telemetry.KeyOutcome.String(telemetry.Outcome(err))))
		}
		return
	}
	if sw.Running() {
		in.stepDuration.Record(ctx, sw.Seconds(), metric.WithAttributes(st.name, keyStep.String(step), telemetry.KeyOutcome.String(telemetry.Outcome(err))))
	}
}

// stuckChanged moves the stuck gauge of the saga named name.
func (in *instruments) stuckChanged(ctx context.Context, name string, by int64) {
	in.stuck.Add(ctx, by, metric.WithAttributeSet(attribute.NewSet(keyName.String(name))))
}
