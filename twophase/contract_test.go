package twophase_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/baggage"
	"go.opentelemetry.io/otel/propagation"

	"github.com/otelpatterns/otelpatterns/internal/telemetry/telemetrytest"
	"github.com/otelpatterns/otelpatterns/journal"
	"github.com/otelpatterns/otelpatterns/twophase"
)

// The contracts that outside trials broke, each reproduced as it was seen.

// heldJournal holds back the appends of chosen kinds until released: a
// slow disk, or a hung one.
type heldJournal struct {
	journal.Log
	mu   sync.Mutex
	held map[string]*hold // by the first record's kind
}

type hold struct {
	entered chan struct{} // closed when an append of the kind arrives
	land    chan struct{} // closed to let it reach the journal
	landed  chan struct{} // closed once it has
	back    chan struct{} // closed to let it return to its caller
	once    [2]sync.Once
}

func holding(log journal.Log) *heldJournal {
	return &heldJournal{Log: log, held: map[string]*hold{}}
}

// hold makes the next append whose first record is of kind wait, before it
// reaches the journal and again before it returns.
func (j *heldJournal) hold(kind string) *hold {
	j.mu.Lock()
	defer j.mu.Unlock()
	h := &hold{entered: make(chan struct{}), land: make(chan struct{}), landed: make(chan struct{}), back: make(chan struct{})}
	j.held[kind] = h
	return h
}

// letLand lets the held append reach the journal, and holds its return.
func (h *hold) letLand() { h.once[0].Do(func() { close(h.land) }) }

// let lets the held append through.
func (h *hold) let() {
	h.letLand()
	h.once[1].Do(func() { close(h.back) })
}

func (j *heldJournal) Append(ctx context.Context, tx string, seq uint64, recs ...journal.Record) error {
	j.mu.Lock()
	h := j.held[recs[0].Kind]
	delete(j.held, recs[0].Kind)
	j.mu.Unlock()
	if h == nil {
		return j.Log.Append(ctx, tx, seq, recs...)
	}
	close(h.entered)
	<-h.land
	// The write was queued before the disk hung: it lands, whatever
	// became of ctx meanwhile.
	err := j.Log.Append(context.WithoutCancel(ctx), tx, seq, recs...)
	close(h.landed)
	<-h.back
	return err
}

func locals(t *testing.T, names ...string) ([]*twophase.Local, []*ledger, []twophase.Participant) {
	var ls []*twophase.Local
	var rs []*ledger
	var ps []twophase.Participant
	for _, n := range names {
		r := newLedger()
		l, err := twophase.NewLocal(n, r)
		if err != nil {
			t.Fatal(err)
		}
		ls, rs, ps = append(ls, l), append(rs, r), append(ps, l)
	}
	return ls, rs, ps
}

func await(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(10 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
	}
}

// A's commit decision is slow to land; p1 asks B, whose takeover append
// is slow too; p2 asks B meanwhile. Then A's commit lands, and B's abort
// is refused: B must not have answered Aborted to anyone, and p1 and p2
// both commit.
func TestStatusDuringTakeoverAnswersOnlyWhatIsDurable(t *testing.T) {
	mem, _ := journal.NewMemory()
	ja, jb := holding(mem), holding(mem)
	commit := ja.hold("2pc.commit")
	owner := jb.hold("2pc.owner")
	ls, rs, ps := locals(t, "p1", "p2")
	a, _ := twophase.NewCoordinator(ja, twophase.WithParticipants(ps...))
	b, _ := twophase.NewCoordinator(jb, twophase.WithParticipants(ps...))
	defer func() {
		commit.let()
		owner.let()
		_ = a.Close(context.Background())
		_ = b.Close(context.Background())
	}()

	executed := make(chan struct{})
	go func() {
		defer close(executed)
		_, _ = a.Execute(context.Background(), "t1", ps...)
	}()
	await(t, commit.entered, "A's commit append")

	var wg sync.WaitGroup
	var mu sync.Mutex
	answers := map[string]twophase.Decision{}
	ask := func(l *twophase.Local) {
		wg.Go(func() {
			_ = l.Resolve(context.Background(), func(ctx context.Context, id string) (twophase.Decision, error) {
				d, err := b.Status(ctx, id)
				mu.Lock()
				answers[l.Name()] = d
				mu.Unlock()
				return d, err
			})
		})
	}
	ask(ls[0])
	await(t, owner.entered, "B's takeover append")
	ask(ls[1])
	time.Sleep(50 * time.Millisecond) // p2's question reaches B
	commit.letLand()                  // A's commit is durable; A does not know it yet
	await(t, commit.landed, "A's commit decision")
	owner.let() // B's takeover conflicts with it
	wg.Wait()
	commit.let() // A learns its decision and sends it
	await(t, executed, "A's Execute")
	_ = a.Close(context.Background())

	for _, r := range rs {
		if c, ab := r.times("t1"); c != 1 || ab != 0 {
			t.Errorf("a participant committed %d and aborted %d times; B answered %v", c, ab, answers)
		}
	}
	for name, d := range answers {
		if d == twophase.Aborted {
			t.Errorf("B answered %s Aborted, but the journal's decision is commit", name)
		}
	}
}

