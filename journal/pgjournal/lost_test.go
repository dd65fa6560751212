package pgjournal

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/otelpatterns/otelpatterns/journal"
)

// lostAnswer is a batch whose answer never arrives: every result is err.
type lostAnswer struct {
	err error
	tx  pgx.Tx // the batch's own
}

func (a lostAnswer) Exec() (pgconn.CommandTag, error) { return pgconn.CommandTag{}, a.err }
func (a lostAnswer) Query() (pgx.Rows, error)         { return nil, a.err }
func (a lostAnswer) QueryRow() pgx.Row                { return lostRow(a) }
func (a lostAnswer) Close() error                     { return a.err }
func (a lostAnswer) Tx() pgx.Tx                       { return a.tx }

type lostRow lostAnswer

func (r lostRow) Scan(...any) error { return r.err }

var errLost = errors.New("connection reset (simulated)")

// loseAnswer makes l lose the answer of its COMMITs, after the server
// committed (committed) or before the COMMIT reached it (not).
func loseAnswer(l *Log, committed bool) {
	l.commit = func(ctx context.Context, tx pgx.Tx) error {
		if committed {
			if err := tx.Commit(ctx); err != nil {
				return err
			}
		}
		_ = tx.Conn().Close(ctx)
		return errLost
	}
}

// A group whose answer is lost is looked up: committed is success,
// not committed is an error that says so, and nothing is said to be
// durable that is not.
func TestLostAnswer(t *testing.T) {
	pool := newPool(t)
	l := mustOpen(t, pool, newTables(t, pool))
	ctx := context.Background()
	mustAppend(t, l, "next", 0, rec("a"))

	loseAnswer(l, true)
	if err := l.Append(ctx, "committed", 0, rec("a")); err != nil {
		t.Fatalf("Append committed, its answer lost = %v, want nil", err)
	}
	if err := l.Append(ctx, "next", 1, rec("b"), rec("c")); err != nil {
		t.Fatalf("Append of two records committed, its answer lost = %v, want nil", err)
	}
	if kinds(t, l, "committed") != "a" || kinds(t, l, "next") != "a,b,c" {
		t.Fatal("the records are not there")
	}

	loseAnswer(l, false)
	err := l.Append(ctx, "aborted", 0, rec("a"))
	if err == nil || errors.Is(err, ErrInDoubt) || !errors.Is(err, errLost) || !strings.Contains(err.Error(), "not written") {
		t.Fatalf("Append that never reached the server = %v, want a not-written error", err)
	}
	if kinds(t, l, "aborted") != "" {
		t.Fatal("a record that Append said was not written is in the log")
	}
}

// In a group whose answer is lost, the requests that the server refused
// are told why, and the others that it committed succeed.
func TestLostAnswerOfGroup(t *testing.T) {
	pool := newPool(t)
	l := mustOpen(t, pool, newTables(t, pool))
	mustAppend(t, l, "b", 0, rec("a"))
	loseAnswer(l, true)
	// The third is the first's twin: the same records at the same place.
	group := []*request{newRequest(t, l, "a", 0, rec("ok")), newRequest(t, l, "b", 0, rec("stale")), newRequest(t, l, "a", 0, rec("ok"))}
	for _, r := range group {
		r.done = make(chan error, 1)
	}
	l.commitGroup(group)
	if group[0].err != nil {
		t.Fatalf("the committed request = %v, want nil", group[0].err)
	}
	for _, r := range group[1:] {
		if ce := (*journal.ConflictError)(nil); !errors.As(r.err, &ce) {
			t.Fatalf("the refused request %s = %v, want its *journal.ConflictError", r.what(), r.err)
		}
	}
	if kinds(t, l, "a") != "ok" || kinds(t, l, "b") != "a" {
		t.Fatal("the log does not hold exactly the committed request")
	}
}

