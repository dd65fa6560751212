package pgjournal

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/otelpatterns/otelpatterns/internal/telemetry/telemetrytest"
	"github.com/otelpatterns/otelpatterns/journal"
	"github.com/otelpatterns/otelpatterns/journal/journaltest"
)

func TestConforms(t *testing.T) {
	pool := newPool(t)
	prefixes := map[journal.Log]string{}
	var mu sync.Mutex
	open := func(t *testing.T, prefix string) journal.Log {
		l, err := Open(context.Background(), pool, WithTablePrefix(prefix))
		if err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		prefixes[l] = prefix
		mu.Unlock()
		return l
	}
	journaltest.Run(t, journaltest.Harness{
		New: func(t *testing.T) journal.Log { return open(t, newTables(t, pool)) },
		Reopen: func(t *testing.T, l journal.Log) journal.Log {
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			mu.Lock()
			prefix := prefixes[l]
			mu.Unlock()
			return open(t, prefix)
		},
	})
}

// Conformance again with group commit off: every request alone.
func TestConformsWithoutGroupCommit(t *testing.T) {
	pool := newPool(t)
	journaltest.Run(t, journaltest.Harness{
		New: func(t *testing.T) journal.Log {
			l, err := Open(context.Background(), pool, WithTablePrefix(newTables(t, pool)), WithMaxGroup(1))
			if err != nil {
				t.Fatal(err)
			}
			return l
		},
	})
}

func TestMigrate(t *testing.T) {
	pool := newPool(t)
	ctx := context.Background()
	prefix := newTables(t, pool)
	// Idempotent, and safe from several replicas at once.
	var wg sync.WaitGroup
	errc := make(chan error, 4)
	for range 4 {
		wg.Go(func() { errc <- Migrate(ctx, pool, WithTablePrefix(prefix)) })
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		if err != nil {
			t.Fatalf("Migrate again = %v", err)
		}
	}
	l := mustOpen(t, pool, prefix)
	mustAppend(t, l, "tx", 0, rec("a"))
	if err := Migrate(ctx, pool, WithTablePrefix(prefix)); err != nil {
		t.Fatal(err)
	}
	if recs, err := l.Load(ctx, "tx"); err != nil || len(recs) != 1 {
		t.Fatalf("after Migrate again, Load = %d records, %v; want the 1 record kept", len(recs), err)
	}

	// A newer schema than this package knows is refused, by both.
	s := newStatements(prefix)
	if _, err := pool.Exec(ctx, "UPDATE "+s.schema+" SET version = 99"); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(ctx, pool, WithTablePrefix(prefix)); !errors.Is(err, ErrSchema) || !strings.Contains(err.Error(), "version 99") {
		t.Fatalf("Open of a newer schema = %v, want ErrSchema naming version 99", err)
	}
	if err := Migrate(ctx, pool, WithTablePrefix(prefix)); !errors.Is(err, ErrSchema) {
		t.Fatalf("Migrate of a newer schema = %v, want ErrSchema", err)
	}
}

func TestOpenWithoutTables(t *testing.T) {
	pool := newPool(t)
	_, err := Open(context.Background(), pool, WithTablePrefix("never_migrated"))
	if !errors.Is(err, ErrSchema) || !strings.Contains(err.Error(), "Migrate") {
		t.Fatalf("Open without tables = %v, want ErrSchema telling to call Migrate", err)
	}
}

// The SQL in the package documentation is what Migrate runs.
func TestDocumentedSchema(t *testing.T) {
	doc := readDoc(t)
	s := newStatements(DefaultTablePrefix)
	for v, m := range migrations {
		for _, line := range strings.Split(s.fill(m), "\n") {
			if !strings.Contains(doc, "//\t"+line+"\n") {
				t.Errorf("doc.go's schema lacks the line %q of Migrate's version %d", line, v+1)
			}
		}
	}
	if !strings.Contains(doc, fmt.Sprintf("VALUES (%d) ON CONFLICT", SchemaVersion)) {
		t.Errorf("doc.go's schema does not insert version %d", SchemaVersion)
	}
}

