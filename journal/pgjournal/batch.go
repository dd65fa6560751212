package pgjournal

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/otelpatterns/otelpatterns/journal"
)

// errLead is what a queued request is told when it comes to the head of
// the queue: it is now the leader, and commits for the requests queued.
var errLead = errors.New("pgjournal: lead")

// lead is the leader's work: it takes the requests queued, up to
// WithMaxGroup of them, commits them in one database transaction, and
// then hands the lead to the request now at the head of the queue, if
// any. The log starts no goroutine: the caller at the head of the queue
// commits for everyone queued behind it, so a lone appender pays no
// hand-off.
func (l *Log) lead() {
	l.mu.Lock()
	n, bytes := 0, 0
	for n < len(l.queue) && n < l.cfg.maxGroup && (n == 0 || bytes+l.queue[n].size <= maxGroupBytes) {
		bytes += l.queue[n].size
		n++
	}
	l.group = append(l.group[:0], l.queue[:n]...)
	l.queue = append(l.queue[:0], l.queue[n:]...)
	l.mu.Unlock()

	l.commitGroup(l.group)
	for _, r := range l.group {
		r.done <- r.err
	}
	clear(l.group)

	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.queue) == 0 {
		l.leading = false
		return
	}
	l.queue[0].done <- errLead
}

// outcome is what became of a group's database transaction.
type outcome uint8

const (
	// decided: committed, or rolled back with nothing to write; each
	// request's err is its answer.
	decided outcome = iota
	// rolledBack: nothing was written.
	rolledBack
	// unknown: the COMMIT was sent and its outcome could not be read.
	unknown
)

// commitGroup sets the outcome of each request of group, committing them
// in one database transaction and one COMMIT.
//
// A request that the log refuses (a conflict, a fence, an ended
// transaction) is refused by its statement's conditions, not by an SQL
// error, so it never fails the others: it answers 0 rows, and the
// transaction goes on. If the transaction fails all the same with an
// error of the server that one request's data could cause (a constraint
// or a trigger of the team's, a value PostgreSQL refuses), each request
// is retried alone, in a transaction of its own, so that only the request
// at fault fails, with the server's error. An error of the connection or
// of the server as a whole fails every request of the group with it.
func (l *Log) commitGroup(group []*request) {
	ctx, cancel := context.WithTimeout(context.Background(), l.cfg.writeTimeout)
	defer cancel()
	out, err := l.tryGroup(ctx, group)
	switch {
	case out == decided:
		return
	case out == rolledBack && len(group) > 1 && blamesOne(err):
		for _, r := range group {
			l.commitAlone(r)
		}
	default:
		for _, r := range group {
			r.err = failure(r, out, err)
		}
	}
}

func (l *Log) commitAlone(r *request) {
	ctx, cancel := context.WithTimeout(context.Background(), l.cfg.writeTimeout)
	defer cancel()
	if out, err := l.tryGroup(ctx, []*request{r}); out != decided {
		r.err = failure(r, out, err)
	}
}

// failure is r's error when its group was not decided.
func failure(r *request, out outcome, err error) error {
	if out == unknown && r.accepted {
		return fmt.Errorf("%w: %s: %w", ErrInDoubt, r.what(), err)
	}
	return fmt.Errorf("pgjournal: %s: not written: %w", r.what(), err)
}

// blamesOne reports whether err, which rolled a group back, is an error of
// the server that one request's data may have caused, so that retrying
// each request alone can tell which.
func blamesOne(err error) bool {
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || len(pgErr.Code) != 5 {
		return false
	}
	switch pgErr.Code[:2] {
	case "08", // connection exception
		"42", // syntax error or access rule violation: the tables, not a record
		"53", // insufficient resources
		"58", // system error
		"XX": // internal error
		return false
	case "57": // operator intervention: a shutdown is everyone's; a statement timeout may be one request's
		return pgErr.Code == "57014"
	}
	return true
}

