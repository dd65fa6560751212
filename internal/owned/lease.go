package owned

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"go.opentelemetry.io/otel"

	"github.com/otelpatterns/otelpatterns/journal"
)

// claimBatch is how many transactions one Claim asks for; Leases.Claim
// asks again until fewer come back.
const claimBatch = 64

// Leases keeps the leases of a Set's work on a journal.Leaser, so that the
// runners of several replicas share one journal. The runner leases each
// piece of work before it writes (Lease, or Claim for what a dead runner
// left), and writes under the lease's epoch, so the journal fences a
// runner whose lease passed to another. A goroutine renews the leases of
// the live work every third of the lease time and hands the work whose
// lease it could not keep to Lost: taken by another runner, or about to
// expire with no renewal (the journal did not answer), since another may
// take it once it has.
type Leases[T comparable] struct {
	pkg   string // the runner's package, for errors
	log   journal.Leaser
	owner string
	ttl   time.Duration
	set   *Set[T]
	hooks LeaseHooks[T]

	mu     sync.Mutex
	locked map[string]chan struct{} // IDs being leased, closed when done
	until  map[string]time.Time     // held until, by this clock (from when it was asked: early)

	stopOnce sync.Once
	stop     chan struct{}
	done     chan struct{}
}

// LeaseHooks is what a runner does as its leases change; nil hooks are
// skipped.
type LeaseHooks[T any] struct {
	Lost    func(id string, work T) // stop work whose lease is lost; it has no further effect
	Claimed func(n int)
	Renewed func(n int)
}

// NewLeases returns the leases of set's work on log under owner, and
// starts their renewals; Close stops them. pkg names the runner's package
// in the errors that the leases report.
func NewLeases[T comparable](pkg string, log journal.Log, owner string, ttl time.Duration, set *Set[T], hooks LeaseHooks[T]) (*Leases[T], error) {
	leaser, ok := log.(journal.Leaser)
	switch {
	case !ok:
		return nil, fmt.Errorf("the journal (%T) does not implement journal.Leaser; pgjournal, journal.Open and journal.NewMemory do", log)
	case owner == "":
		return nil, errors.New("the owner must not be empty; name this replica (a pod name, say)")
	case ttl < 10*time.Millisecond:
		return nil, fmt.Errorf("ttl %v is too short to renew in time; take seconds", ttl)
	}
	l := &Leases[T]{pkg: pkg, log: leaser, owner: owner, ttl: ttl, set: set, hooks: hooks,
		locked: map[string]chan struct{}{}, until: map[string]time.Time{},
		stop: make(chan struct{}), done: make(chan struct{})}
	go l.keep()
	return l, nil
}

// TTL is the lease time.
func (l *Leases[T]) TTL() time.Duration { return l.ttl }

