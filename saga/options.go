package saga

import (
	"fmt"
	"time"

	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/otelpatterns/otelpatterns/internal/telemetry"
	"github.com/otelpatterns/otelpatterns/retry"
)

// An Option configures a Runner.
type Option interface{ apply(*config) }

type optionFunc func(*config)

func (f optionFunc) apply(c *config) { f(c) }

// DefaultCompensationTimeout bounds each compensation attempt unless
// WithCompensationTimeout says otherwise.
const DefaultCompensationTimeout = 30 * time.Second

// DefaultAbortWait is how long Run waits, once its ctx has ended, for the
// saga's abort to be durable, unless WithAbortWait says otherwise.
const DefaultAbortWait = 100 * time.Millisecond

type config struct {
	compRetry   *retry.Policy
	compTimeout time.Duration
	abortWait   time.Duration
	retention   time.Duration
	leaseOwner  string
	leaseTTL    time.Duration
	tel         telemetry.Config
}

func newConfig(opts []Option) (*config, error) {
	c := &config{compTimeout: DefaultCompensationTimeout, abortWait: DefaultAbortWait}
	for _, o := range opts {
		if o != nil {
			o.apply(c)
		}
	}
	if c.compTimeout < 0 {
		return nil, fmt.Errorf("saga: WithCompensationTimeout(%v): the timeout must not be negative (0 for none)", c.compTimeout)
	}
	if c.abortWait < 0 {
		return nil, fmt.Errorf("saga: WithAbortWait(%v): the wait must not be negative (0 to return at once)", c.abortWait)
	}
	if c.retention < 0 {
		return nil, fmt.Errorf("saga: WithRetention(%v): the retention must not be negative (0 keeps ended sagas for ever)", c.retention)
	}
	if c.compRetry == nil {
		p, err := retry.New(
			retry.WithName("saga.compensation"),
			retry.WithMaxAttempts(8),
			retry.WithExponentialBackoff(50*time.Millisecond, 5*time.Second, retry.FullJitter),
			retry.WithTracerProvider(c.tel.TracerProvider()),
			retry.WithMeterProvider(c.tel.MeterProvider()))
		if err != nil {
			return nil, err
		}
		c.compRetry = p
	}
	return c, nil
}

// WithCompensationRetry sets how compensations are retried; nil is
// ignored. When it gives up, the saga is stuck. The default makes 8
// attempts with full-jitter exponential backoff from 50ms to 5s.
func WithCompensationRetry(p *retry.Policy) Option {
	return optionFunc(func(c *config) {
		if p != nil {
			c.compRetry = p
		}
	})
}

// WithCompensationTimeout bounds each compensation attempt; 0 for no bound.
// The default is DefaultCompensationTimeout.
func WithCompensationTimeout(d time.Duration) Option {
	return optionFunc(func(c *config) { c.compTimeout = d })
}

// WithAbortWait sets how long Run waits, once its ctx has ended, for the
// abort of the saga it drives to be durable before it returns: Aborting
// if the abort landed in time, else Pending and ErrAbortRequested. 0
// returns at once. The default is DefaultAbortWait.
func WithAbortWait(d time.Duration) Option {
	return optionFunc(func(c *config) { c.abortWait = d })
}

// WithRetention makes the runner forget each saga d after it ended,
// completed, compensated or resolved (journal.Log's Forget): its records go, and a
// tombstone keeps its ID for the journal's tombstone horizon, during
// which Run and Lookup with that ID return ErrForgotten; after the
// horizon the ID is new again. 0, the default, keeps every ended saga for
// ever, so that the journal grows with each one. A stuck saga has not
// ended and is kept. The wait is kept in memory: what ended within d of
// a restart stays on record.
func WithRetention(d time.Duration) Option {
	return optionFunc(func(c *config) { c.retention = d })
}

// WithLeases makes the runner share its journal with the runners of other
// replicas (the pods of one Deployment, say): every saga it begins, runs or
// takes over is leased to owner, a name unique to this replica, for ttl at
// a time, renewed every third of ttl while the saga runs here, and each
// record carries the lease's epoch, so that the journal fences a runner
// whose lease passed to another. Recover and Serve then take over only
// the sagas whose runner's lease expired, never one whose runner is
// renewing. The journal must implement journal.Leaser (pgjournal does, for
// replicas on one database; journal.Open and journal.NewMemory do, within
// one process).
//
// ttl bounds how long a dead replica's sagas wait for another: about ttl
// and a half, with Serve. It also bounds how long a replica cut off from
// the journal goes on: a saga whose lease it could not renew before ttl
// passed is stopped (ErrLeaseLost). Seconds suit most services; the
// renewals cost one journal call per third of ttl for all live sagas.
func WithLeases(owner string, ttl time.Duration) Option {
	return optionFunc(func(c *config) { c.leaseOwner, c.leaseTTL = owner, ttl })
}

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

// WithPropagators sets the propagators that write the trace context and
// baggage of a saga's caller into its Begin record, and read them back on
// recovery; nil is ignored. The default is the global ones.
func WithPropagators(p propagation.TextMapPropagator) Option {
	return optionFunc(func(c *config) { c.tel.SetPropagators(p) })
}
