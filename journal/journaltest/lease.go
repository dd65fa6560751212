package journaltest

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/otelpatterns/otelpatterns/journal"
)

// The lease cases run against a log that implements journal.Leaser; they
// use the real clock (a shared log leases on its store's), with lease
// times long enough for a loaded machine.
const (
	longTTL  = time.Minute
	shortTTL = 300 * time.Millisecond
)

func (s *suite) leaser(t *testing.T) journal.Leaser {
	t.Helper()
	l, ok := s.log.(journal.Leaser)
	if !ok {
		t.Skip("the log does not implement journal.Leaser")
	}
	return l
}

func recAt(kind string, epoch uint64) journal.Record {
	r := rec(kind)
	r.Epoch = epoch
	return r
}

func testLeaseAcquire(t *testing.T, s *suite) {
	l := s.leaser(t)
	a, err := l.Acquire(s.ctx, "tx", "a", longTTL)
	if err != nil {
		t.Fatalf("Acquire of a new transaction = %v", err)
	}
	if a.TxID != "tx" || a.Epoch == 0 || !a.Expires.After(time.Now()) {
		t.Fatalf("lease = %+v, want tx, an epoch above 0, an expiry ahead", a)
	}
	s.mustAppend(t, "tx", 0, recAt("begin", a.Epoch))
	_, err = l.Acquire(s.ctx, "tx", "b", longTTL)
	wantErr(t, "Acquire of a transaction another owner holds", err, journal.ErrLeased)
	again, err := l.Acquire(s.ctx, "tx", "a", longTTL)
	if err != nil || again.Epoch <= a.Epoch {
		t.Fatalf("Acquire by the owner again = %+v, %v; want a higher epoch than %d", again, err, a.Epoch)
	}
	wantErr(t, "an Append under the superseded epoch", l.Append(s.ctx, "tx", 1, recAt("late", a.Epoch)), journal.ErrFenced)
	s.mustAppend(t, "tx", 1, recAt("next", again.Epoch))
}

func testLeaseExpiry(t *testing.T, s *suite) {
	l := s.leaser(t)
	a, err := l.Acquire(s.ctx, "tx", "a", shortTTL)
	if err != nil {
		t.Fatal(err)
	}
	s.mustAppend(t, "tx", 0, recAt("begin", a.Epoch))
	time.Sleep(shortTTL + 100*time.Millisecond)
	b, err := l.Acquire(s.ctx, "tx", "b", longTTL)
	if err != nil {
		t.Fatalf("Acquire after the lease expired = %v, want nil", err)
	}
	if b.Epoch <= a.Epoch {
		t.Fatalf("the new owner's epoch %d is not above the old one's %d", b.Epoch, a.Epoch)
	}
	wantErr(t, "the old owner's Append after the take-over", l.Append(s.ctx, "tx", 1, recAt("late", a.Epoch)), journal.ErrFenced)
	lost, err := l.Renew(s.ctx, "a", longTTL, []string{"tx"})
	if err != nil || !slices.Equal(lost, []string{"tx"}) {
		t.Fatalf("the old owner's Renew = %q, %v; want [tx] lost", lost, err)
	}
	s.mustAppend(t, "tx", 1, recAt("owner", b.Epoch))
}

func testLeaseRenew(t *testing.T, s *suite) {
	l := s.leaser(t)
	a, err := l.Acquire(s.ctx, "tx", "a", shortTTL)
	if err != nil {
		t.Fatal(err)
	}
	end := recAt("end", 1)
	end.End = true
	s.mustAppend(t, "done", 0, end)
	for range 4 {
		time.Sleep(shortTTL / 3)
		lost, err := l.Renew(s.ctx, "a", shortTTL, []string{"tx", "done"})
		if err != nil || len(lost) > 0 {
			t.Fatalf("Renew = %q, %v; want nothing lost (an ended transaction is not lost)", lost, err)
		}
		if _, err := l.Acquire(s.ctx, "tx", "b", longTTL); !errors.Is(err, journal.ErrLeased) {
			t.Fatalf("another owner's Acquire of a renewed lease = %v, want ErrLeased", err)
		}
	}
	s.mustAppend(t, "tx", 0, recAt("begin", a.Epoch))
	lost, err := l.Renew(s.ctx, "b", shortTTL, []string{"tx"})
	if err != nil || !slices.Equal(lost, []string{"tx"}) {
		t.Fatalf("Renew by an owner that never held it = %q, %v; want [tx]", lost, err)
	}
}

func testLeaseRelease(t *testing.T, s *suite) {
	l := s.leaser(t)
	a, err := l.Acquire(s.ctx, "tx", "a", longTTL)
	if err != nil {
		t.Fatal(err)
	}
	s.mustAppend(t, "tx", 0, recAt("begin", a.Epoch))
	if err := l.Release(s.ctx, "b", "tx"); err != nil {
		t.Fatalf("Release by another owner = %v, want nil (ignored)", err)
	}
	if _, err := l.Acquire(s.ctx, "tx", "b", longTTL); !errors.Is(err, journal.ErrLeased) {
		t.Fatalf("Acquire after another owner's Release = %v, want ErrLeased", err)
	}
	if err := l.Release(s.ctx, "a", "tx"); err != nil {
		t.Fatal(err)
	}
	claimed, err := l.Claim(s.ctx, "b", longTTL, 10)
	if err != nil || len(claimed) != 1 || claimed[0].TxID != "tx" || claimed[0].Epoch <= a.Epoch {
		t.Fatalf("Claim after Release = %+v, %v; want tx under an epoch above %d", claimed, err, a.Epoch)
	}
}

