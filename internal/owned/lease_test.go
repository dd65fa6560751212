package owned

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/otelpatterns/otelpatterns/journal"
)

// failingRenew is a journal whose renewals fail, as one that stopped
// answering.
type failingRenew struct{ *journal.Memory }

func (failingRenew) Renew(context.Context, string, time.Duration, []string) ([]string, error) {
	return nil, errors.New("the journal does not answer")
}

func memory(t *testing.T) *journal.Memory {
	t.Helper()
	m, err := journal.NewMemory()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

// Work whose lease cannot be renewed is handed to Lost once the lease has
// expired, not before: another runner may have taken it by then.
func TestLeasesLoseWorkPastExpiry(t *testing.T) {
	var s Set[*work]
	const ttl = 60 * time.Millisecond
	lost := make(chan string, 1)
	l, err := NewLeases("test", failingRenew{memory(t)}, "a", ttl, &s, LeaseHooks[*work]{
		Lost: func(id string, _ *work) { lost <- id },
	})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close(nil)
	_, done, _, err := l.Lease(context.Background(), "x")
	if err != nil {
		t.Fatal(err)
	}
	leased := time.Now()
	w := &work{}
	s.Claim("x", w)
	done(true)
	select {
	case id := <-lost:
		if id != "x" || time.Since(leased) < ttl {
			t.Fatalf("Lost(%q) %v after the lease; want x, after the %v lease expired", id, time.Since(leased), ttl)
		}
	case <-time.After(10 * ttl):
		t.Fatal("work whose lease could not be renewed was never handed to Lost")
	}
	s.Release("x", w)
	s.Done()
}

// A lease given up (done(false)) goes back at once; one whose work is
// live here is the live work's, and a second Lease joins it.
func TestLeaseGivenUpOrJoined(t *testing.T) {
	var s Set[*work]
	m := memory(t)
	l, err := NewLeases("test", m, "a", time.Minute, &s, LeaseHooks[*work]{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close(nil)
	ctx := context.Background()
	epoch, done, _, err := l.Lease(ctx, "x")
	if err != nil || epoch == 0 {
		t.Fatalf("Lease = %d, %v", epoch, err)
	}
	done(false)
	if _, err := m.Acquire(ctx, "x", "b", time.Minute); err != nil {
		t.Fatalf("another owner's Acquire after the lease was given up = %v, want it granted", err)
	}
	w := &work{}
	s.Claim("y", w)
	if _, _, live, err := l.Lease(ctx, "y"); err != nil || live != w {
		t.Fatalf("Lease of an ID with live work = %v, %v; want the live work", live, err)
	}
	if _, err := NewLeases("test", struct{ journal.Log }{m}, "a", time.Minute, &s, LeaseHooks[*work]{}); err == nil {
		t.Fatal("NewLeases on a journal that is not a Leaser = nil, want an error")
	}
	s.Release("y", w)
	s.Done()
}
