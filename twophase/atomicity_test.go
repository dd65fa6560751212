package twophase_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/otelpatterns/otelpatterns/twophase"
)

// fastPrepare is the prepare timeout of the atomicity tests, whose slow
// participants wait it out. Under load a vote may miss it too: that only
// aborts, which the assertions allow.
const fastPrepare = 5 * time.Millisecond

// scenario is one transaction's faults.
type scenario struct {
	participants int
	noVote       int // index of a participant that votes no; -1 for none
	slow         int // index of one that does not vote in time; -1
	duplicate    int // index of one whose Prepare arrives twice; -1
	commitFails  int // how many times every Commit fails first
	latePrepare  bool
	askOther     int // index of one that asks another coordinator's Status before voting; -1
}

func (s scenario) String() string {
	return fmt.Sprintf("%d participants, no vote %d, slow %d, duplicate %d, %d commit failures, late prepare %t, asks another %d",
		s.participants, s.noVote, s.slow, s.duplicate, s.commitFails, s.latePrepare, s.askOther)
}

// setUp makes the world's participants and their faults for tx.
func (s scenario) setUp(w *world, tx string) []twophase.Participant {
	var ps []twophase.Participant
	for i, name := range names(s.participants) {
		p := w.participant(name)
		p.mu.Lock()
		p.slow[tx] = i == s.slow
		p.duplicate[tx] = i == s.duplicate
		p.askOther[tx] = i == s.askOther
		p.commitFails[tx] = s.commitFails
		p.mu.Unlock()
		w.resources[name].mu.Lock()
		w.resources[name].noVote[tx] = i == s.noVote
		w.resources[name].mu.Unlock()
		ps = append(ps, w.endpoint(name))
	}
	return ps
}

type crash struct {
	atAppend, atCall int
	keep, made       bool
}

func (c crash) String() string {
	switch {
	case c.atAppend > 0:
		return fmt.Sprintf("crash at append %d (kept %t)", c.atAppend, c.keep)
	case c.atCall > 0:
		return fmt.Sprintf("crash at call %d (made %t)", c.atCall, c.made)
	}
	return "no crash"
}

// play runs tx under s with the first coordinator crashing at first and the
// recovering one at second, settles, and checks atomicity. It returns the
// appends and calls the first coordinator made.
func play(t testing.TB, s scenario, first, second crash) (appends, calls int) {
	return playIn(newWorld(t), s, first, second)
}

func playIn(w *world, s scenario, first, second crash) (appends, calls int) {
	w.prepareTimeout = fastPrepare
	const tx = "tx-1"
	ps := s.setUp(w, tx)
	w.crashAt(first.atAppend, first.atCall, first.keep, first.made)
	c := w.coordinator()
	w.other = w.coordinator()
	var wg sync.WaitGroup
	wg.Go(func() { w.askStatus(c, tx) }) // races the decision
	_, _ = c.Execute(context.Background(), tx, ps...)
	wg.Wait()
	if recs, _ := w.mem.Load(context.Background(), tx); s.latePrepare && len(recs) > 0 {
		// A Prepare delivered late; one can only have been sent once
		// Begin was durable.
		_ = w.parts[names(1)[0]].Local.Prepare(context.Background(), tx)
	}
	w.askStatus(c, tx)
	_ = c.Close(context.Background())
	_ = w.other.Close(context.Background())
	w.other = nil
	w.mu.Lock()
	appends, calls = w.appends, w.calls
	w.mu.Unlock()

	w.crashAt(second.atAppend, second.atCall, second.keep, second.made)
	r := w.coordinator()
	_, _ = r.Recover(context.Background())
	w.askStatus(r, tx)
	_ = r.Close(context.Background())
	w.settle()
	w.check(s.String()+"; "+first.String()+"; then "+second.String(), tx)
	return appends, calls
}

func crashes(appends, calls int) []crash {
	out := []crash{{}}
	for k := 1; k <= appends; k++ {
		out = append(out, crash{atAppend: k}, crash{atAppend: k, keep: true})
	}
	for k := 1; k <= calls; k++ {
		out = append(out, crash{atCall: k}, crash{atCall: k, made: true})
	}
	return out
}

