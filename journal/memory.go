package journal

import (
	"context"
	"sync"
	"time"
)

// Memory is a Log held in memory: safe for concurrent use, fast, and gone
// when the process ends. Use it in tests, and where a process accepts that
// a crash loses its transactions.
type Memory struct {
	cfg     *config
	ins     *instruments
	mu      sync.Mutex
	idx     *index
	closed  bool
	swept   time.Time // when expired tombstones were last dropped
	scratch []Record  // the records of the Append in progress, before the index copies them
	leases  leaseTable
}

var _ Leaser = (*Memory)(nil)

// NewMemory returns an empty memory log. It takes the telemetry options,
// WithMaxPayload, WithTombstoneHorizon and WithNow; the others are about
// files and ignored.
func NewMemory(opts ...Option) (*Memory, error) {
	cfg, err := newConfig(opts)
	if err != nil {
		return nil, err
	}
	m := &Memory{cfg: cfg, idx: newIndex()}
	m.ins = newInstruments(cfg.tel, "memory", func() int {
		m.mu.Lock()
		defer m.mu.Unlock()
		return m.idx.pending
	})
	return m, nil
}

// Append implements Log.
func (m *Memory) Append(ctx context.Context, txID string, expectSeq uint64, records ...Record) (err error) {
	if ctx == nil {
		return errNilContext
	}
	sw := m.ins.startAppend(ctx)
	defer func() { m.ins.appended(ctx, sw, err) }()
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return ErrClosed
	}
	recs, err := validate(m.scratch[:0], txID, expectSeq, records, m.cfg.maxPayload)
	m.scratch = recs[:0]
	if err != nil {
		return err
	}
	h, err := m.head(txID).check(txID, expectSeq, recs)
	if err != nil {
		return err
	}
	m.idx.apply(txID, h, recs, 0)
	if h.ended {
		m.leases.ended(txID)
	}
	clear(recs) // the index has its own copies now
	return nil
}

// Load implements Log.
func (m *Memory) Load(ctx context.Context, txID string) ([]Record, error) {
	if ctx == nil {
		return nil, errNilContext
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil, ErrClosed
	}
	return m.idx.load(txID)
}

// Pending implements Log.
func (m *Memory) Pending(ctx context.Context) ([]string, error) {
	if ctx == nil {
		return nil, errNilContext
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil, ErrClosed
	}
	return m.idx.pendingIDs(), nil
}

// Forget implements Log. A few times a horizon, it also drops the
// tombstones older than the horizon.
func (m *Memory) Forget(ctx context.Context, txID string) error {
	if ctx == nil {
		return errNilContext
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return ErrClosed
	}
	write, err := m.idx.head(txID).forgettable(txID)
	if write {
		now := time.Now()
		// Sweeping visits every tombstone: do it a few times a horizon,
		// not at every Forget.
		if h := m.cfg.horizon; h > 0 && now.Sub(m.swept) > h/8 {
			m.idx.expire(now, h)
			m.swept = now
		}
		m.idx.forget(txID, now)
	}
	return err
}

// Close implements Log: the records are dropped.
func (m *Memory) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil // Close is idempotent
	}
	m.closed = true
	m.idx = newIndex()
	m.ins.unobserve()
	return nil
}

// head is txID's head, fenced by its lease. m.mu is held.
func (m *Memory) head(txID string) head {
	h := m.idx.head(txID)
	h.epoch = max(h.epoch, m.leases.fence(txID))
	return h
}

// Acquire implements Leaser.
func (m *Memory) Acquire(ctx context.Context, txID, owner string, ttl time.Duration) (Lease, error) {
	if err := checkLease(ctx, owner, ttl); err != nil {
		return Lease{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return Lease{}, ErrClosed
	}
	return m.leases.acquire(txID, owner, ttl, m.idx.head(txID), time.Now(), true)
}

// Claim implements Leaser.
func (m *Memory) Claim(ctx context.Context, owner string, ttl time.Duration, max int) ([]Lease, error) {
	if err := checkLease(ctx, owner, ttl); err != nil {
		return nil, err
	}
	if err := checkClaim(max); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil, ErrClosed
	}
	return m.leases.claim(owner, ttl, max, m.idx.pendingIDs(), m.idx.head, time.Now()), nil
}

// Renew implements Leaser.
func (m *Memory) Renew(ctx context.Context, owner string, ttl time.Duration, txIDs []string) ([]string, error) {
	if err := checkLease(ctx, owner, ttl); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil, ErrClosed
	}
	return m.leases.renew(owner, ttl, txIDs, m.idx.isEnded, time.Now()), nil
}

// Release implements Leaser.
func (m *Memory) Release(ctx context.Context, owner string, txIDs ...string) error {
	if err := checkLease(ctx, owner, time.Second); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return ErrClosed
	}
	m.leases.release(owner, txIDs)
	return nil
}
