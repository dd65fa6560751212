// Package journaltest is the conformance suite of journal.Log, and of
// journal.Leaser for a log that implements it: the behaviour that the saga
// and two-phase-commit runners rely on. The memory
// and file logs run it, and so should every Log of your own:
//
//	func TestMyLog(t *testing.T) {
//		journaltest.Run(t, journaltest.Harness{
//			New:    func(t *testing.T) journal.Log { return newMyLog(t) },
//			Reopen: func(t *testing.T, l journal.Log) journal.Log { return reopenMyLog(t, l) },
//		})
//	}
package journaltest

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"sync"
	"testing"

	"github.com/otelpatterns/otelpatterns/journal"
)

// Harness tells Run how to make the logs under test.
type Harness struct {
	// New returns a new, empty log. Run closes it.
	New func(t *testing.T) journal.Log
	// Reopen closes l and opens it again from what it stored, as a
	// restarted process would. Leave it nil for a log that keeps nothing,
	// like the memory log; the durability tests are then skipped.
	Reopen func(t *testing.T, l journal.Log) journal.Log
}

// Run runs the whole suite, each case as a subtest of t.
func Run(t *testing.T, h Harness) {
	if h.New == nil {
		t.Fatal("journaltest: Harness.New is nil")
	}
	cases := []struct {
		name string
		fn   func(*testing.T, *suite)
	}{
		{"AppendLoad", testAppendLoad},
		{"Copies", testCopies},
		{"Conflict", testConflict},
		{"Atomic", testAtomic},
		{"Fencing", testFencing},
		{"End", testEnd},
		{"Pending", testPending},
		{"Forget", testForget},
		{"Invalid", testInvalid},
		{"Canceled", testCanceled},
		{"ConcurrentTransactions", testConcurrentTransactions},
		{"ConcurrentOwners", testConcurrentOwners},
		{"Closed", testClosed},
		{"Reopen", testReopen},
		{"LeaseAcquire", testLeaseAcquire},
		{"LeaseExpiry", testLeaseExpiry},
		{"LeaseRenew", testLeaseRenew},
		{"LeaseRelease", testLeaseRelease},
		{"LeaseClaim", testLeaseClaim},
		{"LeaseConcurrent", testLeaseConcurrent},
		{"LeaseInvalid", testLeaseInvalid},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := &suite{h: h, ctx: context.Background()}
			s.log = h.New(t)
			t.Cleanup(func() { s.log.Close() })
			c.fn(t, s)
		})
	}
}

type suite struct {
	h   Harness
	ctx context.Context
	log journal.Log
}

// rec returns a record of kind with a payload that names it.
func rec(kind string) journal.Record {
	return journal.Record{Epoch: 1, Kind: kind, Payload: []byte("payload of " + kind)}
}

func (s *suite) mustAppend(t *testing.T, tx string, seq uint64, recs ...journal.Record) {
	t.Helper()
	if err := s.log.Append(s.ctx, tx, seq, recs...); err != nil {
		t.Fatalf("Append(%q, %d, %d records) = %v, want nil", tx, seq, len(recs), err)
	}
}

func (s *suite) load(t *testing.T, tx string) []journal.Record {
	t.Helper()
	recs, err := s.log.Load(s.ctx, tx)
	if err != nil {
		t.Fatalf("Load(%q) = %v", tx, err)
	}
	return recs
}

// kinds returns the kinds of recs, in order.
func kinds(recs []journal.Record) []string {
	out := make([]string, len(recs))
	for i, r := range recs {
		out[i] = r.Kind
	}
	return out
}

func wantKinds(t *testing.T, recs []journal.Record, want ...string) {
	t.Helper()
	if got := kinds(recs); !slices.Equal(got, want) {
		t.Fatalf("records = %q, want %q", got, want)
	}
}

func wantErr(t *testing.T, what string, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("%s = %v, want an error matching %v", what, err, target)
	}
}

