package saga

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/otelpatterns/otelpatterns/journal"
)

// StuckSaga is a saga whose compensation gave up, or whose definition
// changed under it: it waits in the journal for a person.
type StuckSaga struct {
	ID      string
	Name    string
	Version int
	Step    string // the step whose compensation gave up; "" for a changed definition
	Reason  string
}

// Stuck lists the stuck sagas in the journal.
func (r *Runner) Stuck(ctx context.Context) ([]StuckSaga, error) {
	if ctx == nil {
		return nil, errNilContext
	}
	ids, err := r.log.Pending(ctx)
	if err != nil {
		return nil, fmt.Errorf("saga: Stuck: %w", err)
	}
	var out []StuckSaga
	for _, id := range ids {
		h, err := r.load(ctx, id)
		if err != nil || h == nil || h.stuck == "" {
			continue
		}
		out = append(out, StuckSaga{ID: id, Name: h.begin.Name, Version: h.begin.Version, Step: h.stuckAt, Reason: h.stuck})
	}
	return out, nil
}

// load returns the history of saga id, or nil if the ID is not a saga's.
func (r *Runner) load(ctx context.Context, id string) (*history, error) {
	recs, err := r.log.Load(ctx, id)
	if err != nil {
		return nil, err
	}
	h, ok, err := readHistory(recs)
	if !ok {
		return nil, err
	}
	return h, err
}

// stuckHistory loads saga id and checks that it is stuck.
func (r *Runner) stuckHistory(ctx context.Context, id string) (*history, error) {
	if r.liveHandle(id) != nil {
		return nil, fmt.Errorf("saga: %q is running in this runner, not stuck", id)
	}
	h, err := r.load(ctx, id)
	switch {
	case err != nil:
		return nil, fmt.Errorf("saga: %q: %w", id, err)
	case h == nil:
		return nil, fmt.Errorf("saga: %q is not a saga in the journal", id)
	case h.stuck == "":
		return nil, fmt.Errorf("saga: %q is not stuck", id)
	}
	return h, nil
}

// RetryStuck takes a stuck saga over and runs it again from where it
// stopped: its compensations, or, for a saga whose definition had changed
// and is registered again, its steps. It waits for the new outcome, or for
// ctx, after which the saga goes on in the background.
func (r *Runner) RetryStuck(ctx context.Context, id string) (Outcome, error) {
	if ctx == nil {
		return Pending, errNilContext
	}
	epoch, leased, live, err := r.lease(ctx, id)
	if err != nil {
		return Stuck, err
	}
	if live == nil {
		live, err = r.retryStuck(ctx, id, epoch)
		leased(live != nil)
		if err != nil {
			return Stuck, err
		}
	}
	select {
	case <-live.done:
		return live.outcome, live.err
	case <-ctx.Done():
		return Pending, ctx.Err()
	}
}

// retryStuck resumes the stuck saga id, under its lease's epoch.
func (r *Runner) retryStuck(ctx context.Context, id string, lease uint64) (*handle, error) {
	h, err := r.stuckHistory(ctx, id)
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	def, ok := r.defs[defKey{h.begin.Name, h.begin.Version}]
	r.mu.Unlock()
	if !ok || def.fingerprint() != h.begin.Fingerprint {
		return nil, fmt.Errorf("%w: register %q version %d as it was when the saga began, then retry", ErrNotRegistered, h.begin.Name, h.begin.Version)
	}
	r.uncountStuck(ctx, id, h.begin.Name)
	h.lease = lease
	return def.resume(ctx, id, h)
}

// Resolve ends a stuck saga as resolved by hand, with a note that says
// what was done; the journal keeps it as the saga's outcome.
func (r *Runner) Resolve(ctx context.Context, id, note string) error {
	if ctx == nil {
		return errNilContext
	}
	if note == "" {
		return errors.New("saga: Resolve: say in the note what was done")
	}
	lease, leased, live, err := r.lease(ctx, id)
	switch {
	case err != nil:
		return err
	case live != nil:
		return fmt.Errorf("saga: Resolve %q: the saga is running here (retried); it is no longer stuck", id)
	}
	defer leased(false)
	h, err := r.stuckHistory(ctx, id)
	if err != nil {
		return err
	}
	h.lease = lease
	payload, err := json.Marshal(endPayload{Outcome: Resolved.String(), Step: h.stuckAt, Error: note})
	if err != nil {
		return err
	}
	epoch := h.nextEpoch()
	err = r.log.Append(ctx, id, h.seq,
		journal.Record{Epoch: epoch, Kind: kindOwner},
		journal.Record{Epoch: epoch, Kind: kindEnd, End: true, Payload: payload})
	if err != nil {
		return fmt.Errorf("saga: Resolve %q: %w", id, err)
	}
	r.uncountStuck(ctx, id, h.begin.Name)
	r.live.Ended(id)
	return nil
}
