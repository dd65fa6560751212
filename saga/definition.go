package saga

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"time"

	"github.com/otelpatterns/otelpatterns/retry"
)

// Step is one sub-transaction of a saga: an action and the compensation
// that semantically undoes it.
type Step[S any] struct {
	// Name identifies the step in the journal, in spans and in metrics:
	// unique within the definition, and stable across versions of it.
	Name string

	// Action does the step's work. It gets its own copy of the state and
	// returns the state as it leaves it; the runner journals that result
	// before any step that depends on it starts. It may run more than once
	// (a retry, or a recovery after a crash), so it must be idempotent:
	// StepFromContext gives the key to de-duplicate on, and Barrier does it.
	Action func(ctx context.Context, state S) (S, error)

	// Compensate undoes Action; nil for a step with nothing to undo. It
	// runs for every step whose action may have started, even one that
	// failed or timed out, so it must also cope with an action that never
	// had an effect (Barrier does). It gets the saga's state as it was when
	// the saga aborted.
	Compensate func(ctx context.Context, state S) error

	// Timeout bounds each attempt of Action; 0 for none.
	Timeout time.Duration

	// Retry is how Action is retried; nil for a single attempt. When it
	// gives up, the saga aborts.
	Retry *retry.Policy

	// After names the steps whose results this one needs. When no step of
	// a definition has After, the steps run one after another in the order
	// given; when any has, the steps form a graph, and those without After
	// start at once.
	After []string
}

// Definition is a saga's code: its steps, and how the results of steps
// that ran in parallel combine. Build it with New, and Register it with a
// Runner under its name and version.
type Definition[S any] struct {
	name        string
	version     int
	steps       []Step[S]
	deps        [][]int // by step index: the steps it comes after
	dependents  [][]int // by step index: the steps that come after it
	merge       func(state S, step string, result S) S
	fingerprint string
	// flat says that S holds no references (pointers, maps, slices,
	// interfaces...): a plain copy of it is a deep copy.
	flat bool
}

// A DefinitionOption configures a Definition.
type DefinitionOption[S any] interface{ apply(*Definition[S]) }

type definitionOption[S any] func(*Definition[S])

func (f definitionOption[S]) apply(d *Definition[S]) { f(d) }

// WithMerge sets how a step's result joins the saga's state: merge gets
// the state so far and the state that the step's action returned, and
// returns the state after it. The runner calls it one result at a time, in
// the order the results were journaled, so it needs no locking; on
// recovery it calls it again in the same order.
//
// A definition whose steps can run in parallel needs it: two steps that
// each changed their own copy of the state cannot both simply be the
// result. Without it, each step's result replaces the state.
func WithMerge[S any](merge func(state S, step string, result S) S) DefinitionOption[S] {
	return definitionOption[S](func(d *Definition[S]) { d.merge = merge })
}

// New checks and returns a definition. name and version identify it in the
// journal: change the version whenever you change the steps, so that a
// saga begun under the old code is not resumed by the new. New fails, with
// an error that says what to change, for an empty name, a version below 1,
// no steps, an unnamed or duplicate step, a step without an action,
// an unknown dependency, a dependency cycle, parallel steps without
// WithMerge, or a state type that JSON cannot encode.
func New[S any](name string, version int, steps []Step[S], opts ...DefinitionOption[S]) (*Definition[S], error) {
	d := &Definition[S]{name: name, version: version, steps: slices.Clone(steps)}
	for _, o := range opts {
		if o != nil {
			o.apply(d)
		}
	}
	if err := d.check(); err != nil {
		return nil, fmt.Errorf("saga: definition %q: %w", name, err)
	}
	var zero S
	if _, err := json.Marshal(zero); err != nil {
		return nil, fmt.Errorf("saga: definition %q: the state type %T cannot be journaled as JSON: %w", name, zero, err)
	}
	d.fingerprint = d.computeFingerprint()
	d.flat = !holdsReferences(reflect.TypeFor[S]())
	return d, nil
}

// holdsReferences reports whether a value of t can share memory with a
// copy of it. Strings cannot be changed in place, so they count as values.
func holdsReferences(t reflect.Type) bool {
	switch t.Kind() {
	case reflect.Array:
		return holdsReferences(t.Elem())
	case reflect.Struct:
		for i := range t.NumField() {
			if holdsReferences(t.Field(i).Type) {
				return true
			}
		}
		return false
	case reflect.Pointer, reflect.Map, reflect.Slice, reflect.Interface, reflect.Chan, reflect.Func, reflect.UnsafePointer:
		return true
	}
	return false
}

// Name returns the definition's name.
func (d *Definition[S]) Name() string { return d.name }

