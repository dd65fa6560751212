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
	"github.com/jackc/pgx/v5/pgxpool"

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

// tryGroup runs group in one database transaction. On a connection to
// the server itself (see backend), that is one round trip:
//
//	one statement per request, then Sync, which commits    -- one round trip
//
// Behind a pooler, whose connections do not name the server's process, the
// transaction's ID is read before its COMMIT is sent, so that a COMMIT
// whose answer is lost can be looked up (resolve):
//
//	BEGIN; SELECT pg_current_xact_id(); one statement per request    -- one round trip
//	COMMIT                                                            -- one round trip
//
// Either way, the head of each refused transaction is then read, to say
// why it was refused (classify). The statements run in the order of the
// transaction IDs, so that concurrent groups, in this process or another,
// lock the rows of the transactions in one order and never deadlock; the
// requests of one transaction keep the order of their queue.
func (l *Log) tryGroup(ctx context.Context, group []*request) (outcome, error) {
	order := append(l.order[:0], group...)
	defer func() { clear(order); l.order = order[:0] }()
	slices.SortStableFunc(order, func(a, b *request) int { return strings.Compare(a.txID, b.txID) })
	for _, r := range order {
		// Each is taken as accepted until its statement's answer says
		// otherwise, so that one whose answer is lost is in doubt.
		r.accepted, r.err = !r.refused, nil
	}

	conn, err := l.pool.Acquire(ctx)
	if err != nil {
		return rolledBack, fmt.Errorf("acquire a connection: %w", err)
	}
	be, err := l.identify(ctx, conn.Conn())
	if err != nil {
		conn.Release()
		return rolledBack, fmt.Errorf("name the connection's server process: %w", err)
	}
	var out outcome
	if be.direct {
		out, err = l.commitDirect(ctx, conn, be, order)
	} else {
		out, err = l.commitPooled(ctx, conn, order)
	}
	if out != decided {
		return out, err
	}

	var refused []*request
	records, bytes := 0, 0
	for _, r := range order {
		if !r.accepted {
			refused = append(refused, r)
			continue
		}
		records += max(1, len(r.rows)) // a Forget writes one tombstone
		bytes += r.size
	}
	if records > 0 {
		l.ins.committed(records, bytes)
	}
	if len(refused) > 0 {
		l.classify(ctx, l.pool, refused)
	}
	return decided, nil
}

// commitDirect commits order in one round trip on conn, whose server
// process is be: the statements and a Sync, which ends the implicit
// transaction that they ran in. An answer that is lost is settled.
// It releases conn.
func (l *Log) commitDirect(ctx context.Context, conn *pgxpool.Conn, be backend, order []*request) (outcome, error) {
	b := &pgx.Batch{}
	b.Queue(l.sql.durable)
	for _, r := range order {
		if !r.refused {
			l.queue1(b, r)
		}
	}
	br := l.send(ctx, conn.Conn(), b)
	_, err := br.Exec()
	if err == nil {
		err = l.readCounts(br, order)
	}
	if cerr := br.Close(); err == nil {
		err = cerr // the answer to the Sync, that is to the COMMIT
	}
	conn.Release()
	switch {
	case err == nil:
		return decided, nil
	case definite(err):
		return rolledBack, err
	}
	return l.settle(be, order, err)
}

// commitPooled commits order in two round trips on conn: the statements in
// a transaction whose ID is read first, then its COMMIT. A COMMIT whose
// answer is lost is looked up by that ID. It releases conn.
func (l *Log) commitPooled(ctx context.Context, conn *pgxpool.Conn, order []*request) (outcome, error) {
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
		for _, r := range order {
			r.accepted = false
		}
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
	if err := l.readCounts(br, order); err != nil {
		return rollback(err)
	}
	if err := br.Close(); err != nil {
		return rollback(err)
	}
	if !slices.ContainsFunc(order, func(r *request) bool { return r.accepted }) {
		_ = tx.Rollback(ctx) // nothing to write: no COMMIT to wait for
		return decided, nil
	}
	err := l.commit(ctx, tx)
	switch {
	case err == nil:
		return decided, nil
	case errors.Is(err, pgx.ErrTxCommitRollback) || definite(err):
		return rolledBack, fmt.Errorf("commit: %w", err)
	}
	// The COMMIT was sent, and its answer lost: look it up.
	committed, rerr := l.resolve(xid)
	switch {
	case rerr != nil:
		return unknown, fmt.Errorf("commit: %w; and looking its outcome up failed: %w", err, rerr)
	case !committed:
		return rolledBack, fmt.Errorf("commit (rolled back): %w", err)
	}
	return decided, nil
}

// readCounts reads the answer of each request's statement: 1 accepted, 0
// refused.
func (l *Log) readCounts(br pgx.BatchResults, order []*request) error {
	for _, r := range order {
		if r.refused {
			continue
		}
		var n int64
		if err := br.QueryRow().Scan(&n); err != nil {
			return err
		}
		r.accepted = n == 1
	}
	return nil
}

// definite reports whether err, from sending a group or its COMMIT, says
// that the group's transaction did not commit: the server answered with an
// error that ended it (an error that ends the session as well, FATAL, may
// have come after a COMMIT, so it does not count), or nothing was sent.
func definite(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Severity != "FATAL" && pgErr.Severity != "PANIC"
	}
	return pgconn.SafeToRetry(err)
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

// columns are rows as the statements' eight arrays ($5 to $12 of the
// appends): seq, epoch, kind, step, attempt, is_end, payload, carrier.
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
// then fenced, then the sequence number. It reads after the group's
// transaction has ended, which is sound because what refuses an append
// stays true: a head's sequence number and epoch only grow, and an ended
// transaction stays ended.
func (l *Log) classify(ctx context.Context, q querier, refused []*request) {
	b := &pgx.Batch{}
	for _, r := range refused {
		b.Queue(l.sql.head, r.txID)
	}
	br := q.SendBatch(ctx, b)
	err := func() error {
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
		return nil
	}()
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		for _, r := range refused {
			r.err = fmt.Errorf("pgjournal: %s: refused (not written); reading why failed: %w", r.what(), err)
		}
	}
}

// querier is what classify reads with: a pool or a connection.
type querier interface {
	SendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults
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
