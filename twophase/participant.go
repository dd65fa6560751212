package twophase

import (
	"context"
	"errors"
	"fmt"
	"strings"
)

// Participant is one resource manager of a transaction: a service that can
// prepare its part, and then commit or abort it. All three calls must be
// idempotent: the coordinator repeats them after a timeout, a retry or a
// crash. Local implements the bookkeeping this asks for, and the
// twophasehttp package puts a Participant behind HTTP.
type Participant interface {
	// Name identifies the participant in the journal, so that a recovered
	// coordinator can find it again, and in telemetry: unique within a
	// transaction and stable across restarts.
	Name() string

	// Prepare votes on txID: nil is yes, a promise that Commit will
	// succeed. An error that wraps ErrVoteNo is a no; any other error
	// counts as a participant that could not be reached, which also
	// aborts the transaction.
	Prepare(ctx context.Context, txID string) error

	// Commit makes a prepared transaction's effects permanent.
	Commit(ctx context.Context, txID string) error

	// Abort undoes a transaction. Aborting one the participant has never
	// seen succeeds, and must leave a tombstone so that a Prepare that
	// arrives later votes no.
	Abort(ctx context.Context, txID string) error
}

// Decision is where a transaction stands.
type Decision int

const (
	// Pending: no decision yet, or none known here.
	Pending Decision = iota
	// Committed: every participant voted yes, and the commit decision is
	// durable. It never changes.
	Committed
	// Aborted: a participant voted no, did not answer in time, or the
	// caller gave up before the decision; or a coordinator found it begun
	// and undecided, and aborted it, as presumed abort does.
	Aborted
)

var decisionNames = [...]string{"pending", "committed", "aborted"}

// String returns the decision's name, as the otelpatterns.twophase.decision
// attribute has it.
func (d Decision) String() string {
	if d < 0 || int(d) >= len(decisionNames) {
		return fmt.Sprintf("Decision(%d)", int(d))
	}
	return decisionNames[d]
}

// ParseDecision reads a decision's name, as String writes it.
func ParseDecision(s string) (Decision, error) {
	for i, n := range decisionNames {
		if n == s {
			return Decision(i), nil
		}
	}
	return Pending, fmt.Errorf("twophase: unknown decision %q", s)
}

// The errors of the twophase package. Match them with errors.Is.
var (
	// ErrVoteNo is a participant's no vote: wrap it in Prepare's error.
	ErrVoteNo = errors.New("twophase: vote no")
	// ErrUnreachable is a participant that did not answer: a transport
	// failure or a timeout, as opposed to a no vote.
	ErrUnreachable = errors.New("twophase: participant unreachable")
	// ErrAborted matches the error of a transaction that aborted.
	ErrAborted = errors.New("twophase: transaction aborted")
	// ErrInDoubt is a transaction whose outcome not every participant (or
	// not the caller) knows yet: decided and not acknowledged by every
	// participant, or its commit decision still being written when the
	// caller left. The coordinator goes on driving it; Status tells.
	ErrInDoubt = errors.New("twophase: outcome not yet known to every participant")
	// ErrClosed is a call after Close.
	ErrClosed = errors.New("twophase: coordinator closed")
	// ErrUnknownParticipant is a logged participant that the coordinator
	// cannot find: give it WithParticipants.
	ErrUnknownParticipant = errors.New("twophase: unknown participant")
	// ErrForgotten is a transaction that ended and was forgotten.
	ErrForgotten = errors.New("twophase: transaction ended and was forgotten")
	// ErrUnknown is Status of an ID that the coordinator's journal holds no
	// record of: no coordinator on it began that transaction, or it ended
	// so long ago that even its tombstone is gone. Either way no
	// participant is in doubt about it there; one that holds it prepared
	// asks the wrong coordinator.
	ErrUnknown = errors.New("twophase: the journal holds no record of the transaction")
	// ErrLeaseLost is the error of a transaction that this coordinator
	// stopped because its lease passed to another coordinator, or could
	// not be renewed before it expired: whoever holds it now drives it.
	ErrLeaseLost = errors.New("twophase: lease lost to another coordinator")
)

// VoteError is the failure of a transaction's prepare phase: who voted no,
// or could not be reached.
type VoteError struct {
	TxID        string
	Participant string
	Err         error // the participant's answer; errors.Is it against ErrVoteNo
}

func (e *VoteError) Error() string {
	verb, kind := "did not vote", ErrUnreachable
	if errors.Is(e.Err, ErrVoteNo) {
		verb, kind = "voted no", ErrVoteNo
	}
	// The participant's error usually names the kind and the participant
	// already ("twophase: vote no: ledger-a: ..."): say each once.
	why := strings.TrimPrefix(e.Err.Error(), kind.Error()+": ")
	why = strings.TrimPrefix(why, e.Participant+": ")
	return fmt.Sprintf("twophase: %q aborted: %s %s: %s", e.TxID, e.Participant, verb, why)
}

// Unwrap returns the participant's error.
func (e *VoteError) Unwrap() error { return e.Err }

// Is matches ErrAborted.
func (e *VoteError) Is(target error) bool { return target == ErrAborted }

// ErrorType is the error.type of an aborted transaction: "vote_no" or
// "unreachable".
func (e *VoteError) ErrorType() string { return voteErrorType(e.Err) }

// voteError is a participant's failed Prepare as its call span records it,
// with an error.type that says which failure it was.
type voteError struct{ err error }

func (e voteError) Error() string     { return e.err.Error() }
func (e voteError) Unwrap() error     { return e.err }
func (e voteError) ErrorType() string { return voteErrorType(e.err) }

func voteErrorType(err error) string {
	if errors.Is(err, ErrVoteNo) {
		return "vote_no"
	}
	return "unreachable"
}

// vote classifies Prepare's answer: "yes", "no" or "unreachable".
func vote(err error) string {
	switch {
	case err == nil:
		return "yes"
	case errors.Is(err, ErrVoteNo):
		return "no"
	default:
		return "unreachable"
	}
}

// errNilContext answers a nil context, as every call of the library does:
// with an error, never a panic.
var errNilContext = errors.New("twophase: nil context: pass context.Background() if there is none")