func TestBadInput(t *testing.T) {
	ctx := context.Background()
	var nilCtx context.Context
	if _, err := Open(nilCtx, nil); !errors.Is(err, errNilContext) {
		t.Fatalf("Open(nil ctx) = %v", err)
	}
	if _, err := Open(ctx, nil); err == nil || !strings.Contains(err.Error(), "pool is nil") {
		t.Fatalf("Open(nil pool) = %v", err)
	}
	if err := Migrate(ctx, nil); err == nil {
		t.Fatal("Migrate(nil pool) = nil error")
	}
	pool, err := pgxpool.New(ctx, "postgres://127.0.0.1:1/none?connect_timeout=1")
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	for _, c := range []struct {
		opt  Option
		want string
	}{
		{WithTablePrefix("Bad-Name"), "WithTablePrefix"},
		{WithTablePrefix(""), "WithTablePrefix"},
		{WithMaxPayload(0), "WithMaxPayload"},
		{WithMaxPayload(1 << 30), "WithMaxPayload"},
		{WithMaxGroup(0), "WithMaxGroup"},
		{WithTombstoneHorizon(-time.Second), "WithTombstoneHorizon"},
		{WithWriteTimeout(0), "WithWriteTimeout"},
	} {
		if _, err := Open(ctx, pool, c.opt); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Open with a bad %s = %v, want an error naming it", c.want, err)
		}
	}
	// A server that cannot be reached is a clear error, not a panic.
	if _, err := Open(ctx, pool); err == nil || !strings.HasPrefix(err.Error(), "pgjournal: ") {
		t.Fatalf("Open of an unreachable server = %v, want a pgjournal error", err)
	}
	if err := Migrate(ctx, pool); err == nil || !strings.HasPrefix(err.Error(), "pgjournal: migrate") {
		t.Fatalf("Migrate on an unreachable server = %v", err)
	}
}

func TestUnreachableServer(t *testing.T) {
	pool := newPool(t)
	prefix := newTables(t, newPool(t)) // dropped through a pool that stays open
	ctx := context.Background()
	l := mustOpen(t, pool, prefix, WithWriteTimeout(2*time.Second))
	mustAppend(t, l, "tx", 0, rec("a"))
	pool.Close() // as if the server went away
	err := l.Append(ctx, "tx", 1, rec("b"))
	if err == nil || !strings.Contains(err.Error(), `pgjournal: append to "tx": not written`) {
		t.Fatalf("Append on a closed pool = %v, want a clear not-written error", err)
	}
	if _, err := l.Load(ctx, "tx"); err == nil || !strings.HasPrefix(err.Error(), `pgjournal: load "tx"`) {
		t.Fatalf("Load on a closed pool = %v", err)
	}
	if _, err := l.Pending(ctx); err == nil || !strings.HasPrefix(err.Error(), "pgjournal: pending") {
		t.Fatalf("Pending on a closed pool = %v", err)
	}
}

func TestNilContext(t *testing.T) {
	pool := newPool(t)
	l := mustOpen(t, pool, newTables(t, pool))
	var nilCtx context.Context // a nil context is what is tested
	if err := l.Append(nilCtx, "tx", 0, rec("a")); !errors.Is(err, errNilContext) {
		t.Errorf("Append(nil) = %v", err)
	}
	if _, err := l.Load(nilCtx, "tx"); !errors.Is(err, errNilContext) {
		t.Errorf("Load(nil) = %v", err)
	}
	if _, err := l.Pending(nilCtx); !errors.Is(err, errNilContext) {
		t.Errorf("Pending(nil) = %v", err)
	}
	if err := l.Forget(nilCtx, "tx"); !errors.Is(err, errNilContext) {
		t.Errorf("Forget(nil) = %v", err)
	}
	if err := Migrate(nilCtx, pool); !errors.Is(err, errNilContext) {
		t.Errorf("Migrate(nil) = %v", err)
	}
}