// Several participants resolving through the same coordinator at once
// race on nothing.
func TestConcurrentResolveThroughOneCoordinator(t *testing.T) {
	for range 20 {
		mem, _ := journal.NewMemory()
		ls, rs, ps := locals(t, "p1", "p2", "p3")
		crashed := holding(mem)
		decision := crashed.hold("2pc.commit") // A hangs before its decision lands
		a, _ := twophase.NewCoordinator(crashed, twophase.WithParticipants(ps...))
		go func() { _, _ = a.Execute(context.Background(), "t1", ps...) }()
		await(t, decision.entered, "A's commit append")

		b, _ := twophase.NewCoordinator(mem, twophase.WithParticipants(ps...))
		var wg sync.WaitGroup
		for _, l := range ls {
			wg.Go(func() { _ = l.Resolve(context.Background(), b.Status) })
		}
		wg.Wait()
		_ = b.Close(context.Background())
		for _, r := range rs {
			if c, ab := r.times("t1"); c != 0 || ab != 1 {
				t.Fatalf("a participant committed %d and aborted %d times", c, ab)
			}
		}
		decision.let()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_ = a.Close(ctx)
		cancel()
	}
}

// With a journal that hangs, Execute and Close return when their ctx ends.
func TestHungJournalReturnsWithTheContext(t *testing.T) {
	for _, kind := range []string{"2pc.begin", "2pc.commit"} {
		t.Run(kind, func(t *testing.T) {
			mem, _ := journal.NewMemory()
			j := holding(mem)
			h := j.hold(kind)
			defer h.let()
			_, rs, ps := locals(t, "p1", "p2")
			c, _ := twophase.NewCoordinator(j, twophase.WithParticipants(ps...))
			ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
			defer cancel()
			returned := make(chan struct{})
			var d twophase.Decision
			var err error
			go func() {
				defer close(returned)
				d, err = c.Execute(ctx, "t1", ps...)
			}()
			select {
			case <-returned:
			case <-time.After(2 * time.Second):
				t.Fatal("Execute had not returned 2s after its 200ms ctx ended")
			}
			if !errors.Is(err, context.DeadlineExceeded) || d == twophase.Committed {
				t.Errorf("Execute = %v, %v; want the ctx's error, and no commit", d, err)
			}
			if kind == "2pc.begin" && (d != twophase.Aborted || !errors.Is(err, twophase.ErrAborted)) {
				t.Errorf("Execute = %v, %v; before the decision the transaction aborts", d, err)
			}

			cctx, ccancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
			defer ccancel()
			closed := make(chan error, 1)
			go func() { closed <- c.Close(cctx) }()
			select {
			case err := <-closed:
				if !errors.Is(err, context.DeadlineExceeded) {
					t.Errorf("Close = %v; want the ctx's error", err)
				}
			case <-time.After(2 * time.Second):
				t.Fatal("Close had not returned 2s after its 200ms ctx ended")
			}
			h.let() // the disk comes back: the held record lands
			for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(time.Millisecond) {
				if recs, _ := mem.Load(context.Background(), "t1"); len(recs) > 0 && (kind == "2pc.begin" || durableDecision(mem, "t1") != twophase.Pending) {
					break
				}
				if time.Now().After(deadline) {
					t.Fatal("the held record never landed")
				}
			}
			// What Execute said holds after recovery: an abandoned
			// transaction aborts, one whose commit was being written is
			// what the journal says.
			r, _ := twophase.NewCoordinator(mem, twophase.WithParticipants(ps...))
			if _, err := r.Recover(context.Background()); err != nil {
				t.Fatal(err)
			}
			_ = r.Close(context.Background())
			final := durableDecision(mem, "t1")
			if kind == "2pc.begin" && final != twophase.Aborted {
				t.Fatalf("the transaction whose caller was told Aborted is %v", final)
			}
			for i, r := range rs {
				committed, aborted := r.times("t1")
				if (final == twophase.Committed) != (committed == 1) || committed > 1 || aborted > 1 || committed+aborted > 1 {
					t.Fatalf("p%d committed %d and aborted %d times; the decision is %v", i+1, committed, aborted, final)
				}
			}
		})
	}
}

