package saga

import (
	"errors"
	"fmt"
)

// Outcome is where a saga stands when Run returns.
type Outcome int

const (
	// Pending: the saga has not ended here, because the runner lost the
	// journal (or another runner took the saga over) and stopped. Recover
	// finishes it.
	Pending Outcome = iota
	// Completed: every step ran.
	Completed
	// Compensated: a step failed, or the caller gave up, and every step
	// that had started was compensated.
	Compensated
	// Aborting: the abort is durable, and the runner is compensating in
	// the background (the caller's ctx ended first).
	Aborting
	// Stuck: a compensation failed for good. The saga stays in the journal
	// until a person acts on it: Runner.Stuck lists it, RetryStuck and
	// Resolve act.
	Stuck
	// Resolved: a stuck saga that a person marked resolved with Resolve.
	Resolved
)

var outcomeNames = [...]string{"pending", "completed", "compensated", "aborting", "stuck", "resolved"}

// String returns the outcome's name, as the otelpatterns.saga.outcome
// attribute has it.
func (o Outcome) String() string {
	if o < 0 || int(o) >= len(outcomeNames) {
		return fmt.Sprintf("Outcome(%d)", int(o))
	}
	return outcomeNames[o]
}

func parseOutcome(s string) Outcome {
	for i, name := range outcomeNames {
		if name == s {
			return Outcome(i)
		}
	}
	return Pending
}

// The errors of the saga package. Match them with errors.Is.
var (
	// ErrClosed is a call after Close.
	ErrClosed = errors.New("saga: runner closed")
	// ErrStuck matches the error of a stuck saga.
	ErrStuck = errors.New("saga: stuck: compensation failed")
	// ErrAborted matches the error of a saga that did not complete.
	ErrAborted = errors.New("saga: aborted")
	// ErrNotRegistered is a saga whose definition the runner does not have.
	ErrNotRegistered = errors.New("saga: definition not registered")
	// ErrDefinitionChanged is a saga begun under a different definition.
	ErrDefinitionChanged = errors.New("saga: definition changed since the saga began")
	// ErrForgotten is Run with the ID of a saga that ended and whose
	// records the journal has since forgotten: its outcome is not known.
	ErrForgotten = errors.New("saga: saga ended and its records were forgotten")
	// ErrAbortRequested is a Run whose ctx ended before the saga's abort
	// was durable, as when the journal does not answer: the runner makes
	// the abort durable and compensates once it can; until then a crash
	// would resume the saga forward. Lookup tells where it stands.
	ErrAbortRequested = errors.New("saga: abort requested, not yet durable")
	// ErrNotFound is Lookup of an ID that the journal has no saga for.
	ErrNotFound = errors.New("saga: no saga with this ID in the journal")
)

// Error is how a saga that did not complete failed: which step, why, and
// where the saga ended. errors.Is matches ErrAborted, ErrStuck for a stuck
// saga, and the step's error (or the caller's context error) while this
// process still holds it.
type Error struct {
	Saga    string // the definition's name
	ID      string
	Step    string // the step that failed; "" when the caller gave up
	Outcome Outcome
	Err     error
}

func (e *Error) Error() string {
	where := "aborted"
	if e.Step != "" {
		where = fmt.Sprintf("step %q failed", e.Step)
	}
	return fmt.Sprintf("saga %s %q: %s, %s: %v", e.Saga, e.ID, where, e.Outcome, e.Err)
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// ErrorType is the error.type of a saga that did not complete:
// "saga_compensated", "saga_stuck", "saga_aborting" or "saga_pending".
func (e *Error) ErrorType() string { return "saga_" + e.Outcome.String() }

// Is matches ErrAborted, and ErrStuck for a stuck saga.
func (e *Error) Is(target error) bool {
	return target == ErrAborted || (target == ErrStuck && e.Outcome == Stuck)
}

// errNilContext answers a nil context, as every call of the library does:
// with an error, never a panic.
var errNilContext = errors.New("saga: nil context: pass context.Background() if there is none")
