package pgjournal

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// A group's answer is lost when its connection breaks after the group was
// sent: the server may have committed it, or not, or may still be at it.
// The log finds out which before it answers, so that a nil error always
// means durable and a "not written" error always means not written. How
// depends on the connection:
//
//   - On a connection to the server itself, the log waits until the
//     connection's server process has exited, ending it if it is still
//     there (settle). A process that has exited can commit nothing more,
//     so the records it was writing are then either in the tables or
//     never will be: the log reads them back.
//   - Behind a pooler, the process at the other end is not known; there the
//     group's transaction ID is read before its COMMIT is sent, and looked
//     up with pg_xact_status (resolve). That costs the group a second
//     round trip.

// backend is the server process at the other end of a connection.
type backend struct {
	pid   uint32
	start time.Time // backend_start, which tells a process from a later one with its PID
	// direct: the connection's PID is the process's, as it is without a
	// pooler in between.
	direct bool
}

// backendKey keys a connection's backend in its CustomData.
const backendKey = "github.com/otelpatterns/otelpatterns/journal/pgjournal.backend"

// identify returns the server process of c: asked once per connection,
// then kept with the connection.
func (l *Log) identify(ctx context.Context, c *pgx.Conn) (backend, error) {
	data := c.PgConn().CustomData()
	if be, ok := data[backendKey].(backend); ok {
		return be, nil
	}
	var (
		pid   int64
		start *time.Time
	)
	if err := c.QueryRow(ctx, l.sql.identify).Scan(&pid, &start); err != nil {
		return backend{}, err
	}
	be := backend{pid: c.PgConn().PID()}
	if start != nil && pid == int64(be.pid) && !l.pooled {
		be.start, be.direct = *start, true
	}
	data[backendKey] = be
	return be, nil
}

// settle finds out what became of the requests of a group whose answer,
// on a connection to be, was lost with cause. It waits until be has
// exited, then reads each request that may have been written back. If
// one was written, the group committed, and those that were not had been
// refused in it. If none was, nothing was written. If the server cannot
// be asked within the write timeout, the outcome is unknown.
func (l *Log) settle(be backend, order []*request, cause error) (outcome, error) {
	ctx, cancel := context.WithTimeout(context.Background(), l.cfg.writeTimeout)
	defer cancel()
	if err := l.awaitExit(ctx, be); err != nil {
		return unknown, fmt.Errorf("%w; and waiting for the server process %d to end failed: %w", cause, be.pid, err)
	}
	committed := false
	for _, r := range order {
		if !r.accepted {
			continue // refused in the group before its answer was lost
		}
		written, err := l.readBack(ctx, r)
		if err != nil {
			return unknown, fmt.Errorf("%w; and reading back what was written failed: %w", cause, err)
		}
		r.accepted = written
		committed = committed || written
	}
	if !committed {
		for _, r := range order {
			r.accepted = false
		}
		return rolledBack, fmt.Errorf("the connection broke and nothing was committed: %w", cause)
	}
	return decided, nil
}

// awaitExit returns once the server process be has exited. It asks the
// server to end it, which the role may do to its own processes, and
// watches for it, polling while the server cannot be reached.
func (l *Log) awaitExit(ctx context.Context, be backend) error {
	for wait := time.Millisecond; ; wait = min(2*wait, time.Second) {
		var present int64
		err := l.pool.QueryRow(ctx, l.sql.ended, int64(be.pid), be.start).Scan(&present)
		if err == nil && present == 0 {
			return nil
		}
		if err == nil {
			err = errors.New("still running")
		}
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && pgErr.Code == "42501" { // insufficient privilege: no way to end it
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (gave up after %v)", err, l.cfg.writeTimeout)
		case <-time.After(wait):
		}
	}
}

// readBack reports whether the log holds what r wrote: its records as r
// wrote them, or, for a Forget, the tombstone (or no head at all, once the
// tombstone has expired).
func (l *Log) readBack(ctx context.Context, r *request) (bool, error) {
	if r.op == opForget {
		var h head
		err := l.pool.QueryRow(ctx, l.sql.head, r.txID).Scan(&h.seq, &h.epoch, &h.ended, &h.forgotten)
		if errors.Is(err, pgx.ErrNoRows) {
			return true, nil
		}
		return h.forgotten, err
	}
	var found int64
	err := l.pool.QueryRow(ctx, l.sql.written, append([]any{r.txID}, columns(r.rows)...)...).Scan(&found)
	return found == int64(len(r.rows)), err
}

// resolve reads whether the transaction xid committed, for a COMMIT whose
// answer was lost, polling while the server still has it in progress (a
// backend whose connection broke during COMMIT finishes it first). It
// gives up after the write timeout.
func (l *Log) resolve(xid string) (committed bool, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), l.cfg.writeTimeout)
	defer cancel()
	wait := 5 * time.Millisecond
	for {
		var status *string
		err := l.pool.QueryRow(ctx, `SELECT pg_xact_status($1::text::xid8)`, xid).Scan(&status)
		switch {
		case err == nil && status == nil:
			return false, fmt.Errorf("transaction %s is too old for pg_xact_status", xid)
		case err == nil && *status == "committed":
			return true, nil
		case err == nil && *status == "aborted":
			return false, nil
		}
		// In progress, or the server cannot be reached yet.
		select {
		case <-ctx.Done():
			if err == nil {
				err = fmt.Errorf("transaction %s still in progress", xid)
			}
			return false, fmt.Errorf("%w (gave up after %v)", err, l.cfg.writeTimeout)
		case <-time.After(wait):
		}
		wait = min(2*wait, time.Second)
	}
}
