package twophase_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.uber.org/goleak"

	"github.com/otelpatterns/otelpatterns/internal/telemetry/telemetrytest"
	"github.com/otelpatterns/otelpatterns/journal"
	"github.com/otelpatterns/otelpatterns/twophase"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestCommitAndAbort(t *testing.T) {
	w := newWorld(t)
	c := w.coordinator()
	defer c.Close(context.Background())
	a, b := w.participant("a"), w.participant("b")
	ctx := context.Background()
	if d, err := c.Execute(ctx, "t1", a, b); d != twophase.Committed || err != nil {
		t.Fatalf("Execute = %v, %v; want Committed", d, err)
	}
	w.resources["b"].noVote["t2"] = true
	d, err := c.Execute(ctx, "t2", a, b)
	var ve *twophase.VoteError
	if d != twophase.Aborted || !errors.As(err, &ve) || ve.Participant != "b" || !errors.Is(err, twophase.ErrVoteNo) || !errors.Is(err, twophase.ErrAborted) {
		t.Fatalf("Execute with a no vote = %v, %v; want Aborted with b's no vote", d, err)
	}
	if w.resources["a"].aborted["t2"] != 1 || w.resources["a"].committed["t2"] != 0 {
		t.Fatal("a was not rolled back")
	}
	// An ended ID returns its recorded decision, and calls no one.
	if d, err := c.Execute(ctx, "t1", a, b); d != twophase.Committed || err != nil {
		t.Fatalf("Execute of an ended ID = %v, %v", d, err)
	}
	if w.resources["a"].committed["t1"] != 1 {
		t.Fatal("a committed t1 twice")
	}
	for id, want := range map[string]twophase.Decision{"t1": twophase.Committed, "t2": twophase.Aborted} {
		if d, err := c.Status(ctx, id); d != want || err != nil {
			t.Fatalf("Status(%s) = %v, %v; want %v", id, d, err, want)
		}
	}
}

// Status of an ID that no coordinator began writes nothing, however many
// are asked, and leaves the ID free for the caller that will use it.
func TestStatusOfAnUnknownIDCostsNothing(t *testing.T) {
	w := newWorld(t)
	c := w.coordinator()
	defer c.Close(context.Background())
	ctx := context.Background()
	for i := range 1000 {
		id := fmt.Sprintf("random-%d", i)
		if d, err := c.Status(ctx, id); d != twophase.Pending || !errors.Is(err, twophase.ErrUnknown) {
			t.Fatalf("Status(%s) = %v, %v; want Pending, ErrUnknown", id, d, err)
		}
		if recs, err := w.mem.Load(ctx, id); len(recs) != 0 || err != nil {
			t.Fatalf("Status(%s) wrote %d records (%v)", id, len(recs), err)
		}
	}
	if p, _ := w.mem.Pending(ctx); len(p) != 0 {
		t.Fatalf("Status left transactions in the journal: %q", p)
	}
	if d, err := c.Execute(ctx, "random-7", w.participant("a"), w.participant("b")); d != twophase.Committed || err != nil {
		t.Fatalf("Execute of an ID that Status was asked about = %v, %v", d, err)
	}
	if _, err := c.Status(ctx, ""); err == nil {
		t.Fatal("Status of an empty ID answered")
	}
}

func TestSlowVoteAborts(t *testing.T) {
	w := newWorld(t)
	w.prepareTimeout = 20 * time.Millisecond
	c := w.coordinator()
	defer c.Close(context.Background())
	a, b := w.participant("a"), w.participant("b")
	b.slow["t1"] = true
	start := time.Now()
	d, err := c.Execute(context.Background(), "t1", a, b)
	if d != twophase.Aborted || !errors.Is(err, twophase.ErrUnreachable) || errors.Is(err, twophase.ErrVoteNo) {
		t.Fatalf("Execute with a vote past the timeout = %v, %v; want Aborted, unreachable and not a no", d, err)
	}
	if time.Since(start) > time.Second {
		t.Fatal("the prepare timeout did not bound the prepare phase")
	}
	// The late Prepare, when it comes, votes no.
	if err := b.Local.Prepare(context.Background(), "t1"); !errors.Is(err, twophase.ErrVoteNo) {
		t.Fatalf("a Prepare after the abort = %v, want a no vote", err)
	}
}

