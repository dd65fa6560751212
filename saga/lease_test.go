package saga_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/otelpatterns/otelpatterns/journal"
	"github.com/otelpatterns/otelpatterns/journal/journaltest"
	"github.com/otelpatterns/otelpatterns/saga"
)

// gate is a step that waits, once it has begun, until the test opens it.
type gate struct {
	began chan struct{}
	once  sync.Once
	open  chan struct{}
	runs  atomic.Int32
}

func newGate() *gate { return &gate{began: make(chan struct{}), open: make(chan struct{})} }

func (g *gate) step(name string) saga.Step[order] {
	return saga.Step[order]{Name: name, Action: func(ctx context.Context, o order) (order, error) {
		g.runs.Add(1)
		g.once.Do(func() { close(g.began) })
		select {
		case <-g.open:
			return o, nil
		case <-ctx.Done():
			return o, ctx.Err()
		}
	}}
}

func leased(owner string, ttl time.Duration) saga.Option { return saga.WithLeases(owner, ttl) }

func TestLeasesNeedALeaser(t *testing.T) {
	if _, err := saga.NewRunner(struct{ journal.Log }{memLog(t)}, leased("a", time.Second)); err == nil {
		t.Fatal("WithLeases on a journal that is not a journal.Leaser = nil, want an error")
	}
	for _, bad := range []saga.Option{leased("", time.Second), leased("a", 0)} {
		if _, err := saga.NewRunner(memLog(t), bad); err == nil {
			t.Fatal("WithLeases with an empty owner or no ttl = nil, want an error")
		}
	}
	r := newRunner(t, memLog(t))
	if err := r.Serve(context.Background()); err == nil {
		t.Fatal("Serve without leases = nil, want an error saying it needs WithLeases")
	}
}

// Two replicas on one journal: while the first drives a saga and renews
// its lease, the second neither recovers nor runs it; once the first is
// cut off, the second's Serve takes it over within about the lease time
// and a half and completes it, and the first's writes are fenced.
func TestLeasesTakeOverADeadReplica(t *testing.T) {
	const ttl = 300 * time.Millisecond
	shared := memLog(t)
	viewA := journaltest.NewCut(shared)
	l := newLedger()
	wait := newGate()
	steps := []saga.Step[order]{l.step("reserve", nil), wait.step("wait"), l.step("charge", nil, "wait")}
	steps[1].After = []string{"reserve"}
	a := newRunner(t, viewA, leased("replica-a", ttl))
	b := newRunner(t, shared, leased("replica-b", ttl))
	onA, onB := mustRegister(t, a, "order", steps), mustRegister(t, b, "order", steps)
	ctx := context.Background()

	done := make(chan error, 1)
	go func() {
		_, _, err := onA.Run(ctx, "o-1", order{})
		done <- err
	}()
	<-wait.began
	time.Sleep(ttl) // past the first lease: it is the renewals that hold it now
	if reps, err := b.Recover(ctx); err != nil || len(reps) != 0 {
		t.Fatalf("the other replica's Recover while the owner renews = %+v, %v; want nothing taken", reps, err)
	}
	if _, _, err := onB.Run(ctx, "o-1", order{}); !errors.Is(err, journal.ErrLeased) {
		t.Fatalf("the other replica's Run of a leased saga = %v, want ErrLeased", err)
	}

	viewA.Cut()
	cut := time.Now()
	serveCtx, stop := context.WithCancel(ctx)
	served := make(chan error, 1)
	go func() { served <- b.Serve(serveCtx) }()
	close(wait.open)
	if err := <-done; err == nil {
		t.Fatal("the cut-off replica's Run = nil, want an error: its saga could not go on")
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		info, err := b.Lookup(ctx, "o-1")
		if err == nil && info.Outcome == saga.Completed {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the saga did not complete on the other replica: %+v, %v", info, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	took := time.Since(cut)
	stop()
	if err := <-served; !errors.Is(err, context.Canceled) {
		t.Fatalf("Serve after its ctx ended = %v, want context.Canceled", err)
	}
	if took > 3*ttl {
		t.Errorf("the take-over took %v, want about ttl and a half (%v), well under %v", took, ttl*3/2, 3*ttl)
	}
	if got := l.list(); len(got) != 2 || got[0] != "do reserve" || got[1] != "do charge" {
		t.Fatalf("effects = %q, want reserve and charge once each", got)
	}
}

// slowLoad is a journal whose Load takes a while, so that concurrent Runs
// of one ID all reach it before any of them begins the saga.
type slowLoad struct{ journal.Leaser }

func (s slowLoad) Load(ctx context.Context, txID string) ([]journal.Record, error) {
	time.Sleep(30 * time.Millisecond)
	return s.Leaser.Load(ctx, txID)
}

// A runner's own Runs of one ID take turns to lease it: the later ones
// join the first instead of fencing it off with a lease of their own.
func TestLeasesConcurrentRunsJoin(t *testing.T) {
	r := newRunner(t, slowLoad{memLog(t)}, leased("a", time.Minute))
	wait := newGate()
	s := mustRegister(t, r, "order", []saga.Step[order]{wait.step("wait")})
	ctx := context.Background()
	const runs = 8
	outcomes := make(chan error, runs)
	var started sync.WaitGroup
	started.Add(runs)
	for range runs {
		go func() {
			started.Done()
			started.Wait()
			_, _, err := s.Run(ctx, "o-1", order{})
			outcomes <- err
		}()
	}
	<-wait.began
	close(wait.open)
	for range runs {
		if err := <-outcomes; err != nil {
			t.Fatalf("a concurrent Run = %v, want the saga completed", err)
		}
	}
	if n := wait.runs.Load(); n != 1 {
		t.Fatalf("the step ran %d times, want once", n)
	}
}

// Close gives back the leases of the sagas it stopped, so another replica
// takes them over at once, not after the lease time.
func TestLeasesReleasedAtClose(t *testing.T) {
	shared := memLog(t)
	wait := newGate()
	steps := []saga.Step[order]{wait.step("wait")}
	a := newRunner(t, shared, leased("replica-a", time.Hour))
	b := newRunner(t, shared, leased("replica-b", time.Hour))
	onA := mustRegister(t, a, "order", steps)
	mustRegister(t, b, "order", steps)
	ctx := context.Background()
	go func() { _, _, _ = onA.Run(ctx, "o-1", order{}) }()
	<-wait.began
	short, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	if err := a.Close(short); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Close of a runner whose saga waits = %v, want the deadline", err)
	}
	close(wait.open)
	reps, err := b.Recover(ctx)
	if err != nil || len(reps) != 1 || reps[0].Outcome != saga.Completed {
		t.Fatalf("the other replica's Recover right after the Close = %+v, %v; want o-1 completed", reps, err)
	}
}
