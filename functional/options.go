package functional

import (
	"fmt"
	"runtime"

	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/otelpatterns/otelpatterns/internal/ordered"
	"github.com/otelpatterns/otelpatterns/internal/telemetry"
)

// An Option configures one call of a function of this package.
type Option interface{ apply(*config) }

type optionFunc func(*config)

func (f optionFunc) apply(c *config) { f(c) }

type config struct {
	workers    int
	collectAll bool
	span       bool
	tel        telemetry.Config
}

// newConfig applies opts. Callers skip it when there are no options: the
// config escapes through the options' interface calls, and a call without
// options should not allocate.
func newConfig(opts []Option) (*config, error) {
	c := &config{workers: runtime.GOMAXPROCS(0)}
	for _, o := range opts {
		if o != nil {
			o.apply(c)
		}
	}
	if c.workers < 1 || c.workers > ordered.MaxBuffer {
		return nil, fmt.Errorf("functional: WithWorkers(%d): the number of workers must be 1 to %d", c.workers, ordered.MaxBuffer)
	}
	return c, nil
}

// WithWorkers sets how many goroutines a parallel function runs items on,
// the most items that run at once; the default is runtime.GOMAXPROCS(0).
// It never starts more goroutines than there are items, and never one per
// item. The name is the one pool and pipeline stages use for the same
// knob; the telemetry attribute keeps its name,
// otelpatterns.functional.concurrency.
func WithWorkers(n int) Option { return optionFunc(func(c *config) { c.workers = n }) }

// CollectAll makes a parallel function run every item even when some fail,
// and return all their errors joined with errors.Join, in input order. By
// default the first error cancels the items in flight, starts no more, and
// is returned.
func CollectAll() Option { return optionFunc(func(c *config) { c.collectAll = true }) }

// WithSpan makes a sequential function (Map, Filter, Reduce and their
// error-returning forms) start a span for its call. Parallel functions
// always start one; sequential ones do not by default, because a span
// around a loop of ten items costs more than the loop and floods a backend.
func WithSpan() Option { return optionFunc(func(c *config) { c.span = true }) }

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