// tryGroup runs group in one database transaction:
//
//	BEGIN; SELECT pg_current_xact_id(); one statement per request   -- one round trip
//	SELECT the head of each refused transaction                      -- only if one was refused
//	COMMIT                                                           -- one round trip
//
// The statements run in the order of the transaction IDs, so that
// concurrent groups, in this process or another, lock the rows of the
// transactions in one order and never deadlock; the requests of one
// transaction keep the order of their queue. The transaction's ID is read
// before its COMMIT is sent, so that a COMMIT whose answer is lost can be
// looked up (resolve).
func (l *Log) tryGroup(ctx context.Context, group []*request) (outcome, error) {
	order := append(l.order[:0], group...)
	defer func() { clear(order); l.order = order[:0] }()
	slices.SortStableFunc(order, func(a, b *request) int { return strings.Compare(a.txID, b.txID) })
	for _, r := range order {
		r.accepted, r.err = false, nil
	}

	conn, err := l.pool.Acquire(ctx)
	if err != nil {
		return rolledBack, fmt.Errorf("acquire a connection: %w", err)
	}
	defer conn.Release()

	b := &pgx.Batch{}
	b.BeginTx(pgx.TxOptions{IsoLevel: pgx.ReadCommitted, AccessMode: pgx.ReadWrite})
	b.Queue(l.sql.begin)
	for _, r := range order {
		if !r.refused {
			l.queue1(b, r)
		}
	}
	br := l.send(ctx, conn.Conn(), b)
	tx := br.Tx()
	rollback := func(err error) (outcome, error) {
		_ = br.Close()
		_ = tx.Rollback(ctx) // a broken connection is closed, which rolls back as well
		return rolledBack, err
	}
	if _, err := br.Exec(); err != nil {
		return rollback(fmt.Errorf("begin: %w", err))
	}
	var xid string
	var ignored *string
	if err := br.QueryRow().Scan(&xid, &ignored); err != nil {
		return rollback(fmt.Errorf("begin: %w", err))
	}
	var refused []*request
	records, bytes := 0, 0
	for _, r := range order {
		if r.refused {
			refused = append(refused, r)
			continue
		}
		var n int64
		if err := br.QueryRow().Scan(&n); err != nil {
			return rollback(err)
		}
		if r.accepted = n == 1; !r.accepted {
			refused = append(refused, r)
			continue
		}
		records += max(1, len(r.rows)) // a Forget writes one tombstone
		bytes += r.size
	}
	if err := br.Close(); err != nil {
		return rollback(err)
	}

	if len(refused) > 0 {
		// Why each was refused, read in the transaction, so that it sees
		// what the requests before it in the group wrote.
		if err := l.classify(ctx, tx, refused); err != nil {
			return rollback(fmt.Errorf("read the state of a refused transaction: %w", err))
		}
	}
	if records == 0 {
		_ = tx.Rollback(ctx) // nothing to write: no COMMIT to wait for
		return decided, nil
	}
	err = l.commit(ctx, tx)
	var pgErr *pgconn.PgError
	switch {
	case err == nil:
	case errors.Is(err, pgx.ErrTxCommitRollback) || errors.As(err, &pgErr) || pgconn.SafeToRetry(err):
		return rolledBack, fmt.Errorf("commit: %w", err)
	default:
		// The COMMIT was sent, and its answer lost: look it up.
		committed, rerr := l.resolve(xid)
		switch {
		case rerr != nil:
			return unknown, fmt.Errorf("commit: %w; and looking its outcome up failed: %w", err, rerr)
		case !committed:
			return rolledBack, fmt.Errorf("commit (rolled back): %w", err)
		}
	}
	l.ins.committed(records, bytes)
	return decided, nil
}

