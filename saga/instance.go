package saga

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"go.opentelemetry.io/otel/trace"

	"github.com/otelpatterns/otelpatterns/errs"
	"github.com/otelpatterns/otelpatterns/internal/retryhook"
	"github.com/otelpatterns/otelpatterns/journal"
	"github.com/otelpatterns/otelpatterns/retry"
)

// errStopped ends the attempts of a step whose saga aborted or stopped.
var errStopped = errors.New("saga: stopped")

// instance is one saga running in this process: its state, what the
// journal says of it, and the goroutines that drive it.
type instance[S any] struct {
	s   *Saga[S]
	def *Definition[S]
	id  string
	h   *handle
	tel *sagaTelemetry

	// ctx carries the saga's span. It is detached from the caller, so the
	// saga outlives a caller who gives up; stop cancels it when the runner
	// gives up (Close). stepsCtx, under it, is cancelled by an abort, to
	// call back the actions in flight.
	ctx         context.Context
	journalCtx  context.Context // ctx, never canceled: what appends carry
	stop        context.CancelCauseFunc
	stepsCtx    context.Context
	cancelSteps context.CancelFunc

	mu        sync.Mutex
	epoch     uint64
	seq       uint64
	state     S
	durable   json.RawMessage // the state as last journaled, for a list definition
	started   map[string]int  // step -> last attempt started (durable)
	done      map[string]bool
	comped    map[string]bool
	aborting  bool
	failed    string // the step that failed
	cause     error  // why the saga aborted
	stuck     error  // why compensation gave up
	stuckStep string
	dead      error                 // the journal refused a record: stop, no further effect
	killed    atomic.Pointer[error] // the runner gave up (kill): dead from the next record on
	opened    atomic.Bool           // open has set ctx and stop
	ended     bool                  // the End record is durable
	final     S
	records   [2]journal.Record // what appendLocked hands the journal, reused

	// The abort its owner asked for when its ctx ended (requestAbort):
	// the driver honours it at its next decision, and a goroutine of its
	// own makes it durable meanwhile, then publishes abortView and closes
	// abortSettled.
	abortReq     atomic.Pointer[error]
	abortOnce    sync.Once
	abortSettled chan struct{}
	abortView    view[S]
}

// view is where a saga stands, as a caller who gave up is told.
type view[S any] struct {
	state   S
	outcome Outcome
	ended   bool
}

func newInstance[S any](s *Saga[S], id string, h *history) *instance[S] {
	in := &instance[S]{
		s: s, def: s.def, id: id, epoch: h.epoch,
		started: map[string]int{}, done: map[string]bool{}, comped: map[string]bool{},
	}
	in.h = &handle{id: id, name: s.def.name, inst: in, done: make(chan struct{}), kill: in.kill}
	return in
}

// open sets the instance's contexts and telemetry up under ctx.
func (in *instance[S]) open(ctx context.Context, resumed bool, begun trace.SpanContext) context.Context {
	ctx, in.tel = in.s.r.ins.start(ctx, in.def.name, in.id, resumed, begun)
	in.ctx, in.stop = context.WithCancelCause(context.WithoutCancel(ctx))
	in.journalCtx = context.WithoutCancel(in.ctx)
	in.stepsCtx, in.cancelSteps = context.WithCancel(in.ctx)
	in.opened.Store(true)
	if k := in.killed.Load(); k != nil { // killed while it opened
		in.stop(*k)
	}
	return ctx
}

// replay rebuilds the state and progress of a saga from its history.
func (in *instance[S]) replay(h *history) error {
	in.seq = h.seq
	if err := json.Unmarshal(h.begin.State, &in.state); err != nil {
		return fmt.Errorf("saga: %q: the initial state does not decode: %w", in.id, err)
	}
	in.durable = h.begin.State
	for _, r := range h.results {
		var out S
		if err := json.Unmarshal(r.state, &out); err != nil {
			return fmt.Errorf("saga: %q: the result of step %q does not decode: %w", in.id, r.step, err)
		}
		in.state = in.def.mergeResult(in.state, r.step, out)
		in.durable = r.state
	}
	in.started, in.done, in.comped = h.started, h.done, h.comped
	in.aborting, in.failed = h.aborting, h.failed
	if h.aborting {
		in.cause = errors.New(h.reason)
	}
	return nil
}

