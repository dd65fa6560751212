package pgjournal

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/otelpatterns/otelpatterns/internal/telemetry/telemetrytest"
	"github.com/otelpatterns/otelpatterns/journal"
)

// newRequest builds the request that Append would queue.
func newRequest(t *testing.T, l *Log, tx string, seq uint64, recs ...journal.Record) *request {
	t.Helper()
	rows, size, err := validate(tx, seq, recs, l.cfg.maxPayload)
	if err != nil {
		t.Fatal(err)
	}
	return &request{op: opAppend, txID: tx, expectSeq: seq, rows: rows, size: size}
}

func kinds(t *testing.T, l *Log, tx string) string {
	t.Helper()
	recs, err := l.Load(context.Background(), tx)
	if err != nil {
		t.Fatalf("Load(%q) = %v", tx, err)
	}
	var ks []string
	for _, r := range recs {
		ks = append(ks, r.Kind)
	}
	return strings.Join(ks, ",")
}

func TestGroupCommit(t *testing.T) {
	pool := newPool(t)
	r := telemetrytest.NewRecorders(t)
	l := mustOpen(t, pool, newTables(t, pool), WithMeterProvider(r.MeterProvider))
	const appenders, each = 64, 5
	var wg sync.WaitGroup
	errc := make(chan error, appenders)
	for i := range appenders {
		wg.Go(func() {
			tx := fmt.Sprintf("tx-%02d", i)
			for seq := range uint64(each) {
				if err := l.Append(context.Background(), tx, seq, rec(fmt.Sprint(seq))); err != nil {
					errc <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Fatal(err)
	}
	c := commits(t, r)
	t.Logf("%d appends, %d COMMITs", appenders*each, c)
	if c == 0 || c > appenders*each/2 {
		t.Fatalf("%d COMMITs for %d concurrent appends, want at most half as many: appends must share COMMITs", c, appenders*each)
	}
	for i := range appenders {
		if got := kinds(t, l, fmt.Sprintf("tx-%02d", i)); got != "0,1,2,3,4" {
			t.Fatalf("tx-%02d = %q", i, got)
		}
	}
}

// One group of requests that the log refuses for every reason, beside
// valid ones, some of which depend on others of the group: each gets its
// own answer, and the valid ones share one COMMIT.
func TestGroupOutcomes(t *testing.T) {
	pool := newPool(t)
	r := telemetrytest.NewRecorders(t)
	l := mustOpen(t, pool, newTables(t, pool), WithMeterProvider(r.MeterProvider))
	ctx := context.Background()
	end := rec("end")
	end.End = true
	owner := rec("owner")
	owner.Epoch = 2
	mustAppend(t, l, "existing", 0, rec("a"))
	mustAppend(t, l, "owned", 0, owner)
	mustAppend(t, l, "ended", 0, end)
	before := commits(t, r)

	group := []*request{
		newRequest(t, l, "new", 0, rec("n1")),
		newRequest(t, l, "existing", 0, rec("stale")), // conflict
		newRequest(t, l, "new", 1, rec("n2"), end),    // after the first of this group
		newRequest(t, l, "existing", 1, rec("b")),
		newRequest(t, l, "owned", 1, rec("late")), // fenced
		newRequest(t, l, "ended", 1, rec("after")),
		{op: opForget, txID: "existing"},         // not ended
		{op: opForget, txID: "new"},              // ended by this group: forgotten
		newRequest(t, l, "new", 0, rec("again")), // sorted after the forget: ended
		{op: opForget, txID: "unknown"},
	}
	l.commitGroup(group)
	want := []error{nil, journal.ErrConflict, nil, nil, journal.ErrFenced, journal.ErrEnded, journal.ErrNotEnded, nil, journal.ErrEnded, nil}
	for i, r := range group {
		if (want[i] == nil) != (r.err == nil) || !errors.Is(r.err, want[i]) {
			t.Errorf("request %d (%s) = %v, want %v", i, r.what(), r.err, want[i])
		}
	}
	var ce *journal.ConflictError
	// The refusal reports the head as the group left it, which is what
	// a Load after the answer sees: "b" of the same group is there too.
	if errors.As(group[1].err, &ce) && ce.Actual != 2 {
		t.Errorf("conflict reports seq %d, want 2", ce.Actual)
	}
	if got := commits(t, r) - before; got != 1 {
		t.Fatalf("%d COMMITs for one group, want 1", got)
	}
	if got := kinds(t, l, "existing"); got != "a,b" {
		t.Fatalf("existing = %q", got)
	}
	if _, err := l.Load(ctx, "new"); !errors.Is(err, journal.ErrForgotten) {
		t.Fatalf("Load(new) = %v, want ErrForgotten", err)
	}
}

// A group that the server fails because of one request's data is retried
// request by request: only the one at fault fails.
func TestGroupRetriesAlone(t *testing.T) {
	pool := newPool(t)
	prefix := newTables(t, pool)
	r := telemetrytest.NewRecorders(t)
	l := mustOpen(t, pool, prefix, WithMeterProvider(r.MeterProvider))
	s := newStatements(prefix)
	if _, err := pool.Exec(context.Background(), "ALTER TABLE "+s.records+" ADD CONSTRAINT no_poison CHECK (kind <> 'poison')"); err != nil {
		t.Fatal(err)
	}
	group := []*request{
		newRequest(t, l, "a", 0, rec("ok")),
		newRequest(t, l, "b", 0, rec("poison")),
		newRequest(t, l, "c", 0, rec("ok")),
	}
	l.commitGroup(group)
	if group[0].err != nil || group[2].err != nil {
		t.Fatalf("the valid requests failed: %v; %v", group[0].err, group[2].err)
	}
	if err := group[1].err; err == nil || !strings.Contains(err.Error(), `pgjournal: append to "b": not written`) || !strings.Contains(err.Error(), "no_poison") {
		t.Fatalf("the poisoned request = %v, want the server's error, saying it was not written", err)
	}
	if kinds(t, l, "a") != "ok" || kinds(t, l, "c") != "ok" || kinds(t, l, "b") != "" {
		t.Fatal("the log does not hold exactly the valid requests")
	}
	if got := commits(t, r); got != 2 {
		t.Fatalf("%d COMMITs, want 2: one for each valid request alone", got)
	}
}

func TestBlamesOne(t *testing.T) {
	for _, c := range []struct {
		err  error
		want bool
	}{
		{errors.New("network"), false},
		{pgErr("23514"), true},  // check violation
		{pgErr("22021"), true},  // bad encoding
		{pgErr("40P01"), true},  // deadlock
		{pgErr("57014"), true},  // statement timeout
		{pgErr("57P01"), false}, // admin shutdown
		{pgErr("08006"), false}, // connection failure
		{pgErr("42P01"), false}, // no table
		{fmt.Errorf("wrapped: %w", pgErr("23505")), true},
	} {
		if got := blamesOne(c.err); got != c.want {
			t.Errorf("blamesOne(%v) = %v, want %v", c.err, got, c.want)
		}
	}
}
