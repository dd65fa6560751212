package telemetry

import (
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// Config is the telemetry part of every package's configuration: the
// providers, the propagators and the root-span policy. Each package embeds
// one in its own unexported config, and its With... options call the setters
// below, so the rules live here once:
//
//   - a nil provider or propagator is ignored, never stored;
//   - what was not set is the global one (otel.GetTracerProvider() ...),
//     read when the telemetry is built, so a global set later at start-up
//     still counts.
//
// The zero Config is ready to use. Config is comparable, so it can key a
// cache (see [Cache]).
type Config struct {
	tracerProvider trace.TracerProvider
	meterProvider  metric.MeterProvider
	propagators    propagation.TextMapPropagator
	rootSpans      bool
}

// SetTracerProvider sets the tracer provider; nil is ignored.
func (c *Config) SetTracerProvider(tp trace.TracerProvider) {
	if tp != nil {
		c.tracerProvider = tp
	}
}

// SetMeterProvider sets the meter provider; nil is ignored.
func (c *Config) SetMeterProvider(mp metric.MeterProvider) {
	if mp != nil {
		c.meterProvider = mp
	}
}

// SetPropagators sets the propagators used where context crosses a boundary
// that serialises it; nil is ignored.
func (c *Config) SetPropagators(p propagation.TextMapPropagator) {
	if p != nil {
		c.propagators = p
	}
}

// SetRootSpans sets whether fine-grained work starts a span even when the
// context holds no recording span (see [Telemetry.Fine]).
func (c *Config) SetRootSpans(on bool) { c.rootSpans = on }

// TracerProvider returns the provider set, or the global one.
func (c *Config) TracerProvider() trace.TracerProvider {
	if c.tracerProvider != nil {
		return c.tracerProvider
	}
	return otel.GetTracerProvider()
}

// MeterProvider returns the provider set, or the global one.
func (c *Config) MeterProvider() metric.MeterProvider {
	if c.meterProvider != nil {
		return c.meterProvider
	}
	return otel.GetMeterProvider()
}

// Propagators returns the propagators set, or the global ones.
func (c *Config) Propagators() propagation.TextMapPropagator {
	if c.propagators != nil {
		return c.propagators
	}
	return otel.GetTextMapPropagator()
}