// start drives the saga, or what is left of it, on a goroutine the runner
// owns (claim counted it).
func (in *instance[S]) start() {
	go func() {
		defer in.s.r.live.Done()
		in.drive()
	}()
}

// stopBeforeStart undoes a claim when the saga could not begin.
func (in *instance[S]) stopBeforeStart(err error) {
	in.mu.Lock()
	in.dead = err
	in.mu.Unlock()
	in.finish()
	in.s.r.live.Done()
}

func (in *instance[S]) drive() {
	if !in.isAborting() {
		in.forward()
	}
	if in.isAborting() {
		in.compensate()
	}
	in.finish()
}

func (in *instance[S]) isAborting() bool {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.noteKillLocked()
	return in.aborting && in.dead == nil
}

// appendLocked writes records ahead, under the owner's epoch. A refusal
// (the journal failed, or another runner took the saga over) stops the
// saga here for good: no further effect.
func (in *instance[S]) appendLocked(recs ...journal.Record) error {
	in.noteKillLocked()
	if in.dead != nil {
		return in.dead
	}
	// The journal copies what it keeps, so the records go through a buffer
	// of the instance's instead of a slice allocated for every call.
	buf := append(in.records[:0], recs...)
	for i := range buf {
		buf[i].Epoch = in.epoch
	}
	err := in.s.r.log.Append(in.journalCtx, in.id, in.seq, buf...)
	clear(buf)
	if err != nil {
		in.noteKillLocked()
		if in.dead == nil {
			in.dead = fmt.Errorf("saga %q: journal: %w", in.id, err)
		}
		in.cancelSteps()
		return in.dead
	}
	in.seq += uint64(len(recs))
	// Killed meanwhile: what landed stays (Recover reads it), and nothing
	// follows it here.
	in.noteKillLocked()
	return in.dead
}

// abortLocked makes the abort durable, once: no action starts after it.
func (in *instance[S]) abortLocked(step string, cause error) {
	if in.aborting || in.ended || in.dead != nil {
		return
	}
	recs := []journal.Record{{Kind: kindAborting, Payload: []byte(cause.Error())}}
	if step != "" {
		recs = []journal.Record{{Kind: kindStepFailed, Step: step, Payload: []byte(cause.Error())}, recs[0]}
	}
	if in.appendLocked(recs...) == nil {
		in.aborting, in.failed, in.cause = true, step, cause
	}
	in.cancelSteps()
}

// requestAbort aborts the saga because its owner gave up, and returns a
// channel that is closed once the abort is durable or refused, with
// abortView set. The journal call is made on a goroutine of the runner's,
// so that a journal that does not answer holds up no caller.
func (in *instance[S]) requestAbort(cause error) <-chan struct{} {
	in.abortOnce.Do(func() {
		in.abortReq.Store(&cause)
		in.abortSettled = make(chan struct{})
		in.s.r.live.Add()
		go func() {
			defer in.s.r.live.Done()
			in.mu.Lock()
			in.abortLocked("", cause)
			in.abortView = in.viewLocked()
			in.mu.Unlock()
			close(in.abortSettled)
		}()
	})
	return in.abortSettled
}

// abortRequestedLocked makes an abort that the owner requested durable,
// if no goroutine did yet, and reports whether one was requested.
func (in *instance[S]) abortRequestedLocked() bool {
	cause := in.abortReq.Load()
	if cause != nil {
		in.abortLocked("", *cause)
	}
	return cause != nil
}

// kill stops the saga where it is, with no further effect. It never waits
// for the journal call in flight (a hung disk must not hang Close): it
// cancels the actions, and the next record the saga would write is
// refused instead.
func (in *instance[S]) kill(cause error) {
	in.killed.CompareAndSwap(nil, &cause)
	if in.opened.Load() { // else open stops it
		in.stop(cause)
	}
	if in.mu.TryLock() {
		in.noteKillLocked()
		in.mu.Unlock()
	}
}

// noteKillLocked makes a kill the saga's dead error, if it is not dead
// already.
func (in *instance[S]) noteKillLocked() {
	if k := in.killed.Load(); k != nil && in.dead == nil {
		in.dead = *k
	}
}