func testAppendLoad(t *testing.T, s *suite) {
	if recs := s.load(t, "tx"); len(recs) != 0 {
		t.Fatalf("Load of an unknown transaction = %d records, want none", len(recs))
	}
	begin := journal.Record{
		Epoch: 1, Kind: "begin", Step: "reserve", Attempt: 2,
		Payload: []byte{0, 1, 2, 255},
		Carrier: map[string]string{"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", "baggage": "k=v"},
	}
	s.mustAppend(t, "tx", 0, begin)
	s.mustAppend(t, "tx", 1, rec("a"), rec("b"))
	got := s.load(t, "tx")
	wantKinds(t, got, "begin", "a", "b")
	want := begin
	want.TxID, want.Seq = "tx", 1
	if !reflect.DeepEqual(got[0], want) {
		t.Fatalf("Load()[0] = %+v, want %+v", got[0], want)
	}
	for i, r := range got {
		if r.TxID != "tx" || r.Seq != uint64(i+1) {
			t.Fatalf("record %d has TxID %q, Seq %d; want %q, %d", i, r.TxID, r.Seq, "tx", i+1)
		}
	}
}

func testCopies(t *testing.T, s *suite) {
	r := rec("a")
	r.Carrier = map[string]string{"traceparent": "x"}
	s.mustAppend(t, "tx", 0, r)
	r.Payload[0] = 'X'
	r.Carrier["traceparent"] = "changed"
	got := s.load(t, "tx")
	got[0].Payload[1] = 'Y'
	got[0].Carrier["new"] = "entry"
	again := s.load(t, "tx")
	if string(again[0].Payload) != "payload of a" || !maps.Equal(again[0].Carrier, map[string]string{"traceparent": "x"}) {
		t.Fatalf("the log shares memory with its callers: stored %q %v", again[0].Payload, again[0].Carrier)
	}
}

func testConflict(t *testing.T, s *suite) {
	err := s.log.Append(s.ctx, "tx", 1, rec("a"))
	wantErr(t, "Append to a new transaction after seq 1", err, journal.ErrConflict)
	s.mustAppend(t, "tx", 0, rec("a"), rec("b"))
	for _, seq := range []uint64{0, 1, 3} {
		err := s.log.Append(s.ctx, "tx", seq, rec("c"))
		wantErr(t, fmt.Sprintf("Append after seq %d of 2", seq), err, journal.ErrConflict)
		var ce *journal.ConflictError
		if errors.As(err, &ce) && (ce.Expected != seq || ce.Actual != 2) {
			t.Fatalf("ConflictError{Expected: %d, Actual: %d}, want {%d, 2}", ce.Expected, ce.Actual, seq)
		}
	}
	wantKinds(t, s.load(t, "tx"), "a", "b")
}

func testAtomic(t *testing.T, s *suite) {
	s.mustAppend(t, "tx", 0, rec("a"))
	// A refused multi-record append leaves nothing behind.
	err := s.log.Append(s.ctx, "tx", 0, rec("b"), rec("c"))
	wantErr(t, "a conflicting multi-record Append", err, journal.ErrConflict)
	bad := rec("d")
	bad.Kind = ""
	if err := s.log.Append(s.ctx, "tx", 1, rec("b"), bad); err == nil {
		t.Fatal("Append with an invalid second record = nil, want an error")
	}
	wantKinds(t, s.load(t, "tx"), "a")
}

func testFencing(t *testing.T, s *suite) {
	s.mustAppend(t, "tx", 0, rec("begin"))
	owner := rec("owner")
	owner.Epoch = 2
	s.mustAppend(t, "tx", 1, owner)
	// The old owner, even with the right sequence number, is fenced off.
	err := s.log.Append(s.ctx, "tx", 2, rec("late"))
	wantErr(t, "Append from epoch 1 after epoch 2 took over", err, journal.ErrFenced)
	next := rec("next")
	next.Epoch = 2
	s.mustAppend(t, "tx", 2, next)
	wantKinds(t, s.load(t, "tx"), "begin", "owner", "next")
}

func testEnd(t *testing.T, s *suite) {
	end := rec("end")
	end.End = true
	s.mustAppend(t, "tx", 0, rec("begin"), end)
	err := s.log.Append(s.ctx, "tx", 2, rec("after"))
	wantErr(t, "Append after End", err, journal.ErrEnded)
	later := rec("owner")
	later.Epoch = 9
	err = s.log.Append(s.ctx, "tx", 2, later)
	wantErr(t, "Append after End from a newer epoch", err, journal.ErrEnded)
	recs := s.load(t, "tx")
	wantKinds(t, recs, "begin", "end")
	if !recs[1].End {
		t.Fatal("the End record was loaded without End")
	}
}

