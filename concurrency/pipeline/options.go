package pipeline

import (
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/otelpatterns/otelpatterns/internal/telemetry"
)

// An Option configures a run of a pipeline (From, Pipeline.Run).
type Option interface{ apply(*config) }

type optionFunc func(*config)

func (f optionFunc) apply(c *config) { f(c) }

type config struct {
	name      string
	collect   bool
	itemSpans bool
	tel       telemetry.Config
}

// CollectAll makes a pipeline go on past a value whose stage failed (or
// panicked): the value is dropped from the flow and counted
// (Flow.Skipped), and Err returns the failures joined: the first 8 of
// them and a count of the rest, so that a run of any length holds bounded
// memory. By default the first failure stops the run. The
// name is the one pool and functional use for the same choice.
func CollectAll() Option { return optionFunc(func(c *config) { c.collect = true }) }

// WithItemSpans starts a "stage {name}" span for each value in each stage,
// linked to the span of the value's previous hop, so a value can be
// followed through the pipeline. By default a run has its one span.
func WithItemSpans() Option { return optionFunc(func(c *config) { c.itemSpans = true }) }

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

// A StageOption configures a Stage.
type StageOption interface{ applyStage(*stageConfig) }

type stageOptionFunc func(*stageConfig)

func (f stageOptionFunc) applyStage(c *stageConfig) { f(c) }

type stageConfig struct {
	workers, buffer int
	bufferSet       bool
	unordered       bool
}

// WithWorkers sets how many goroutines run the stage's function; the
// default is 1.
func WithWorkers(n int) StageOption { return stageOptionFunc(func(c *stageConfig) { c.workers = n }) }

// WithBuffer sets how many of the stage's results may wait for the next
// stage; the default is the number of workers (the package doc says why).
func WithBuffer(n int) StageOption {
	return stageOptionFunc(func(c *stageConfig) { c.buffer, c.bufferSet = n, true })
}

// Unordered lets the stage pass results on as they finish, instead of in
// the order the values came in, so a slow value does not hold back the
// ones after it.
func Unordered() StageOption { return stageOptionFunc(func(c *stageConfig) { c.unordered = true }) }
