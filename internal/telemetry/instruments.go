package telemetry

import (
	"context"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/trace"
)

// Prefix starts the name of every metric and attribute the library defines
// ("otelpatterns.pool.task.duration"); names from the semantic conventions,
// such as error.type, keep their own.
const Prefix = "otelpatterns."

// DurationBuckets are the explicit histogram boundaries, in seconds, for
// every duration the library measures. They reach down to a microsecond,
// where the default OpenTelemetry boundaries (made for milliseconds) would
// put every in-process task into the first bucket, and up to a minute.
var DurationBuckets = []float64{
	0.000001, 0.0000025, 0.000005, 0.00001, 0.000025, 0.00005,
	0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005,
	0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
	1, 2.5, 5, 10, 30, 60,
}

// Duration returns a histogram of durations in seconds with
// [DurationBuckets]. An invalid name is reported to otel.Handle and a no-op
// instrument is returned, so telemetry never stops the library from working;
// the same holds for the other instrument helpers.
func (t *Telemetry) Duration(name, description string) metric.Float64Histogram {
	h, err := t.Meter.Float64Histogram(name,
		metric.WithUnit("s"),
		metric.WithDescription(description),
		metric.WithExplicitBucketBoundaries(DurationBuckets...))
	return orNoop[metric.Float64Histogram](h, err, noop.Float64Histogram{})
}

// Histogram returns a histogram of counts, such as records per batch, with
// explicit bucket boundaries; unit is UCUM, such as "{record}".
func (t *Telemetry) Histogram(name, unit, description string, buckets ...float64) metric.Int64Histogram {
	h, err := t.Meter.Int64Histogram(name,
		metric.WithUnit(unit),
		metric.WithDescription(description),
		metric.WithExplicitBucketBoundaries(buckets...))
	return orNoop[metric.Int64Histogram](h, err, noop.Int64Histogram{})
}

// Counter returns a monotonic counter; unit is UCUM, such as "{task}".
func (t *Telemetry) Counter(name, unit, description string) metric.Int64Counter {
	c, err := t.Meter.Int64Counter(name, metric.WithUnit(unit), metric.WithDescription(description))
	return orNoop[metric.Int64Counter](c, err, noop.Int64Counter{})
}

// UpDownCounter returns a counter that can go down, for amounts that the
// library changes itself, such as work in flight.
func (t *Telemetry) UpDownCounter(name, unit, description string) metric.Int64UpDownCounter {
	c, err := t.Meter.Int64UpDownCounter(name, metric.WithUnit(unit), metric.WithDescription(description))
	return orNoop[metric.Int64UpDownCounter](c, err, noop.Int64UpDownCounter{})
}

// ObservableUpDownCounter returns an up-down counter read by a callback, for
// amounts that are cheap to read when collected, such as a queue's length.
// Register its callback with [Telemetry.Observe].
func (t *Telemetry) ObservableUpDownCounter(name, unit, description string) metric.Int64ObservableUpDownCounter {
	c, err := t.Meter.Int64ObservableUpDownCounter(name, metric.WithUnit(unit), metric.WithDescription(description))
	return orNoop[metric.Int64ObservableUpDownCounter](c, err, noop.Int64ObservableUpDownCounter{})
}

// ObservableCounter returns a monotonic counter read by a callback, for
// totals kept in atomics on a hot path. Register its callback with
// [Telemetry.Observe].
func (t *Telemetry) ObservableCounter(name, unit, description string) metric.Int64ObservableCounter {
	c, err := t.Meter.Int64ObservableCounter(name, metric.WithUnit(unit), metric.WithDescription(description))
	return orNoop[metric.Int64ObservableCounter](c, err, noop.Int64ObservableCounter{})
}

// ObservableGauge returns a gauge read by a callback, for a current value
// such as a probability. Register its callback with [Telemetry.Observe].
func (t *Telemetry) ObservableGauge(name, unit, description string) metric.Float64ObservableGauge {
	g, err := t.Meter.Float64ObservableGauge(name, metric.WithUnit(unit), metric.WithDescription(description))
	return orNoop[metric.Float64ObservableGauge](g, err, noop.Float64ObservableGauge{})
}

// Observe registers cb to report insts at each collection and returns the
// function that unregisters it, which the owner's Close calls. A failed
// registration is reported to otel.Handle and gives a no-op unregister.
func (t *Telemetry) Observe(cb metric.Callback, insts ...metric.Observable) (unregister func()) {
	reg, err := t.Meter.RegisterCallback(cb, insts...)
	if err != nil || reg == nil {
		handle(err)
		return func() {}
	}
	return func() { handle(reg.Unregister()) }
}

func orNoop[I any](inst I, err error, fallback I) I {
	handle(err)
	if any(inst) == nil {
		return fallback
	}
	return inst
}

func handle(err error) {
	if err != nil {
		otel.Handle(err)
	}
}

// Enabler is what every synchronous instrument implements: whether a
// measurement would be processed.
type Enabler interface{ Enabled(context.Context) bool }

// Measuring reports whether anyone will read a measurement made now: span is
// recording, or one of insts is enabled. Guard clock reads and attribute
// building with it, so that with telemetry off they cost nothing.
func Measuring(ctx context.Context, span trace.Span, insts ...Enabler) bool {
	if span.IsRecording() {
		return true
	}
	for _, in := range insts {
		if in.Enabled(ctx) {
			return true
		}
	}
	return false
}

// Stopwatch measures a duration only when it was started on: the zero
// Stopwatch, and one started off, never read the clock and measure zero. It
// is one word, read from the monotonic clock, so it is cheap to carry in a
// queued task.
type Stopwatch struct{ start time.Duration } // since epoch; 0 when off

// epoch is the origin of Stopwatch readings.
var epoch = time.Now()

// StartStopwatch returns a running Stopwatch when on, and the zero one
// otherwise. Pass it [Measuring].
func StartStopwatch(on bool) Stopwatch {
	if !on {
		return Stopwatch{}
	}
	return Stopwatch{start: time.Since(epoch) | 1} // never 0, which means off
}

// Running reports whether the stopwatch was started on.
func (s Stopwatch) Running() bool { return s.start != 0 }

// Elapsed returns the time since the stopwatch started, or zero when it was
// not started on.
func (s Stopwatch) Elapsed() time.Duration {
	if s.start == 0 {
		return 0
	}
	return max(0, time.Since(epoch)-s.start)
}

// Seconds returns Elapsed in seconds, the unit of every duration metric.
func (s Stopwatch) Seconds() float64 { return s.Elapsed().Seconds() }
