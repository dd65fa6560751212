package breaker

import (
	"time"

	"go.opentelemetry.io/otel/metric"
)

// An Option configures a Breaker.
type Option interface{ apply(*Breaker) }

type optionFunc func(*Breaker)

func (f optionFunc) apply(b *Breaker) { f(b) }

// WithTripAfter opens the breaker after n consecutive failures. The
// default is 5; 0 turns the rule off (then set WithTripOnRate).
func WithTripAfter(n int) Option {
	return optionFunc(func(b *Breaker) { b.consecutive = int64(n) })
}

// WithTripOnRate opens the breaker when, over the last window, at least
// minRequests calls were counted and at least rate of them failed; the
// window is span long.
func WithTripOnRate(rate float64, minRequests int, span time.Duration) Option {
	return optionFunc(func(b *Breaker) {
		b.rate, b.minRequests = rate, minRequests
		b.win = &window{span: span}
	})
}

// WithOpenFor sets how long the breaker stays open before it lets probes
// through. The default is 30s.
func WithOpenFor(d time.Duration) Option {
	return optionFunc(func(b *Breaker) { b.openFor = d })
}

// WithHalfOpenProbes sets how many probes may run at once while
// half-open, and how many must succeed to close the breaker. The default
// is 1.
func WithHalfOpenProbes(n int) Option {
	return optionFunc(func(b *Breaker) { b.probes = n })
}

// WithClassifier sets how errors count; nil is ignored. The default is
// DefaultClassifier.
func WithClassifier(fn func(error) Verdict) Option {
	return optionFunc(func(b *Breaker) {
		if fn != nil {
			b.classify = fn
		}
	})
}

// WithOnStateChange sets a function called at every transition. It runs
// outside the breaker's lock, so it may call the breaker; a panic in it
// goes on up through the call that made the transition.
func WithOnStateChange(fn func(name string, from, to State)) Option {
	return optionFunc(func(b *Breaker) { b.onChange = fn })
}

// WithName names the breaker in its metrics (otelpatterns.breaker.name)
// and callbacks. Keep names to a small fixed set. The default is
// "default".
func WithName(name string) Option {
	return optionFunc(func(b *Breaker) { b.name = name })
}

// WithMeterProvider sets the meter provider; nil is ignored. The default
// is the global one. A breaker makes no spans: the calls it guards are
// traced by their callers.
func WithMeterProvider(mp metric.MeterProvider) Option {
	return optionFunc(func(b *Breaker) { b.inst.cfg.SetMeterProvider(mp) })
}
