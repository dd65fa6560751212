package journaltest

import (
	"context"
	"errors"
	"sync/atomic"
	"time"

	"github.com/otelpatterns/otelpatterns/journal"
)

// ErrCut is what every call of a Cut log returns once it is cut.
var ErrCut = errors.New("journaltest: this process is cut off from the journal")

// Cut is one process's view of a shared journal.Leaser that a test can cut
// off, as a replica that died or lost the network: once cut, every call
// fails with ErrCut, while the other processes' views go on. It is how a
// test kills one of several runners on one journal without killing the
// process.
type Cut struct {
	journal.Leaser
	cut atomic.Bool
}

// NewCut returns a view of l that Cut cuts off.
func NewCut(l journal.Leaser) *Cut { return &Cut{Leaser: l} }

// Cut cuts the view off from the journal, for good.
func (c *Cut) Cut() { c.cut.Store(true) }

func (c *Cut) err() error {
	if c.cut.Load() {
		return ErrCut
	}
	return nil
}

func (c *Cut) Append(ctx context.Context, txID string, expectSeq uint64, recs ...journal.Record) error {
	if err := c.err(); err != nil {
		return err
	}
	return c.Leaser.Append(ctx, txID, expectSeq, recs...)
}

func (c *Cut) Load(ctx context.Context, txID string) ([]journal.Record, error) {
	if err := c.err(); err != nil {
		return nil, err
	}
	return c.Leaser.Load(ctx, txID)
}

func (c *Cut) Pending(ctx context.Context) ([]string, error) {
	if err := c.err(); err != nil {
		return nil, err
	}
	return c.Leaser.Pending(ctx)
}

func (c *Cut) Forget(ctx context.Context, txID string) error {
	if err := c.err(); err != nil {
		return err
	}
	return c.Leaser.Forget(ctx, txID)
}

func (c *Cut) Acquire(ctx context.Context, txID, owner string, ttl time.Duration) (journal.Lease, error) {
	if err := c.err(); err != nil {
		return journal.Lease{}, err
	}
	return c.Leaser.Acquire(ctx, txID, owner, ttl)
}

func (c *Cut) Claim(ctx context.Context, owner string, ttl time.Duration, max int) ([]journal.Lease, error) {
	if err := c.err(); err != nil {
		return nil, err
	}
	return c.Leaser.Claim(ctx, owner, ttl, max)
}

func (c *Cut) Renew(ctx context.Context, owner string, ttl time.Duration, txIDs []string) ([]string, error) {
	if err := c.err(); err != nil {
		return nil, err
	}
	return c.Leaser.Renew(ctx, owner, ttl, txIDs)
}

func (c *Cut) Release(ctx context.Context, owner string, txIDs ...string) error {
	if err := c.err(); err != nil {
		return err
	}
	return c.Leaser.Release(ctx, owner, txIDs...)
}

// Close closes the view only: the journal stays the other views'.
func (c *Cut) Close() error { return nil }
