package pool

import (
	"fmt"
	"math"
	"runtime"

	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"
	"golang.org/x/time/rate"

	"github.com/otelpatterns/otelpatterns/internal/ordered"
	"github.com/otelpatterns/otelpatterns/internal/telemetry"
)

// DefaultQueueSize is the queue's capacity when WithQueueSize is not given.
const DefaultQueueSize = 1024

// An Option configures a WorkerPool.
type Option interface{ apply(*config) }

type optionFunc func(*config)

func (f optionFunc) apply(c *config) { f(c) }

type config struct {
	workers   int
	queueSize int
	name      string
	limiter   *rate.Limiter
	tel       telemetry.Config
}

func newConfig(opts []Option) (config, error) {
	c := config{workers: runtime.GOMAXPROCS(0), queueSize: DefaultQueueSize, name: "default"}
	for _, o := range opts {
		if o != nil {
			o.apply(&c)
		}
	}
	switch {
	case c.workers <= 0:
		return c, fmt.Errorf("pool: WithWorkers(%d): the number of workers must be at least 1", c.workers)
	case c.workers > ordered.MaxBuffer:
		return c, fmt.Errorf("pool: WithWorkers(%d): at most %d workers", c.workers, ordered.MaxBuffer)
	case c.queueSize < 0:
		return c, fmt.Errorf("pool: WithQueueSize(%d): the queue size must be 0 (hand each task straight to a worker) or more", c.queueSize)
	case c.queueSize > ordered.MaxBuffer:
		return c, fmt.Errorf("pool: WithQueueSize(%d): at most %d tasks may wait; a longer queue only holds memory that backpressure should bound", c.queueSize, ordered.MaxBuffer)
	case c.name == "":
		return c, fmt.Errorf("pool: WithName(\"\"): the name must not be empty; it labels the pool's spans and metrics")
	case c.limiter != nil && (c.limiter.Limit() <= 0 || math.IsNaN(float64(c.limiter.Limit()))):
		return c, fmt.Errorf("pool: WithRateLimit: the limiter's limit is %v; it must be more than 0 tasks a second (rate.Inf for none)", c.limiter.Limit())
	case c.limiter != nil && c.limiter.Limit() != rate.Inf && c.limiter.Burst() < 1:
		return c, fmt.Errorf("pool: WithRateLimit: the limiter's burst is %d; it must be at least 1, or no task could ever start", c.limiter.Burst())
	}
	return c, nil
}

// WithWorkers sets the number of workers, which is the most tasks that run
// at once. The default is runtime.GOMAXPROCS(0). Resize changes it later.
func WithWorkers(n int) Option { return optionFunc(func(c *config) { c.workers = n }) }

// WithQueueSize sets how many submitted tasks may wait for a worker; Submit
// blocks and TrySubmit refuses while the queue is full. 0 hands each task
// straight to an idle worker. The default is [DefaultQueueSize].
func WithQueueSize(n int) Option { return optionFunc(func(c *config) { c.queueSize = n }) }

// WithName names the pool in its spans and metrics (the
// otelpatterns.pool.name attribute). Keep it to a fixed, small set of
// names. The default is "default".
func WithName(name string) Option { return optionFunc(func(c *config) { c.name = name }) }

// WithRateLimit makes every task wait for l before it starts, on its
// worker, honouring its context: a task whose wait would outlast its
// context's deadline fails at once with ErrRateLimited. Batch items count
// as tasks. l may be shared with other pools or retry policies
// (retry.WithRateLimit takes the same type), so that they share one
// budget; nil, the default, is no limit. New refuses a limiter that could
// never let a task start (a limit of 0, or a burst of 0 under a finite
// limit); one changed later with SetLimit or SetBurst is the caller's to
// keep sane.
func WithRateLimit(l *rate.Limiter) Option { return optionFunc(func(c *config) { c.limiter = l }) }

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

// WithRootSpans makes every task start a pool.task span, even when the
// context it was submitted with holds no recording span. By default a task
// is traced only under a recording parent, so that untraced work costs
// nothing.
func WithRootSpans() Option { return optionFunc(func(c *config) { c.tel.SetRootSpans(true) }) }

// A BatchOption configures one call of Process or ProcessSeq.
type BatchOption interface{ applyBatch(*batchConfig) }

type batchOptionFunc func(*batchConfig)

func (f batchOptionFunc) applyBatch(c *batchConfig) { f(c) }

type batchConfig struct {
	collectAll bool
	itemSpans  bool
	unordered  bool
}

func newBatchConfig(opts []BatchOption) batchConfig {
	var c batchConfig
	for _, o := range opts {
		if o != nil {
			o.applyBatch(&c)
		}
	}
	return c
}

// CollectAll runs every item of a batch, or every task of a Group, even
// when some fail, and returns all their errors joined with errors.Join: a
// batch's in input order, a group's in the order its tasks ended. By
// default the first error cancels the rest and is returned.
func CollectAll() CollectOption { return collectAll{} }

// A CollectOption configures a batch (Process, ProcessSeq) or a Group.
type CollectOption interface {
	BatchOption
	GroupOption
}

type collectAll struct{}

func (collectAll) applyBatch(c *batchConfig) { c.collectAll = true }
func (collectAll) applyGroup(g *Group)       { g.collect = true }

// WithItemSpans starts a pool.task span for each item, under the batch's
// pool.process span. By default a batch has the one span, whatever its size.
func WithItemSpans() BatchOption { return batchOptionFunc(func(c *batchConfig) { c.itemSpans = true }) }

// Unordered makes ProcessSeq yield results as they finish instead of in
// input order, so a slow item does not hold back the ones after it.
func Unordered() BatchOption { return batchOptionFunc(func(c *batchConfig) { c.unordered = true }) }