func testPending(t *testing.T, s *suite) {
	end := rec("end")
	end.End = true
	s.mustAppend(t, "c", 0, rec("begin"))
	s.mustAppend(t, "a", 0, rec("begin"))
	s.mustAppend(t, "b", 0, rec("begin"))
	s.mustAppend(t, "b", 1, end)
	got, err := s.log.Pending(s.ctx)
	if err != nil || !slices.Equal(got, []string{"a", "c"}) {
		t.Fatalf("Pending() = %q, %v; want [a c]", got, err)
	}
}

func testForget(t *testing.T, s *suite) {
	end := rec("end")
	end.End = true
	if err := s.log.Forget(s.ctx, "unknown"); err != nil {
		t.Fatalf("Forget of an unknown transaction = %v, want nil", err)
	}
	s.mustAppend(t, "tx", 0, rec("begin"))
	err := s.log.Forget(s.ctx, "tx")
	wantErr(t, "Forget of a pending transaction", err, journal.ErrNotEnded)
	wantKinds(t, s.load(t, "tx"), "begin")
	s.mustAppend(t, "tx", 1, end)
	for range 2 {
		if err := s.log.Forget(s.ctx, "tx"); err != nil {
			t.Fatalf("Forget of an ended transaction = %v, want nil", err)
		}
	}
	_, err = s.log.Load(s.ctx, "tx")
	wantErr(t, "Load of a forgotten transaction", err, journal.ErrForgotten)
	err = s.log.Append(s.ctx, "tx", 0, rec("begin"))
	wantErr(t, "Append that starts a forgotten ID again", err, journal.ErrEnded)
	if p, err := s.log.Pending(s.ctx); err != nil || len(p) != 0 {
		t.Fatalf("Pending() = %q, %v; want none", p, err)
	}
}

func testInvalid(t *testing.T, s *suite) {
	noKind := rec("x")
	noKind.Kind = ""
	reserved := rec("journal.mine")
	endFirst := rec("end")
	endFirst.End = true
	for _, c := range []struct {
		what string
		tx   string
		recs []journal.Record
	}{
		{"an empty transaction ID", "", []journal.Record{rec("a")}},
		{"no records", "tx", nil},
		{"an empty kind", "tx", []journal.Record{noKind}},
		{"a kind of the log's own", "tx", []journal.Record{reserved}},
		{"an End record before another", "tx", []journal.Record{endFirst, rec("a")}},
	} {
		err := s.log.Append(s.ctx, c.tx, 0, c.recs...)
		var ie *journal.InvalidError
		if !errors.As(err, &ie) {
			t.Fatalf("Append with %s = %v, want an *InvalidError", c.what, err)
		}
	}
	if p, _ := s.log.Pending(s.ctx); len(p) != 0 {
		t.Fatalf("invalid appends left transactions %q", p)
	}
}

func testCanceled(t *testing.T, s *suite) {
	ctx, cancel := context.WithCancel(s.ctx)
	cancel()
	err := s.log.Append(ctx, "tx", 0, rec("a"))
	recs := s.load(t, "tx")
	switch {
	case err == nil && len(recs) != 1:
		t.Fatalf("Append under a canceled ctx = nil, but Load has %d records", len(recs))
	case err != nil && !errors.Is(err, context.Canceled):
		t.Fatalf("Append under a canceled ctx = %v, want nil or context.Canceled", err)
	case err != nil && len(recs) != 0:
		t.Fatalf("Append under a canceled ctx failed, but Load has %d records", len(recs))
	}
}

