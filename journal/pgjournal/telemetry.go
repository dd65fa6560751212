package pgjournal

import (
	"context"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/otelpatterns/otelpatterns/errs"
	"github.com/otelpatterns/otelpatterns/internal/telemetry"
)

// The names this package emits; README.md's Telemetry reference lists them.
// The metrics are the journal's, with otelpatterns.journal.log "postgres",
// so that one dashboard shows every log.
const (
	spanMigrate = "journal.migrate"

	keyLog  = attribute.Key(telemetry.Prefix + "journal.log")
	logKind = "postgres"

	metricAppendDuration = telemetry.Prefix + "journal.append.duration"
	metricSyncs          = telemetry.Prefix + "journal.syncs"
	metricSyncRecords    = telemetry.Prefix + "journal.sync.records"
	metricWritten        = telemetry.Prefix + "journal.written"
	metricPending        = telemetry.Prefix + "journal.pending"
)

// ScopeName is the instrumentation scope of the package's telemetry.
const ScopeName = "github.com/otelpatterns/otelpatterns/journal/pgjournal"

// recordBuckets are the boundaries of the records-per-commit histogram, as
// the file log's.
var recordBuckets = []float64{1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096}

// instruments is one log's telemetry, built once by Open (or Migrate, which
// only traces).
type instruments struct {
	tel         *telemetry.Telemetry
	log         attribute.KeyValue
	appendDur   metric.Float64Histogram
	syncs       metric.Int64Counter
	syncRecords metric.Int64Histogram
	written     metric.Int64Counter
	pending     metric.Int64ObservableUpDownCounter
	byLog       metric.MeasurementOption
	unobserve   func()
}

// newInstruments builds the instruments, and reports pending(ctx) as the
// pending transactions until unobserve; a nil pending observes nothing.
func newInstruments(cfg telemetry.Config, pending func(context.Context) (int64, error)) *instruments {
	tel := telemetry.New(ScopeName, cfg)
	in := &instruments{tel: tel, log: keyLog.String(logKind), unobserve: func() {}}
	in.byLog = metric.WithAttributeSet(attribute.NewSet(in.log))
	if pending == nil {
		return in
	}
	in.appendDur = tel.Duration(metricAppendDuration, "How long appends took, from the call until their COMMIT returned.")
	in.syncs = tel.Counter(metricSyncs, "{sync}", "COMMITs of the PostgreSQL log: one per group commit.")
	in.syncRecords = tel.Histogram(metricSyncRecords, "{record}", "Records made durable by one COMMIT: the size of a group commit.", recordBuckets...)
	in.written = tel.Counter(metricWritten, "By", "Bytes of record data sent to PostgreSQL: IDs, names, payloads and carriers.")
	in.pending = tel.ObservableUpDownCounter(metricPending, "{transaction}", "Transactions in the log that have no End record.")
	in.unobserve = tel.Observe(func(ctx context.Context, o metric.Observer) error {
		n, err := pending(ctx)
		if err != nil {
			return err
		}
		o.ObserveInt64(in.pending, n, in.byLog)
		return nil
	}, in.pending)
	return in
}

// startAppend returns the stopwatch of an append, running only when its
// duration is recorded.
func (in *instruments) startAppend(ctx context.Context) telemetry.Stopwatch {
	return telemetry.StartStopwatch(in.appendDur.Enabled(ctx))
}

func (in *instruments) appended(ctx context.Context, sw telemetry.Stopwatch, err error) {
	if !sw.Running() {
		return
	}
	if err == nil {
		in.appendDur.Record(ctx, sw.Seconds(), in.byLog)
		return
	}
	in.appendDur.Record(ctx, sw.Seconds(), metric.WithAttributes(in.log, errs.ErrorType(err)))
}

// committed counts one COMMIT that made records durable.
func (in *instruments) committed(records, bytes int) {
	ctx := context.Background()
	in.syncs.Add(ctx, 1, in.byLog)
	in.syncRecords.Record(ctx, int64(records), in.byLog)
	in.written.Add(ctx, int64(bytes), in.byLog)
}

// start starts a span for a coarse operation (Migrate).
func (in *instruments) start(ctx context.Context, name string) (context.Context, trace.Span) {
	return in.tel.Tracer.Start(ctx, name, trace.WithAttributes(in.log))
}
