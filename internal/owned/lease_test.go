package owned

import (
	"context"
	"errors"
	"sync/atomic"
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

// hangingRenew is a journal whose renewals hang until their ctx ends.
type hangingRenew struct{ *journal.Memory }

func (hangingRenew) Renew(ctx context.Context, _ string, _ time.Duration, _ []string) ([]string, error) {
	<-ctx.Done()
	return nil, ctx.Err()
}

// Work whose lease cannot be renewed, because the journal fails or does not
// answer, is handed to Lost before its lease expires in the journal, so
// that no other runner can take it while it still runs here.
func TestLeasesLoseWorkBeforeExpiry(t *testing.T) {
	for name, wrap := range map[string]func(*journal.Memory) journal.Leaser{
		"failing": func(m *journal.Memory) journal.Leaser { return failingRenew{m} },
		"hanging": func(m *journal.Memory) journal.Leaser { return hangingRenew{m} },
	} {
		t.Run(name, func(t *testing.T) {
			m := memory(t)
			log := wrap(m)
			var s Set[*work]
			const ttl = 90 * time.Millisecond
			lost := make(chan time.Time, 1)
			l, err := NewLeases("test", log, "a", ttl, &s, LeaseHooks[*work]{
				Lost: func(string, *work) { lost <- time.Now() },
			})
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close(nil)
			time.Sleep(ttl / 18) // just after a renewal tick: the worst phase
			ctx := context.Background()
			_, done, _, err := l.Lease(ctx, "x")
			if err != nil {
				t.Fatal(err)
			}
			w := &work{}
			s.Claim("x", w)
			done(true)
			defer func() { s.Release("x", w); s.Done() }()
			var took time.Time
			for took.IsZero() { // another runner, as soon as the journal lets it
				if _, err := m.Acquire(ctx, "x", "b", time.Hour); err == nil {
					took = time.Now()
				}
				time.Sleep(time.Millisecond)
			}
			select {
			case at := <-lost:
				if at.After(took) {
					t.Fatalf("the work was handed to Lost %v after another runner took its lease", at.Sub(took))
				}
			case <-time.After(10 * ttl):
				t.Fatal("work whose lease could not be renewed was never handed to Lost")
			}
		})
	}
}

// A Recover of this runner that claimed a transaction while one of its own
// Leases was acquiring it for work about to go live gives back only what
// nothing drives here: the fresh lease stays this runner's.
func TestReleaseIdleSparesAConcurrentLease(t *testing.T) {
	m := memory(t)
	var s Set[*work]
	l, err := NewLeases("test", m, "a", time.Hour, &s, LeaseHooks[*work]{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close(nil)
	ctx := context.Background()
	if err := m.Append(ctx, "x", 0, journal.Record{Epoch: 1, Kind: "test.begin"}); err != nil { // unowned: claimable
		t.Fatal(err)
	}
	ids, _, err := l.Claim(ctx)
	if err != nil || len(ids) != 1 {
		t.Fatalf("Claim = %q, %v", ids, err)
	}
	_, done, _, err := l.Lease(ctx, "x") // RetryStuck, say, while Recover goes on
	if err != nil {
		t.Fatal(err)
	}
	released := make(chan struct{})
	go func() { l.ReleaseIdle(ids); close(released) }() // Recover's end, meanwhile
	w := &work{}
	s.Claim("x", w)
	done(true)
	<-released
	defer func() { s.Release("x", w); s.Done() }()
	if _, err := m.Acquire(ctx, "x", "b", time.Hour); !errors.Is(err, journal.ErrLeased) {
		t.Fatalf("another owner's Acquire of the live work = %v, want ErrLeased: its lease was given back", err)
	}
}

// flakyRenew is a journal whose renewals fail while fail is set.
type flakyRenew struct {
	*journal.Memory
	fail atomic.Bool
}

func (f *flakyRenew) Renew(ctx context.Context, owner string, ttl time.Duration, ids []string) ([]string, error) {
	if f.fail.Load() {
		return nil, errors.New("the journal does not answer")
	}
	return f.Memory.Renew(ctx, owner, ttl, ids)
}

// When this runner's own Recover claims work that is live here (its lease
// expired during an outage), the work is lost, not left fenced by its own
// runner, and the lease goes back for the next round to take it over.
func TestRecoverLosesOwnWorkItClaimed(t *testing.T) {
	m := &flakyRenew{Memory: memory(t)}
	var s Set[*work]
	lost := make(chan string, 1)
	const ttl = time.Hour // no renewal tick during the test
	l, err := NewLeases("test", m, "a", ttl, &s, LeaseHooks[*work]{Lost: func(id string, _ *work) { lost <- id }})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close(nil)
	ctx := context.Background()
	// x is live here under a lease that has already expired in the journal.
	if _, err := m.Acquire(ctx, "x", "a", time.Millisecond); err != nil {
		t.Fatal(err)
	}
	l.held("x", time.Now())
	if err := m.Append(ctx, "x", 0, journal.Record{Epoch: 1, Kind: "test.begin"}); err != nil {
		t.Fatal(err)
	}
	w := &work{}
	s.Claim("x", w)
	defer func() { s.Release("x", w); s.Done() }()
	time.Sleep(5 * time.Millisecond)
	_, err = Recover(ctx, &s, l, nil, func(context.Context, string, uint64) (*work, *struct{}, error) {
		t.Fatal("take was called for work live here")
		return nil, nil, nil
	}, func(context.Context, *work) (struct{}, error) { return struct{}{}, nil })
	if err != nil {
		t.Fatal(err)
	}
	select {
	case id := <-lost:
		if id != "x" {
			t.Fatalf("Lost(%q), want x", id)
		}
	default:
		t.Fatal("the live work that its own runner's claim fenced was not handed to Lost")
	}
	if _, err := m.Acquire(ctx, "x", "b", time.Hour); err != nil {
		t.Fatalf("another owner's Acquire after the claim was given back = %v, want it granted", err)
	}
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
