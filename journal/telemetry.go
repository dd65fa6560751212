package journal

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
	spanOpen    = "journal.open"
	spanCompact = "journal.compact"

	keyLog          = attribute.Key(telemetry.Prefix + "journal.log")
	keySegments     = attribute.Key(telemetry.Prefix + "journal.segments")
	keyTransactions = attribute.Key(telemetry.Prefix + "journal.transactions")
	keyTruncated    = attribute.Key(telemetry.Prefix + "journal.truncated")

	metricAppendDuration = telemetry.Prefix + "journal.append.duration"
	metricSyncs          = telemetry.Prefix + "journal.syncs"
	metricSyncRecords    = telemetry.Prefix + "journal.sync.records"
	metricWritten        = telemetry.Prefix + "journal.written"
	metricPending        = telemetry.Prefix + "journal.pending"
)

// ScopeName is the instrumentation scope of the package's telemetry.
const ScopeName = "github.com/otelpatterns/otelpatterns/journal"

// recordBuckets are the boundaries of the records-per-sync histogram: powers
// of two, enough to see group commit at work.
var recordBuckets = []float64{1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096}

// instruments is one log's telemetry, built once by its constructor.
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

// newInstruments builds the instruments of a log of the given kind
// ("memory" or "file"), and reports pending() as the pending transactions
// until close.
func newInstruments(cfg telemetry.Config, kind string, pending func() int) *instruments {
	tel := telemetry.New(ScopeName, cfg)
	in := &instruments{
		tel:         tel,
		log:         keyLog.String(kind),
		appendDur:   tel.Duration(metricAppendDuration, "How long appends took, from the call until the records were durable."),
		syncs:       tel.Counter(metricSyncs, "{sync}", "fdatasync calls of the file log."),
		syncRecords: tel.Histogram(metricSyncRecords, "{record}", "Records made durable by one fdatasync: the size of a group commit.", recordBuckets...),
		written:     tel.Counter(metricWritten, "By", "Bytes written to the file log's segments."),
		pending:     tel.ObservableUpDownCounter(metricPending, "{transaction}", "Transactions in the log that have no End record."),
	}
	in.byLog = metric.WithAttributeSet(attribute.NewSet(in.log))
	in.unobserve = tel.Observe(func(_ context.Context, o metric.Observer) error {
		o.ObserveInt64(in.pending, int64(pending()), in.byLog)
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

// synced counts one write of bytes and the fdatasync that made records
// durable.
func (in *instruments) synced(records, bytes int) {
	ctx := context.Background()
	in.syncs.Add(ctx, 1, in.byLog)
	in.syncRecords.Record(ctx, int64(records), in.byLog)
	in.written.Add(ctx, int64(bytes), in.byLog)
}

// lazy returns a span for an operation of the log that is traced only if
// there is something to tell (open).
func (in *instruments) lazy(ctx context.Context, name string) *telemetry.LazySpan {
	return telemetry.Lazy(ctx, in.tel.Tracer, name, trace.WithAttributes(in.log))
}

// start starts a span for a coarse operation of the log (compact).
func (in *instruments) start(ctx context.Context, name string) (context.Context, trace.Span) {
	return in.tel.Tracer.Start(ctx, name, trace.WithAttributes(in.log))
}
