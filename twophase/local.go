package twophase

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"slices"
	"sync"
)

// Resource is what a service does for each phase of a transaction, without
// the bookkeeping: Local adds that and makes it a Participant.
type Resource interface {
	// Prepare makes the transaction's changes ready to commit and durable,
	// and holds what they need (locks, reservations); an error refuses.
	Prepare(ctx context.Context, txID string) error
	// Commit applies the prepared changes.
	Commit(ctx context.Context, txID string) error
	// Abort releases what Prepare held.
	Abort(ctx context.Context, txID string) error
}

// Local is a Participant built on a Resource. It keeps the state of every
// transaction it has seen, so that the Resource is called at most once per
// phase and never out of order:
//
//   - a repeated Prepare, Commit or Abort answers as the first did;
//   - Abort of an unknown transaction calls nothing and leaves a tombstone,
//     so that a Prepare arriving late votes no;
//   - a failed Prepare votes no, and the transaction is aborted here;
//   - Commit of a transaction not prepared here is refused.
//
// Transactions prepared here and not yet decided are in doubt: Resolve asks
// the coordinator about them. Local keeps its state in memory; a service
// whose Resource is durable keeps this state with it, by the same rules.
type Local struct {
	name  string
	res   Resource
	seed  maphash.Seed
	locks [64]sync.Mutex
	mu    sync.Mutex
	state map[string]localState
}

type localState uint8

const (
	unseen localState = iota
	prepared
	committed
	aborted
)

// ErrProtocol is a call that two-phase commit never makes: Commit of a
// transaction that was not prepared, or Abort of a committed one.
var ErrProtocol = errors.New("twophase: protocol violation")

// NewLocal returns a participant named name over res.
func NewLocal(name string, res Resource) (*Local, error) {
	if name == "" || res == nil {
		return nil, errors.New("twophase: NewLocal: a participant needs a name and a Resource")
	}
	return &Local{name: name, res: res, seed: maphash.MakeSeed(), state: map[string]localState{}}, nil
}

// Name implements Participant.
func (l *Local) Name() string { return l.name }

func (l *Local) lock(txID string) func() {
	m := &l.locks[maphash.String(l.seed, txID)%uint64(len(l.locks))]
	m.Lock()
	return m.Unlock
}

func (l *Local) get(txID string) localState {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.state[txID]
}

func (l *Local) set(txID string, s localState) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.state[txID] = s
}

// Prepare implements Participant.
func (l *Local) Prepare(ctx context.Context, txID string) error {
	if ctx == nil {
		return errNilContext
	}
	defer l.lock(txID)()
	switch l.get(txID) {
	case prepared, committed:
		return nil
	case aborted:
		return fmt.Errorf("%w: %s: %q was aborted here", ErrVoteNo, l.name, txID)
	}
	if err := l.res.Prepare(ctx, txID); err != nil {
		l.set(txID, aborted)
		return fmt.Errorf("%w: %s: %w", ErrVoteNo, l.name, err)
	}
	l.set(txID, prepared)
	return nil
}

// Commit implements Participant.
func (l *Local) Commit(ctx context.Context, txID string) error {
	if ctx == nil {
		return errNilContext
	}
	defer l.lock(txID)()
	switch l.get(txID) {
	case committed:
		return nil
	case prepared:
	default:
		return fmt.Errorf("%w: %s: commit of %q, which was not prepared here", ErrProtocol, l.name, txID)
	}
	if err := l.res.Commit(ctx, txID); err != nil {
		return err // still prepared: the coordinator retries
	}
	l.set(txID, committed)
	return nil
}

// Abort implements Participant.
func (l *Local) Abort(ctx context.Context, txID string) error {
	if ctx == nil {
		return errNilContext
	}
	defer l.lock(txID)()
	switch l.get(txID) {
	case aborted:
		return nil
	case committed:
		return fmt.Errorf("%w: %s: abort of %q, which committed", ErrProtocol, l.name, txID)
	case unseen:
		l.set(txID, aborted) // the tombstone: a late Prepare votes no
		return nil
	}
	if err := l.res.Abort(ctx, txID); err != nil {
		return err
	}
	l.set(txID, aborted)
	return nil
}

// InDoubt returns the transactions prepared here and not yet decided,
// sorted.
func (l *Local) InDoubt() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var ids []string
	for id, s := range l.state {
		if s == prepared {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids
}

// StatusFunc asks a coordinator for a transaction's decision:
// Coordinator.Status, or a twophasehttp client of it.
type StatusFunc func(ctx context.Context, txID string) (Decision, error)

// Resolve asks status about every transaction in doubt here, and commits
// or aborts each that has a decision. Call it when the coordinator has
// been silent for a while, as a prepared participant that lost contact
// must. It returns the first error, after trying them all.
func (l *Local) Resolve(ctx context.Context, status StatusFunc) error {
	if ctx == nil {
		return errNilContext
	}
	var first error
	for _, id := range l.InDoubt() {
		d, err := status(ctx, id)
		switch {
		case err != nil:
		case d == Committed:
			err = l.Commit(ctx, id)
		case d == Aborted:
			err = l.Abort(ctx, id)
		}
		if err != nil && first == nil {
			first = fmt.Errorf("twophase: %s: resolve %q: %w", l.name, id, err)
		}
	}
	return first
}

// Forget drops what Local knows of an ended transaction.
func (l *Local) Forget(txID string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.state, txID)
}