// trySnapshot returns the durable state and the outcome so far, for a
// caller who gives up; while a journal call holds the saga, which it does
// not wait for, the zero state and Pending.
func (in *instance[S]) trySnapshot() (state S, o Outcome) {
	if !in.mu.TryLock() {
		return state, Pending
	}
	defer in.mu.Unlock()
	v := in.viewLocked()
	return v.state, v.outcome
}

func (in *instance[S]) viewLocked() view[S] {
	v := view[S]{outcome: Aborting, ended: in.ended}
	if in.dead != nil || !in.aborting {
		v.outcome = Pending
	}
	if in.def.merge != nil {
		if state, err := in.copyLocked(); err == nil {
			v.state = state
			return v
		}
	}
	v.state, _ = decode[S](in.durable) // it was journaled from an S
	return v
}

// copyLocked returns a deep copy of the state, through JSON, so that steps
// running in parallel share no memory.
func (in *instance[S]) copyLocked() (S, error) {
	var out S
	b, err := json.Marshal(in.state)
	if err == nil {
		err = json.Unmarshal(b, &out)
	}
	return out, err
}

// inputLocked is what a step's action is given: a copy of the state of its
// own, the state as the journal holds it, so that what a failed step
// changed in it reaches neither the next step nor a compensation, and a
// step sees the same input whether or not the process crashed before it.
func (in *instance[S]) inputLocked(step string) (S, error) {
	var err error
	switch {
	case in.def.merge == nil && in.def.flat:
		return in.state, nil // a copy of a value is a deep copy
	case in.def.merge != nil:
		var state S
		if state, err = in.copyLocked(); err == nil {
			return state, nil
		}
	default:
		var state S
		if state, err = decode[S](in.durable); err == nil {
			return state, nil
		}
	}
	var zero S
	return zero, fmt.Errorf("the state for step %q cannot be copied through JSON, so the step did not run: %w", step, err)
}

// decode decodes a journaled state. It is a function of its own so that
// only the paths that decode put a state on the heap.
func decode[S any](b json.RawMessage) (S, error) {
	var s S
	err := json.Unmarshal(b, &s)
	return s, err
}

// forward runs the steps whose dependencies are done, in parallel where
// the definition allows, until all are done, one fails, or the saga
// aborts or stops.
func (in *instance[S]) forward() {
	steps := in.def.steps
	schedule(len(steps), func(launched []bool, ready []int) []int {
		in.mu.Lock()
		defer in.mu.Unlock()
		if in.aborting || in.dead != nil || in.abortReq.Load() != nil {
			return ready
		}
		for i, st := range steps {
			if !launched[i] && !in.done[st.Name] && in.depsDoneLocked(i) {
				ready = append(ready, i)
			}
		}
		return ready
	}, in.runStep, in.settle)
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.aborting || in.dead != nil || in.abortRequestedLocked() {
		return
	}
	for _, st := range steps {
		if !in.done[st.Name] {
			return // cannot happen: every step ran or the saga aborted
		}
	}
	in.endLocked(Completed, "", nil)
}

// schedule runs the steps of a graph, in parallel where it allows, and
// returns once none is running and none is ready: ready appends the steps
// that may start now, given those launched already; run runs one; settle
// takes its result. A step that is alone to run runs on the calling
// goroutine, which spares a list its goroutines. Forward and backward
// share it: only their readiness differs.
func schedule(n int, ready func(launched []bool, ready []int) []int, run func(i int) stepResult, settle func(stepResult)) {
	launched := make([]bool, n)
	results := make(chan stepResult, n)
	running := 0
	next := make([]int, 0, n)
	for {
		next = ready(launched, next[:0])
		for _, i := range next {
			launched[i] = true
			if running == 0 && len(next) == 1 {
				settle(run(i)) // the common case of a list: no goroutine
				continue
			}
			running++
			go func() { results <- run(i) }()
		}
		if running == 0 && len(next) == 0 {
			return
		}
		if running > 0 {
			settle(<-results)
			running--
		}
	}
}

func (in *instance[S]) depsDoneLocked(i int) bool {
	for _, j := range in.def.deps[i] {
		if !in.done[in.def.steps[j].Name] {
			return false
		}
	}
	return true
}

type stepResult struct {
	step string
	err  error
}

