package retry

import (
	"fmt"
	"math"
	"time"

	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"
	"golang.org/x/time/rate"

	"github.com/otelpatterns/otelpatterns/internal/telemetry"
	"github.com/otelpatterns/otelpatterns/retry/breaker"
)

// An Option configures a Policy.
type Option interface{ apply(*config) }

type optionFunc func(*config)

func (f optionFunc) apply(c *config) { f(c) }

type config struct {
	name           string
	maxAttempts    int
	maxElapsed     time.Duration
	attemptTimeout time.Duration
	maxRetryAfter  time.Duration
	backoff        Backoff
	backoffErr     error
	retryIf        func(error) bool
	budget         *Budget
	breaker        *breaker.Breaker
	limiter        *rate.Limiter
	tel            telemetry.Config
}

// The defaults: 3 attempts, full-jitter exponential backoff from 100ms to
// 10s, Retry-After hints capped at 1 minute.
const (
	DefaultMaxAttempts   = 3
	DefaultBase          = 100 * time.Millisecond
	DefaultCap           = 10 * time.Second
	DefaultMaxRetryAfter = time.Minute
)

func newConfig(opts []Option) (*config, error) {
	c := &config{
		name: "default", maxAttempts: DefaultMaxAttempts, maxRetryAfter: DefaultMaxRetryAfter,
		backoff: exponential{base: DefaultBase, max: DefaultCap, jitter: FullJitter},
	}
	for _, o := range opts {
		if o != nil {
			o.apply(c)
		}
	}
	switch {
	case c.backoffErr != nil:
		return nil, c.backoffErr
	case c.maxAttempts < 1:
		return nil, fmt.Errorf("retry: WithMaxAttempts(%d): at least 1 attempt is needed", c.maxAttempts)
	case c.maxElapsed < 0:
		return nil, fmt.Errorf("retry: WithMaxElapsed(%v): the duration must not be negative (0 for no limit)", c.maxElapsed)
	case c.attemptTimeout < 0:
		return nil, fmt.Errorf("retry: WithAttemptTimeout(%v): the duration must not be negative (0 for none)", c.attemptTimeout)
	case c.maxRetryAfter < 0:
		return nil, fmt.Errorf("retry: WithMaxRetryAfter(%v): the duration must not be negative", c.maxRetryAfter)
	case c.name == "":
		return nil, fmt.Errorf(`retry: WithName(""): the name must not be empty; it labels the policy's spans and metrics`)
	case c.limiter != nil && (c.limiter.Limit() <= 0 || math.IsNaN(float64(c.limiter.Limit()))):
		return nil, fmt.Errorf("retry: WithRateLimit: the limiter's limit is %v; it must be more than 0 attempts a second (rate.Inf for none)", c.limiter.Limit())
	case c.limiter != nil && c.limiter.Limit() != rate.Inf && c.limiter.Burst() < 1:
		return nil, fmt.Errorf("retry: WithRateLimit: the limiter's burst is %d; it must be at least 1, or no attempt could ever start", c.limiter.Burst())
	}
	return c, nil
}

// WithName names the policy in its spans and metrics
// (otelpatterns.retry.policy). Keep names to a small fixed set. The default
// is "default".
func WithName(name string) Option { return optionFunc(func(c *config) { c.name = name }) }

// WithMaxAttempts sets how many times the op may be called in all, the
// first call included. The default is DefaultMaxAttempts.
func WithMaxAttempts(n int) Option { return optionFunc(func(c *config) { c.maxAttempts = n }) }

// WithMaxElapsed bounds the whole operation: no wait is started that would
// end past d after the first attempt began. 0, the default, is no bound.
func WithMaxElapsed(d time.Duration) Option { return optionFunc(func(c *config) { c.maxElapsed = d }) }

// WithAttemptTimeout gives each attempt a context that ends after d. By
// default the op gets the caller's context as it is.
func WithAttemptTimeout(d time.Duration) Option {
	return optionFunc(func(c *config) { c.attemptTimeout = d })
}

// WithMaxRetryAfter caps the waits that RetryAfter hints ask for. The
// default is DefaultMaxRetryAfter.
func WithMaxRetryAfter(d time.Duration) Option {
	return optionFunc(func(c *config) { c.maxRetryAfter = d })
}

// WithExponentialBackoff waits base·2^(retry-1), capped at max, randomised
// by jitter (see Exponential). The default is full jitter from DefaultBase
// to DefaultCap.
func WithExponentialBackoff(base, max time.Duration, jitter Jitter) Option {
	b, err := Exponential(base, max, jitter)
	return optionFunc(func(c *config) { c.backoff, c.backoffErr = b, err })
}

// WithConstantBackoff waits d before every retry.
func WithConstantBackoff(d time.Duration) Option {
	b, err := Constant(d)
	return optionFunc(func(c *config) { c.backoff, c.backoffErr = b, err })
}

// WithBackoff sets a backoff of your own; nil is ignored.
func WithBackoff(b Backoff) Option {
	return optionFunc(func(c *config) {
		if b != nil {
			c.backoff, c.backoffErr = b, nil
		}
	})
}

// WithRetryIf sets which errors are worth retrying; the others end the
// operation at once with ErrNotRetryable. By default every error is, but
// those wrapped with Permanent and the context's own.
func WithRetryIf(fn func(error) bool) Option { return optionFunc(func(c *config) { c.retryIf = fn }) }

// WithBudget shares a retry Budget with the policy; nil is ignored.
func WithBudget(b *Budget) Option { return optionFunc(func(c *config) { c.budget = b }) }

// WithBreaker puts every attempt through a circuit breaker; nil is
// ignored. While it is open, the operation fails at once with
// breaker.ErrOpen.
func WithBreaker(b *breaker.Breaker) Option { return optionFunc(func(c *config) { c.breaker = b }) }

// WithRateLimit makes every attempt wait for l; nil, the default, is no
// limit. An attempt that could not start before ctx's deadline fails at
// once with ErrRateLimited, without waiting. l may be shared with other
// policies and pools (pool.WithRateLimit takes the same type). New refuses
// a limiter that could never let an attempt start (a limit of 0, or a
// burst of 0 under a finite limit).
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

// WithRootSpans makes every operation start its spans even when the
// context holds no recording span. By default an operation is traced only
// under a recording parent.
func WithRootSpans() Option { return optionFunc(func(c *config) { c.tel.SetRootSpans(true) }) }
