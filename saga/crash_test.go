package saga_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/otelpatterns/otelpatterns/journal"
	"github.com/otelpatterns/otelpatterns/saga"
)

var errCrash = errors.New("crashed")

// crashLog is a journal that dies at a chosen point, as the process that
// writes it would: at its n-th append, with that append's records kept or
// lost; or right after the n-th effect of a step. From then on every
// append fails, so the runner must stop before any further effect.
type crashLog struct {
	journal.Log
	mu       sync.Mutex
	appends  int
	effects  int
	atAppend int // crash at this append (1-based); 0: never
	keep     bool
	atEffect int // crash right after this effect (1-based); 0: never
	crashed  bool
}

func (c *crashLog) Append(ctx context.Context, tx string, seq uint64, recs ...journal.Record) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.crashed {
		return errCrash
	}
	c.appends++
	if c.appends == c.atAppend {
		c.crashed = true
		if c.keep {
			_ = c.Log.Append(ctx, tx, seq, recs...)
		}
		return errCrash
	}
	return c.Log.Append(ctx, tx, seq, recs...)
}

// effect counts an effect, and crashes after it if it is the chosen one.
func (c *crashLog) effect() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.crashed {
		return
	}
	c.effects++
	if c.effects == c.atEffect {
		c.crashed = true
	}
}

// services are the steps' side of the test: their effects, applied at most
// once through a barrier, in the order they happened. They outlive every
// runner, as remote services would.
type services struct {
	mu      sync.Mutex
	barrier *saga.Barrier
	did     map[string]int
	undid   map[string]int
	undoOrd []string
	current *crashLog
}

func newServices() *services {
	return &services{barrier: saga.NewBarrier(), did: map[string]int{}, undid: map[string]int{}}
}

func (s *services) attach(c *crashLog) {
	s.mu.Lock()
	s.current = c
	s.mu.Unlock()
}

func (s *services) crashPoint() {
	s.mu.Lock()
	c := s.current
	s.mu.Unlock()
	c.effect()
}

type crashDef struct {
	name  string
	steps []saga.Step[order]
	deps  map[string][]string
	opts  []saga.DefinitionOption[order]
}

func (s *services) step(name string, fail bool, after ...string) saga.Step[order] {
	return saga.Step[order]{
		Name: name, After: after,
		Action: func(ctx context.Context, o order) (order, error) {
			if fail {
				return o, errors.New("declined")
			}
			info, _ := saga.StepFromContext(ctx)
			ran, err := s.barrier.Action(ctx, info.ID, name, func(context.Context) error {
				s.mu.Lock()
				s.did[name]++
				s.mu.Unlock()
				return nil
			})
			if ran {
				s.crashPoint()
			}
			return o, err
		},
		Compensate: func(ctx context.Context, o order) error {
			info, _ := saga.StepFromContext(ctx)
			ran, err := s.barrier.Compensate(ctx, info.ID, name, func(context.Context) error {
				s.mu.Lock()
				s.undid[name]++
				s.undoOrd = append(s.undoOrd, name)
				s.mu.Unlock()
				return nil
			})
			if ran {
				s.crashPoint()
			}
			return err
		},
	}
}

var mergeAny = saga.WithMerge(func(cur order, _ string, _ order) order { return cur })

// definitions are the shapes the crash test runs: a list, parallel steps,
// and a graph; each completing, and failing at a step that others follow
// (or run beside), so that the abort has actions to stop.
func definitions(s *services) []crashDef {
	var defs []crashDef
	for _, fail := range []bool{false, true} {
		suffix := map[bool]string{false: "ok", true: "fails"}[fail]
		defs = append(defs,
			crashDef{name: "list-" + suffix,
				steps: []saga.Step[order]{s.step("a", false), s.step("b", fail), s.step("c", false)},
				deps:  map[string][]string{"b": {"a"}, "c": {"b"}}},
			crashDef{name: "parallel-" + suffix,
				steps: []saga.Step[order]{s.step("a", false), s.step("b", false), s.step("c", fail)},
				opts:  []saga.DefinitionOption[order]{mergeAny}},
			crashDef{name: "graph-" + suffix,
				steps: []saga.Step[order]{s.step("a", false), s.step("b", fail, "a"), s.step("c", false, "a"), s.step("d", false, "b", "c")},
				deps:  map[string][]string{"b": {"a"}, "c": {"a"}, "d": {"b", "c"}},
				opts:  []saga.DefinitionOption[order]{mergeAny}},
		)
	}
	return defs
}

