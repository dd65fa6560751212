package pool

import (
	"context"
	"errors"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/otelpatterns/otelpatterns/errs"
	"github.com/otelpatterns/otelpatterns/internal/telemetry"
)

// ScopeName is the instrumentation scope of the package's telemetry.
const ScopeName = "github.com/otelpatterns/otelpatterns/pool"

// The names this package emits; README.md's Telemetry reference lists them.
const (
	spanTask    = "pool.task"
	spanProcess = "pool.process"

	keyName      = attribute.Key(telemetry.Prefix + "pool.name")
	keyQueueWait = attribute.Key(telemetry.Prefix + "pool.task.queue_wait")
	keyBatchSize = attribute.Key(telemetry.Prefix + "pool.batch.size")

	metricDuration  = telemetry.Prefix + "pool.task.duration"
	metricQueueWait = telemetry.Prefix + "pool.task.queue_wait"
	metricTasks     = telemetry.Prefix + "pool.tasks"
	metricQueueLen  = telemetry.Prefix + "pool.queue.length"
	metricBusy      = telemetry.Prefix + "pool.workers.busy"
)

var outcomes = [...]string{
	telemetry.OutcomeSuccess, telemetry.OutcomeError, telemetry.OutcomePanic,
	telemetry.OutcomeCanceled, telemetry.OutcomeDropped, outcomeRateLimited,
}

// instruments is a pool's telemetry, built once in New, with the attribute
// sets its hot path uses built once too.
type instruments struct {
	tel  *telemetry.Telemetry
	name attribute.KeyValue

	duration  metric.Float64Histogram
	queueWait metric.Float64Histogram
	tasks     metric.Int64Counter
	queueLen  metric.Int64ObservableUpDownCounter
	busy      metric.Int64ObservableUpDownCounter

	byName     metric.MeasurementOption // the pool's name alone
	byOutcome  map[string][]metric.AddOption
	recordName []metric.RecordOption
}

func newInstruments(cfg telemetry.Config, name string) *instruments {
	tel := telemetry.New(ScopeName, cfg)
	in := &instruments{
		tel:       tel,
		name:      keyName.String(name),
		duration:  tel.Duration(metricDuration, "How long tasks ran."),
		queueWait: tel.Duration(metricQueueWait, "How long tasks waited in the queue for a worker."),
		tasks:     tel.Counter(metricTasks, "{task}", "Tasks that ended, by outcome; dropped ones never ran."),
		queueLen:  tel.ObservableUpDownCounter(metricQueueLen, "{task}", "Tasks waiting in the queue."),
		busy:      tel.ObservableUpDownCounter(metricBusy, "{worker}", "Workers running a task."),
		byOutcome: make(map[string][]metric.AddOption, len(outcomes)),
	}
	in.byName = metric.WithAttributeSet(attribute.NewSet(in.name))
	in.recordName = []metric.RecordOption{in.byName}
	for _, o := range outcomes {
		in.byOutcome[o] = []metric.AddOption{metric.WithAttributeSet(attribute.NewSet(in.name, telemetry.KeyOutcome.String(o)))}
	}
	return in
}

// observe registers the callback that reports the queue's length and the
// busy workers; the returned function unregisters it.
func (in *instruments) observe(queued, busy func() int64) func() {
	return in.tel.Observe(func(_ context.Context, o metric.Observer) error {
		o.ObserveInt64(in.queueLen, queued(), in.byName)
		o.ObserveInt64(in.busy, busy(), in.byName)
		return nil
	}, in.queueLen, in.busy)
}

// startTask starts a pool.task span, with the queue wait when it was
// measured; the caller decided that the task gets one (Fine, when it was
// submitted).
func (in *instruments) startTask(ctx context.Context, waited telemetry.Stopwatch) (context.Context, trace.Span) {
	attrs := []attribute.KeyValue{in.name}
	if waited.Running() {
		attrs = append(attrs, keyQueueWait.Float64(waited.Seconds()))
	}
	return in.tel.Tracer.Start(ctx, spanTask, trace.WithAttributes(attrs...))
}

// finish records a task's end: its span's status, its duration and its
// outcome.
func (in *instruments) finish(ctx context.Context, span trace.Span, ran telemetry.Stopwatch, err error) {
	errs.Record(span, err)
	span.End()
	if ran.Running() && in.duration.Enabled(ctx) {
		if err == nil {
			in.duration.Record(ctx, ran.Seconds(), in.recordName...)
		} else {
			in.duration.Record(ctx, ran.Seconds(), metric.WithAttributes(in.name, errs.ErrorType(err)))
		}
	}
	in.count(ctx, outcome(err))
}

// outcome classifies a task's error: as the library does, but a task that
// the rate limit kept from starting is rate_limited, not canceled.
func outcome(err error) string {
	if errors.Is(err, ErrRateLimited) {
		return outcomeRateLimited
	}
	return telemetry.Outcome(err)
}

const outcomeRateLimited = "rate_limited"

func (in *instruments) count(ctx context.Context, outcome string) {
	if in.tasks.Enabled(ctx) {
		in.tasks.Add(ctx, 1, in.byOutcome[outcome]...)
	}
}

func (in *instruments) recordWait(ctx context.Context, waited telemetry.Stopwatch) {
	if waited.Running() {
		in.queueWait.Record(ctx, waited.Seconds(), in.recordName...)
	}
}
