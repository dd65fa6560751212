package saga

import (
	"context"
	"errors"
	"fmt"

	"github.com/otelpatterns/otelpatterns/journal"
)

// Info is where a saga stands, as its journal records say.
type Info struct {
	ID      string
	Name    string
	Version int
	// Outcome is Pending while the saga runs forward, Aborting while it
	// compensates, Stuck, or the outcome it ended with.
	Outcome Outcome
	// Step is the step it is at: the one started last while it runs
	// forward, the one that failed once it aborts (empty when its caller
	// gave up), the one whose compensation gave up when it is stuck.
	Step string
	// Attempts is, for every step started, its last attempt's number.
	Attempts map[string]int
	// Done lists the steps done, in the order they were journaled.
	Done []string
	// Reason is why it aborted, is stuck, or was resolved.
	Reason string
}

// Lookup reads saga id from the journal, and changes nothing: unlike Run,
// it neither starts, resumes nor joins the saga. It fails with ErrNotFound
// for an ID the journal has no saga for, and ErrForgotten for one
// forgotten.
func (r *Runner) Lookup(ctx context.Context, id string) (Info, error) {
	if ctx == nil {
		return Info{}, errNilContext
	}
	if id == "" || len(id) > journal.MaxIDLen {
		return Info{}, fmt.Errorf("saga: Lookup: the ID must be 1 to %d bytes", journal.MaxIDLen)
	}
	h, err := r.load(ctx, id)
	switch {
	case errors.Is(err, journal.ErrForgotten):
		return Info{}, fmt.Errorf("%w: %q", ErrForgotten, id)
	case err != nil:
		return Info{}, fmt.Errorf("saga: Lookup %q: %w", id, err)
	case h == nil:
		return Info{}, fmt.Errorf("%w: %q", ErrNotFound, id)
	}
	info := Info{ID: id, Name: h.begin.Name, Version: h.begin.Version, Attempts: h.started, Reason: h.reason}
	for _, res := range h.results {
		info.Done = append(info.Done, res.step)
	}
	switch {
	case h.ended:
		info.Outcome, info.Step = parseOutcome(h.end.Outcome), h.end.Step
		if h.end.Error != "" {
			info.Reason = h.end.Error
		}
	case h.stuck != "":
		info.Outcome, info.Step, info.Reason = Stuck, h.stuckAt, h.stuck
	case h.aborting:
		info.Outcome, info.Step = Aborting, h.failed
	default:
		info.Outcome, info.Step = Pending, h.last
	}
	return info, nil
}