func testConcurrentTransactions(t *testing.T, s *suite) {
	const txs, each = 16, 20
	var wg sync.WaitGroup
	errc := make(chan error, txs)
	for i := range txs {
		wg.Go(func() {
			tx := fmt.Sprintf("tx-%02d", i)
			for seq := range uint64(each) {
				if err := s.log.Append(s.ctx, tx, seq, rec(fmt.Sprint(seq))); err != nil {
					errc <- fmt.Errorf("Append(%q, %d) = %w", tx, seq, err)
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
	for i := range txs {
		recs := s.load(t, fmt.Sprintf("tx-%02d", i))
		for seq, r := range recs {
			if r.Kind != fmt.Sprint(seq) {
				t.Fatalf("tx-%02d record %d is %q", i, seq, r.Kind)
			}
		}
		if len(recs) != each {
			t.Fatalf("tx-%02d has %d records, want %d", i, len(recs), each)
		}
	}
}

func testConcurrentOwners(t *testing.T, s *suite) {
	// Runners race to append at the same sequence number: exactly one
	// wins each round, and the others see a conflict.
	const runners, rounds = 8, 10
	for round := range uint64(rounds) {
		var wg sync.WaitGroup
		results := make(chan error, runners)
		for i := range runners {
			wg.Go(func() { results <- s.log.Append(s.ctx, "tx", round, rec(fmt.Sprint(i))) })
		}
		wg.Wait()
		close(results)
		won := 0
		for err := range results {
			switch {
			case err == nil:
				won++
			case !errors.Is(err, journal.ErrConflict):
				t.Fatalf("a losing Append = %v, want ErrConflict", err)
			}
		}
		if won != 1 {
			t.Fatalf("round %d: %d Appends won, want exactly 1", round, won)
		}
	}
	if n := len(s.load(t, "tx")); n != rounds {
		t.Fatalf("%d records, want %d", n, rounds)
	}
}

func testClosed(t *testing.T, s *suite) {
	s.mustAppend(t, "tx", 0, rec("a"))
	if err := s.log.Close(); err != nil {
		t.Fatalf("Close() = %v", err)
	}
	wantErr(t, "Append after Close", s.log.Append(s.ctx, "tx", 1, rec("b")), journal.ErrClosed)
	_, err := s.log.Load(s.ctx, "tx")
	wantErr(t, "Load after Close", err, journal.ErrClosed)
	_, err = s.log.Pending(s.ctx)
	wantErr(t, "Pending after Close", err, journal.ErrClosed)
	wantErr(t, "Forget after Close", s.log.Forget(s.ctx, "tx"), journal.ErrClosed)
	if err := s.log.Close(); err != nil {
		t.Errorf("a second Close = %v, want nil: Close is idempotent", err)
	}
}

func testReopen(t *testing.T, s *suite) {
	if s.h.Reopen == nil {
		t.Skip("the log keeps nothing across a restart (Harness.Reopen is nil)")
	}
	end := rec("end")
	end.End = true
	owner := rec("owner")
	owner.Epoch = 2
	s.mustAppend(t, "pending", 0, rec("begin"), owner)
	s.mustAppend(t, "ended", 0, rec("begin"), end)
	s.mustAppend(t, "forgotten", 0, rec("begin"), end)
	if err := s.log.Forget(s.ctx, "forgotten"); err != nil {
		t.Fatal(err)
	}
	before := s.load(t, "pending")
	s.log = s.h.Reopen(t, s.log)

	if got := s.load(t, "pending"); !reflect.DeepEqual(got, before) {
		t.Fatalf("after reopening, Load = %+v, want %+v", got, before)
	}
	wantKinds(t, s.load(t, "ended"), "begin", "end")
	if p, err := s.log.Pending(s.ctx); err != nil || !slices.Equal(p, []string{"pending"}) {
		t.Fatalf("after reopening, Pending() = %q, %v; want [pending]", p, err)
	}
	_, err := s.log.Load(s.ctx, "forgotten")
	wantErr(t, "after reopening, Load of a forgotten transaction", err, journal.ErrForgotten)
	wantErr(t, "after reopening, an Append from the old epoch", s.log.Append(s.ctx, "pending", 2, rec("late")), journal.ErrFenced)
	wantErr(t, "after reopening, an Append to an ended transaction", s.log.Append(s.ctx, "ended", 2, owner), journal.ErrEnded)
	next := rec("next")
	next.Epoch = 2
	s.mustAppend(t, "pending", 2, next)
}
