package pgjournal

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.uber.org/goleak"

	"github.com/otelpatterns/otelpatterns/internal/telemetry/telemetrytest"
	"github.com/otelpatterns/otelpatterns/journal"
)

func TestMain(m *testing.M) {
	if name := os.Getenv(replicaVar); name != "" {
		replicaMain(name) // a process of TestReplicasUnderKills
		return
	}
	goleak.VerifyTestMain(m)
}

// dsnVar names the database the tests use.
const dsnVar = "OTELPATTERNS_PG_DSN"

// needEnv returns the environment variable name, and without it skips
// the test, saying to set it for what, except in CI, where that is a
// failure: CI must run these tests.
func needEnv(t testing.TB, name, what string) string {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		msg := "set " + name + " to " + what
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return v
}

// newPool returns a pool on the test database, closed at the test's end.
// Without a DSN the test is skipped, except in CI (see needEnv).
func newPool(t testing.TB) *pgxpool.Pool {
	t.Helper()
	dsn := needEnv(t, dsnVar, "a PostgreSQL 15 database (such as postgres://user:password@127.0.0.1:5432/db) to run the pgjournal tests")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	pool, err := pgxpool.New(ctx, dsn)
	if err != nil {
		t.Fatalf("pgxpool.New(%s): %v", dsnVar, err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		t.Fatalf("the database of %s does not answer: %v", dsnVar, err)
	}
	t.Cleanup(pool.Close)
	return pool
}

// newTables migrates a set of tables of the test's own, dropped at its
// end, and returns their prefix.
func newTables(t testing.TB, pool *pgxpool.Pool) string {
	t.Helper()
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	prefix := "test_" + hex.EncodeToString(b)
	if err := Migrate(context.Background(), pool, WithTablePrefix(prefix)); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	t.Cleanup(func() {
		s := newStatements(prefix)
		_, err := pool.Exec(context.Background(), "DROP TABLE IF EXISTS "+s.records+", "+s.transactions+", "+s.schema)
		if err != nil {
			t.Errorf("drop the test's tables: %v", err)
		}
	})
	return prefix
}

func mustOpen(t testing.TB, pool *pgxpool.Pool, prefix string, opts ...Option) *Log {
	t.Helper()
	l, err := Open(context.Background(), pool, append([]Option{WithTablePrefix(prefix)}, opts...)...)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = l.Close() })
	return l
}

func rec(kind string) journal.Record {
	return journal.Record{Epoch: 1, Kind: kind, Payload: []byte("payload of " + kind)}
}

func mustAppend(t testing.TB, l journal.Log, tx string, seq uint64, recs ...journal.Record) {
	t.Helper()
	if err := l.Append(context.Background(), tx, seq, recs...); err != nil {
		t.Fatalf("Append(%q, %d) = %v", tx, seq, err)
	}
}

// commits returns how many COMMITs the log counted.
func commits(t testing.TB, r telemetrytest.Recorders) int64 {
	t.Helper()
	m, ok := r.Metrics(t)[metricSyncs]
	if !ok {
		return 0
	}
	var n int64
	for _, dp := range m.Data.(metricdata.Sum[int64]).DataPoints {
		n += dp.Value
	}
	return n
}

func pgErr(code string) error { return &pgconn.PgError{Code: code, Message: "test"} }
