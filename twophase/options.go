package twophase

import (
	"fmt"
	"time"

	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/otelpatterns/otelpatterns/internal/telemetry"
	"github.com/otelpatterns/otelpatterns/retry"
)

// An Option configures a Coordinator.
type Option interface{ apply(*config) }

type optionFunc func(*config)

func (f optionFunc) apply(c *config) { f(c) }

// DefaultPrepareTimeout bounds the prepare phase unless WithPrepareTimeout
// says otherwise.
const DefaultPrepareTimeout = 5 * time.Second

// The resolver's backoff unless WithResolver says otherwise.
const (
	DefaultResolverFirst = time.Second
	DefaultResolverMax   = time.Minute
)

type config struct {
	prepareTimeout time.Duration
	resolverFirst  time.Duration
	resolverMax    time.Duration
	resolver       retry.Backoff // nil: off
	phase2         *retry.Policy
	participants   map[string]Participant
	retention      time.Duration
	leaseOwner     string
	leaseTTL       time.Duration
	tel            telemetry.Config
}

func newConfig(opts []Option) (*config, error) {
	c := &config{prepareTimeout: DefaultPrepareTimeout, resolverFirst: DefaultResolverFirst, resolverMax: DefaultResolverMax, participants: map[string]Participant{}}
	var dup []string
	for _, o := range opts {
		if o == nil {
			continue
		}
		if po, ok := o.(participantsOption); ok {
			for _, p := range po {
				if p == nil {
					return nil, fmt.Errorf("twophase: WithParticipants: a participant is nil")
				}
				if _, ok := c.participants[p.Name()]; ok {
					dup = append(dup, p.Name())
				}
				c.participants[p.Name()] = p
			}
			continue
		}
		o.apply(c)
	}
	switch {
	case len(dup) > 0:
		return nil, fmt.Errorf("twophase: WithParticipants: two participants are named %q", dup[0])
	case c.prepareTimeout <= 0:
		return nil, fmt.Errorf("twophase: WithPrepareTimeout(%v): the timeout must be positive", c.prepareTimeout)
	case c.retention < 0:
		return nil, fmt.Errorf("twophase: WithRetention(%v): the retention must not be negative (0 keeps ended transactions for ever)", c.retention)
	case c.resolverFirst > 0:
		b, err := retry.Exponential(c.resolverFirst, c.resolverMax, retry.FullJitter)
		if err != nil {
			return nil, fmt.Errorf("twophase: WithResolver(%v, %v): the longest wait must be at least the first (0, 0 turns the resolver off)", c.resolverFirst, c.resolverMax)
		}
		c.resolver = b
	}
	if c.phase2 == nil {
		p, err := retry.New(
			retry.WithName("2pc.phase2"),
			retry.WithMaxAttempts(10),
			retry.WithExponentialBackoff(50*time.Millisecond, 5*time.Second, retry.FullJitter),
			retry.WithTracerProvider(c.tel.TracerProvider()),
			retry.WithMeterProvider(c.tel.MeterProvider()))
		if err != nil {
			return nil, err
		}
		c.phase2 = p
	}
	return c, nil
}

// WithPrepareTimeout bounds the prepare phase: a participant that has not
// voted yes by then counts as a no. The default is DefaultPrepareTimeout.
func WithPrepareTimeout(d time.Duration) Option {
	return optionFunc(func(c *config) { c.prepareTimeout = d })
}

// WithPhase2Retry sets how Commit and Abort calls are retried until the
// participant acknowledges; nil is ignored. When it gives up, Execute
// returns ErrInDoubt, and the resolver (WithResolver) goes on. The default makes
// 10 attempts with full-jitter exponential backoff from 50ms to 5s.
func WithPhase2Retry(p *retry.Policy) Option {
	return optionFunc(func(c *config) {
		if p != nil {
			c.phase2 = p
		}
	})
}

// WithResolver sets the backoff of the resolver: the coordinator's own
// goroutine that re-drives a transaction whose phase 2 the retry policy
// gave up on. It waits first, then twice as long each round up to max,
// with full jitter, and in each round calls every participant that has not
// acknowledged once, until all have; then it writes End. Close stops it,
// leaving the transaction to Recover. first ≤ 0 turns it off: such a
// transaction then waits for Recover. The default is
// DefaultResolverFirst to DefaultResolverMax.
func WithResolver(first, max time.Duration) Option {
	return optionFunc(func(c *config) { c.resolverFirst, c.resolverMax = first, max })
}

type participantsOption []Participant

func (participantsOption) apply(*config) {}

// WithParticipants tells the coordinator the participants it may find in
// its journal, by name, so that Recover can drive transactions begun
// before a restart. Execute's participants need not be listed.
func WithParticipants(ps ...Participant) Option { return participantsOption(ps) }

// WithLeases makes the coordinator share its journal with the
// coordinators of other replicas: every transaction it begins or takes
// over is leased to owner, a name unique to this replica, for ttl at a
// time, renewed every third of ttl while it is driven here, and each
// record carries the lease's epoch, so that the journal fences a
// coordinator whose lease passed to another. Recover and Serve then take
// over only the transactions whose coordinator's lease expired, and
// Status waits for the decision of one that another coordinator drives
// rather than aborting it. The journal must implement journal.Leaser
// (pgjournal does, for replicas on one database).
//
// ttl bounds how long a dead replica's transactions wait for another:
// about ttl and a half, with Serve; and how long a replica cut off from
// the journal goes on: a transaction whose lease it could not renew
// before ttl passed is stopped (ErrLeaseLost).
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

// WithPropagators sets the propagators that write the caller's trace
// context and baggage into a transaction's Begin record, and read them back
// on recovery; nil is ignored. The default is the global ones.
func WithPropagators(p propagation.TextMapPropagator) Option {
	return optionFunc(func(c *config) { c.tel.SetPropagators(p) })
}

// WithRetention makes the coordinator forget each transaction d after it
// ended (journal.Log's Forget): its records go, and a tombstone keeps its
// ID for the journal's tombstone horizon, during which Execute and Status
// with that ID return ErrForgotten. 0, the default, keeps every ended
// transaction for ever, so that the journal grows with each one.
//
// A transaction forgets only once every participant has acknowledged the
// decision, so no participant can still be in doubt about it. The wait is
// kept in memory: what ended within d of a restart stays on record.
func WithRetention(d time.Duration) Option {
	return optionFunc(func(c *config) { c.retention = d })
}