// incarnation runs one runner on log until it finishes or crashes: a Run
// when recovering is false, a Recover otherwise.
func incarnation(t *testing.T, def crashDef, log *crashLog, recovering bool) {
	t.Helper()
	r, err := saga.NewRunner(log, saga.WithCompensationRetry(nil))
	if err != nil {
		t.Fatal(err)
	}
	d, err := saga.New(def.name, 1, def.steps, def.opts...)
	if err != nil {
		t.Fatal(err)
	}
	sg, err := saga.Register(r, d)
	if err != nil {
		t.Fatal(err)
	}
	if recovering {
		_, _ = r.Recover(context.Background())
	} else {
		_, _, _ = sg.Run(context.Background(), "s-1", order{Items: 1})
	}
	if err := r.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// points counts the appends and effects of a run that does not crash.
func points(t *testing.T, def crashDef, mem journal.Log, s *services, recovering bool) (appends, effects int) {
	c := &crashLog{Log: mem}
	s.attach(c)
	incarnation(t, def, c, recovering)
	return c.appends, c.effects
}

type crashPoint struct {
	atAppend, atEffect int
	keep               bool
}

func (p crashPoint) String() string {
	if p.atEffect > 0 {
		return fmt.Sprintf("after effect %d", p.atEffect)
	}
	return fmt.Sprintf("at append %d (kept: %t)", p.atAppend, p.keep)
}

func crashPoints(appends, effects int) []crashPoint {
	var out []crashPoint
	for k := 1; k <= appends; k++ {
		out = append(out, crashPoint{atAppend: k}, crashPoint{atAppend: k, keep: true})
	}
	for k := 1; k <= effects; k++ {
		out = append(out, crashPoint{atEffect: k})
	}
	return out
}

// TestCrashAtEveryPoint crashes a runner at every append (its records lost
// or kept) and after every effect of a clean run, then recovers with a new
// runner, which is itself crashed at every point of its own run and
// recovered once more; and checks the saga's guarantees on the outcome.
func TestCrashAtEveryPoint(t *testing.T) {
	for _, def := range definitions(newServices()) {
		t.Run(def.name, func(t *testing.T) {
			// How many points a clean run has.
			clean := newServices()
			cdef := rebuild(def, clean)
			appends, effects := points(t, cdef, memJournal(t), clean, false)
			runs := 0
			for _, first := range crashPoints(appends, effects) {
				// Crash the first runner; count the recovery's points.
				probe := newServices()
				mem := memJournal(t)
				pdef := rebuild(def, probe)
				c := &crashLog{Log: mem, atAppend: first.atAppend, keep: first.keep, atEffect: first.atEffect}
				probe.attach(c)
				incarnation(t, pdef, c, false)
				recAppends, recEffects := points(t, pdef, mem, probe, true)
				check(t, pdef, mem, probe, first.String())
				runs++
				for _, second := range crashPoints(recAppends, recEffects) {
					s := newServices()
					mem := memJournal(t)
					sdef := rebuild(def, s)
					c := &crashLog{Log: mem, atAppend: first.atAppend, keep: first.keep, atEffect: first.atEffect}
					s.attach(c)
					incarnation(t, sdef, c, false)
					c2 := &crashLog{Log: mem, atAppend: second.atAppend, keep: second.keep, atEffect: second.atEffect}
					s.attach(c2)
					incarnation(t, sdef, c2, true)
					points(t, sdef, mem, s, true) // the last recovery
					check(t, sdef, mem, s, first.String()+", then in recovery "+second.String())
					runs++
				}
			}
			t.Logf("%d appends and %d effects in a clean run; %d crash scenarios", appends, effects, runs)
		})
	}
}

// rebuild returns def with its steps bound to s.
func rebuild(def crashDef, s *services) crashDef {
	for _, d := range definitions(s) {
		if d.name == def.name {
			return d
		}
	}
	panic("no definition " + def.name)
}

func memJournal(t *testing.T) *journal.Memory {
	m, err := journal.NewMemory()
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// check asserts the saga's guarantees once recovery is done.
func check(t *testing.T, def crashDef, mem journal.Log, s *services, scenario string) {
	t.Helper()
	recs, err := mem.Load(context.Background(), "s-1")
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) == 0 {
		// The crash lost Begin: the saga never began, and nothing ran.
		if len(s.did) != 0 {
			t.Fatalf("%s: no Begin record, yet effects %v", scenario, s.did)
		}
		return
	}
	ends, aborted, abortSeq := 0, false, uint64(0)
	started := map[string]bool{}
	for _, r := range recs {
		switch r.Kind {
		case "saga.end":
			ends++
		case "saga.aborting":
			aborted, abortSeq = true, r.Seq
		case "saga.step.started":
			started[r.Step] = true
			if aborted {
				t.Fatalf("%s: step %q started (seq %d) after the abort (seq %d)", scenario, r.Step, r.Seq, abortSeq)
			}
		}
	}
	if ends != 1 || !recs[len(recs)-1].End {
		t.Fatalf("%s: %d End records; want exactly one, last", scenario, ends)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, st := range def.steps {
		did, undid := s.did[st.Name], s.undid[st.Name]
		switch {
		case did > 1 || undid > 1:
			t.Fatalf("%s: step %q did %d and undid %d times", scenario, st.Name, did, undid)
		case !aborted && (did != 1 || undid != 0):
			t.Fatalf("%s: completed, but step %q did %d and undid %d", scenario, st.Name, did, undid)
		case aborted && did != undid:
			t.Fatalf("%s: compensated, but step %q did %d and undid %d", scenario, st.Name, did, undid)
		case !started[st.Name] && (did != 0 || undid != 0):
			t.Fatalf("%s: step %q never started, yet did %d and undid %d", scenario, st.Name, did, undid)
		}
	}
	// A step is undone only after the steps that depend on it.
	for step, deps := range def.deps {
		for _, dep := range deps {
			i, j := slices.Index(s.undoOrd, step), slices.Index(s.undoOrd, dep)
			if i >= 0 && j >= 0 && j < i {
				t.Fatalf("%s: %q was undone before %q, which depends on it (order %q)", scenario, dep, step, s.undoOrd)
			}
		}
	}
}
