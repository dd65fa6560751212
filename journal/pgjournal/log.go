package pgjournal

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.opentelemetry.io/otel"

	"github.com/otelpatterns/otelpatterns/journal"
)

// Log is a journal.Log in PostgreSQL tables, shared by every process that
// opens it on the same database: the fencing (sequence numbers, epochs,
// End and tombstones) is checked by the statements that write, on the row
// of the transaction that they lock, so it holds across processes and not
// only within one. Concurrent Appends and Forgets of one Log share one
// database transaction and one COMMIT (group commit). Every method is safe
// for concurrent use.
type Log struct {
	pool *pgxpool.Pool
	cfg  *config
	sql  *statements
	ins  *instruments

	// mu guards the queue of requests, whether one of them is leading,
	// and closed; inflight counts the requests queued and not yet done.
	mu       sync.Mutex
	queue    []*request
	leading  bool
	closed   bool
	inflight sync.WaitGroup

	// The leader's own (see lead).
	group []*request
	order []*request

	sweepMu sync.Mutex
	swept   time.Time // when expired tombstones were last dropped

	// send sends a group's statements and commit commits its
	// transaction: conn.SendBatch and tx.Commit, which tests replace to
	// lose an answer or to look into the transaction.
	send   func(context.Context, *pgx.Conn, *pgx.Batch) pgx.BatchResults
	commit func(context.Context, pgx.Tx) error
}

var _ journal.Log = (*Log)(nil)

// ErrInDoubt is an Append or Forget whose COMMIT was sent but whose answer
// was lost, and whose outcome could not be read back from the server
// within the write timeout (WithWriteTimeout), because the server stayed
// unreachable. Only then is an outcome unknown: the records may or may not
// be in the log; Load the transaction to see.
var ErrInDoubt = errors.New("pgjournal: the outcome of a COMMIT is unknown")

// errNilContext answers a nil context, as every call of the library does.
var errNilContext = errors.New("pgjournal: nil context: pass context.Background() if there is none")

// Open returns the log in the tables that Migrate created, on pool. It
// checks that they are there and at SchemaVersion, and starts no
// goroutine. The pool stays the caller's: Close does not close it.
func Open(ctx context.Context, pool *pgxpool.Pool, opts ...Option) (*Log, error) {
	if ctx == nil {
		return nil, errNilContext
	}
	if pool == nil {
		return nil, errors.New("pgjournal: Open: the pool is nil")
	}
	cfg := newConfig()
	for _, o := range opts {
		if o != nil {
			o.applyOpen(cfg)
		}
	}
	if err := cfg.check(); err != nil {
		return nil, err
	}
	l := &Log{pool: pool, cfg: cfg, sql: newStatements(cfg.prefix)}
	if err := checkSchema(ctx, pool, l.sql); err != nil {
		return nil, err
	}
	l.send = func(ctx context.Context, c *pgx.Conn, b *pgx.Batch) pgx.BatchResults { return c.SendBatch(ctx, b) }
	l.commit = func(ctx context.Context, tx pgx.Tx) error { return tx.Commit(ctx) }
	l.ins = newInstruments(cfg.tel, l.countPending)
	return l, nil
}

type op uint8

const (
	opAppend op = iota
	opForget
)

// request is one Append or Forget queued for the leader.
type request struct {
	op        op
	txID      string
	expectSeq uint64
	rows      []row
	size      int // bytes of record data
	// refused: the append cannot be accepted whatever the log holds (its
	// sequence numbers do not fit a bigint); only why is read.
	refused bool
	done    chan error

	// Set by the leader.
	at       time.Time // when a Forget was written
	accepted bool
	err      error
}

func (r *request) what() string {
	if r.op == opForget {
		return fmt.Sprintf("forget %q", r.txID)
	}
	return fmt.Sprintf("append to %q", r.txID)
}

// Append implements journal.Log. Its records are durable when their
// COMMIT has returned. ctx bounds only the wait to be queued: once queued,
// an Append waits for the outcome, bounded by WithWriteTimeout.
func (l *Log) Append(ctx context.Context, txID string, expectSeq uint64, records ...journal.Record) (err error) {
	if ctx == nil {
		return errNilContext
	}
	sw := l.ins.startAppend(ctx)
	defer func() { l.ins.appended(ctx, sw, err) }()
	rows, size, err := validate(txID, expectSeq, records, l.cfg.maxPayload)
	if err != nil {
		return err
	}
	r := &request{op: opAppend, txID: txID, expectSeq: expectSeq, rows: rows, size: size}
	r.refused = expectSeq > math.MaxInt64-uint64(len(rows))
	return l.submit(ctx, r)
}

// Forget implements journal.Log. The tombstone is durable when it returns.
// A few times a tombstone horizon, Forget also drops the tombstones older
// than the horizon, after its own has been written.
func (l *Log) Forget(ctx context.Context, txID string) error {
	if ctx == nil {
		return errNilContext
	}
	if !storable(txID) || txID == "" {
		return l.usable(ctx) // such an ID cannot be in the log: forgetting it does nothing
	}
	if err := l.submit(ctx, &request{op: opForget, txID: txID, size: len(txID)}); err != nil {
		return err
	}
	l.sweep()
	return nil
}

