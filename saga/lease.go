package saga

import (
	"context"
	"errors"
	"fmt"

	"github.com/otelpatterns/otelpatterns/internal/owned"
	"github.com/otelpatterns/otelpatterns/journal"
)

// ErrLeaseLost is the error of a saga that this runner stopped because its
// lease passed to another runner, or could not be renewed before it
// expired: whoever holds the lease now drives the saga.
var ErrLeaseLost = errors.New("saga: lease lost to another runner")

// newLeases sets up the leases of a runner made WithLeases (see
// owned.Leases): a saga whose lease is lost is stopped, with no further
// effect.
func (r *Runner) newLeases() (err error) {
	r.leases, err = owned.NewLeases(r.log, r.cfg.leaseOwner, r.cfg.leaseTTL, &r.live, owned.LeaseHooks[*handle]{
		Lost: func(id string, h *handle) {
			h.kill(fmt.Errorf("%w: %q", ErrLeaseLost, id))
			r.ins.leaseLost(h.name)
		},
		Claimed: r.ins.leasesClaimed,
		Renewed: r.ins.leasesRenewed,
	})
	if err != nil {
		return fmt.Errorf("saga: WithLeases: %w", err)
	}
	return nil
}

// lease leases id to r for a Run, a RetryStuck or a Resolve, and returns
// the epoch to write under and the function to call once the saga is
// live here or given up (r.unlease); or the saga's live handle, to join.
// Without leases it leases nothing (epoch 0). An ended or forgotten saga
// is leased nothing either: its records say what became of it.
func (r *Runner) lease(ctx context.Context, id string) (uint64, func(), *handle, error) {
	l := r.leases
	if l == nil {
		return 0, func() {}, nil, nil
	}
	unlock, err := l.Lock(ctx, id)
	if err != nil {
		return 0, nil, nil, err
	}
	if h := r.liveHandle(id); h != nil {
		unlock()
		return 0, nil, h, nil
	}
	epoch, err := l.Acquire(ctx, id)
	switch {
	case errors.Is(err, journal.ErrEnded):
		return 0, unlock, nil, nil
	case errors.Is(err, journal.ErrLeased):
		unlock()
		return 0, nil, nil, fmt.Errorf("saga: %q is driven by another runner: %w", id, err)
	case err != nil:
		unlock()
		return 0, nil, nil, fmt.Errorf("saga: lease %q: %w", id, err)
	}
	return epoch, unlock, nil, nil
}

// unlease ends what lease began: it gives the lease back unless a saga
// now drives it here (live), then lets the next caller for id in.
func (r *Runner) unlease(id string, epoch uint64, live bool, unlock func()) {
	if epoch != 0 && !live {
		r.leases.Release(id)
	}
	unlock()
}
