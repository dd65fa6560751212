package twophase_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/otelpatterns/otelpatterns/journal"
	"github.com/otelpatterns/otelpatterns/retry"
	"github.com/otelpatterns/otelpatterns/twophase"
)

// The interleaving explorer. Two coordinators, A and B, share a journal;
// A executes a transaction while participants in doubt ask A or B for its
// Status, B may recover, and A may crash or its caller give up. Every
// journal append and every participant call of either coordinator is a
// yield point: it blocks until the scheduler releases it. The scheduler
// runs inside a synctest bubble, so that it sees the moment at which every
// goroutine, the coordinators' own included, is blocked, and then releases
// one yield point (or injects one event) as the schedule chooses. A
// schedule is a sequence of choices: exhaustive search walks them all,
// random search draws them from a seeded source.

// An event is what the scheduler can do besides releasing a yield point.
type event string

const (
	crashA  event = "crash A"             // A's process dies: its calls fail from now on
	cancelA event = "A's caller gives up" // Execute's ctx is cancelled
	tick    event = "time passes"         // the clock jumps past the prepare timeout
	closeA  event = "A closes at once"    // A.Close with a ctx that has ended
)

// explore is one exploration's cast.
type explore struct {
	participants int
	actors       []actor // what runs beside A's Execute
	events       []event // events the schedule may inject, each once
}

// An actor is a participant or an operator doing something once, at a
// point the schedule chooses.
type actor struct {
	name string
	do   func(r *run) // runs on its own goroutine
}

// resolveVia is a participant in doubt asking coordinator c ("A" or "B")
// about what it has prepared, and acting on the answer.
func resolveVia(part int, c string) actor {
	return actor{name: fmt.Sprintf("p%d asks %s", part, c), do: func(r *run) {
		l := r.locals[part]
		_ = l.Resolve(context.Background(), func(ctx context.Context, id string) (twophase.Decision, error) {
			d, err := r.coord(c).Status(ctx, id)
			r.answered(c, id, d, err)
			return d, err
		})
	}}
}

// recoverB is B's operator running Recover.
func recoverB() actor {
	return actor{name: "B recovers", do: func(r *run) { _, _ = r.b.Recover(context.Background()) }}
}

// yieldPoint is a blocked call of a coordinator.
type yieldPoint struct {
	owner, label string
	release      chan bool // true: the owner has crashed, fail the call
}

// run is one interleaving.
type run struct {
	t      testing.TB
	mem    *journal.Memory
	ledger []*ledger
	locals []*twophase.Local
	a, b   *twophase.Coordinator

	mu      sync.Mutex
	waiting []*yieldPoint
	crashed map[string]bool
	failure string   // the first invariant broken, if any
	steps   []string // what the schedule did

	execDecision twophase.Decision
	execErr      error
	executed     bool
}

const exploreTx = "tx-1"

func (r *run) coord(name string) *twophase.Coordinator {
	if name == "A" {
		return r.a
	}
	return r.b
}

func (r *run) fail(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.failure == "" {
		r.failure = fmt.Sprintf(format, args...)
	}
}

// yield blocks the calling goroutine until the scheduler releases it; it
// fails at once, and after, once owner has crashed.
func (r *run) yield(owner, label string) error {
	r.mu.Lock()
	if r.crashed[owner] {
		r.mu.Unlock()
		return errCrash
	}
	y := &yieldPoint{owner: owner, label: owner + " " + label, release: make(chan bool, 1)}
	r.waiting = append(r.waiting, y)
	r.mu.Unlock()
	if <-y.release {
		return errCrash
	}
	return nil
}

// answered checks a Status answer when it is given: a decision must be
// durable already, and the one the journal has.
func (r *run) answered(c, id string, d twophase.Decision, err error) {
	if err != nil || d == twophase.Pending {
		return
	}
	if got := durableDecision(r.mem, id); got != d {
		r.fail("%s's Status answered %v while the journal's decision is %v", c, d, got)
	}
	r.mu.Lock()
	r.steps = append(r.steps, fmt.Sprintf("(%s answered %v)", c, d))
	r.mu.Unlock()
}

// durableDecision is the decision that tx's records hold.
func durableDecision(log journal.Log, tx string) twophase.Decision {
	recs, _ := log.Load(context.Background(), tx)
	d := twophase.Pending
	for _, rec := range recs {
		switch rec.Kind {
		case "2pc.commit":
			d = twophase.Committed
		case "2pc.abort":
			if d == twophase.Pending {
				d = twophase.Aborted
			}
		}
	}
	return d
}