// The phase-2 calls of a recovered transaction carry the baggage of the
// caller that began it.
func TestRecoveryCarriesBaggage(t *testing.T) {
	w := newWorld(t)
	prop := twophase.WithPropagators(propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}))
	for _, n := range names(2) {
		w.participant(n)
	}
	var mu sync.Mutex
	var seen []string
	for _, p := range w.parts {
		p.onAbort = func(ctx context.Context) {
			mu.Lock()
			seen = append(seen, baggage.FromContext(ctx).Member("tenant").Value())
			mu.Unlock()
		}
	}
	w.crashAt(2, 0, false, false) // the commit decision is lost
	member, _ := baggage.NewMember("tenant", "acme")
	bag, _ := baggage.New(member)
	ctx := baggage.ContextWithBaggage(context.Background(), bag)
	var ps []twophase.Participant
	for _, n := range names(2) {
		ps = append(ps, w.endpoint(n))
	}
	first := w.coordinator(prop)
	_, _ = first.Execute(ctx, "t1", ps...)
	_ = first.Close(context.Background())

	w.crashAt(0, 0, false, false)
	second := w.coordinator(prop)
	if _, err := second.Recover(context.Background()); err != nil {
		t.Fatal(err)
	}
	_ = second.Close(context.Background())
	mu.Lock()
	defer mu.Unlock()
	if len(seen) != 2 || seen[0] != "acme" || seen[1] != "acme" {
		t.Fatalf("the recovered Aborts carried tenant %q; want acme on both", seen)
	}
}

// A no vote over HTTP says who voted no, and why, once.
func TestVoteErrorSaysEachThingOnce(t *testing.T) {
	for _, remote := range []bool{false, true} {
		w := newWorld(t)
		if remote {
			w = remoteWorld(t)
		}
		w.participant("ledger-a")
		w.participant("ledger-b")
		w.resources["ledger-a"].noVote["t9"] = true
		c := w.coordinator()
		d, err := c.Execute(context.Background(), "t9", w.endpoint("ledger-a"), w.endpoint("ledger-b"))
		_ = c.Close(context.Background())
		want := `twophase: "t9" aborted: ledger-a voted no: insufficient funds`
		if d != twophase.Aborted || err == nil || err.Error() != want || !errors.Is(err, twophase.ErrVoteNo) {
			t.Errorf("remote %t: Execute = %v, %v; want %q", remote, d, err, want)
		}
	}
}

// A takeover that lands before A's commit decision fences it: A's Execute
// answers with the journal's abort, not with the journal's refusal.
func TestFencedCommitAnswersTheJournalsDecision(t *testing.T) {
	mem, _ := journal.NewMemory()
	ja := holding(mem)
	commit := ja.hold("2pc.commit")
	_, rs, ps := locals(t, "p1", "p2")
	a, _ := twophase.NewCoordinator(ja, twophase.WithParticipants(ps...))
	b, _ := twophase.NewCoordinator(mem, twophase.WithParticipants(ps...))
	var d twophase.Decision
	var err error
	executed := make(chan struct{})
	go func() {
		defer close(executed)
		d, err = a.Execute(context.Background(), "t1", ps...)
	}()
	await(t, commit.entered, "A's commit append")
	if got, serr := b.Status(context.Background(), "t1"); got != twophase.Aborted || serr != nil {
		t.Fatalf("B's Status = %v, %v; want its durable abort", got, serr)
	}
	commit.let()
	await(t, executed, "A's Execute")
	if d != twophase.Aborted || !errors.Is(err, twophase.ErrAborted) {
		t.Fatalf("Execute = %v, %v; want Aborted, ErrAborted", d, err)
	}
	_ = a.Close(context.Background())
	_ = b.Close(context.Background())
	for _, r := range rs {
		if c, _ := r.times("t1"); c != 0 {
			t.Error("a participant committed")
		}
	}
}