// A group still running on the server when its connection breaks (here:
// waiting for a row lock) can commit no more once Append has said that it
// was not written. With the COMMIT sent only after the statements'
// answers, this holds by construction; the test keeps a design that sends
// both at once (one round trip) from answering before the server's work
// has ended.
func TestLostAnswerWhileRunning(t *testing.T) {
	pool := newPool(t)
	l := mustOpen(t, pool, newTables(t, pool))
	ctx := context.Background()
	mustAppend(t, l, "tx", 0, rec("a"))
	blocker, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer blocker.Rollback(ctx)
	if _, err := blocker.Exec(ctx, "SELECT 1 FROM "+l.sql.transactions+" WHERE tx_id = 'tx' FOR UPDATE"); err != nil {
		t.Fatal(err)
	}
	l.send = func(ctx context.Context, c *pgx.Conn, b *pgx.Batch) pgx.BatchResults {
		br := c.SendBatch(ctx, b)     // on the wire: the server waits for the blocker's lock
		_ = c.PgConn().Conn().Close() // and the connection breaks, unbeknown to the server
		return lostAnswer{errLost, br.Tx()}
	}
	err = l.Append(ctx, "tx", 1, rec("b"))
	if err == nil || errors.Is(err, ErrInDoubt) || !strings.Contains(err.Error(), "not written") {
		t.Fatalf("Append whose connection broke while it ran = %v, want a not-written error", err)
	}
	if err := blocker.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond) // what is still running would commit now
	if got := kinds(t, l, "tx"); got != "a" {
		t.Fatalf("the log holds %q, want a: an append said not written was committed", got)
	}
}

// When the server cannot be asked, the outcome is unknown, and said so.
func TestLostAnswerInDoubt(t *testing.T) {
	pool := newPool(t)
	l := mustOpen(t, pool, newTables(t, pool), WithWriteTimeout(300*time.Millisecond))
	loseAnswer(l, true)
	commit := l.commit
	l.commit = func(ctx context.Context, tx pgx.Tx) error {
		// The server is gone before the log can look the outcome up: the
		// log asks through a pool that cannot connect.
		gone := newPool(t)
		gone.Close()
		l.pool = gone
		return commit(ctx, tx)
	}
	err := l.Append(context.Background(), "tx", 0, rec("a"))
	if !errors.Is(err, ErrInDoubt) || !strings.Contains(err.Error(), `append to "tx"`) {
		t.Fatalf("Append whose outcome cannot be looked up = %v, want ErrInDoubt", err)
	}
}

// A session with synchronous_commit off still gets durable appends: the
// group's transaction turns it on for itself, and only for itself.
func TestSynchronousCommitOff(t *testing.T) {
	ctx := context.Background()
	cfg, err := pgxpool.ParseConfig(newPool(t).Config().ConnString())
	if err != nil {
		t.Fatal(err)
	}
	cfg.MaxConns = 1 // the session that has synchronous_commit off is the log's
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	l := mustOpen(t, pool, newTables(t, pool))
	conn, err := pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, "SET synchronous_commit = off"); err != nil {
		t.Fatal(err)
	}
	var seen []string
	send := l.send
	l.send = func(ctx context.Context, c *pgx.Conn, b *pgx.Batch) pgx.BatchResults {
		b.Queue("SELECT current_setting('synchronous_commit')").QueryRow(func(row pgx.Row) error {
			var s string
			err := row.Scan(&s)
			seen = append(seen, s)
			return err
		})
		return send(ctx, c, b)
	}
	conn.Release()
	mustAppend(t, l, "tx", 0, rec("a"))
	if len(seen) != 1 || seen[0] != "on" {
		t.Fatalf("synchronous_commit in the group's transaction = %v, want on", seen)
	}
	var after string
	if err := pool.QueryRow(ctx, "SHOW synchronous_commit").Scan(&after); err != nil || after != "off" {
		t.Fatalf("synchronous_commit of the session after the group = %q (%v), want off: the log changed the session", after, err)
	}
}