// schedJournal is a coordinator's view of the shared journal: every
// append is a yield point.
type schedJournal struct {
	journal.Log
	r     *run
	owner string
}

func (j schedJournal) Append(ctx context.Context, tx string, seq uint64, recs ...journal.Record) error {
	kinds := make([]string, len(recs))
	for i, rec := range recs {
		kinds[i] = strings.TrimPrefix(rec.Kind, "2pc.")
	}
	if err := j.r.yield(j.owner, "append "+strings.Join(kinds, "+")); err != nil {
		return err
	}
	return j.Log.Append(ctx, tx, seq, recs...)
}

// schedParticipant is a coordinator's view of a participant: every call
// is a yield point, and a call whose ctx ended meanwhile fails.
type schedParticipant struct {
	*twophase.Local
	r     *run
	owner string
	yes   *bool
}

func (p schedParticipant) call(ctx context.Context, op string, fn func() error) error {
	if err := p.r.yield(p.owner, op+" "+p.Name()); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	return fn()
}

func (p schedParticipant) Prepare(ctx context.Context, tx string) error {
	return p.call(ctx, "prepare", func() error {
		err := p.Local.Prepare(ctx, tx)
		if err == nil {
			p.r.mu.Lock()
			*p.yes = true
			p.r.mu.Unlock()
		}
		return err
	})
}

func (p schedParticipant) Commit(ctx context.Context, tx string) error {
	return p.call(ctx, "commit", func() error { return p.Local.Commit(ctx, tx) })
}

func (p schedParticipant) Abort(ctx context.Context, tx string) error {
	return p.call(ctx, "abort", func() error { return p.Local.Abort(ctx, tx) })
}

// play runs one interleaving of e, asking choose(n) for each of the
// schedule's choices among n. It returns the schedule's steps and the
// first invariant broken, if any.
//
// A goroutine blocked on anything but the scheduler or another bubbled
// goroutine, such as a mutex held across a yield point, keeps the bubble
// from ever being idle: after hangAfter of real time the interleaving
// counts as a hang, and the test fails with the schedule so far.
func (e explore) play(t testing.TB, choose func(n int) int) (steps []string, failure string) {
	var current atomic.Pointer[run]
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		synctest.Test(t.(*testing.T), func(t *testing.T) {
			steps, failure = e.playInBubble(t, choose, &current)
		})
	}()
	select {
	case <-finished:
		return steps, failure
	case <-time.After(hangAfter):
		r := current.Load()
		r.mu.Lock()
		defer r.mu.Unlock()
		return slices.Clone(r.steps), "hang: goroutines are blocked outside the scheduler's yield points (a lock held across a journal or participant call?)"
	}
}

const hangAfter = 20 * time.Second