// TestAtomicityAtEveryCrashPoint crashes the coordinator at every append
// and every participant call of a clean run, then crashes its successor at
// every point of the recovery, and checks atomicity each time.
func TestAtomicityAtEveryCrashPoint(t *testing.T) {
	for _, s := range []scenario{
		{participants: 3, noVote: -1, slow: -1, duplicate: -1, askOther: -1},
		{participants: 3, noVote: 1, slow: -1, duplicate: -1, askOther: -1},
		{participants: 2, noVote: -1, slow: -1, duplicate: 0, commitFails: 2, askOther: -1},
		{participants: 2, noVote: -1, slow: 1, duplicate: -1, latePrepare: true, askOther: -1},
		{participants: 2, noVote: -1, slow: -1, duplicate: -1, askOther: 1},
	} {
		t.Run(s.String(), func(t *testing.T) {
			appends, calls := play(t, s, crash{}, crash{})
			runs := 0
			for _, first := range crashes(appends, calls) {
				// Count the recovery's own points with a clean recovery.
				w := newWorld(t)
				w.prepareTimeout = fastPrepare
				tx := "tx-1"
				ps := s.setUp(w, tx)
				w.crashAt(first.atAppend, first.atCall, first.keep, first.made)
				c := w.coordinator()
				_, _ = c.Execute(context.Background(), tx, ps...)
				_ = c.Close(context.Background())
				w.crashAt(0, 0, false, false)
				r := w.coordinator()
				_, _ = r.Recover(context.Background())
				_ = r.Close(context.Background())
				w.mu.Lock()
				ra, rc := w.appends, w.calls
				w.mu.Unlock()
				for _, second := range crashes(ra, rc) {
					play(t, s, first, second)
					runs++
				}
			}
			t.Logf("%d appends and %d calls in a clean run; %d crash scenarios", appends, calls, runs)
		})
	}
}

// TestAtomicityRandomSchedules plays 10,000 random fault schedules, with a
// fixed seed so that a failure can be replayed.
func TestAtomicityRandomSchedules(t *testing.T) {
	n := 10000
	if testing.Short() {
		n = 1000
	}
	rng := rand.New(rand.NewPCG(20261129, 1))
	pick := func(k int, p float64) int {
		if rng.Float64() < p {
			return rng.IntN(k)
		}
		return -1
	}
	for range n {
		k := 2 + rng.IntN(3)
		s := scenario{participants: k, noVote: pick(k, 0.15), slow: pick(k, 0.03), duplicate: pick(k, 0.2),
			commitFails: rng.IntN(4), latePrepare: rng.Float64() < 0.1, askOther: pick(k, 0.05)}
		point := func() crash {
			switch rng.IntN(3) {
			case 0:
				return crash{atAppend: 1 + rng.IntN(5), keep: rng.IntN(2) == 0}
			case 1:
				return crash{atCall: 1 + rng.IntN(3*k), made: rng.IntN(2) == 0}
			}
			return crash{}
		}
		play(t, s, point(), point())
	}
}

// TestAtomicityOverHTTP runs the atomicity test with every participant
// behind the HTTP transport on loopback: every crash point of a commit,
// and random schedules.
func TestAtomicityOverHTTP(t *testing.T) {
	s := scenario{participants: 3, noVote: -1, slow: -1, duplicate: -1, askOther: -1}
	appends, calls := playIn(remoteWorld(t), s, crash{}, crash{})
	for _, first := range crashes(appends, calls) {
		playIn(remoteWorld(t), s, first, crash{})
	}
	rng := rand.New(rand.NewPCG(20261129, 2))
	for range 300 {
		k := 2 + rng.IntN(2)
		s := scenario{participants: k, noVote: rng.IntN(k+2) - 2, slow: -1, duplicate: rng.IntN(k+1) - 1,
			commitFails: rng.IntN(3), askOther: -1}
		first := crash{atCall: rng.IntN(3 * k), made: rng.IntN(2) == 0}
		if rng.IntN(2) == 0 {
			first = crash{atAppend: rng.IntN(4), keep: rng.IntN(2) == 0}
		}
		playIn(remoteWorld(t), s, first, crash{})
	}
}