// settle aborts the saga when a step failed for good.
func (in *instance[S]) settle(r stepResult) {
	if r.err == nil {
		return
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	if !errors.Is(r.err, errStopped) && in.dead == nil {
		in.abortLocked(r.step, r.err)
	}
}

// runStep runs a step's action under its retry policy.
func (in *instance[S]) runStep(i int) stepResult {
	st := &in.def.steps[i]
	in.mu.Lock()
	attempt := in.started[st.Name]
	in.mu.Unlock()
	var err error
	if st.Retry == nil {
		err = in.attempt(in.stepsCtx, st, &attempt)
	} else {
		err = retryhook.RunUntraced(in.stepsCtx, st.Retry, func(ctx context.Context) error {
			return in.attempt(ctx, st, &attempt)
		})
		var re *retry.Error
		if errors.As(err, &re) && re.Last != nil {
			err = re.Last
		}
	}
	if errors.Is(err, errStopped) {
		err = errStopped
	}
	return stepResult{step: st.Name, err: err}
}

// attempt makes one attempt of a step's action. It is journaled as started
// before the action is called, and the action's result is journaled
// before the step counts as done.
func (in *instance[S]) attempt(ctx context.Context, st *Step[S], attempt *int) error {
	in.mu.Lock()
	if in.aborting || in.dead != nil {
		in.mu.Unlock()
		return retry.Permanent(errStopped)
	}
	state, err := in.inputLocked(st.Name)
	if err != nil { // before any effect: the saga fails here
		in.mu.Unlock()
		return retry.Permanent(err)
	}
	*attempt++
	n := *attempt
	if err := in.appendLocked(journal.Record{Kind: kindStepStarted, Step: st.Name, Attempt: n}); err != nil {
		in.mu.Unlock()
		return retry.Permanent(errStopped)
	}
	in.started[st.Name] = n
	if in.abortRequestedLocked() { // the owner gave up meanwhile: no effect
		in.mu.Unlock()
		return retry.Permanent(errStopped)
	}
	in.mu.Unlock()

	ctx = ContextWithStep(ctx, StepInfo{Saga: in.def.name, ID: in.id, Step: st.Name, Attempt: n})
	ctx, span, sw := in.tel.startAttempt(ctx, st.Name, n, false)
	if st.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, st.Timeout)
		defer cancel()
	}
	out, err := call(ctx, st.Action, state)
	in.tel.endAttempt(ctx, span, sw, st.Name, false, err)
	if err != nil {
		return err
	}
	payload, err := json.Marshal(out)
	if err != nil {
		return retry.Permanent(fmt.Errorf("step %q returned a state that cannot be journaled as JSON: %w", st.Name, err))
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	if err := in.appendLocked(journal.Record{Kind: kindStepDone, Step: st.Name, Payload: payload}); err != nil {
		return retry.Permanent(errStopped)
	}
	in.done[st.Name] = true
	in.state = in.def.mergeResult(in.state, st.Name, out)
	in.durable = payload
	return nil
}

// call calls an action, turning a panic into an error.
func call[S any](ctx context.Context, action func(context.Context, S) (S, error), state S) (out S, err error) {
	err = errs.Try(func() (err error) {
		out, err = action(ctx, state)
		return err
	})
	return out, err
}

// compensate runs the compensation of every step that started and is not
// yet compensated, each only after the steps that depend on it, in
// parallel where they are independent, under the runner's compensation
// policy. When a compensation gives up, the saga is stuck.
func (in *instance[S]) compensate() {
	steps := in.def.steps
	in.mu.Lock()
	need := make([]bool, len(steps))
	for i, st := range steps {
		need[i] = in.started[st.Name] > 0 && !in.comped[st.Name] && st.Compensate != nil
	}
	state := in.durable // a list's state, as journaled
	if in.def.merge != nil {
		state, _ = json.Marshal(in.state) // every result in it was journaled, so it encodes
	}
	in.mu.Unlock()
	schedule(len(steps), func(launched []bool, ready []int) []int {
		in.mu.Lock()
		defer in.mu.Unlock()
		if in.stuck != nil || in.dead != nil {
			return ready
		}
		for i := range steps {
			if need[i] && !launched[i] && in.dependentsCompensatedLocked(i, need) {
				ready = append(ready, i)
			}
		}
		return ready
	}, func(i int) stepResult {
		return in.compensateStep(i, state)
	}, func(r stepResult) {
		if r.err == nil {
			return
		}
		in.mu.Lock()
		defer in.mu.Unlock()
		if in.dead == nil && in.stuck == nil {
			if in.appendLocked(journal.Record{Kind: kindStuck, Step: r.step, Payload: []byte(r.err.Error())}) == nil {
				in.stuck, in.stuckStep = r.err, r.step
			}
		}
	})
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.stuck != nil || in.dead != nil {
		return
	}
	for i := range steps {
		if need[i] && !in.comped[steps[i].Name] {
			return
		}
	}
	in.endLocked(Compensated, in.failed, in.cause)
}