// Version returns the definition's version.
func (d *Definition[S]) Version() int { return d.version }

func (d *Definition[S]) check() error {
	switch {
	case d.name == "":
		return errors.New("the name is empty")
	case d.version < 1:
		return fmt.Errorf("version %d: versions start at 1", d.version)
	case len(d.steps) == 0:
		return errors.New("no steps")
	}
	index := map[string]int{}
	graph := false
	for i, s := range d.steps {
		switch {
		case s.Name == "":
			return fmt.Errorf("step %d has no name", i)
		case s.Action == nil:
			return fmt.Errorf("step %q has no Action", s.Name)
		case s.Timeout < 0:
			return fmt.Errorf("step %q: Timeout %v is negative", s.Name, s.Timeout)
		}
		if _, dup := index[s.Name]; dup {
			return fmt.Errorf("two steps are named %q", s.Name)
		}
		index[s.Name] = i
		graph = graph || len(s.After) > 0
	}
	d.deps = make([][]int, len(d.steps))
	d.dependents = make([][]int, len(d.steps))
	for i, s := range d.steps {
		if !graph {
			if i > 0 {
				d.deps[i] = []int{i - 1}
			}
			continue
		}
		for _, name := range s.After {
			j, ok := index[name]
			switch {
			case !ok:
				return fmt.Errorf("step %q comes after %q, which is not a step of this definition", s.Name, name)
			case j == i:
				return fmt.Errorf("step %q comes after itself", s.Name)
			}
			if !slices.Contains(d.deps[i], j) {
				d.deps[i] = append(d.deps[i], j)
			}
		}
	}
	for i, deps := range d.deps {
		for _, j := range deps {
			d.dependents[j] = append(d.dependents[j], i)
		}
	}
	if cycle := d.findCycle(); cycle != nil {
		return fmt.Errorf("the steps form a cycle: %v", cycle)
	}
	if d.merge == nil {
		if a, b, ok := d.parallelPair(); ok {
			return fmt.Errorf("steps %q and %q can run in parallel: give the definition WithMerge to combine their results", a, b)
		}
	}
	return nil
}

// findCycle returns the names along a dependency cycle, or nil.
func (d *Definition[S]) findCycle() []string {
	const (
		unseen = iota
		open
		closed
	)
	mark := make([]int, len(d.steps))
	var path []int
	var visit func(i int) []string
	visit = func(i int) []string {
		mark[i] = open
		path = append(path, i)
		for _, j := range d.deps[i] {
			switch mark[j] {
			case open:
				start := slices.Index(path, j)
				var names []string
				for _, k := range path[start:] {
					names = append(names, d.steps[k].Name)
				}
				return append(names, d.steps[j].Name)
			case unseen:
				if c := visit(j); c != nil {
					return c
				}
			}
		}
		path = path[:len(path)-1]
		mark[i] = closed
		return nil
	}
	for i := range d.steps {
		if mark[i] == unseen {
			if c := visit(i); c != nil {
				return c
			}
		}
	}
	return nil
}

// parallelPair returns two steps that neither comes before the other.
func (d *Definition[S]) parallelPair() (string, string, bool) {
	n := len(d.steps)
	before := make([][]bool, n) // before[i][j]: i must finish before j starts
	var reach func(i, from int)
	reach = func(i, from int) {
		for _, j := range d.dependents[i] {
			if !before[from][j] {
				before[from][j] = true
				reach(j, from)
			}
		}
	}
	for i := range n {
		before[i] = make([]bool, n)
		reach(i, i)
	}
	for i := range n {
		for j := i + 1; j < n; j++ {
			if !before[i][j] && !before[j][i] {
				return d.steps[i].Name, d.steps[j].Name, true
			}
		}
	}
	return "", "", false
}

// computeFingerprint digests what recovery depends on: the steps, their
// order and dependencies, and which can be compensated. A saga begun under
// one fingerprint is not resumed under another.
func (d *Definition[S]) computeFingerprint() string {
	h := sha256.New()
	fmt.Fprintf(h, "%q %d\n", d.name, d.version)
	for i, s := range d.steps {
		deps := make([]string, len(d.deps[i]))
		for k, j := range d.deps[i] {
			deps[k] = d.steps[j].Name
		}
		fmt.Fprintf(h, "%q %q %t\n", s.Name, deps, s.Compensate != nil)
	}
	return hex.EncodeToString(h.Sum(nil)[:12])
}

func (d *Definition[S]) mergeResult(state S, step string, result S) S {
	if d.merge == nil {
		return result
	}
	return d.merge(state, step, result)
}