// What PostgreSQL cannot store is refused before the database sees it.
func TestUnstorable(t *testing.T) {
	pool := newPool(t)
	l := mustOpen(t, pool, newTables(t, pool))
	ctx := context.Background()
	nul, badUTF8, bigEpoch, badCarrier := rec("a\x00b"), rec("\xff"), rec("a"), rec("a")
	bigEpoch.Epoch = math.MaxInt64 + 1
	badCarrier.Carrier = map[string]string{"k": "v\x00"}
	for _, c := range []struct {
		what string
		tx   string
		r    journal.Record
	}{
		{"a NUL in the kind", "tx", nul},
		{"a kind that is not UTF-8", "tx", badUTF8},
		{"an epoch beyond a bigint", "tx", bigEpoch},
		{"a NUL in a carrier value", "tx", badCarrier},
		{"a transaction ID that is not UTF-8", "t\xffx", rec("a")},
	} {
		var ie *journal.InvalidError
		if err := l.Append(ctx, c.tx, 0, c.r); !errors.As(err, &ie) {
			t.Errorf("Append with %s = %v, want an *InvalidError", c.what, err)
		}
	}
	if recs, err := l.Load(ctx, "t\x00x"); err != nil || recs != nil {
		t.Errorf("Load of an unstorable ID = %v, %v; want none, nil", recs, err)
	}
	if err := l.Forget(ctx, "t\x00x"); err != nil {
		t.Errorf("Forget of an unstorable ID = %v, want nil", err)
	}
	// A sequence number beyond a bigint is a conflict, not an overflow.
	mustAppend(t, l, "tx", 0, rec("a"))
	var ce *journal.ConflictError
	if err := l.Append(ctx, "tx", math.MaxUint64, rec("b")); !errors.As(err, &ce) || ce.Actual != 1 {
		t.Errorf("Append after seq 2^64-1 = %v, want a conflict at seq 1", err)
	}
}

func TestStorage(t *testing.T) {
	pool := newPool(t)
	prefix := newTables(t, pool)
	l := mustOpen(t, pool, prefix)
	ctx := context.Background()
	bin := journal.Record{Epoch: 3, Kind: "k", Payload: []byte{0, 0xff, 0, 'x'},
		Carrier: map[string]string{"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", "baggage": `k="v"; é`}}
	empty := journal.Record{Epoch: 3, Kind: "empty", Payload: []byte{}, Carrier: map[string]string{}}
	mustAppend(t, l, "tx", 0, bin, empty)
	got, err := l.Load(ctx, "tx")
	if err != nil || len(got) != 2 {
		t.Fatalf("Load = %d records, %v", len(got), err)
	}
	if !bytes.Equal(got[0].Payload, bin.Payload) || got[0].Carrier["baggage"] != bin.Carrier["baggage"] {
		t.Fatalf("record = %+v, want %+v", got[0], bin)
	}
	if got[1].Payload != nil || got[1].Carrier != nil {
		t.Fatalf("an empty payload and carrier load as %#v, %#v; want nil, as in the file log", got[1].Payload, got[1].Carrier)
	}
	// The carrier is a jsonb object that SQL can read.
	s := newStatements(prefix)
	var tp string
	if err := pool.QueryRow(ctx, "SELECT carrier->>'traceparent' FROM "+s.records+" WHERE tx_id = 'tx' AND seq = 1").Scan(&tp); err != nil || tp != bin.Carrier["traceparent"] {
		t.Fatalf("carrier->>'traceparent' = %q, %v", tp, err)
	}
	// Pending sorts bytewise, as Go does, whatever the database's collation.
	for _, id := range []string{"b", "B", "a", "é", "_"} {
		mustAppend(t, l, id, 0, rec("x"))
	}
	p, err := l.Pending(ctx)
	if want := []string{"B", "_", "a", "b", "tx", "é"}; err != nil || strings.Join(p, ",") != strings.Join(want, ",") {
		t.Fatalf("Pending = %q, %v; want %q", p, err, want)
	}
}

