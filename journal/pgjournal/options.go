package pgjournal

import (
	"fmt"
	"regexp"
	"time"

	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/otelpatterns/otelpatterns/internal/telemetry"
	"github.com/otelpatterns/otelpatterns/journal"
)

// An Option configures Open.
type Option interface{ applyOpen(*config) }

// A MigrateOption configures Migrate.
type MigrateOption interface{ applyMigrate(*config) }

// A SharedOption configures both Open and Migrate: the tables and the
// tracer provider.
type SharedOption interface {
	Option
	MigrateOption
}

type openOption func(*config)

func (f openOption) applyOpen(c *config) { f(c) }

type sharedOption func(*config)

func (f sharedOption) applyOpen(c *config)    { f(c) }
func (f sharedOption) applyMigrate(c *config) { f(c) }

// The defaults.
const (
	DefaultTablePrefix = "otelpatterns_journal"
	DefaultMaxPayload  = journal.DefaultMaxPayload // bytes
	DefaultMaxGroup    = journal.DefaultMaxGroup   // appends per COMMIT
	// DefaultTombstoneHorizon is the journal's: a week.
	DefaultTombstoneHorizon = journal.DefaultTombstoneHorizon
	// DefaultWriteTimeout bounds the database work of one group commit.
	DefaultWriteTimeout = 30 * time.Second

	maxPayloadCap = 64 << 20
	// maxGroupBytes caps the record data of one group commit: a group
	// stops growing past it, so that a burst of large payloads is not one
	// huge transaction.
	maxGroupBytes = 8 << 20
)

type config struct {
	prefix       string
	maxPayload   int
	maxGroup     int
	horizon      time.Duration
	writeTimeout time.Duration
	tel          telemetry.Config
}

var identifier = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,39}$`)

func newConfig() *config {
	return &config{
		prefix: DefaultTablePrefix, maxPayload: DefaultMaxPayload, maxGroup: DefaultMaxGroup,
		horizon: DefaultTombstoneHorizon, writeTimeout: DefaultWriteTimeout,
	}
}

func (c *config) check() error {
	switch {
	case !identifier.MatchString(c.prefix):
		return fmt.Errorf("pgjournal: WithTablePrefix(%q): the prefix must be 1 to 40 lowercase letters, digits or underscores, not starting with a digit", c.prefix)
	case c.maxPayload < 1 || c.maxPayload > maxPayloadCap:
		return fmt.Errorf("pgjournal: WithMaxPayload(%d): the limit must be between 1 and %d bytes", c.maxPayload, maxPayloadCap)
	case c.maxGroup < 1:
		return fmt.Errorf("pgjournal: WithMaxGroup(%d): at least 1 append per COMMIT is needed (1 turns group commit off)", c.maxGroup)
	case c.horizon < 0:
		return fmt.Errorf("pgjournal: WithTombstoneHorizon(%v): the horizon must not be negative (0 keeps tombstones for ever)", c.horizon)
	case c.writeTimeout <= 0:
		return fmt.Errorf("pgjournal: WithWriteTimeout(%v): the timeout must be positive", c.writeTimeout)
	}
	return nil
}

// WithTablePrefix sets the prefix of the log's tables: prefix_schema,
// prefix_transactions and prefix_records. Give Open and Migrate the same
// one. The default is DefaultTablePrefix. The tables are created in the
// first schema of the connection's search_path; set search_path in the
// pool's configuration to put them elsewhere.
func WithTablePrefix(prefix string) SharedOption {
	return sharedOption(func(c *config) { c.prefix = prefix })
}

// WithMaxPayload sets the largest record payload that Append accepts, at
// most 64 MiB. Records already stored are read back whatever their size.
// The default is DefaultMaxPayload.
func WithMaxPayload(bytes int) Option { return openOption(func(c *config) { c.maxPayload = bytes }) }

// WithMaxGroup sets how many concurrent Appends and Forgets may share one
// database transaction and one COMMIT (group commit). 1 turns group commit
// off. The default is DefaultMaxGroup.
func WithMaxGroup(n int) Option { return openOption(func(c *config) { c.maxGroup = n }) }

// WithTombstoneHorizon sets how long the ID of a forgotten transaction
// stays refused; 0 keeps it for ever. Forget drops the expired tombstones,
// a few times a horizon. The default is DefaultTombstoneHorizon.
func WithTombstoneHorizon(d time.Duration) Option {
	return openOption(func(c *config) { c.horizon = d })
}

// WithWriteTimeout bounds the database work of one group commit: acquiring
// a connection, the statements, the COMMIT and, when the COMMIT's answer
// was lost, finding out whether it committed. Append's ctx does not bound
// it, for once its records are queued an Append waits for their outcome.
// The default is DefaultWriteTimeout.
func WithWriteTimeout(d time.Duration) Option {
	return openOption(func(c *config) { c.writeTimeout = d })
}

// WithTracerProvider sets the tracer provider; nil is ignored. The default
// is the global one.
func WithTracerProvider(tp trace.TracerProvider) SharedOption {
	return sharedOption(func(c *config) { c.tel.SetTracerProvider(tp) })
}

// WithMeterProvider sets the meter provider; nil is ignored. The default is
// the global one.
func WithMeterProvider(mp metric.MeterProvider) Option {
	return openOption(func(c *config) { c.tel.SetMeterProvider(mp) })
}
