package twophasehttp

import (
	"fmt"
	"net/http"
	"time"

	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/otelpatterns/otelpatterns/internal/telemetry"
	"github.com/otelpatterns/otelpatterns/retry"
)

// An Option configures a handler or a client.
type Option interface{ apply(*config) }

type optionFunc func(*config)

func (f optionFunc) apply(c *config) { f(c) }

// DefaultTimeout bounds each request a client makes unless WithTimeout
// says otherwise.
const DefaultTimeout = 5 * time.Second

type config struct {
	client  *http.Client
	timeout time.Duration
	retry   *retry.Policy
	tel     telemetry.Config
}

func newConfig(opts []Option) (*config, error) {
	c := &config{client: http.DefaultClient, timeout: DefaultTimeout}
	for _, o := range opts {
		if o != nil {
			o.apply(c)
		}
	}
	if c.timeout <= 0 {
		return nil, fmt.Errorf("twophasehttp: WithTimeout(%v): the timeout must be positive", c.timeout)
	}
	if c.retry == nil {
		p, err := retry.New(retry.WithName("2pc.http"), retry.WithMaxAttempts(3),
			retry.WithExponentialBackoff(20*time.Millisecond, 500*time.Millisecond, retry.FullJitter),
			retry.WithTracerProvider(c.tel.TracerProvider()), retry.WithMeterProvider(c.tel.MeterProvider()))
		if err != nil {
			return nil, err
		}
		c.retry = p
	}
	return c, nil
}

// WithHTTPClient sets the client's HTTP client; nil is ignored. The default
// is http.DefaultClient.
func WithHTTPClient(hc *http.Client) Option {
	return optionFunc(func(c *config) {
		if hc != nil {
			c.client = hc
		}
	})
}

// WithTimeout bounds each request of a client. The default is
// DefaultTimeout.
func WithTimeout(d time.Duration) Option { return optionFunc(func(c *config) { c.timeout = d }) }

// WithRetry sets how a client retries a request that did not get an
// answer (a transport error, a timeout, a 5xx); nil is ignored. A no vote
// is an answer, and is never retried. The default makes 3 attempts.
func WithRetry(p *retry.Policy) Option {
	return optionFunc(func(c *config) {
		if p != nil {
			c.retry = p
		}
	})
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

// WithPropagators sets the propagators that carry the trace context and
// baggage in the requests' headers; nil is ignored. The default is the
// global ones.
func WithPropagators(p propagation.TextMapPropagator) Option {
	return optionFunc(func(c *config) { c.tel.SetPropagators(p) })
}