func TestCommitRetriedUntilAcknowledged(t *testing.T) {
	w := newWorld(t)
	c := w.coordinator(twophase.WithResolver(0, 0)) // 4 attempts, then Recover's
	defer c.Close(context.Background())
	a, b := w.participant("a"), w.participant("b")
	b.commitFails["t1"] = 3
	if d, err := c.Execute(context.Background(), "t1", a, b); d != twophase.Committed || err != nil {
		t.Fatalf("Execute = %v, %v", d, err)
	}
	b.commitFails["t2"] = 10 // more than the policy allows: in doubt, left to Recover
	d, err := c.Execute(context.Background(), "t2", a, b)
	if d != twophase.Committed || !errors.Is(err, twophase.ErrInDoubt) {
		t.Fatalf("Execute = %v, %v; want Committed and ErrInDoubt", d, err)
	}
	b.commitFails["t2"] = 0
	reports, err := c.Recover(context.Background())
	if err != nil || len(reports) != 1 || reports[0].Decision != twophase.Committed || reports[0].Err != nil {
		t.Fatalf("Recover = %+v, %v", reports, err)
	}
	if w.resources["b"].committed["t2"] != 1 {
		t.Fatal("Recover did not commit b")
	}
}

func TestCancelBeforeDecisionAborts(t *testing.T) {
	w := newWorld(t)
	c, err := twophase.NewCoordinator(w.mem, twophase.WithPrepareTimeout(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(context.Background())
	a, b := w.participant("a"), w.participant("b")
	b.slow["t1"] = true
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	d, err := c.Execute(ctx, "t1", a, b)
	if d != twophase.Aborted || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Execute whose caller gave up before the decision = %v, %v", d, err)
	}
}

// blocking is a participant whose Commit waits until released.
type blocking struct {
	twophase.Participant
	release chan struct{}
	commits atomic.Int32
}

func (b *blocking) Commit(ctx context.Context, tx string) error {
	select {
	case <-b.release:
	case <-ctx.Done():
		return ctx.Err()
	}
	b.commits.Add(1)
	return b.Participant.Commit(ctx, tx)
}

func TestCancelAfterDecisionIsInDoubtAndPhase2GoesOn(t *testing.T) {
	w := newWorld(t)
	c := w.coordinator()
	slowB := &blocking{Participant: w.participant("b"), release: make(chan struct{})}
	ctx := cancelOnceCommitted(c, w.mem, "t1")
	d, err := c.Execute(ctx, "t1", w.participant("a"), slowB)
	if d != twophase.Committed || !errors.Is(err, twophase.ErrInDoubt) || !errors.Is(err, context.Canceled) {
		t.Fatalf("Execute = %v, %v; want Committed, in doubt", d, err)
	}
	close(slowB.release)
	if err := c.Close(context.Background()); err != nil { // waits for phase 2
		t.Fatal(err)
	}
	if slowB.commits.Load() != 1 {
		t.Fatal("phase 2 did not go on after the caller left")
	}
	if p, _ := w.mem.Pending(context.Background()); len(p) != 0 {
		t.Fatalf("pending after Close: %q", p)
	}
}

// cancelOnceCommitted returns a context that ends as soon as c's commit
// decision on tx is durable: a caller who gives up after the decision.
func cancelOnceCommitted(c *twophase.Coordinator, log journal.Log, tx string) context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		defer cancel()
		for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
			if d, _ := c.Status(context.Background(), tx); d == twophase.Committed {
				return
			}
		}
	}()
	return ctx
}

func TestCloseLeavesPhase2ToRecover(t *testing.T) {
	w := newWorld(t)
	never := &blocking{Participant: w.participant("b"), release: make(chan struct{})}
	c := w.coordinator()
	ctx := cancelOnceCommitted(c, w.mem, "t1")
	if d, err := c.Execute(ctx, "t1", w.participant("a"), never); d != twophase.Committed || !errors.Is(err, twophase.ErrInDoubt) {
		t.Fatalf("Execute = %v, %v", d, err)
	}
	closeCtx, cancelClose := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancelClose()
	if err := c.Close(closeCtx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Close = %v, want its ctx's error", err)
	}
	if err := c.Close(context.Background()); err != nil {
		t.Fatalf("second Close = %v, want nil: Close is idempotent", err)
	}
	if _, err := c.Execute(context.Background(), "t2", w.participant("a")); !errors.Is(err, twophase.ErrClosed) {
		t.Fatalf("Execute after Close = %v", err)
	}
	// A new coordinator recovers it with the participant that works.
	w.parts["b"] = w.participant("b")
	w.settle()
	w.check("recovered after Close", "t1")
}

