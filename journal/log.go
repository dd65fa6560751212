package journal

import (
	"context"
	"errors"
	"fmt"
	"maps"
)

// Log is a durable, ordered log of records grouped by transaction: the write
// ahead log that the saga and two-phase-commit runners write before every
// effect. NewMemory and Open implement it; implement it over your own store
// and run journaltest.Run against your implementation. Every method is safe
// for concurrent use.
type Log interface {
	// Append adds records to the end of transaction txID, numbering them
	// expectSeq+1, expectSeq+2, ...; it sets each record's TxID and Seq.
	//
	// When Append returns nil the records are durable, and an Append of
	// several records is atomic: after a crash either all of them are in
	// the log or none is. It fails, appending nothing, with
	//   - a *ConflictError (errors.Is ErrConflict) unless the transaction's
	//     last sequence number is expectSeq, 0 for a new transaction: this
	//     fences two runners off one transaction;
	//   - ErrFenced if a record's Epoch is below the transaction's, that is
	//     when another owner has taken the transaction over;
	//   - ErrEnded if the transaction has ended, or ended and was forgotten;
	//   - an *InvalidError for a record that the log cannot hold.
	//
	// ctx bounds only the wait to be queued. Once its records are queued,
	// Append waits for the outcome of their write, so that a nil error
	// always means durable and any other error means not appended, never
	// "perhaps".
	Append(ctx context.Context, txID string, expectSeq uint64, records ...Record) error

	// Load returns the records of txID in order; none, and no error, for a
	// transaction the log has never seen; and ErrForgotten for one that
	// ended and was forgotten.
	Load(ctx context.Context, txID string) ([]Record, error)

	// Pending returns the IDs of the transactions that have records but no
	// End record, sorted.
	Pending(ctx context.Context) ([]string, error)

	// Forget drops the records of an ended transaction and leaves a
	// tombstone in their place, so that its ID cannot be started again by
	// mistake for as long as the log keeps tombstones. Forgetting an
	// unknown or already forgotten ID does nothing; forgetting a
	// transaction that has not ended is ErrNotEnded.
	Forget(ctx context.Context, txID string) error

	// Close releases the log. Appends already queued finish first; every
	// later call fails with ErrClosed, but Close, which is idempotent: a
	// later Close returns nil.
	Close() error
}

// Record is one entry of a transaction. Its Kind and Payload are the
// runner's: the journal stores them without reading them.
type Record struct {
	// TxID and Seq place the record: Append sets both.
	TxID string
	Seq  uint64

	// Epoch is the owner's epoch. A runner that takes a transaction over
	// appends a record with a higher epoch, after which records with a
	// lower one are refused with ErrFenced.
	Epoch uint64

	// Kind says what the record is, such as "saga.step.started". It must
	// not be empty, and kinds starting with "journal." are the log's own.
	Kind string

	// Step and Attempt name the step and the try the record is about, if
	// any.
	Step    string
	Attempt int

	// End marks the transaction's last record: it leaves Pending, refuses
	// further appends and may be forgotten.
	End bool

	// Payload is opaque to the log, at most the log's record size limit.
	Payload []byte

	// Carrier holds the W3C trace context and baggage of the operation
	// that wrote the record, put there by the runner's propagators
	// (propagation.MapCarrier reads and writes it), so that a recovered
	// transaction can link to the trace that began it.
	Carrier map[string]string
}

// clone returns a copy of r that shares no memory with it.
func (r Record) clone() Record {
	if r.Payload != nil {
		r.Payload = append([]byte{}, r.Payload...)
	}
	if r.Carrier != nil {
		r.Carrier = maps.Clone(r.Carrier)
	}
	return r
}

// The errors of the journal. Match them with errors.Is.
var (
	// ErrConflict is matched by every *ConflictError.
	ErrConflict = errors.New("journal: sequence conflict")
	// ErrFenced is an Append from an owner whose epoch has been superseded:
	// its runner must stop before any further effect.
	ErrFenced = errors.New("journal: fenced by a newer owner")
	// ErrEnded is an Append to a transaction that has ended.
	ErrEnded = errors.New("journal: transaction has ended")
	// ErrForgotten is a Load of a transaction that ended and was forgotten.
	ErrForgotten = errors.New("journal: transaction ended and was forgotten")
	// ErrNotEnded is a Forget of a transaction that has not ended.
	ErrNotEnded = errors.New("journal: transaction has not ended")
	// ErrClosed is any call after Close.
	ErrClosed = errors.New("journal: log closed")
	// ErrFailed is any call after a write or sync of the file log failed.
	// The log is not retried, for after a failed fsync the kernel may have
	// dropped the dirty pages it could not write: reopen the log, which
	// reads what is really on disk.
	ErrFailed = errors.New("journal: log failed")
)

// ConflictError is an Append whose expected sequence number was not the
// transaction's last one.
type ConflictError struct {
	TxID     string
	Expected uint64 // the expectSeq passed to Append
	Actual   uint64 // the transaction's last sequence number
}

func (e *ConflictError) Error() string {
	return fmt.Sprintf("journal: transaction %q: expected to append after seq %d, but its last is %d", e.TxID, e.Expected, e.Actual)
}

// Is makes a ConflictError match ErrConflict.
func (e *ConflictError) Is(target error) bool { return target == ErrConflict }

// InvalidError is an Append of a record the log cannot hold.
type InvalidError struct {
	TxID   string
	Index  int // of the record in the Append call; -1 for the call itself
	Reason string
}

func (e *InvalidError) Error() string {
	if e.Index < 0 {
		return fmt.Sprintf("journal: append to %q: %s", e.TxID, e.Reason)
	}
	return fmt.Sprintf("journal: append to %q, record %d: %s", e.TxID, e.Index, e.Reason)
}

// errNilContext answers a nil context, as every call of the library does:
// with an error, never a panic.
var errNilContext = errors.New("journal: nil context: pass context.Background() if there is none")
