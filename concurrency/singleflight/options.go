package singleflight

import (
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/otelpatterns/otelpatterns/internal/telemetry"
)

// An Option configures a Group.
type Option interface{ apply(*config) }

type optionFunc func(*config)

func (f optionFunc) apply(c *config) { f(c) }

type config struct {
	name string
	tel  telemetry.Config
}

// WithName names the group in its spans and metrics
// (otelpatterns.singleflight.name). Keep names to a small fixed set. The
// default is "singleflight".
func WithName(name string) Option { return optionFunc(func(c *config) { c.name = name }) }

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

// WithRootSpans makes the shared call start its span even when no
// recording span is in the first caller's context. By default it needs
// one.
func WithRootSpans() Option { return optionFunc(func(c *config) { c.tel.SetRootSpans(true) }) }