// Lock makes the caller the one in this runner that leases id, until
// unlock: a runner's own Acquires must not fence each other, so they take
// turns, and the next finds the work live and joins it.
func (l *Leases[T]) Lock(ctx context.Context, id string) (unlock func(), err error) {
	for {
		l.mu.Lock()
		busy, ok := l.locked[id]
		if !ok {
			mine := make(chan struct{})
			l.locked[id] = mine
			l.mu.Unlock()
			return func() {
				l.mu.Lock()
				delete(l.locked, id)
				l.mu.Unlock()
				close(mine)
			}, nil
		}
		l.mu.Unlock()
		select {
		case <-busy:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// Lease leases id for work about to begin or resume here. It takes id's
// turn (Lock) and then either returns the work live here now, to join, or
// acquires the lease and returns the epoch to write under, with done, to
// call once the work is live here (done(true)) or given up (done(false):
// the lease goes back). An ended transaction is leased nothing: epoch 0
// and no error (its records say what became of it). The errors are the
// journal's, journal.ErrLeased among them. On a nil *Leases (a runner
// without leases) it leases nothing and done does nothing.
func (l *Leases[T]) Lease(ctx context.Context, id string) (epoch uint64, done func(live bool), live T, err error) {
	if l == nil {
		return 0, func(bool) {}, live, nil
	}
	unlock, err := l.Lock(ctx, id)
	if err != nil {
		return 0, nil, live, err
	}
	if w, ok := l.set.Get(id); ok {
		unlock()
		return 0, nil, w, nil
	}
	epoch, err = l.acquire(ctx, id)
	switch {
	case errors.Is(err, journal.ErrEnded):
		return 0, func(bool) { unlock() }, live, nil
	case err != nil:
		unlock()
		return 0, nil, live, err
	}
	return epoch, func(live bool) {
		if !live {
			l.Release(id)
		}
		unlock()
	}, live, nil
}

// acquire leases id (journal.Leaser's Acquire) and returns the epoch to
// write under; the caller holds Lock.
func (l *Leases[T]) acquire(ctx context.Context, id string) (uint64, error) {
	asked := time.Now()
	lease, err := l.log.Acquire(ctx, id, l.owner, l.ttl)
	if err != nil {
		return 0, err
	}
	l.held(id, asked)
	return lease.Epoch, nil
}

// Claim leases every unfinished transaction that no runner holds, or
// whose runner's lease expired, in batches, and returns their IDs in
// order and their epochs.
func (l *Leases[T]) Claim(ctx context.Context) ([]string, map[string]uint64, error) {
	var ids []string
	epochs := map[string]uint64{}
	for {
		asked := time.Now()
		got, err := l.log.Claim(ctx, l.owner, l.ttl, claimBatch)
		if err != nil {
			return ids, epochs, fmt.Errorf("%s: claim the unowned and expired transactions: %w", l.pkg, err)
		}
		for _, c := range got {
			ids = append(ids, c.TxID)
			epochs[c.TxID] = c.Epoch
			l.held(c.TxID, asked)
		}
		if len(got) > 0 && l.hooks.Claimed != nil {
			l.hooks.Claimed(len(got))
		}
		if len(got) < claimBatch {
			return ids, epochs, nil
		}
	}
}

func (l *Leases[T]) held(id string, asked time.Time) {
	l.mu.Lock()
	l.until[id] = asked.Add(l.ttl)
	l.mu.Unlock()
}

// Release gives back the leases of ids, so that another runner may take
// them at once, on a context of its own bounded by the lease time: the
// leases expire anyway if the journal does not answer.
func (l *Leases[T]) Release(ids ...string) {
	if len(ids) == 0 {
		return
	}
	l.mu.Lock()
	for _, id := range ids {
		delete(l.until, id)
	}
	l.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), l.ttl)
	defer cancel()
	if err := l.log.Release(ctx, l.owner, ids...); err != nil {
		otel.Handle(fmt.Errorf("%s: release the leases of %d transactions (they expire in %v): %w", l.pkg, len(ids), l.ttl, err))
	}
}

// ReleaseIdle gives back the leases of those of ids that have no live
// work here, each in its turn (Lock), so that a lease this runner has just
// taken for work about to go live is not given back under it.
func (l *Leases[T]) ReleaseIdle(ids []string) {
	if l == nil {
		return
	}
	for _, id := range ids {
		unlock, err := l.Lock(context.Background(), id)
		if err != nil {
			continue
		}
		if _, ok := l.set.Get(id); !ok {
			l.Release(id)
		}
		unlock()
	}
}

// lose hands live work whose lease is lost to the Lost hook, once.
func (l *Leases[T]) lose(id string, w T) {
	l.mu.Lock()
	_, held := l.until[id]
	delete(l.until, id)
	l.mu.Unlock()
	if held && l.hooks.Lost != nil {
		l.hooks.Lost(id, w)
	}
}

// Serve calls round, the runner's recovery without waiting, every half of
// the lease time, until ctx ends (it returns ctx's error) or the set's
// Close begins (nil). round's errors go to otel.Handle, and the next
// round tries again.
func (l *Leases[T]) Serve(ctx context.Context, round func(context.Context) error) error {
	tick := time.NewTicker(l.ttl / 2)
	defer tick.Stop()
	closing := l.set.Closing()
	for {
		if err := round(ctx); err != nil && ctx.Err() == nil {
			otel.Handle(err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-closing:
			return nil
		case <-tick.C:
		}
	}
}

// Close stops the renewals, once the set's work has stopped, and gives
// back the leases of stopped, the work that Close stopped before its end.
// Later calls, and calls on a nil *Leases, do nothing.
func (l *Leases[T]) Close(stopped []string) {
	if l == nil {
		return
	}
	l.stopOnce.Do(func() {
		close(l.stop)
		<-l.done
		l.Release(stopped...)
	})
}

func (l *Leases[T]) keep() {
	defer close(l.done)
	tick := time.NewTicker(l.ttl / 3)
	defer tick.Stop()
	for {
		select {
		case <-l.stop:
			return
		case <-tick.C:
		}
		l.renew()
	}
}

// renew renews the live work's leases once. A Renew that does not answer
// is given until the earliest of the leases expires; work whose lease is
// reported lost, or that the next renewal would reach only after its lease
// expired, is lost: it is stopped before another runner can take it, up to
// a renewal interval early, never late.
func (l *Leases[T]) renew() {
	ids, work := l.set.Live()
	if len(ids) == 0 {
		return
	}
	interval := l.ttl / 3
	asked := time.Now()
	deadline := asked.Add(interval)
	l.mu.Lock()
	for _, id := range ids {
		if until, ok := l.until[id]; ok && until.After(asked) && until.Before(deadline) {
			deadline = until
		}
	}
	l.mu.Unlock()
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	lost, err := l.log.Renew(ctx, l.owner, l.ttl, ids)
	cancel()
	if err != nil {
		otel.Handle(fmt.Errorf("%s: renew the leases of %d transactions: %w", l.pkg, len(ids), err))
	}
	gone := make(map[string]bool, len(lost))
	for _, id := range lost {
		gone[id] = true
	}
	var losing []int
	renewed := 0
	now := time.Now()
	l.mu.Lock()
	for i, id := range ids {
		until, ok := l.until[id]
		switch {
		case !ok: // lost already, or never leased here
		case gone[id], err != nil && !now.Add(interval).Before(until):
			delete(l.until, id)
			losing = append(losing, i)
		case err == nil:
			l.until[id] = asked.Add(l.ttl)
			renewed++
		}
	}
	for id, until := range l.until { // what ended here keeps no entry
		if _, live := l.set.Get(id); !live && now.After(until) {
			delete(l.until, id)
		}
	}
	l.mu.Unlock()
	if l.hooks.Renewed != nil && renewed > 0 {
		l.hooks.Renewed(renewed)
	}
	for _, i := range losing {
		if l.hooks.Lost != nil {
			l.hooks.Lost(ids[i], work[i])
		}
	}
}