func (in *instance[S]) dependentsCompensatedLocked(i int, need []bool) bool {
	for _, j := range in.def.dependents[i] {
		if need[j] && !in.comped[in.def.steps[j].Name] {
			return false
		}
	}
	return true
}

// compensateStep runs a step's compensation until it succeeds or the
// policy gives up, and journals its success.
func (in *instance[S]) compensateStep(i int, state json.RawMessage) stepResult {
	st := &in.def.steps[i]
	cfg := in.s.r.cfg
	attempt := 0
	err := retryhook.RunUntraced(in.ctx, cfg.compRetry, func(ctx context.Context) error {
		if in.isDead() {
			return retry.Permanent(errStopped)
		}
		attempt++
		var s S
		if err := json.Unmarshal(state, &s); err != nil {
			return retry.Permanent(err)
		}
		ctx = ContextWithStep(ctx, StepInfo{Saga: in.def.name, ID: in.id, Step: st.Name, Attempt: attempt, Compensating: true})
		ctx, span, sw := in.tel.startAttempt(ctx, st.Name, attempt, true)
		if cfg.compTimeout > 0 {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, cfg.compTimeout)
			defer cancel()
		}
		err := errs.Try(func() error { return st.Compensate(ctx, s) })
		in.tel.endAttempt(ctx, span, sw, st.Name, true, err)
		return err
	})
	if err == nil {
		in.mu.Lock()
		if in.appendLocked(journal.Record{Kind: kindCompensated, Step: st.Name}) == nil {
			in.comped[st.Name] = true
		}
		in.mu.Unlock()
	}
	if in.isDead() {
		err = nil // stopped here; Recover goes on
	}
	return stepResult{step: st.Name, err: err}
}

func (in *instance[S]) isDead() bool {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.noteKillLocked() // a compensation checks it before it starts
	return in.dead != nil
}

// endLocked writes the End record with the outcome.
func (in *instance[S]) endLocked(o Outcome, step string, cause error) {
	state, _ := json.Marshal(in.state)
	end := endPayload{Outcome: o.String(), State: state, Step: step}
	if cause != nil {
		end.Error = cause.Error()
	}
	payload, _ := json.Marshal(end)
	in.ended = in.appendLocked(journal.Record{Kind: kindEnd, End: true, Payload: payload}) == nil
}

// finish publishes the outcome, ends the telemetry and leaves the runner.
func (in *instance[S]) finish() {
	in.mu.Lock()
	o, err := in.outcomeLocked()
	in.final = in.state
	in.h.outcome, in.h.err = o, err
	in.mu.Unlock()
	if in.tel != nil {
		in.tel.end(in.ctx, o, err)
		if o == Stuck {
			in.s.r.countStuck(in.ctx, in.id, in.def.name)
		}
	}
	if in.stop != nil {
		in.stop(nil)
		in.cancelSteps()
	}
	in.s.r.live.Release(in.id, in.h)
	if in.ended {
		in.s.r.live.Ended(in.id)
	}
	close(in.h.done)
}

func (in *instance[S]) outcomeLocked() (Outcome, error) {
	fail := func(o Outcome, err error) (Outcome, error) {
		return o, &Error{Saga: in.def.name, ID: in.id, Step: in.failed, Outcome: o, Err: err}
	}
	switch {
	case in.dead != nil:
		return fail(Pending, in.dead)
	case in.stuck != nil:
		return fail(Stuck, fmt.Errorf("compensation of step %q: %w", in.stuckStep, in.stuck))
	case in.aborting:
		return fail(Compensated, in.cause)
	default:
		return Completed, nil
	}
}
