package concurrency

import (
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/otelpatterns/otelpatterns/internal/telemetry"
)

// An Option configures a TracedChannel.
type Option interface{ apply(*config) }

type optionFunc func(*config)

func (f optionFunc) apply(c *config) { f(c) }

type config struct {
	name     string
	parented bool
	tel      telemetry.Config
}

// WithName names the channel in its spans ("send orders", "process
// orders") and metrics. Keep names to a small fixed set. The default is
// "channel".
func WithName(name string) Option { return optionFunc(func(c *config) { c.name = name }) }

// WithParentedConsumer makes a process span a child of the producer's send
// span, in the producer's trace. By default it is only linked to it, in the
// consumer's own trace, as the messaging conventions recommend: one
// consumer's work then does not stretch the producer's trace.
func WithParentedConsumer() Option { return optionFunc(func(c *config) { c.parented = true }) }

// WithTracerProvider sets the tracer provider; nil is ignored. The default
// is the global one.
func WithTracerProvider(tp trace.TracerProvider) Option {
	return optionFunc(func(c *config) { c.tel.SetTracerProvider(tp) })
}

// WithMeterProvider sets the meter provider; nil is ignored. The default is
// the global one.
func WithMeterProvider(mp metric.MeterProvider) Option {
	return optionFunc(func(c *config) { c.tel.SetMeterProvider(mp) })
}

// WithRootSpans makes Send and Consume start their spans even when no
// recording span is in play. By default a send span needs a recording span
// in the sender's context, and a process span a recording span in the
// consumer's context or a sampled producer.
func WithRootSpans() Option { return optionFunc(func(c *config) { c.tel.SetRootSpans(true) }) }