// queue1 queues r's statement.
func (l *Log) queue1(b *pgx.Batch, r *request) {
	if r.op == opForget {
		r.at = time.Now()
		b.Queue(l.sql.forget, r.txID, r.at)
		return
	}
	n := len(r.rows)
	last := r.rows[n-1]
	if n == 1 {
		w := last
		args := []any{r.txID, w.seq, w.epoch, w.end, w.seq, w.epoch, w.kind, w.step, w.attempt, w.end, w.payload, w.carrier}
		if r.expectSeq == 0 {
			b.Queue(l.sql.appendNew1, append(args, w.epoch)...)
			return
		}
		b.Queue(l.sql.appendNext1, append(args, int64(r.expectSeq), w.epoch)...)
		return
	}
	maxEpoch, minEpoch := r.rows[0].epoch, r.rows[0].epoch
	for _, w := range r.rows {
		maxEpoch, minEpoch = max(maxEpoch, w.epoch), min(minEpoch, w.epoch)
	}
	args := append([]any{r.txID, last.seq, maxEpoch, last.end}, columns(r.rows)...)
	if r.expectSeq == 0 {
		b.Queue(l.sql.appendNew, append(args, minEpoch)...)
		return
	}
	b.Queue(l.sql.appendNext, append(args, int64(r.expectSeq), minEpoch)...)
}

// columns are rows as the appends' eight arrays ($5 to $12): seq, epoch,
// kind, step, attempt, is_end, payload, carrier.
func columns(rows []row) []any {
	n := len(rows)
	var (
		seq     = make([]int64, n)
		epoch   = make([]int64, n)
		kind    = make([]string, n)
		step    = make([]string, n)
		attempt = make([]int64, n)
		end     = make([]bool, n)
		payload = make([][]byte, n)
		carrier = make([]*string, n)
	)
	for i, w := range rows {
		seq[i], epoch[i], kind[i], step[i], attempt[i], end[i], payload[i], carrier[i] =
			w.seq, w.epoch, w.kind, w.step, w.attempt, w.end, w.payload, w.carrier
	}
	return []any{seq, epoch, kind, step, attempt, end, payload, carrier}
}

// classify sets the error of each refused request from the head of its
// transaction, checked in the order the journal's logs check it: ended,
// then fenced, then the sequence number.
func (l *Log) classify(ctx context.Context, tx pgx.Tx, refused []*request) error {
	b := &pgx.Batch{}
	for _, r := range refused {
		b.Queue(l.sql.head, r.txID)
	}
	br := tx.SendBatch(ctx, b)
	defer br.Close()
	for _, r := range refused {
		var (
			h      head
			exists = true
		)
		err := br.QueryRow().Scan(&h.seq, &h.epoch, &h.ended, &h.forgotten)
		switch {
		case errors.Is(err, pgx.ErrNoRows):
			exists = false
		case err != nil:
			return err
		}
		r.err = h.refusal(r, exists)
	}
	return br.Close()
}

// head is the state of one transaction's end of log.
type head struct {
	seq, epoch       int64
	ended, forgotten bool
}

// refusal is why r was refused at h.
func (h head) refusal(r *request, exists bool) error {
	if r.op == opForget {
		switch {
		case !exists, h.forgotten, h.seq == 0:
			return nil // forgetting an unknown or forgotten transaction (or a lease's head) does nothing
		case !h.ended:
			return fmt.Errorf("%w: %q is still pending; only an ended transaction can be forgotten", journal.ErrNotEnded, r.txID)
		}
		return fmt.Errorf("pgjournal: forget %q: refused, although the transaction has ended and is not forgotten: retry", r.txID)
	}
	switch {
	case h.forgotten || (!exists && r.expectSeq == 0):
		// A head that is gone although its insert was refused is a
		// tombstone that expired meanwhile.
		return fmt.Errorf("%w: %q was forgotten", journal.ErrEnded, r.txID)
	case h.ended:
		return fmt.Errorf("%w: %q", journal.ErrEnded, r.txID)
	}
	for _, w := range r.rows {
		if w.epoch < h.epoch {
			return fmt.Errorf("%w: transaction %q is owned by epoch %d; this append is from epoch %d", journal.ErrFenced, r.txID, h.epoch, w.epoch)
		}
	}
	if uint64(h.seq) != r.expectSeq {
		return &journal.ConflictError{TxID: r.txID, Expected: r.expectSeq, Actual: uint64(h.seq)}
	}
	return fmt.Errorf("pgjournal: append to %q: refused, although the transaction is at seq %d as expected: retry", r.txID, h.seq)
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