func (e explore) playInBubble(t testing.TB, choose func(n int) int, current *atomic.Pointer[run]) ([]string, string) {
	mem, err := journal.NewMemory()
	if err != nil {
		t.Fatal(err)
	}
	r := &run{t: t, mem: mem, crashed: map[string]bool{}}
	current.Store(r)
	yes := make([]bool, e.participants)
	byOwner := map[string][]twophase.Participant{}
	for i := range e.participants {
		l := newLedger()
		local, err := twophase.NewLocal(fmt.Sprintf("p%d", i), l)
		if err != nil {
			t.Fatal(err)
		}
		r.ledger, r.locals = append(r.ledger, l), append(r.locals, local)
		for _, owner := range []string{"A", "B"} {
			byOwner[owner] = append(byOwner[owner], schedParticipant{Local: local, r: r, owner: owner, yes: &yes[i]})
		}
	}
	fast, _ := retry.New(retry.WithMaxAttempts(2), retry.WithConstantBackoff(0))
	coordinator := func(owner string) *twophase.Coordinator {
		c, err := twophase.NewCoordinator(schedJournal{Log: mem, r: r, owner: owner},
			twophase.WithParticipants(byOwner[owner]...), twophase.WithPhase2Retry(fast),
			twophase.WithPrepareTimeout(time.Second), twophase.WithResolver(0, 0))
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	r.a, r.b = coordinator("A"), coordinator("B")

	// The cast: A's Execute and the actors, each starting at a yield point.
	execCtx, cancelExec := context.WithCancel(context.Background())
	defer cancelExec()
	var wg sync.WaitGroup
	start := func(name string, fn func()) {
		wg.Go(func() {
			if r.yield("start", name) == nil {
				fn()
			}
		})
	}
	wg.Go(func() {
		d, err := r.a.Execute(execCtx, exploreTx, byOwner["A"]...)
		r.mu.Lock()
		r.execDecision, r.execErr, r.executed = d, err, true
		r.mu.Unlock()
	})
	for _, a := range e.actors {
		start(a.name, func() { a.do(r) })
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()

	used := map[event]bool{}
	closing := false
loop:
	for idle := 0; ; {
		synctest.Wait()
		r.mu.Lock()
		slices.SortStableFunc(r.waiting, func(x, y *yieldPoint) int { return strings.Compare(x.label, y.label) })
		var choices []string
		for _, y := range r.waiting {
			choices = append(choices, y.label)
		}
		for _, ev := range e.events {
			if !used[ev] && len(choices) > 0 {
				choices = append(choices, string(ev))
			}
		}
		r.mu.Unlock()
		if len(choices) == 0 {
			select {
			case <-done:
				if !closing { // every actor is done: close both coordinators
					closing = true
					wg.Go(func() {
						_ = r.a.Close(context.Background())
						_ = r.b.Close(context.Background())
					})
					done = make(chan struct{})
					go func() { wg.Wait(); close(done) }()
					continue
				}
			default:
				if idle++; idle > 100 {
					r.fail("hang: nothing to release, and not every call has returned")
					cancelExec()
					r.mu.Lock()
					r.crashed["A"], r.crashed["B"], r.crashed["start"] = true, true, true
					r.mu.Unlock()
					<-done
					break loop
				}
				time.Sleep(time.Second) // a timer is due: let the fake clock run
				continue
			}
			break loop
		}
		idle = 0
		c := choose(len(choices))
		r.mu.Lock()
		r.steps = append(r.steps, choices[c])
		if c < len(r.waiting) {
			y := r.waiting[c]
			r.waiting = slices.Delete(r.waiting, c, c+1)
			y.release <- r.crashed[y.owner]
			r.mu.Unlock()
			continue
		}
		ev := event(choices[c])
		used[ev] = true
		switch ev {
		case crashA:
			r.crashed["A"] = true
			r.waiting = slices.DeleteFunc(r.waiting, func(y *yieldPoint) bool {
				if y.owner == "A" {
					y.release <- true
				}
				return y.owner == "A"
			})
			r.mu.Unlock()
		case cancelA:
			r.mu.Unlock()
			cancelExec()
		case tick:
			r.mu.Unlock()
			time.Sleep(2 * time.Second)
		case closeA:
			r.mu.Unlock()
			wg.Go(func() {
				ctx, cancel := context.WithCancel(context.Background())
				cancel()
				_ = r.a.Close(ctx)
			})
		}
	}
	if r.failure != "" {
		return r.steps, r.failure
	}
	r.settle(yes)
	return r.steps, r.failure
}

// settle finishes what the interleaving left with a coordinator that
// neither yields nor crashes, lets every participant resolve, and checks
// the invariants.
func (r *run) settle(yes []bool) {
	ctx := context.Background()
	ps := make([]twophase.Participant, len(r.locals))
	for i, l := range r.locals {
		ps[i] = l
	}
	c, err := twophase.NewCoordinator(r.mem, twophase.WithParticipants(ps...))
	if err != nil {
		r.t.Fatal(err)
	}
	if _, err := c.Recover(ctx); err != nil {
		r.fail("final Recover: %v", err)
	}
	for _, l := range r.locals {
		if err := l.Resolve(ctx, c.Status); err != nil {
			r.fail("final resolve: %v", err)
		}
	}
	_ = c.Close(ctx)

	if p, _ := r.mem.Pending(ctx); len(p) != 0 {
		r.fail("not every transaction ended: %q", p)
	}
	final := durableDecision(r.mem, exploreTx)
	if final == twophase.Pending { // no record at all, which no Prepare followed
		final = twophase.Aborted
	}
	var committed, aborted []int
	for i, l := range r.ledger {
		l.mu.Lock()
		if l.committed[exploreTx] > 0 {
			committed = append(committed, i)
		}
		if l.aborted[exploreTx] > 0 {
			aborted = append(aborted, i)
		}
		l.mu.Unlock()
	}
	switch {
	case len(committed) > 0 && len(aborted) > 0:
		r.fail("participants %v committed while %v aborted", committed, aborted)
	case final == twophase.Committed && len(committed) != len(r.ledger):
		r.fail("the decision is commit, but only %v committed", committed)
	case final != twophase.Committed && len(committed) > 0:
		r.fail("the decision is %v, but %v committed", final, committed)
	case final == twophase.Committed && slices.Contains(yes, false):
		r.fail("committed without every yes vote: %v", yes)
	}
	r.mu.Lock()
	d, err, executed := r.execDecision, r.execErr, r.executed
	r.mu.Unlock()
	switch {
	case !executed:
		r.fail("Execute never returned")
	case d != twophase.Pending && d != final:
		r.fail("Execute returned %v (%v), but the decision is %v", d, err, final)
	case d == twophase.Committed && err != nil && !errors.Is(err, twophase.ErrInDoubt):
		r.fail("Execute returned Committed with an error that is not in doubt: %v", err)
	case d == twophase.Aborted && !errors.Is(err, twophase.ErrAborted):
		r.fail("Execute returned Aborted with an error that is not ErrAborted: %v", err)
	case d == twophase.Pending && !errors.Is(err, twophase.ErrInDoubt) && !errors.Is(err, errCrash) && !errors.Is(err, twophase.ErrClosed):
		// Pending is for an outcome the caller cannot know yet; a crashed
		// process returns nothing at all.
		r.fail("Execute returned Pending with an error that is neither in doubt nor the crash: %v", err)
	}
	for _, l := range r.locals {
		if final != twophase.Pending && slices.Contains(l.InDoubt(), exploreTx) {
			r.fail("%s is still in doubt", l.Name())
		}
	}
}

// dfs enumerates every schedule: each run replays a prefix of choices and
// takes the first option after it; next moves to the following schedule.
type dfs struct {
	path, widths []int
	pos          int
}

func (d *dfs) choose(n int) int {
	if d.pos == len(d.path) {
		d.path, d.widths = append(d.path, 0), append(d.widths, n)
	}
	d.widths[d.pos] = n
	c := min(d.path[d.pos], n-1)
	d.pos++
	return c
}

func (d *dfs) next() bool {
	d.path, d.widths = d.path[:d.pos], d.widths[:d.pos]
	d.pos = 0
	for i := len(d.path) - 1; i >= 0; i-- {
		if d.path[i]+1 < d.widths[i] {
			d.path[i]++
			d.path, d.widths = d.path[:i+1], d.widths[:i+1]
			return true
		}
	}
	return false
}

func report(t *testing.T, steps []string, failure string) {
	t.Helper()
	t.Fatalf("%s\nschedule:\n  %s", failure, strings.Join(steps, "\n  "))
}

// TestExploreExhaustive walks every interleaving of the smallest casts.
func TestExploreExhaustive(t *testing.T) {
	for _, e := range []explore{
		// Two participants in doubt ask B while A decides: the takeover race.
		{participants: 2, actors: []actor{resolveVia(0, "B"), resolveVia(1, "B")}},
		// One asks B, one asks A, and A may crash.
		{participants: 2, actors: []actor{resolveVia(0, "B"), resolveVia(1, "A")}, events: []event{crashA}},
		// B recovers while A decides; A's caller may give up.
		{participants: 2, actors: []actor{recoverB()}, events: []event{cancelA}},
	} {
		names := []string{}
		for _, a := range e.actors {
			names = append(names, a.name)
		}
		t.Run(strings.Join(append(names, string(fmt.Sprint(e.events))), ", "), func(t *testing.T) {
			start := time.Now()
			var d dfs
			runs := 0
			for {
				steps, failure := e.play(t, d.choose)
				runs++
				if failure != "" {
					report(t, steps, failure)
				}
				if !d.next() {
					break
				}
			}
			t.Logf("%d interleavings in %v", runs, time.Since(start).Round(time.Millisecond))
		})
	}
}

// TestExploreRandom draws 10,000 interleavings of a larger cast from
// fixed seeds: three participants, Status to both coordinators, B's
// Recover, and every event, A's Close among them.
func TestExploreRandom(t *testing.T) {
	n := 10000
	if testing.Short() {
		n = 1000
	}
	e := explore{
		participants: 3,
		actors:       []actor{resolveVia(0, "B"), resolveVia(1, "B"), resolveVia(2, "A"), resolveVia(0, "A"), recoverB()},
		events:       []event{crashA, cancelA, tick, closeA},
	}
	start := time.Now()
	steps := 0
	for seed := range uint64(n) {
		rng := rand.New(rand.NewPCG(20261202, seed))
		s, failure := e.play(t, rng.IntN)
		if failure != "" {
			report(t, append([]string{fmt.Sprintf("seed %d", seed)}, s...), failure)
		}
		steps += len(s)
	}
	t.Logf("%d interleavings, %.1f steps each, in %v", n, float64(steps)/float64(n), time.Since(start).Round(time.Millisecond))
}
