package twophase_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/otelpatterns/otelpatterns/internal/telemetry/telemetrytest"
	"github.com/otelpatterns/otelpatterns/journal"
	"github.com/otelpatterns/otelpatterns/journal/journaltest"
	"github.com/otelpatterns/otelpatterns/retry"
	"github.com/otelpatterns/otelpatterns/twophase"
)

// held is a resource whose Prepare or Commit waits for the test's word.
type held struct {
	*ledger
	holdPrepare, holdCommit bool
	began                   chan struct{}
	once, opened            sync.Once
	open                    chan struct{}
}

// release lets the held calls go on.
func (h *held) release() { h.opened.Do(func() { close(h.open) }) }

func newHeld(prepare, commit bool) *held {
	return &held{ledger: newLedger(), holdPrepare: prepare, holdCommit: commit, began: make(chan struct{}), open: make(chan struct{})}
}

func (h *held) wait(ctx context.Context) error {
	h.once.Do(func() { close(h.began) })
	select {
	case <-h.open:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (h *held) Prepare(ctx context.Context, tx string) error {
	if h.holdPrepare {
		if err := h.wait(ctx); err != nil {
			return err
		}
	}
	return h.ledger.Prepare(ctx, tx)
}

func (h *held) Commit(ctx context.Context, tx string) error {
	if h.holdCommit {
		if err := h.wait(ctx); err != nil {
			return err
		}
	}
	return h.ledger.Commit(ctx, tx)
}

func local(t *testing.T, name string, r twophase.Resource) *twophase.Local {
	t.Helper()
	l, err := twophase.NewLocal(name, r)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func leasedCoordinator(t *testing.T, log journal.Log, owner string, ttl time.Duration, opts ...twophase.Option) *twophase.Coordinator {
	t.Helper()
	c, err := twophase.NewCoordinator(log, append([]twophase.Option{twophase.WithLeases(owner, ttl), twophase.WithPrepareTimeout(5 * time.Second)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close(context.Background()) })
	return c
}

func TestLeasesNeedALeaser(t *testing.T) {
	mem, err := journal.NewMemory()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := twophase.NewCoordinator(struct{ journal.Log }{mem}, twophase.WithLeases("a", time.Second)); err == nil {
		t.Fatal("WithLeases on a journal that is not a journal.Leaser = nil, want an error")
	}
	if _, err := twophase.NewCoordinator(mem, twophase.WithLeases("", time.Second)); err == nil {
		t.Fatal("WithLeases with an empty owner = nil, want an error")
	}
	c, err := twophase.NewCoordinator(mem)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(context.Background())
	if err := c.Serve(context.Background()); err == nil {
		t.Fatal("Serve without leases = nil, want an error saying it needs WithLeases")
	}
}

// Two coordinators on one journal. While the first drives a transaction
// and renews its lease, the second neither recovers it, nor executes it,
// nor aborts it through Status; once the first is cut off, the second's
// Serve takes it over and finishes it: committed at every participant if
// the commit decision was durable, aborted at every one if not.
func TestLeasesTakeOverADeadCoordinator(t *testing.T) {
	for _, decided := range []bool{false, true} {
		name := map[bool]string{false: "before the decision", true: "after the commit decision"}[decided]
		t.Run(name, func(t *testing.T) {
			const ttl = 300 * time.Millisecond
			shared, err := journal.NewMemory()
			if err != nil {
				t.Fatal(err)
			}
			viewA := journaltest.NewCut(shared)
			slow := newHeld(!decided, decided)
			fast := newLedger()
			ps := []twophase.Participant{local(t, "fast", fast), local(t, "slow", slow)}
			a := leasedCoordinator(t, viewA, "replica-a", ttl)
			b := leasedCoordinator(t, shared, "replica-b", ttl, twophase.WithParticipants(ps...))
			t.Cleanup(slow.release) // before the coordinators' Close, should the test fail
			ctx := context.Background()

			go func() { _, _ = a.Execute(ctx, "t1", ps...) }()
			<-slow.began
			time.Sleep(ttl) // past the first lease: the renewals hold it now
			if reps, err := b.Recover(ctx); err != nil || len(reps) != 0 {
				t.Fatalf("the other coordinator's Recover while the owner renews = %+v, %v; want nothing", reps, err)
			}
			if _, err := b.Execute(ctx, "t1", ps...); !errors.Is(err, journal.ErrLeased) {
				t.Fatalf("the other coordinator's Execute of a leased transaction = %v, want ErrLeased", err)
			}
			short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
			d, err := b.Status(short, "t1")
			cancel()
			switch {
			case decided && (d != twophase.Committed || err != nil):
				t.Fatalf("Status of a transaction decided and driven by another coordinator = %v, %v; want its durable decision", d, err)
			case !decided && (d != twophase.Pending || !errors.Is(err, context.DeadlineExceeded)):
				t.Fatalf("Status of an undecided transaction another coordinator drives = %v, %v; want Pending until ctx ends, not an abort", d, err)
			}

			viewA.Cut()
			serveCtx, stop := context.WithCancel(ctx)
			defer stop()
			go func() { _ = b.Serve(serveCtx) }()
			slow.release()
			want := twophase.Aborted
			if decided {
				want = twophase.Committed
			}
			deadline := time.Now().Add(10 * time.Second)
			for {
				d, err := b.Status(ctx, "t1")
				if err == nil && d == want {
					if recs, _ := shared.Load(ctx, "t1"); len(recs) > 0 && recs[len(recs)-1].End {
						break
					}
				}
				if time.Now().After(deadline) {
					t.Fatalf("t1 did not end %v on the other coordinator: Status = %v, %v", want, d, err)
				}
				time.Sleep(10 * time.Millisecond)
			}
			for _, l := range []*ledger{fast, slow.ledger} {
				c, ab := l.times("t1")
				if decided && (c != 1 || ab != 0) || !decided && c != 0 {
					t.Fatalf("a participant committed t1 %d times and aborted it %d times; want the decision, %v, everywhere", c, ab, want)
				}
			}
		})
	}
}

// leaseTelemetry makes a coordinator with leases claim an orphan, renew a
// live transaction's lease, and lose one, and returns what it emitted.
func leaseTelemetry(t *testing.T) telemetrytest.Emitted {
	t.Helper()
	rec := telemetrytest.NewRecorders(t)
	const ttl = 30 * time.Millisecond
	ctx := context.Background()
	mem, err := journal.NewMemory()
	if err != nil {
		t.Fatal(err)
	}
	quiet, err := retry.New(retry.WithMaxAttempts(4), retry.WithConstantBackoff(0)) // the retry package's metrics are its own
	if err != nil {
		t.Fatal(err)
	}
	opts := []twophase.Option{twophase.WithTracerProvider(rec.TracerProvider), twophase.WithMeterProvider(rec.MeterProvider), twophase.WithPhase2Retry(quiet)}
	p := local(t, "p", newLedger())
	// An orphan: begun with no lease, by a coordinator that is gone.
	if err := mem.Append(ctx, "orphan", 0, journal.Record{Epoch: 1, Kind: "2pc.begin", Payload: []byte(`{"participants":["p"]}`)}); err != nil {
		t.Fatal(err)
	}
	c := leasedCoordinator(t, mem, "replica", ttl, append(opts, twophase.WithParticipants(p))...)
	if reps, err := c.Recover(ctx); err != nil || len(reps) != 1 || reps[0].Decision != twophase.Aborted {
		t.Fatalf("Recover of the orphan = %+v, %v; want it aborted", reps, err)
	}
	slow := newHeld(true, false)
	go func() { time.Sleep(3 * ttl); slow.release() }() // across renewals
	if d, err := c.Execute(ctx, "renewed", local(t, "slow", slow)); d != twophase.Committed {
		t.Fatalf("a transaction across renewals = %v, %v", d, err)
	}
	losing := leasedCoordinator(t, lossy{mem}, "replica-2", ttl, opts...)
	stuck := newHeld(true, false)
	t.Cleanup(stuck.release)
	if _, err := losing.Execute(ctx, "lost", local(t, "stuck", stuck)); !errors.Is(err, twophase.ErrLeaseLost) && !errors.Is(err, twophase.ErrAborted) {
		t.Fatalf("Execute of a transaction whose lease is lost = %v, want it stopped", err)
	}
	return telemetrytest.Collect(t, rec.Spans, rec.Reader)
}

// lossy is a journal that reports every lease lost at its renewal, as if
// another coordinator had taken them all.
type lossy struct{ *journal.Memory }

func (l lossy) Renew(_ context.Context, _ string, _ time.Duration, ids []string) ([]string, error) {
	return ids, nil
}

// pausedA is coordinator A's view of the shared journal: A's process
// pauses (GC, VM freeze) just before its Begin reaches the journal, for
// longer than its lease; its renewal goroutine is paused with it.
type pausedA struct {
	*journal.Memory
	once      sync.Once
	duringGap func()
	resume    chan struct{}
}

func (p *pausedA) Append(ctx context.Context, id string, seq uint64, recs ...journal.Record) error {
	if seq == 0 {
		p.once.Do(p.duringGap)
	}
	return p.Memory.Append(ctx, id, seq, recs...)
}

func (p *pausedA) Renew(ctx context.Context, owner string, ttl time.Duration, ids []string) ([]string, error) {
	<-p.resume // paused with the rest of the process
	return p.Memory.Renew(ctx, owner, ttl, ids)
}

// An Execute whose Begin is refused because its lease expired and another
// coordinator leased and began the transaction meanwhile answers from the
// journal: it does not take over, unleased, what that coordinator drives.
// (Found by review: it used to, fencing the live coordinator.)
func TestLeasesRefusedBeginDoesNotTakeOver(t *testing.T) {
	shared, err := journal.NewMemory()
	if err != nil {
		t.Fatal(err)
	}
	slow := newHeld(true, false)
	p := local(t, "p", slow)
	b := leasedCoordinator(t, shared, "b", time.Hour, twophase.WithPrepareTimeout(300*time.Millisecond))
	const ttlA = 30 * time.Millisecond
	var bDecision twophase.Decision
	var bErr error
	bDone := make(chan struct{})
	var beginB journal.Record
	view := &pausedA{Memory: shared, resume: make(chan struct{})}
	view.duringGap = func() {
		time.Sleep(2 * ttlA) // A's lease expires in the journal
		go func() {          // a client retries the same transaction on replica B
			defer close(bDone)
			bDecision, bErr = b.Execute(context.Background(), "x", p)
		}()
		<-slow.began // B's Begin is durable and B is in prepare, under its lease
		recs, _ := shared.Load(context.Background(), "x")
		beginB = recs[0]
	}
	a := leasedCoordinator(t, view, "a", ttlA)
	t.Cleanup(func() { close(view.resume); slow.release() })

	d, err := a.Execute(context.Background(), "x", p)
	t.Logf("A's Execute = %v, %v", d, err)

	recs, _ := shared.Load(context.Background(), "x")
	for _, r := range recs {
		t.Logf("  seq %d epoch %d %s", r.Seq, r.Epoch, r.Kind)
	}
	// B never lost its lease (an hour; its renewals succeed), and A never
	// acquired one after B's: nothing above B's epoch may be in the journal.
	for _, r := range recs {
		if r.Epoch > beginB.Epoch {
			t.Errorf("A wrote %s at epoch %d, above the epoch %d of B's live lease: A took over, unleased, a transaction B was driving",
				r.Kind, r.Epoch, beginB.Epoch)
		}
	}
	slow.release()
	<-bDone
	t.Logf("B's Execute = %v, %v", bDecision, bErr)
}
