package journal

import (
	"fmt"
	"time"

	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/otelpatterns/otelpatterns/internal/telemetry"
)

// An Option configures a log. The options about files apply to Open only;
// NewMemory ignores them.
type Option interface{ apply(*config) }

type optionFunc func(*config)

func (f optionFunc) apply(c *config) { f(c) }

// The defaults.
const (
	DefaultSegmentSize      = 64 << 20 // bytes
	DefaultMaxPayload       = 1 << 20  // bytes
	DefaultMaxGroup         = 256      // appends per sync
	DefaultTombstoneHorizon = 7 * 24 * time.Hour

	minSegmentSize = 4 << 10
	// maxPayloadCap is the largest WithMaxPayload, hence the largest
	// payload any record on disk can have: recovery reads records up to it,
	// whatever the log's limit is now.
	maxPayloadCap = 64 << 20
)

type config struct {
	segmentSize int64
	maxPayload  int
	maxGroup    int
	horizon     time.Duration
	fs          fsys // nil: the operating system's
	tel         telemetry.Config
}

func newConfig(opts []Option) (*config, error) {
	c := &config{
		segmentSize: DefaultSegmentSize, maxPayload: DefaultMaxPayload,
		maxGroup: DefaultMaxGroup, horizon: DefaultTombstoneHorizon,
	}
	for _, o := range opts {
		if o != nil {
			o.apply(c)
		}
	}
	switch {
	case c.segmentSize < minSegmentSize:
		return nil, fmt.Errorf("journal: WithSegmentSize(%d): a segment must be at least %d bytes", c.segmentSize, minSegmentSize)
	case c.maxPayload < 1 || c.maxPayload > maxPayloadCap:
		return nil, fmt.Errorf("journal: WithMaxPayload(%d): the limit must be between 1 and %d bytes", c.maxPayload, maxPayloadCap)
	case c.maxGroup < 1:
		return nil, fmt.Errorf("journal: WithMaxGroup(%d): at least 1 append per sync is needed (1 turns group commit off)", c.maxGroup)
	case c.horizon < 0:
		return nil, fmt.Errorf("journal: WithTombstoneHorizon(%v): the horizon must not be negative (0 keeps tombstones for ever)", c.horizon)
	}
	return c, nil
}

// WithSegmentSize sets the size at which the file log starts a new segment
// file; each segment is preallocated to it. The default is
// DefaultSegmentSize.
func WithSegmentSize(bytes int64) Option {
	return optionFunc(func(c *config) { c.segmentSize = bytes })
}

// WithMaxPayload sets the largest record payload that Append accepts, at
// most 64 MiB. It governs new appends only: records already in the log are
// read back whatever their size, so that a log reopened with a smaller
// limit keeps every record it acknowledged. The default is
// DefaultMaxPayload.
func WithMaxPayload(bytes int) Option { return optionFunc(func(c *config) { c.maxPayload = bytes }) }

// WithMaxGroup sets how many concurrent Appends the file log may write
// with one write and one fdatasync (group commit). 1 turns group commit
// off. The default is DefaultMaxGroup.
func WithMaxGroup(n int) Option { return optionFunc(func(c *config) { c.maxGroup = n }) }

// WithTombstoneHorizon sets how long the ID of a forgotten transaction
// stays refused; 0 keeps it for ever. The file log drops expired
// tombstones when it compacts, the memory log when it forgets. The
// default is DefaultTombstoneHorizon.
func WithTombstoneHorizon(d time.Duration) Option {
	return optionFunc(func(c *config) { c.horizon = d })
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
