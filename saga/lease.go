package saga

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"go.opentelemetry.io/otel"

	"github.com/otelpatterns/otelpatterns/journal"
)

// ErrLeaseLost is the error of a saga that this runner stopped because its
// lease passed to another runner, or could not be renewed before it
// expired: whoever holds the lease now drives the saga.
var ErrLeaseLost = errors.New("saga: lease lost to another runner")

// claimBatch is how many sagas one Claim asks for; Recover claims batches
// until none is left.
const claimBatch = 64

// leases is how a runner made WithLeases shares its journal with the
// runners of other replicas. Every saga it begins or takes over is leased
// to it first, and each record it writes carries the lease's epoch, so a
// runner whose lease passed to another is fenced by the journal. A
// goroutine renews the leases of the live sagas every third of the lease
// time, and stops a saga whose lease it could not keep.
type leases struct {
	log   journal.Leaser
	owner string
	ttl   time.Duration

	mu     sync.Mutex
	locked map[string]chan struct{} // the IDs being leased here, closed when done

	stopOnce sync.Once
	stop     chan struct{}
	done     chan struct{}
}

// grant is a lease this runner holds: its epoch, and until when it holds
// it by this process's clock (from when it asked, which errs early). The
// zero grant is no lease.
type grant struct {
	epoch uint64
	until time.Time
}

func newLeases(log journal.Log, owner string, ttl time.Duration) (*leases, error) {
	leaser, ok := log.(journal.Leaser)
	switch {
	case !ok:
		return nil, fmt.Errorf("saga: WithLeases: the journal (%T) does not implement journal.Leaser; pgjournal, journal.Open and journal.NewMemory do", log)
	case owner == "":
		return nil, errors.New("saga: WithLeases: the owner must not be empty; name this replica (a pod name, say)")
	case ttl < 10*time.Millisecond:
		return nil, fmt.Errorf("saga: WithLeases: ttl %v is too short to renew in time; take seconds", ttl)
	}
	return &leases{log: leaser, owner: owner, ttl: ttl, locked: map[string]chan struct{}{},
		stop: make(chan struct{}), done: make(chan struct{})}, nil
}

// lock makes the caller the one in this runner that leases id, until
// unlock: this runner's own Acquires must not fence each other, so they
// take turns, and the next one finds the saga live and joins it.
func (l *leases) lock(ctx context.Context, id string) (unlock func(), err error) {
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

// lease leases id to r for a Run, a RetryStuck or a Resolve, and returns
// the grant and the function to call once the saga is live here or given
// up (r.unlease); or the saga's live handle, to join. Without leases it
// grants nothing. An ended or forgotten saga is granted nothing either:
// its records say what became of it.
func (r *Runner) lease(ctx context.Context, id string) (grant, func(), *handle, error) {
	l := r.leases
	if l == nil {
		return grant{}, func() {}, nil, nil
	}
	unlock, err := l.lock(ctx, id)
	if err != nil {
		return grant{}, nil, nil, err
	}
	if h := r.liveHandle(id); h != nil {
		unlock()
		return grant{}, nil, h, nil
	}
	asked := time.Now()
	lease, err := l.log.Acquire(ctx, id, l.owner, l.ttl)
	switch {
	case errors.Is(err, journal.ErrEnded):
		return grant{}, unlock, nil, nil
	case errors.Is(err, journal.ErrLeased):
		unlock()
		return grant{}, nil, nil, fmt.Errorf("saga: %q is driven by another runner: %w", id, err)
	case err != nil:
		unlock()
		return grant{}, nil, nil, fmt.Errorf("saga: lease %q: %w", id, err)
	}
	return grant{epoch: lease.Epoch, until: asked.Add(l.ttl)}, unlock, nil, nil
}

// unlease ends what lease began: it gives the lease back unless a saga
// now drives it here (live), then lets the next caller for id in.
func (r *Runner) unlease(id string, g grant, live bool, unlock func()) {
	if g.epoch != 0 && !live {
		r.release(id)
	}
	unlock()
}

// release gives back this runner's leases of ids, so that another runner
// may take them at once. It runs on a context of its own, bounded: the
// lease expires anyway if the journal does not answer.
func (r *Runner) release(ids ...string) {
	if r.leases == nil || len(ids) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), r.leases.ttl)
	defer cancel()
	if err := r.leases.log.Release(ctx, r.leases.owner, ids...); err != nil {
		otel.Handle(fmt.Errorf("saga: release the leases of %d sagas (they expire in %v): %w", len(ids), r.leases.ttl, err))
	}
}

// claimLeases leases to r every unfinished saga that no runner holds, or whose
// runner's lease expired, in batches, and returns their IDs and grants.
func (r *Runner) claimLeases(ctx context.Context) ([]string, map[string]grant, error) {
	l := r.leases
	var ids []string
	grants := map[string]grant{}
	for {
		asked := time.Now()
		got, err := l.log.Claim(ctx, l.owner, l.ttl, claimBatch)
		if err != nil {
			return ids, grants, fmt.Errorf("saga: claim: %w", err)
		}
		for _, c := range got {
			ids = append(ids, c.TxID)
			grants[c.TxID] = grant{epoch: c.Epoch, until: asked.Add(l.ttl)}
		}
		r.ins.leasesClaimed(ctx, len(got))
		if len(got) < claimBatch {
			return ids, grants, nil
		}
	}
}

// keepLeases renews the leases of the live sagas every third of the lease
// time, until Close has stopped them all.
func (r *Runner) keepLeases() {
	l := r.leases
	defer close(l.done)
	tick := time.NewTicker(l.ttl / 3)
	defer tick.Stop()
	for {
		select {
		case <-l.stop:
			return
		case <-tick.C:
		}
		r.renew()
	}
}

// renew renews the live sagas' leases once, and stops the sagas whose
// lease is lost: taken by another runner, or past its expiry with no
// renewal (the journal did not answer), since another runner may have
// taken it meanwhile. A stopped saga has no further effect; its new owner
// drives it.
func (r *Runner) renew() {
	l := r.leases
	ids, live := r.live.Live()
	if len(ids) == 0 {
		return
	}
	asked := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), l.ttl/3)
	lost, err := l.log.Renew(ctx, l.owner, l.ttl, ids)
	cancel()
	if err != nil {
		otel.Handle(fmt.Errorf("saga: renew the leases of %d sagas: %w", len(ids), err))
	}
	gone := make(map[string]bool, len(lost))
	for _, id := range lost {
		gone[id] = true
	}
	renewed := 0
	now := time.Now()
	for i, h := range live {
		switch {
		case gone[ids[i]]:
		case err == nil:
			h.leasedUntil.Store(asked.Add(l.ttl).UnixNano())
			renewed++
			continue
		case now.UnixNano() < h.leasedUntil.Load():
			continue // not renewed this time, but not expired either
		}
		if h.leaseLost.CompareAndSwap(false, true) {
			h.kill(fmt.Errorf("%w: %q", ErrLeaseLost, ids[i]))
			r.ins.leaseLost(h.name)
		}
	}
	r.ins.leasesRenewed(renewed)
}

// closeLeases stops the renewals, once Close has waited for the sagas,
// and gives back the leases of those it stopped before their end.
func (r *Runner) closeLeases(stopped []string) {
	l := r.leases
	if l == nil {
		return
	}
	l.stopOnce.Do(func() {
		close(l.stop)
		<-l.done
		r.release(stopped...)
	})
}
