package pgjournal

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// newBarrier returns a barrier on a table of the test's own, and a table
// of effects beside it, both dropped at the test's end.
func newBarrier(t *testing.T, pool *pgxpool.Pool) (*Barrier, string) {
	t.Helper()
	prefix := newTables(t, pool) // a fresh name; its journal tables go unused
	b, err := NewBarrier(prefix + "_barrier")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for range 2 { // idempotent
		if err := b.Migrate(ctx, pool); err != nil {
			t.Fatal(err)
		}
	}
	effects := prefix + "_effects"
	if _, err := pool.Exec(ctx, "CREATE TABLE "+effects+" (what text NOT NULL)"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_, _ = pool.Exec(context.Background(), "DROP TABLE IF EXISTS "+b.table+", "+effects)
	})
	return b, effects
}

// effect writes what into the effects table, in tx.
func effect(table, what string) func(context.Context, pgx.Tx) error {
	return func(ctx context.Context, tx pgx.Tx) error {
		_, err := tx.Exec(ctx, "INSERT INTO "+table+" (what) VALUES ($1)", what)
		return err
	}
}

func count(t *testing.T, pool *pgxpool.Pool, table, what string) int {
	t.Helper()
	var n int
	if err := pool.QueryRow(context.Background(), "SELECT count(*) FROM "+table+" WHERE what = $1", what).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// inTx runs fn in a transaction, committed unless fn fails or rollback.
func inTx(t *testing.T, pool *pgxpool.Pool, rollback bool, fn func(pgx.Tx) (bool, error)) (bool, error) {
	t.Helper()
	ctx := context.Background()
	tx, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	ran, err := fn(tx)
	if err != nil || rollback {
		_ = tx.Rollback(ctx)
		return ran, err
	}
	return ran, tx.Commit(ctx)
}

func TestBarrier(t *testing.T) {
	pool := newPool(t)
	b, effects := newBarrier(t, pool)
	ctx := context.Background()
	action := func(id string, rollback bool) (bool, error) {
		return inTx(t, pool, rollback, func(tx pgx.Tx) (bool, error) {
			return b.Action(ctx, tx, id, "charge", effect(effects, "charge "+id))
		})
	}
	compensate := func(id string) (bool, error) {
		return inTx(t, pool, false, func(tx pgx.Tx) (bool, error) {
			return b.Compensate(ctx, tx, id, "charge", effect(effects, "refund "+id))
		})
	}

	// A rolled-back action leaves no mark: its retry runs.
	if ran, err := action("s1", true); !ran || err != nil {
		t.Fatalf("the first action = %v, %v; want it run", ran, err)
	}
	if ran, err := action("s1", false); !ran || err != nil {
		t.Fatalf("the action after a rollback = %v, %v; want it run again", ran, err)
	}
	if ran, err := action("s1", false); ran || err != nil {
		t.Fatalf("a duplicate action = %v, %v; want it skipped", ran, err)
	}
	if ran, err := compensate("s1"); !ran || err != nil {
		t.Fatalf("the compensation = %v, %v; want it run", ran, err)
	}
	if ran, err := compensate("s1"); ran || err != nil {
		t.Fatalf("a duplicate compensation = %v, %v; want it skipped", ran, err)
	}
	if n, m := count(t, pool, effects, "charge s1"), count(t, pool, effects, "refund s1"); n != 1 || m != 1 {
		t.Fatalf("charge %d times, refund %d times; want once each", n, m)
	}

	// A compensation of an action that never ran does nothing, and blocks
	// the action when it arrives late.
	if ran, err := compensate("s2"); ran || err != nil {
		t.Fatalf("a null compensation = %v, %v; want it skipped", ran, err)
	}
	if ran, err := action("s2", false); ran || err != nil {
		t.Fatalf("an action after its compensation = %v, %v; want it skipped", ran, err)
	}
	if n := count(t, pool, effects, "charge s2") + count(t, pool, effects, "refund s2"); n != 0 {
		t.Fatalf("%d effects for a saga compensated before its action, want none", n)
	}

	// Deliveries at once: one effect.
	var wg sync.WaitGroup
	ran := make(chan bool, 8)
	for range 8 {
		wg.Go(func() {
			r, err := action("s3", false)
			if err != nil {
				t.Error(err)
			}
			ran <- r
		})
	}
	wg.Wait()
	close(ran)
	n := 0
	for r := range ran {
		if r {
			n++
		}
	}
	if n != 1 || count(t, pool, effects, "charge s3") != 1 {
		t.Fatalf("%d of 8 concurrent deliveries ran, %d effects; want 1 and 1", n, count(t, pool, effects, "charge s3"))
	}

	if _, err := inTx(t, pool, false, func(tx pgx.Tx) (bool, error) { return false, b.Forget(ctx, tx, "s1") }); err != nil {
		t.Fatal(err)
	}
	if ran, err := action("s1", false); !ran || err != nil {
		t.Fatalf("an action after Forget = %v, %v; want it run (the marks are gone)", ran, err)
	}
}

func TestBarrierBadInput(t *testing.T) {
	if _, err := NewBarrier("Robert'); DROP TABLE students; --"); err == nil {
		t.Fatal("NewBarrier with a table name that is not an identifier = nil, want an error")
	}
	b, err := NewBarrier("")
	if err != nil || b.table != "otelpatterns_saga_barrier" {
		t.Fatalf("NewBarrier(\"\") = %+v, %v; want the default table", b, err)
	}
	ctx := context.Background()
	noop := func(context.Context, pgx.Tx) error { return nil }
	if _, err := b.Action(ctx, nil, "s", "step", noop); err == nil {
		t.Fatal("Action with a nil transaction = nil, want an error")
	}
	var nilCtx context.Context // a nil context is what is tested
	if _, err := b.Compensate(nilCtx, nil, "s", "step", noop); !errors.Is(err, errNilContext) {
		t.Fatalf("Compensate with a nil context = %v, want errNilContext", err)
	}
}
