package twophase_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/otelpatterns/otelpatterns/journal"
	"github.com/otelpatterns/otelpatterns/retry"
	"github.com/otelpatterns/otelpatterns/twophase"
	"github.com/otelpatterns/otelpatterns/twophase/twophasehttp"
)

var errCrash = errors.New("coordinator crashed")

// world is one test's universe: a journal that outlives coordinators,
// participants that outlive them too, and the crash switch that stands
// for the coordinator's process dying at a chosen point.
type world struct {
	t       testing.TB
	mem     journal.Log
	mu      sync.Mutex
	crashed bool
	appends int
	calls   int
	// the crash point of the current coordinator: at this append (its
	// records kept or lost), or at this participant call (made or not).
	atAppend, atCall int
	keep, made       bool
	status           []statusAnswer // what Status answered, and when
	resources        map[string]*ledger
	parts            map[string]*faulty
	other            *twophase.Coordinator // another process's coordinator, for Status
	prepareTimeout   time.Duration         // of the world's coordinators
	// remote puts every participant behind the HTTP transport, on
	// loopback: the coordinator then calls them through clients.
	remote  bool
	clients map[string]twophase.Participant
	hc      *http.Client
}

// remoteWorld is a world whose participants are HTTP servers on loopback.
func remoteWorld(t testing.TB) *world {
	w := newWorld(t)
	w.remote, w.clients = true, map[string]twophase.Participant{}
	tr := &http.Transport{}
	w.hc = &http.Client{Transport: tr}
	t.Cleanup(tr.CloseIdleConnections)
	return w
}

