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
	r.leases, err = owned.NewLeases("saga", r.log, r.cfg.leaseOwner, r.cfg.leaseTTL, &r.live, owned.LeaseHooks[*handle]{
		Lost: func(id string, h *handle) {
			r.ins.leaseLost(h.name) // first: a caller waiting on the saga returns once it is killed
			h.kill(fmt.Errorf("%w: %q", ErrLeaseLost, id))
		},
		Claimed: r.ins.leasesClaimed,
		Renewed: r.ins.leasesRenewed,
	})
	if err != nil {
		return fmt.Errorf("saga: WithLeases: %w", err)
	}
	return nil
}

// lease leases id to r for a Run, a RetryStuck or a Resolve (see
// owned.Leases.Lease): the epoch to write under and done, or the saga's
// live handle, to join.
func (r *Runner) lease(ctx context.Context, id string) (uint64, func(live bool), *handle, error) {
	epoch, done, live, err := r.leases.Lease(ctx, id)
	switch {
	case errors.Is(err, journal.ErrLeased):
		return 0, nil, nil, fmt.Errorf("saga: %q is driven by another runner: %w", id, err)
	case err != nil:
		return 0, nil, nil, fmt.Errorf("saga: lease %q: %w", id, err)
	}
	return epoch, done, live, nil
}
