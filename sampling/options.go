package sampling

import (
	"time"

	"go.opentelemetry.io/otel/metric"

	"github.com/otelpatterns/otelpatterns/internal/telemetry"
)

// An AdaptiveOption configures NewAdaptive.
type AdaptiveOption interface{ apply(*adaptiveConfig) }

type adaptiveConfig struct {
	target   float64
	interval time.Duration
	maxKeys  int
	now      func() time.Time
	stepped  bool // WithClock: read it at every decision, not only when a timer says
	key      func(Params) string
	tel      telemetry.Config
}

type optionFunc func(*adaptiveConfig)

func (f optionFunc) apply(c *adaptiveConfig) { f(c) }

// WithInterval sets how often the probabilities are recomputed, and so how
// soon they follow the traffic; the default is a second.
func WithInterval(d time.Duration) AdaptiveOption {
	return optionFunc(func(c *adaptiveConfig) { c.interval = d })
}

// WithMaxKeys bounds the keys that get a rate of their own; later keys
// share the overflow key "_other". The default is 100. Each key is a
// metric series.
func WithMaxKeys(n int) AdaptiveOption {
	return optionFunc(func(c *adaptiveConfig) { c.maxKeys = n })
}

// WithKey sets what a rate is held for: the span name by default; for
// example a route attribute, or the name and kind. Keep its values few
// (see WithMaxKeys).
func WithKey(key func(p Params) string) AdaptiveOption {
	return optionFunc(func(c *adaptiveConfig) { c.key = key })
}

// WithClock sets the clock the intervals are measured on; the default is
// time.Now. It is for simulations and replays that step through recorded
// time, such as sizing a target against a day's traffic in seconds: unlike
// the other packages' tests, which use testing/synctest, such a run lives
// outside a test, so this is the one clock option the library keeps. With
// it the clock is read at every decision, where the default reads none.
func WithClock(now func() time.Time) AdaptiveOption {
	return optionFunc(func(c *adaptiveConfig) { c.now, c.stepped = now, true })
}

// WithMeterProvider sets the meter provider of the sampler's metrics; nil
// is ignored. The default is the global one.
func WithMeterProvider(mp metric.MeterProvider) AdaptiveOption {
	return optionFunc(func(c *adaptiveConfig) { c.tel.SetMeterProvider(mp) })
}