// endpoint is how a coordinator reaches participant name.
func (w *world) endpoint(name string) twophase.Participant {
	p := w.participant(name)
	if !w.remote {
		return p
	}
	if c, ok := w.clients[name]; ok {
		return c
	}
	h, err := twophasehttp.Handler(p)
	if err != nil {
		w.t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	w.t.Cleanup(srv.Close)
	fast, _ := retry.New(retry.WithMaxAttempts(2), retry.WithConstantBackoff(0))
	c, err := twophasehttp.NewClient(name, srv.URL, twophasehttp.WithHTTPClient(w.hc), twophasehttp.WithRetry(fast))
	if err != nil {
		w.t.Fatal(err)
	}
	w.clients[name] = c
	return c
}

type statusAnswer struct {
	tx string
	d  twophase.Decision
}

func newWorld(t testing.TB) *world {
	mem, err := journal.NewMemory()
	if err != nil {
		t.Fatal(err)
	}
	return &world{t: t, mem: mem, resources: map[string]*ledger{}, parts: map[string]*faulty{}, prepareTimeout: 2 * time.Second}
}

// crashAt arms the crash switch for the next coordinator.
func (w *world) crashAt(atAppend, atCall int, keep, made bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.crashed, w.appends, w.calls = false, 0, 0
	w.atAppend, w.atCall, w.keep, w.made = atAppend, atCall, keep, made
}

// crashJournal is the coordinator's view of the journal: dead after the
// crash.
type crashJournal struct {
	journal.Log
	w *world
}

func (j crashJournal) Append(ctx context.Context, tx string, seq uint64, recs ...journal.Record) error {
	w := j.w
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.crashed {
		return errCrash
	}
	w.appends++
	if w.appends == w.atAppend {
		w.crashed = true
		if w.keep {
			_ = j.Log.Append(ctx, tx, seq, recs...)
		}
		return errCrash
	}
	return j.Log.Append(ctx, tx, seq, recs...)
}

// call passes a coordinator's call to a participant through the crash
// switch: after the crash, the dead coordinator calls no one.
func (w *world) call(fn func() error) error {
	w.mu.Lock()
	if w.crashed {
		w.mu.Unlock()
		return errCrash
	}
	w.calls++
	crashHere := w.calls == w.atCall
	if crashHere {
		w.crashed = true
		if !w.made {
			w.mu.Unlock()
			return errCrash
		}
	}
	w.mu.Unlock()
	return fn()
}

// ledger is a participant's resource: what it prepared, committed and
// aborted, and its votes.
type ledger struct {
	mu        sync.Mutex
	prepared  map[string]bool
	committed map[string]int
	aborted   map[string]int
	noVote    map[string]bool
}

func newLedger() *ledger {
	return &ledger{prepared: map[string]bool{}, committed: map[string]int{}, aborted: map[string]int{}, noVote: map[string]bool{}}
}

// times returns how many times tx was committed and aborted here.
func (l *ledger) times(tx string) (committed, aborted int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.committed[tx], l.aborted[tx]
}

func (l *ledger) Prepare(ctx context.Context, tx string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.noVote[tx] {
		return errors.New("insufficient funds")
	}
	l.prepared[tx] = true
	return nil
}

func (l *ledger) Commit(ctx context.Context, tx string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.committed[tx]++
	return nil
}

func (l *ledger) Abort(ctx context.Context, tx string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.aborted[tx]++
	return nil
}

// faulty is a participant with faults to inject, behind the crash switch.
type faulty struct {
	*twophase.Local
	w           *world
	mu          sync.Mutex
	slow        map[string]bool // Prepare waits out its ctx
	commitFails map[string]int  // Commit fails this many more times
	duplicate   map[string]bool // Prepare is delivered twice
	askOther    map[string]bool // before voting, asks another coordinator's Status
	yes         map[string]bool // voted yes at least once
	onAbort     func(ctx context.Context)
}

func (w *world) participant(name string) *faulty {
	if p, ok := w.parts[name]; ok {
		return p
	}
	l := newLedger()
	local, err := twophase.NewLocal(name, l)
	if err != nil {
		w.t.Fatal(err)
	}
	p := &faulty{Local: local, w: w, slow: map[string]bool{}, commitFails: map[string]int{}, duplicate: map[string]bool{}, askOther: map[string]bool{}, yes: map[string]bool{}}
	w.parts[name], w.resources[name] = p, l
	return p
}

func (p *faulty) Prepare(ctx context.Context, tx string) error {
	return p.w.call(func() error {
		p.mu.Lock()
		slow, dup, ask := p.slow[tx], p.duplicate[tx], p.askOther[tx]
		p.mu.Unlock()
		if ask && p.w.other != nil {
			// A participant in doubt asks another coordinator process,
			// which does not have the transaction live.
			p.w.askStatus(p.w.other, tx)
		}
		if slow {
			<-ctx.Done()
			return ctx.Err()
		}
		err := p.Local.Prepare(ctx, tx)
		if dup {
			err = p.Local.Prepare(ctx, tx)
		}
		if err == nil {
			p.mu.Lock()
			p.yes[tx] = true
			p.mu.Unlock()
		}
		return err
	})
}

func (p *faulty) Commit(ctx context.Context, tx string) error {
	return p.w.call(func() error {
		p.mu.Lock()
		fail := p.commitFails[tx] > 0
		if fail {
			p.commitFails[tx]--
		}
		p.mu.Unlock()
		if fail {
			return errors.New("ledger busy")
		}
		return p.Local.Commit(ctx, tx)
	})
}

func (p *faulty) Abort(ctx context.Context, tx string) error {
	return p.w.call(func() error {
		if p.onAbort != nil {
			p.onAbort(ctx)
		}
		return p.Local.Abort(ctx, tx)
	})
}

// coordinator returns a coordinator on the world's journal that knows its
// participants, with a fast phase-2 policy.
func (w *world) coordinator(opts ...twophase.Option) *twophase.Coordinator {
	fast, err := retry.New(retry.WithMaxAttempts(4), retry.WithConstantBackoff(0))
	if err != nil {
		w.t.Fatal(err)
	}
	var ps []twophase.Participant
	for _, name := range slices.Sorted(mapsKeys(w.parts)) {
		ps = append(ps, w.endpoint(name))
	}
	c, err := twophase.NewCoordinator(crashJournal{Log: w.mem, w: w}, append([]twophase.Option{
		twophase.WithPhase2Retry(fast), twophase.WithPrepareTimeout(w.prepareTimeout), twophase.WithParticipants(ps...),
	}, opts...)...)
	if err != nil {
		w.t.Fatal(err)
	}
	return c
}

func mapsKeys[V any](m map[string]V) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// askStatus records what c answers about tx now.
func (w *world) askStatus(c *twophase.Coordinator, tx string) {
	d, err := c.Status(context.Background(), tx)
	if err != nil {
		return
	}
	w.mu.Lock()
	w.status = append(w.status, statusAnswer{tx, d})
	w.mu.Unlock()
}

// settle recovers with a coordinator that does not crash, and lets every
// participant resolve what it still has in doubt.
func (w *world) settle() {
	w.crashAt(0, 0, false, false)
	c := w.coordinator()
	if _, err := c.Recover(context.Background()); err != nil {
		w.t.Fatalf("final Recover: %v", err)
	}
	for _, p := range w.parts {
		if err := p.Resolve(context.Background(), c.Status); err != nil {
			w.t.Fatalf("resolve: %v", err)
		}
	}
	if err := c.Close(context.Background()); err != nil {
		w.t.Fatal(err)
	}
}

// check asserts atomicity for every transaction the world has seen.
func (w *world) check(scenario string, txs ...string) {
	w.t.Helper()
	ctx := context.Background()
	pending, err := w.mem.Pending(ctx)
	if err != nil || len(pending) != 0 {
		w.t.Fatalf("%s: transactions still pending after recovery: %q, %v", scenario, pending, err)
	}
	for _, tx := range txs {
		recs, err := w.mem.Load(ctx, tx)
		if err != nil {
			w.t.Fatal(err)
		}
		final := twophase.Aborted // no record at all: presumed abort
		if len(recs) > 0 {
			last := recs[len(recs)-1]
			if !last.End {
				w.t.Fatalf("%s: %s did not end", scenario, tx)
			}
			final, _ = twophase.ParseDecision(string(last.Payload))
		}
		var committed, aborted []string
		for name, l := range w.resources {
			l.mu.Lock()
			c, a := l.committed[tx], l.aborted[tx]
			l.mu.Unlock()
			if c > 1 || a > 1 {
				w.t.Fatalf("%s: %s: %s committed %d and aborted %d times", scenario, tx, name, c, a)
			}
			if c > 0 {
				committed = append(committed, name)
			}
			if a > 0 {
				aborted = append(aborted, name)
			}
			if p := w.parts[name]; final == twophase.Committed && slices.Contains(p.InDoubt(), tx) {
				w.t.Fatalf("%s: %s: %s is still in doubt", scenario, tx, name)
			}
		}
		if len(committed) > 0 && len(aborted) > 0 {
			w.t.Fatalf("%s: %s: %q committed while %q aborted", scenario, tx, committed, aborted)
		}
		if final == twophase.Committed {
			if len(committed) != len(w.resources) {
				w.t.Fatalf("%s: %s committed, but only %q applied it", scenario, tx, committed)
			}
			for name, p := range w.parts {
				p.mu.Lock()
				yes := p.yes[tx]
				p.mu.Unlock()
				if !yes {
					w.t.Fatalf("%s: %s committed without a yes vote from %s", scenario, tx, name)
				}
			}
		} else if len(committed) > 0 {
			w.t.Fatalf("%s: %s aborted, but %q committed", scenario, tx, committed)
		}
		for _, a := range w.status {
			if a.tx == tx && a.d != twophase.Pending && a.d != final {
				w.t.Fatalf("%s: %s: Status answered %v, but the decision is %v", scenario, tx, a.d, final)
			}
		}
	}
}

func names(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("bank-%c", 'a'+i)
	}
	return out
}