func testLeaseClaim(t *testing.T, s *suite) {
	l := s.leaser(t)
	end := rec("end")
	end.End = true
	for i := range 6 {
		s.mustAppend(t, fmt.Sprint("unowned-", i), 0, rec("begin")) // written without a lease
	}
	s.mustAppend(t, "ended", 0, rec("begin"), end)
	held, err := l.Acquire(s.ctx, "held", "a", longTTL)
	if err != nil {
		t.Fatal(err)
	}
	s.mustAppend(t, "held", 0, recAt("begin", held.Epoch))

	first, err := l.Claim(s.ctx, "b", longTTL, 4)
	if err != nil || len(first) != 4 {
		t.Fatalf("Claim(max 4) = %+v, %v; want 4 leases", first, err)
	}
	rest, err := l.Claim(s.ctx, "c", longTTL, 100)
	if err != nil || len(rest) != 2 {
		t.Fatalf("a second owner's Claim = %+v, %v; want the 2 left", rest, err)
	}
	seen := map[string]bool{}
	for _, c := range append(first, rest...) {
		if seen[c.TxID] || !slices.Contains([]string{"unowned-0", "unowned-1", "unowned-2", "unowned-3", "unowned-4", "unowned-5"}, c.TxID) {
			t.Fatalf("Claim returned %q, which is claimed twice, ended or held", c.TxID)
		}
		seen[c.TxID] = true
		if c.Epoch < 2 {
			t.Fatalf("claimed %q under epoch %d, want above its records' 1", c.TxID, c.Epoch)
		}
	}
	if more, err := l.Claim(s.ctx, "d", longTTL, 100); err != nil || len(more) != 0 {
		t.Fatalf("Claim with nothing left = %+v, %v; want none", more, err)
	}
	_, err = l.Acquire(s.ctx, "ended", "a", longTTL)
	wantErr(t, "Acquire of an ended transaction", err, journal.ErrEnded)
}

// Owners race for one transaction, and claimers for many: never two
// owners at once.
func testLeaseConcurrent(t *testing.T, s *suite) {
	l := s.leaser(t)
	const owners, txs = 8, 40
	for i := range txs {
		s.mustAppend(t, fmt.Sprint("tx-", i), 0, rec("begin"))
	}
	var wg sync.WaitGroup
	won := make(chan string, owners*txs)
	errs := make(chan error, owners)
	for o := range owners {
		wg.Go(func() {
			for {
				got, err := l.Claim(s.ctx, fmt.Sprint("owner-", o), longTTL, 3)
				if err != nil {
					errs <- err
					return
				}
				if len(got) == 0 {
					return
				}
				for _, g := range got {
					won <- g.TxID
				}
			}
		})
	}
	wg.Wait()
	close(won)
	close(errs)
	for err := range errs {
		t.Fatalf("a concurrent Claim = %v", err)
	}
	seen := map[string]bool{}
	for id := range won {
		if seen[id] {
			t.Fatalf("%q was claimed twice", id)
		}
		seen[id] = true
	}
	if len(seen) != txs {
		t.Fatalf("%d transactions claimed, want all %d", len(seen), txs)
	}

	results := make(chan error, owners)
	for o := range owners {
		wg.Go(func() {
			_, err := l.Acquire(s.ctx, "contested", fmt.Sprint("owner-", o), longTTL)
			results <- err
		})
	}
	wg.Wait()
	close(results)
	n := 0
	for err := range results {
		switch {
		case err == nil:
			n++
		case !errors.Is(err, journal.ErrLeased):
			t.Fatalf("a losing Acquire = %v, want ErrLeased", err)
		}
	}
	if n != 1 {
		t.Fatalf("%d owners acquired one transaction at once, want 1", n)
	}
}

func testLeaseInvalid(t *testing.T, s *suite) {
	l := s.leaser(t)
	if _, err := l.Acquire(s.ctx, "tx", "", longTTL); err == nil {
		t.Error("Acquire with an empty owner = nil, want an error")
	}
	if _, err := l.Acquire(s.ctx, "tx", "a", 0); err == nil {
		t.Error("Acquire with a zero ttl = nil, want an error")
	}
	if _, err := l.Claim(s.ctx, "a", longTTL, 0); err == nil {
		t.Error("Claim of at most 0 = nil, want an error")
	}
	//lint:ignore SA1012 a nil context is what is tested
	if _, err := l.Acquire(nil, "tx", "a", longTTL); err == nil { //nolint:staticcheck
		t.Error("Acquire with a nil context = nil, want an error")
	}
}
