package sampling

import (
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/otelpatterns/otelpatterns/internal/telemetry"
)

// ScopeName is the instrumentation scope of the package's telemetry.
const ScopeName = "github.com/otelpatterns/otelpatterns/sampling"

// The names this package emits; README.md's Telemetry reference lists them.
const (
	keyKey      = attribute.Key(telemetry.Prefix + "sampling.key")
	keyDecision = attribute.Key(telemetry.Prefix + "sampling.decision")

	metricProbability = telemetry.Prefix + "sampling.probability"
	metricDecisions   = telemetry.Prefix + "sampling.decisions"
)

type instruments struct {
	*telemetry.Telemetry
	probability metric.Float64ObservableGauge
	decisions   metric.Int64ObservableCounter
}

var cache = telemetry.NewCache(ScopeName, func(t *telemetry.Telemetry) *instruments {
	return &instruments{
		Telemetry:   t,
		probability: t.ObservableGauge(metricProbability, "1", "The probability at which an adaptive sampler keeps a key's root spans now."),
		decisions:   t.ObservableCounter(metricDecisions, "{span}", "Root spans an adaptive sampler decided, by key and decision (kept or dropped)."),
	}
})