// Two logs on one database, as two replicas: the fencing holds between
// them, for it is checked by the database.
func TestTwoProcesses(t *testing.T) {
	pool1, pool2 := newPool(t), newPool(t)
	prefix := newTables(t, pool1)
	a, b := mustOpen(t, pool1, prefix), mustOpen(t, pool2, prefix)
	ctx := context.Background()
	mustAppend(t, a, "tx", 0, rec("begin"))
	if err := b.Append(ctx, "tx", 0, rec("again")); !errors.Is(err, journal.ErrConflict) {
		t.Fatalf("a second begin from another log = %v, want ErrConflict", err)
	}
	owner := rec("owner")
	owner.Epoch = 2
	mustAppend(t, b, "tx", 1, owner) // b takes over
	if err := a.Append(ctx, "tx", 2, rec("late")); !errors.Is(err, journal.ErrFenced) {
		t.Fatalf("the old owner's append = %v, want ErrFenced", err)
	}
	// Racing appenders from both logs: exactly one wins each round.
	next := uint64(2)
	for round := range 10 {
		var wg sync.WaitGroup
		results := make(chan error, 8)
		for i := range 8 {
			l := a
			if i%2 == 1 {
				l = b
			}
			r := rec(fmt.Sprint(round, i))
			r.Epoch = 2
			wg.Go(func() { results <- l.Append(ctx, "tx", next, r) })
		}
		wg.Wait()
		close(results)
		won := 0
		for err := range results {
			switch {
			case err == nil:
				won++
			case !errors.Is(err, journal.ErrConflict):
				t.Fatalf("a losing append = %v, want ErrConflict", err)
			}
		}
		if won != 1 {
			t.Fatalf("round %d: %d appends won, want 1", round, won)
		}
		next++
	}
	end := rec("end")
	end.Epoch = 2
	end.End = true
	mustAppend(t, a, "tx", next, end)
	if err := b.Forget(ctx, "tx"); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Load(ctx, "tx"); !errors.Is(err, journal.ErrForgotten) {
		t.Fatalf("Load from the other log after Forget = %v, want ErrForgotten", err)
	}
}