// submit queues r and waits for its outcome. Queueing never blocks, so ctx
// is checked only before; once queued, r is always carried out.
func (l *Log) submit(ctx context.Context, r *request) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	r.done = make(chan error, 1)
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return journal.ErrClosed
	}
	l.queue = append(l.queue, r)
	l.inflight.Add(1)
	defer l.inflight.Done()
	leader := !l.leading
	l.leading = true
	l.mu.Unlock()
	if !leader {
		if err := <-r.done; err != errLead {
			return err
		}
	}
	l.lead()
	return <-r.done
}

// Load implements journal.Log. It reads the records with one statement, so
// it sees one consistent state of the transaction.
func (l *Log) Load(ctx context.Context, txID string) ([]journal.Record, error) {
	if ctx == nil {
		return nil, errNilContext
	}
	if err := l.usable(ctx); err != nil {
		return nil, err
	}
	if !storable(txID) {
		return nil, nil // such an ID cannot be in the log
	}
	rows, err := l.pool.Query(ctx, l.sql.load, txID)
	if err != nil {
		return nil, fmt.Errorf("pgjournal: load %q: %w", txID, err)
	}
	defer rows.Close()
	var out []journal.Record
	for rows.Next() {
		var (
			forgotten bool
			seq       *int64
			w         row
			kind      *string
			step      *string
			attempt   *int64
			epoch     *int64
			end       *bool
		)
		if err := rows.Scan(&forgotten, &seq, &epoch, &kind, &step, &attempt, &end, &w.payload, &w.carrier); err != nil {
			return nil, fmt.Errorf("pgjournal: load %q: %w", txID, err)
		}
		if forgotten {
			return nil, fmt.Errorf("%w: %q", journal.ErrForgotten, txID)
		}
		if seq == nil || epoch == nil || kind == nil || step == nil || attempt == nil || end == nil {
			continue // a head without records: a lease taken before the first append
		}
		w.seq, w.epoch, w.kind, w.step, w.attempt, w.end = *seq, *epoch, *kind, *step, *attempt, *end
		r, err := w.record(txID)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("pgjournal: load %q: %w", txID, err)
	}
	return out, nil
}

// Pending implements journal.Log: the IDs are sorted bytewise, as Go sorts
// strings (the ID column's collation is "C").
func (l *Log) Pending(ctx context.Context) ([]string, error) {
	if ctx == nil {
		return nil, errNilContext
	}
	if err := l.usable(ctx); err != nil {
		return nil, err
	}
	rows, err := l.pool.Query(ctx, l.sql.pending)
	if err != nil {
		return nil, fmt.Errorf("pgjournal: pending: %w", err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("pgjournal: pending: %w", err)
	}
	if ids == nil {
		ids = []string{}
	}
	return ids, nil
}

// countPending is what the pending metric reports: every pending
// transaction in the tables, whichever process wrote it.
func (l *Log) countPending(ctx context.Context) (int64, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	var n int64
	if err := l.pool.QueryRow(ctx, l.sql.countPending).Scan(&n); err != nil {
		return 0, fmt.Errorf("pgjournal: count the pending transactions: %w", err)
	}
	return n, nil
}

// Close implements journal.Log: it waits for the Appends and Forgets
// already queued. It does not close the pool, which is the caller's. It is
// idempotent: a later Close returns nil.
func (l *Log) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	l.mu.Unlock()
	l.inflight.Wait()
	l.ins.unobserve()
	return nil
}

func (l *Log) usable(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return journal.ErrClosed
	}
	return nil
}

// sweepLimit bounds the tombstones one sweep deletes; a sweep that reaches
// it leaves the rest to the next Forget.
const sweepLimit = 10000

// sweep drops the tombstones older than the horizon, a few times a
// horizon. A failure is reported to otel.Handle: the Forget that ran it
// has succeeded all the same, and a later one tries again.
func (l *Log) sweep() {
	h := l.cfg.horizon
	if h <= 0 {
		return
	}
	now := time.Now()
	l.sweepMu.Lock()
	if now.Sub(l.swept) <= h/8 {
		l.sweepMu.Unlock()
		return
	}
	l.swept = now
	l.sweepMu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), l.cfg.writeTimeout)
	defer cancel()
	tag, err := l.pool.Exec(ctx, l.sql.sweep, now.Add(-h), sweepLimit)
	if err != nil {
		otel.Handle(fmt.Errorf("pgjournal: drop the tombstones older than %v: %w", h, err))
	}
	if err == nil && tag.RowsAffected() >= sweepLimit {
		l.sweepMu.Lock()
		l.swept = time.Time{}
		l.sweepMu.Unlock()
	}
}