func TestBadInput(t *testing.T) {
	w := newWorld(t)
	c := w.coordinator()
	defer c.Close(context.Background())
	a := w.participant("a")
	for _, tc := range []struct {
		id    string
		parts []twophase.Participant
		want  string
	}{
		{"", []twophase.Participant{a}, "ID"},
		{"t", nil, "no participants"},
		{"t", []twophase.Participant{a, a}, `two participants are named "a"`},
		{"t", []twophase.Participant{a, nil}, "nil"},
	} {
		if _, err := c.Execute(context.Background(), tc.id, tc.parts...); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Execute(%q, %d participants) = %v, want an error containing %q", tc.id, len(tc.parts), err, tc.want)
		}
	}
	if _, err := twophase.NewCoordinator(nil); err == nil {
		t.Error("NewCoordinator(nil) succeeded")
	}
	if _, err := twophase.NewCoordinator(w.mem, twophase.WithPrepareTimeout(0)); err == nil {
		t.Error("a zero prepare timeout was accepted")
	}
	if _, err := twophase.NewCoordinator(w.mem, twophase.WithParticipants(a, a)); err == nil {
		t.Error("duplicate WithParticipants were accepted")
	}
	if _, err := twophase.NewLocal("", nil); err == nil {
		t.Error("NewLocal without a name succeeded")
	}
}

func TestLocalRules(t *testing.T) {
	l := newLedger()
	p, _ := twophase.NewLocal("a", l)
	ctx := context.Background()
	if err := p.Abort(ctx, "unseen"); err != nil || len(l.aborted) != 0 {
		t.Fatalf("Abort of an unseen transaction = %v, calls %v", err, l.aborted)
	}
	if err := p.Prepare(ctx, "unseen"); !errors.Is(err, twophase.ErrVoteNo) {
		t.Fatalf("Prepare after the tombstone = %v, want a no", err)
	}
	if err := p.Commit(ctx, "never-prepared"); !errors.Is(err, twophase.ErrProtocol) {
		t.Fatalf("Commit without Prepare = %v", err)
	}
	_ = p.Prepare(ctx, "t")
	_ = p.Prepare(ctx, "t")
	_ = p.Commit(ctx, "t")
	_ = p.Commit(ctx, "t")
	if l.committed["t"] != 1 {
		t.Fatalf("repeated calls reached the resource: %d commits", l.committed["t"])
	}
	if err := p.Abort(ctx, "t"); !errors.Is(err, twophase.ErrProtocol) {
		t.Fatalf("Abort after Commit = %v", err)
	}
	// A prepared participant that lost its coordinator resolves itself.
	_ = p.Prepare(ctx, "doubt-c")
	_ = p.Prepare(ctx, "doubt-a")
	status := func(_ context.Context, id string) (twophase.Decision, error) {
		if id == "doubt-c" {
			return twophase.Committed, nil
		}
		return twophase.Aborted, nil
	}
	if err := p.Resolve(ctx, status); err != nil || len(p.InDoubt()) != 0 || l.committed["doubt-c"] != 1 || l.aborted["doubt-a"] != 1 {
		t.Fatalf("Resolve = %v; in doubt %q", err, p.InDoubt())
	}
}

func TestJournalSharedWithOtherRunners(t *testing.T) {
	w := newWorld(t)
	// A record of another runner (a saga, say) in the same journal.
	if err := w.mem.Append(context.Background(), "saga-1", 0, journal.Record{Kind: "saga.begin"}); err != nil {
		t.Fatal(err)
	}
	c := w.coordinator()
	defer c.Close(context.Background())
	if reports, err := c.Recover(context.Background()); err != nil || len(reports) != 0 {
		t.Fatalf("Recover = %+v, %v; want the saga left alone", reports, err)
	}
	if _, err := c.Execute(context.Background(), "saga-1", w.participant("a")); err == nil {
		t.Fatal("Execute of a saga's ID succeeded")
	}
}