func TestTombstoneHorizon(t *testing.T) {
	pool := newPool(t)
	prefix := newTables(t, pool)
	const horizon = 300 * time.Millisecond // real time: the log's pool of connections lives outside any synctest bubble
	l := mustOpen(t, pool, prefix, WithTombstoneHorizon(horizon))
	ctx := context.Background()
	end := rec("end")
	end.End = true
	forget := func(id string) {
		t.Helper()
		mustAppend(t, l, id, 0, end)
		if err := l.Forget(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	forget("old")
	time.Sleep(2 * horizon)
	forget("new") // sweeps the tombstones older than the horizon: old's
	if recs, err := l.Load(ctx, "old"); err != nil || recs != nil {
		t.Fatalf("Load of an expired tombstone = %v, %v; want an unknown transaction", recs, err)
	}
	mustAppend(t, l, "old", 0, rec("begin")) // its ID may be used again
	if _, err := l.Load(ctx, "new"); !errors.Is(err, journal.ErrForgotten) {
		t.Fatalf("Load of a recent tombstone = %v, want ErrForgotten", err)
	}
}

func TestTelemetryReference(t *testing.T) {
	pool := newPool(t)
	prefix := newTables(t, pool)
	r := telemetrytest.NewRecorders(t)
	ctx := context.Background()
	if err := Migrate(ctx, pool, WithTablePrefix(prefix), WithTracerProvider(r.TracerProvider)); err != nil {
		t.Fatal(err)
	}
	l := mustOpen(t, pool, prefix, WithMeterProvider(r.MeterProvider), WithTracerProvider(r.TracerProvider))
	mustAppend(t, l, "a", 0, rec("a"))
	if err := l.Append(ctx, "a", 0, rec("b")); err == nil { // a failed append
		t.Fatal("a conflicting append succeeded")
	}
	mustAppend(t, l, "b", 0, rec("b"))
	emitted := telemetrytest.Collect(t, r.Spans, r.Reader)
	telemetrytest.Check(t, "journal/pgjournal", emitted)

	m := r.Metrics(t)
	if c := commits(t, r); c != 2 {
		t.Fatalf("%d COMMITs counted, want 2 (a refused append commits nothing)", c)
	}
	if _, ok := m[metricPending]; !ok {
		t.Fatal("no pending metric")
	}
	if migrated := r.Ended(spanMigrate); len(migrated) != 1 {
		t.Fatalf("%d journal.migrate spans, want 1", len(migrated))
	}
}

// A database at version 1 (before the leases) is brought to version 2 by
// Migrate, its records kept: Open refuses it until then.
func TestMigrateFromVersion1(t *testing.T) {
	pool := newPool(t)
	ctx := context.Background()
	prefix := newTables(t, pool)
	s := newStatements(prefix)
	// Rebuild the tables as version 1 left them, with a transaction in them.
	if _, err := pool.Exec(ctx, "DROP TABLE "+s.records+", "+s.transactions+"; "+s.fill(migrations[0])+
		"; UPDATE "+s.schema+" SET version = 1"); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, "INSERT INTO "+s.transactions+" (tx_id, last_seq, epoch) VALUES ('old', 1, 1); "+
		"INSERT INTO "+s.records+" (tx_id, seq, epoch, kind, step, attempt, is_end) VALUES ('old', 1, 1, 'begin', '', 0, false)"); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(ctx, pool, WithTablePrefix(prefix)); !errors.Is(err, ErrSchema) || !strings.Contains(err.Error(), "version 1") {
		t.Fatalf("Open of a version-1 database = %v, want ErrSchema naming version 1", err)
	}
	if err := Migrate(ctx, pool, WithTablePrefix(prefix)); err != nil {
		t.Fatalf("Migrate from version 1 = %v", err)
	}
	l := mustOpen(t, pool, prefix)
	if recs, err := l.Load(ctx, "old"); err != nil || len(recs) != 1 || recs[0].Kind != "begin" {
		t.Fatalf("after the upgrade, Load = %+v, %v; want the one record kept", recs, err)
	}
	claimed, err := l.Claim(ctx, "a", time.Minute, 10)
	if err != nil || len(claimed) != 1 || claimed[0].TxID != "old" || claimed[0].Epoch != 2 {
		t.Fatalf("Claim after the upgrade = %+v, %v; want old at epoch 2", claimed, err)
	}
	if _, err := l.Acquire(ctx, "new", "a", time.Minute); err != nil {
		t.Fatalf("Acquire of a new transaction after the upgrade = %v (the last_seq > 0 check must be gone)", err)
	}
	if err := Migrate(ctx, pool, WithTablePrefix(prefix)); err != nil {
		t.Fatalf("Migrate again = %v", err)
	}
}

// Leases shared by two logs, as two replicas share them: the fence holds
// across processes, a lease's head is neither pending nor loaded, and
// expiry is on the database's clock.
func TestLeasesAcrossLogs(t *testing.T) {
	pool := newPool(t)
	prefix := newTables(t, pool)
	a, b := mustOpen(t, pool, prefix), mustOpen(t, pool, prefix)
	ctx := context.Background()

	la, err := a.Acquire(ctx, "tx", "replica-a", 200*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if p, err := b.Pending(ctx); err != nil || len(p) != 0 {
		t.Fatalf("Pending with only a lease's head = %q, %v; want none", p, err)
	}
	if recs, err := b.Load(ctx, "tx"); err != nil || recs != nil {
		t.Fatalf("Load of a lease's head = %v, %v; want an unknown transaction", recs, err)
	}
	if err := b.Forget(ctx, "tx"); err != nil {
		t.Fatalf("Forget of a lease's head = %v, want nil (nothing to forget)", err)
	}
	if _, err := b.Acquire(ctx, "tx", "replica-b", time.Minute); !errors.Is(err, journal.ErrLeased) {
		t.Fatalf("the other replica's Acquire of a held lease = %v, want ErrLeased", err)
	}
	var expires time.Time
	if err := pool.QueryRow(ctx, "SELECT lease_expires FROM "+newStatements(prefix).transactions+" WHERE tx_id = 'tx'").Scan(&expires); err != nil || !expires.Equal(la.Expires) {
		t.Fatalf("the lease's expiry in the table = %v, %v; want the one returned, %v", expires, err, la.Expires)
	}
	time.Sleep(300 * time.Millisecond)
	lb, err := b.Acquire(ctx, "tx", "replica-b", time.Minute)
	if err != nil || lb.Epoch != la.Epoch+1 {
		t.Fatalf("Acquire after the expiry = %+v, %v; want epoch %d", lb, err, la.Epoch+1)
	}
	r := rec("begin")
	r.Epoch = la.Epoch
	if err := a.Append(ctx, "tx", 0, r); !errors.Is(err, journal.ErrFenced) {
		t.Fatalf("the first owner's first Append after the take-over = %v, want ErrFenced", err)
	}
	r.Epoch = lb.Epoch
	mustAppend(t, b, "tx", 0, r)
	if lost, err := a.Renew(ctx, "replica-a", time.Minute, []string{"tx", "never\xff"}); err != nil || len(lost) != 2 {
		t.Fatalf("the first owner's Renew = %q, %v; want both lost", lost, err)
	}
	if err := a.Release(ctx, "replica-a", "tx"); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Acquire(ctx, "tx", "replica-a", time.Minute); !errors.Is(err, journal.ErrLeased) {
		t.Fatalf("Acquire after a Release by one who did not hold it = %v, want ErrLeased", err)
	}
}
