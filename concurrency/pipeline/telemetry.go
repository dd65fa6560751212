package pipeline

import (
	"context"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/otelpatterns/otelpatterns/internal/telemetry"
)

// ScopeName is the instrumentation scope of a pipeline's telemetry.
const ScopeName = "github.com/otelpatterns/otelpatterns/concurrency/pipeline"

// The names the pipeline emits; README.md's Telemetry reference lists them.
const (
	keyPipeline = attribute.Key(telemetry.Prefix + "pipeline.name")
	keyStage    = attribute.Key(telemetry.Prefix + "pipeline.stage")
	keySkipped  = attribute.Key(telemetry.Prefix + "pipeline.skipped")

	metricItemsIn  = telemetry.Prefix + "pipeline.items.in"
	metricItemsOut = telemetry.Prefix + "pipeline.items.out"
	metricFailed   = telemetry.Prefix + "pipeline.items.failed"
	metricItemDur  = telemetry.Prefix + "pipeline.item.duration"
	metricBuffer   = telemetry.Prefix + "pipeline.buffer.length"
)

// pipelineInstruments are a run's telemetry: the instruments, shared by
// every run on the same providers, and the run's name.
type pipelineInstruments struct {
	*pipelineTelemetry
	name attribute.KeyValue
}

// pipelineTelemetry is built once per distinct set of providers (the
// cache): a run must not build a tracer, a meter and five instruments.
type pipelineTelemetry struct {
	tel      *telemetry.Telemetry
	in, out  metric.Int64Counter
	failed   metric.Int64Counter
	duration metric.Float64Histogram
	buffer   metric.Int64ObservableUpDownCounter
}

var pipelineCache = telemetry.NewCache(ScopeName, func(tel *telemetry.Telemetry) *pipelineTelemetry {
	return &pipelineTelemetry{
		tel:      tel,
		in:       tel.Counter(metricItemsIn, "{item}", "Values a pipeline stage took in."),
		out:      tel.Counter(metricItemsOut, "{item}", "Values a pipeline stage passed on."),
		failed:   tel.Counter(metricFailed, "{item}", "Values skipped because their stage failed (CollectAll)."),
		duration: tel.Duration(metricItemDur, "How long a stage took over one value."),
		buffer:   tel.ObservableUpDownCounter(metricBuffer, "{item}", "Values waiting in a stage's output buffer."),
	}
})

func newPipelineInstruments(c *config) *pipelineInstruments {
	return &pipelineInstruments{pipelineTelemetry: pipelineCache.Get(c.tel), name: keyPipeline.String(c.name)}
}

// stageMetrics are a pipelineInstruments with one stage's attributes.
type stageMetrics struct {
	*pipelineInstruments
	byStage  []metric.AddOption
	recStage []metric.RecordOption
	obsStage metric.ObserveOption
}

func (in *pipelineInstruments) stage(name string) stageMetrics {
	set := metric.WithAttributeSet(attribute.NewSet(in.name, keyStage.String(name)))
	return stageMetrics{in, []metric.AddOption{set}, []metric.RecordOption{set}, set}
}

func (m stageMetrics) observeBuffer(length func() int64) func() {
	return m.tel.Observe(func(_ context.Context, o metric.Observer) error {
		o.ObserveInt64(m.buffer, length(), m.obsStage)
		return nil
	}, m.buffer)
}
