package journal

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// Leaser is a Log whose transactions are owned through leases, so that
// runners in several processes (the replicas of one service) can share one
// log: each transaction is driven by the one owner that holds its lease,
// and a transaction whose owner died is taken over by another once the
// lease expires, never before.
//
// A lease's Epoch is its fencing token. Every Acquire or Claim returns an
// epoch above every epoch the transaction had, and from then on the log
// refuses records of a lower epoch with ErrFenced: an owner that lost its
// lease (it paused past the expiry, say) can write nothing more, whatever
// it believes. Owners write their records with their lease's epoch.
//
// Memory and File implement it for the one process that opens them; a log
// shared by processes (pgjournal) implements it in its store, on its
// store's clock. journaltest.Run checks any Leaser by these rules.
type Leaser interface {
	Log

	// Acquire leases txID to owner for ttl: a transaction that is new,
	// unowned, already owner's, or whose lease has expired. It fails with
	// ErrLeased while another owner holds a lease that has not expired,
	// and with ErrEnded for a transaction that has ended.
	Acquire(ctx context.Context, txID, owner string, ttl time.Duration) (Lease, error)

	// Claim leases to owner at most max of the unfinished transactions
	// that are unowned or whose lease has expired, and returns their
	// leases. Concurrent Claims never return one transaction twice. A
	// transaction written without a lease is unowned: once anyone claims
	// leases on a log, every writer of it must lease what it writes, or be
	// fenced by the first Claim.
	Claim(ctx context.Context, owner string, ttl time.Duration, max int) ([]Lease, error)

	// Renew extends owner's leases of txIDs to ttl from now, and returns
	// the IDs among them that owner no longer holds: taken over after
	// expiring, or never held. Ended transactions are neither renewed nor
	// reported.
	Renew(ctx context.Context, owner string, ttl time.Duration, txIDs []string) (lost []string, err error)

	// Release gives up owner's leases of txIDs, so that any owner may
	// claim them at once. IDs that owner does not hold are ignored.
	Release(ctx context.Context, owner string, txIDs ...string) error
}

// Lease is a transaction's ownership by one owner, until Expires.
type Lease struct {
	TxID    string
	Epoch   uint64 // the fencing token: the owner's records carry it
	Expires time.Time
}

// ErrLeased is an Acquire of a transaction that another owner holds.
var ErrLeased = errors.New("journal: transaction is leased to another owner")

// checkLease validates the arguments every lease call shares.
func checkLease(ctx context.Context, owner string, ttl time.Duration) error {
	switch {
	case ctx == nil:
		return errNilContext
	case owner == "":
		return errors.New("journal: lease: the owner must not be empty; name the runner (a pod name, say)")
	case ttl <= 0:
		return fmt.Errorf("journal: lease: ttl %v must be positive", ttl)
	}
	return ctx.Err()
}

// leaseTable holds the leases of a log that one process opens (Memory,
// File). An entry outlives its lease, as the transaction's fence, until
// the transaction ends.
type leaseTable struct {
	mu sync.Mutex
	m  map[string]leaseEntry
}

type leaseEntry struct {
	owner   string // "" once released
	epoch   uint64
	expires time.Time
}

// fence is the lowest epoch txID's records may carry.
func (t *leaseTable) fence(txID string) uint64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.m[txID].epoch
}

// ended drops txID's entry: an ended transaction is owned by nobody.
func (t *leaseTable) ended(txID string) {
	t.mu.Lock()
	delete(t.m, txID)
	t.mu.Unlock()
}

// acquire leases txID, whose head is h, to owner, if no other owner holds
// it; with force false it refuses a transaction owner holds already too
// (Claim takes only what nobody holds).
func (t *leaseTable) acquire(txID, owner string, ttl time.Duration, h head, now time.Time, force bool) (Lease, error) {
	if h.ended || h.forgotten {
		return Lease{}, fmt.Errorf("%w: %q", ErrEnded, txID)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	e := t.m[txID]
	if now.Before(e.expires) && e.owner != "" && (e.owner != owner || !force) {
		return Lease{}, fmt.Errorf("%w: %q until %s", ErrLeased, txID, e.expires.Format(time.RFC3339Nano))
	}
	e = leaseEntry{owner: owner, epoch: max(e.epoch, h.epoch) + 1, expires: now.Add(ttl)}
	if t.m == nil {
		t.m = map[string]leaseEntry{}
	}
	t.m[txID] = e
	return Lease{TxID: txID, Epoch: e.epoch, Expires: e.expires}, nil
}

func (t *leaseTable) renew(owner string, ttl time.Duration, txIDs []string, ended func(string) bool, now time.Time) []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	var lost []string
	for _, id := range txIDs {
		e, ok := t.m[id]
		switch {
		case !ok && ended(id):
		case !ok || e.owner != owner:
			lost = append(lost, id)
		default: // owner's, expired or not: nobody took it meanwhile
			e.expires = now.Add(ttl)
			t.m[id] = e
		}
	}
	return lost
}

func (t *leaseTable) release(owner string, txIDs []string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, id := range txIDs {
		if e, ok := t.m[id]; ok && e.owner == owner {
			e.owner, e.expires = "", time.Time{}
			t.m[id] = e
		}
	}
}

// claim leases to owner at most max of pending (sorted IDs) that nobody
// holds; head reads a transaction's head.
func (t *leaseTable) claim(owner string, ttl time.Duration, max int, pending []string, head func(string) head, now time.Time) []Lease {
	var out []Lease
	for _, id := range pending {
		if len(out) == max {
			break
		}
		if l, err := t.acquire(id, owner, ttl, head(id), now, false); err == nil {
			out = append(out, l)
		}
	}
	return out
}

func checkClaim(max int) error {
	if max <= 0 {
		return fmt.Errorf("journal: Claim: max %d must be at least 1", max)
	}
	return nil
}