// A caller's cancellation cause reaches Execute's error, and the error
// still matches the ctx's.
func TestCancelCauseIsKept(t *testing.T) {
	w := newWorld(t)
	c, _ := twophase.NewCoordinator(w.mem, twophase.WithPrepareTimeout(time.Minute))
	defer c.Close(context.Background())
	a, b := w.participant("a"), w.participant("b")
	b.slow["t1"] = true
	why := errors.New("the client went away")
	ctx, cancel := context.WithTimeoutCause(context.Background(), 20*time.Millisecond, why)
	defer cancel()
	d, err := c.Execute(ctx, "t1", a, b)
	if d != twophase.Aborted || !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, why) || !errors.Is(err, twophase.ErrAborted) {
		t.Fatalf("Execute = %v, %v; want Aborted, matching the deadline and its cause", d, err)
	}
}

// A transaction whose participant no coordinator here knows is aborted
// once, durably, so that Status can answer; later Recovers write nothing
// more, and the in_doubt gauge stays at zero.
func TestRecoverWithAnUnknownParticipantWritesOnce(t *testing.T) {
	rec := telemetrytest.NewRecorders(t)
	mem, _ := journal.NewMemory()
	_ = mem.Append(context.Background(), "t1", 0, journal.Record{Epoch: 1, Kind: "2pc.begin", Payload: []byte(`{"participants":["ghost"]}`)})
	c, _ := twophase.NewCoordinator(mem, twophase.WithMeterProvider(rec.MeterProvider))
	defer c.Close(context.Background())
	var sizes []int
	for range 3 {
		reports, err := c.Recover(context.Background())
		if err != nil || len(reports) != 1 || !errors.Is(reports[0].Err, twophase.ErrUnknownParticipant) {
			t.Fatalf("Recover = %+v, %v; want ErrUnknownParticipant", reports, err)
		}
		recs, _ := mem.Load(context.Background(), "t1")
		sizes = append(sizes, len(recs))
	}
	if sizes[0] != 3 || sizes[1] != 3 || sizes[2] != 3 {
		t.Fatalf("records after each Recover: %v; want the Begin and one owner and abort, no more", sizes)
	}
	if d, err := c.Status(context.Background(), "t1"); d != twophase.Aborted || err != nil {
		t.Fatalf("Status = %v, %v", d, err)
	}
	if got := inDoubt(t, rec); got != 0 {
		t.Fatalf("in_doubt = %d", got)
	}
}

// The in_doubt gauge counts the transactions a coordinator holds decided
// and unacknowledged: it returns to zero once they end, also when they
// went through Recover after the resolver was off.
func TestInDoubtReturnsToZero(t *testing.T) {
	rec := telemetrytest.NewRecorders(t)
	w := newWorld(t)
	a, b := w.participant("a"), w.participant("b")
	c := w.coordinator(twophase.WithResolver(0, 0), twophase.WithMeterProvider(rec.MeterProvider))
	defer c.Close(context.Background())
	b.commitFails["t1"] = 10
	if _, err := c.Execute(context.Background(), "t1", a, b); !errors.Is(err, twophase.ErrInDoubt) {
		t.Fatalf("Execute = %v; want in doubt", err)
	}
	b.commitFails["t1"] = 0
	if reports, err := c.Recover(context.Background()); err != nil || len(reports) != 1 || reports[0].Err != nil {
		t.Fatalf("Recover = %+v, %v", reports, err)
	}
	if got := inDoubt(t, rec); got != 0 {
		t.Fatalf("in_doubt = %d after the transaction ended", got)
	}
}