// waitEnded waits until tx has ended in log.
func waitEnded(t *testing.T, log journal.Log, tx string) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		if p, err := log.Pending(context.Background()); err == nil && !slices.Contains(p, tx) {
			return
		}
	}
	t.Fatalf("%s did not end", tx)
}

// A transaction whose phase-2 policy gave up is re-driven by the
// coordinator's resolver until every participant acknowledges, and the
// in_doubt gauge falls back to zero.
func TestResolverFinishesWhatThePolicyGaveUp(t *testing.T) {
	rec := telemetrytest.NewRecorders(t)
	w := newWorld(t)
	a, b := w.participant("a"), w.participant("b")
	c := w.coordinator(twophase.WithResolver(time.Millisecond, 10*time.Millisecond), twophase.WithMeterProvider(rec.MeterProvider))
	defer c.Close(context.Background())
	b.commitFails["t1"] = 10 // 4 attempts, then 6 resolver rounds
	if d, err := c.Execute(context.Background(), "t1", a, b); d != twophase.Committed || !errors.Is(err, twophase.ErrInDoubt) {
		t.Fatalf("Execute = %v, %v; want Committed, in doubt", d, err)
	}
	if got := inDoubt(t, rec); got != 1 {
		t.Fatalf("in_doubt = %d after the policy gave up; want 1", got)
	}
	waitEnded(t, w.mem, "t1")
	if w.resources["b"].committed["t1"] != 1 || w.resources["a"].committed["t1"] != 1 {
		t.Fatal("the resolver did not commit both participants once")
	}
	if got := inDoubt(t, rec); got != 0 {
		t.Fatalf("in_doubt = %d after the resolver finished; want 0", got)
	}
}

// Close stops a resolver waiting to try again at once, and leaves the
// transaction to Recover.
func TestCloseStopsTheResolver(t *testing.T) {
	w := newWorld(t)
	a, b := w.participant("a"), w.participant("b")
	c := w.coordinator(twophase.WithResolver(time.Hour, time.Hour))
	b.commitFails["t1"] = 5
	if d, err := c.Execute(context.Background(), "t1", a, b); d != twophase.Committed || !errors.Is(err, twophase.ErrInDoubt) {
		t.Fatalf("Execute = %v, %v; want Committed, in doubt", d, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.Close(ctx); err != nil {
		t.Fatalf("Close = %v; a resolver waiting to try again stops at once", err)
	}
	if p, _ := w.mem.Pending(context.Background()); !slices.Equal(p, []string{"t1"}) {
		t.Fatalf("pending after Close = %q; want t1, for Recover", p)
	}
	w.settle()
	w.check("after the resolver stopped", "t1")
}

func TestWithResolverRejectsAnInvertedRange(t *testing.T) {
	mem, _ := journal.NewMemory()
	if _, err := twophase.NewCoordinator(mem, twophase.WithResolver(time.Minute, time.Second)); err == nil || !strings.Contains(err.Error(), "WithResolver") {
		t.Fatalf("NewCoordinator = %v; want an error naming WithResolver", err)
	}
}

func inDoubt(t *testing.T, rec telemetrytest.Recorders) int64 {
	t.Helper()
	m, ok := rec.Metrics(t)["otelpatterns.twophase.in_doubt"]
	if !ok {
		return 0
	}
	var n int64
	for _, p := range m.Data.(metricdata.Sum[int64]).DataPoints {
		n += p.Value
	}
	return n
}

// A nil context is an error from every call that takes one, never a panic.
func TestNilContextIsAnError(t *testing.T) {
	w := newWorld(t)
	c := w.coordinator()
	defer c.Close(context.Background())
	a := w.participant("a")
	var nilCtx context.Context
	for call, err := range map[string]error{
		"Execute": second(c.Execute(nilCtx, "t1", a)),
		"Status":  second(c.Status(nilCtx, "t1")),
		"Recover": second(c.Recover(nilCtx)),
		"Close":   c.Close(nilCtx),
		"Prepare": a.Local.Prepare(nilCtx, "t1"),
		"Commit":  a.Local.Commit(nilCtx, "t1"),
		"Abort":   a.Local.Abort(nilCtx, "t1"),
		"Resolve": a.Local.Resolve(nilCtx, c.Status),
	} {
		if err == nil || !strings.Contains(err.Error(), "nil context") {
			t.Errorf("%s(nil) = %v", call, err)
		}
	}
}

func second[T any](_ T, err error) error { return err }
