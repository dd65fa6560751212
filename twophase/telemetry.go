package twophase

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
	spanTransaction = "2pc.transaction"
	spanPrepare     = "2pc.prepare"
	spanCommit      = "2pc.commit"
	spanAbort       = "2pc.abort"
	spanCall        = "2pc.call " // + prepare, commit or abort
	spanRecover     = "2pc.recover"
	spanStatus      = "2pc.status"
	spanResolve     = "2pc.resolve"

	keyTx           = attribute.Key(telemetry.Prefix + "twophase.transaction")
	keyParticipant  = attribute.Key(telemetry.Prefix + "twophase.participant")
	keyParticipants = attribute.Key(telemetry.Prefix + "twophase.participants")
	keyVote         = attribute.Key(telemetry.Prefix + "twophase.vote")
	keyAttempt      = attribute.Key(telemetry.Prefix + "twophase.attempt")
	keyDecision     = attribute.Key(telemetry.Prefix + "twophase.decision")
	keyPhase        = attribute.Key(telemetry.Prefix + "twophase.phase")
	keyRecovered    = attribute.Key(telemetry.Prefix + "twophase.recovered")

	metricTransactions = telemetry.Prefix + "twophase.transactions"
	metricPhase        = telemetry.Prefix + "twophase.phase.duration"
	metricInDoubt      = telemetry.Prefix + "twophase.in_doubt"
	metricRetries      = telemetry.Prefix + "twophase.phase2.retries"
	metricLeaseClaimed = telemetry.Prefix + "twophase.lease.claimed"
	metricLeaseRenewed = telemetry.Prefix + "twophase.lease.renewed"
	metricLeaseLost    = telemetry.Prefix + "twophase.lease.lost"
)

// ScopeName is the instrumentation scope of the package's telemetry.
const ScopeName = "github.com/otelpatterns/otelpatterns/twophase"

// instruments is a Coordinator's telemetry, built once by NewCoordinator.
type instruments struct {
	tel          *telemetry.Telemetry
	transactions metric.Int64Counter
	phase        metric.Float64Histogram
	inDoubt      metric.Int64UpDownCounter
	retries      metric.Int64Counter
	claimed      metric.Int64Counter
	renewed      metric.Int64Counter
	lost         metric.Int64Counter
	byDecision   map[Decision]metric.MeasurementOption
	byPhase      map[string]metric.MeasurementOption
}

func newInstruments(cfg telemetry.Config) *instruments {
	tel := telemetry.New(ScopeName, cfg)
	in := &instruments{
		tel:          tel,
		transactions: tel.Counter(metricTransactions, "{transaction}", "Transactions that ended, by decision."),
		phase:        tel.Duration(metricPhase, "How long the prepare phase, and the commit or abort phase until every acknowledgement, took."),
		inDoubt:      tel.UpDownCounter(metricInDoubt, "{transaction}", "Transactions with a decision that not every participant has acknowledged."),
		retries:      tel.Counter(metricRetries, "{retry}", "Commit and Abort calls repeated because a participant did not acknowledge."),
		claimed:      tel.Counter(metricLeaseClaimed, "{transaction}", "Transactions whose lease this coordinator claimed to take them over: unowned, or their coordinator's lease expired."),
		renewed:      tel.Counter(metricLeaseRenewed, "{transaction}", "Leases of live transactions renewed."),
		lost:         tel.Counter(metricLeaseLost, "{transaction}", "Transactions stopped because their lease passed to another coordinator or could not be renewed in time."),
		byDecision:   map[Decision]metric.MeasurementOption{},
		byPhase:      map[string]metric.MeasurementOption{},
	}
	for _, d := range []Decision{Committed, Aborted} {
		in.byDecision[d] = metric.WithAttributeSet(attribute.NewSet(keyDecision.String(d.String())))
	}
	for _, p := range []string{"prepare", "commit", "abort"} {
		in.byPhase[p] = metric.WithAttributeSet(attribute.NewSet(keyPhase.String(p)))
	}
	return in
}

func (in *instruments) leasesClaimed(n int) { in.claimed.Add(context.Background(), int64(n)) }

func (in *instruments) leasesRenewed(n int) { in.renewed.Add(context.Background(), int64(n)) }

func (in *instruments) leaseLost() { in.lost.Add(context.Background(), 1) }

// startPhase starts a phase's span and stopwatch. A phase and a call are
// fine-grained: they get spans only under a recording transaction span.
func (in *instruments) startPhase(ctx context.Context, name string) (context.Context, trace.Span, telemetry.Stopwatch) {
	sw := telemetry.StartStopwatch(in.phase.Enabled(ctx))
	if !trace.SpanFromContext(ctx).IsRecording() {
		return ctx, telemetry.NoSpan, sw
	}
	ctx, span := in.tel.Tracer.Start(ctx, name)
	return ctx, span, sw
}

// endPhase ends a phase's span and measures it.
func (in *instruments) endPhase(ctx context.Context, phase string, span trace.Span, sw telemetry.Stopwatch, err error) {
	errs.Record(span, err)
	span.End()
	if sw.Running() {
		in.phase.Record(ctx, sw.Seconds(), in.byPhase[phase])
	}
}

// startCall starts the span of one call to a participant, under a
// recording phase span.
func (in *instruments) startCall(ctx context.Context, op, participant string, attempt int) (context.Context, trace.Span) {
	if !trace.SpanFromContext(ctx).IsRecording() {
		return ctx, telemetry.NoSpan
	}
	return in.tel.Tracer.Start(ctx, spanCall+op,
		trace.WithAttributes(keyParticipant.String(participant), keyAttempt.Int(attempt)))
}
