package saga

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/otelpatterns/otelpatterns/internal/owned"
	"github.com/otelpatterns/otelpatterns/internal/telemetry"
	"github.com/otelpatterns/otelpatterns/journal"
)

// Runner runs sagas, writing every step ahead to a journal, and owns the
// goroutines that finish them: compensation goes on after a caller gives
// up. One Runner serves any number of definitions; Register each.
type Runner struct {
	log journal.Log
	cfg *config
	ins *instruments

	live   owned.Set[*handle]     // the sagas running here, and their goroutines
	leases *owned.Leases[*handle] // with WithLeases

	mu    sync.Mutex
	defs  map[defKey]registered
	names map[string]bool // every registered name, any version
	stuck map[string]bool // sagas counted in the stuck gauge
}

type defKey struct {
	name    string
	version int
}

// registered is a Definition with its state type erased, for recovery.
type registered interface {
	fingerprint() string
	// resume starts a saga from its history under a new epoch.
	resume(ctx context.Context, id string, h *history) (*handle, error)
}

// handle is a saga running in this process.
type handle struct {
	id, name string
	inst     any // the *instance[S]
	done     chan struct{}
	outcome  Outcome
	err      error
	kill     func(cause error) // the runner gave up: stop, no further effect
}

// NewRunner returns a runner that writes ahead to log.
func NewRunner(log journal.Log, opts ...Option) (*Runner, error) {
	if log == nil {
		return nil, errors.New("saga: NewRunner: the journal is nil; pass journal.NewMemory() or journal.Open(dir)")
	}
	cfg, err := newConfig(opts)
	if err != nil {
		return nil, err
	}
	r := &Runner{
		log: log, cfg: cfg, ins: newInstruments(cfg.tel),
		defs: map[defKey]registered{}, names: map[string]bool{}, stuck: map[string]bool{},
	}
	r.live.Retain(cfg.retention, log.Forget)
	if cfg.leaseOwner != "" || cfg.leaseTTL != 0 {
		if err := r.newLeases(); err != nil {
			return nil, err
		}
	}
	return r, nil
}

// Saga is a Definition registered with a Runner: what Run is called on.
type Saga[S any] struct {
	r   *Runner
	def *Definition[S]
}

// Register makes r able to run and recover sagas of def. Registering
// several versions of one definition lets sagas begun under the old one
// finish under it. Registering one name and version twice is an error.
func Register[S any](r *Runner, def *Definition[S]) (*Saga[S], error) {
	if r == nil || def == nil {
		return nil, errors.New("saga: Register: the runner and the definition must not be nil")
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	k := defKey{def.name, def.version}
	if _, dup := r.defs[k]; dup {
		return nil, fmt.Errorf("saga: Register: %q version %d is already registered", def.name, def.version)
	}
	s := &Saga[S]{r: r, def: def}
	r.defs[k] = s
	r.names[def.name] = true
	return s, nil
}

func (s *Saga[S]) fingerprint() string { return s.def.fingerprint }

// claim registers h as the live saga of its ID, counting its driver,
// unless one is live already, which it returns instead.
func (r *Runner) claim(h *handle) (*handle, error) {
	live, claimed, open := r.live.Claim(h.id, h)
	switch {
	case !open:
		return nil, ErrClosed
	case !claimed:
		return live, nil
	}
	return nil, nil
}

func (r *Runner) liveHandle(id string) *handle {
	h, _ := r.live.Get(id)
	return h
}

// Run runs saga id from initial and returns its final state and outcome.
//
//   - A new id begins a saga: Begin is durable before any step.
//   - An id that ended returns the outcome the journal recorded, and runs
//     nothing.
//   - An id that is unfinished is resumed: this runner takes it over with
//     a higher epoch, so a runner that still drives it elsewhere is fenced
//     off; initial is then ignored.
//   - An id that is running in this runner is joined.
//
// Completed returns a nil error. Any other outcome returns an *Error.
//
// With WithLeases, Run leases the saga first: an ID whose lease another
// runner holds returns an error matching journal.ErrLeased (that runner
// drives it; Lookup reads where it stands), and a saga whose lease this
// runner loses midway stops with ErrLeaseLost.
//
// When ctx ends first, Run returns promptly, and the saga aborts if this
// Run began or resumed it: Run waits for the abort to be durable, at most
// the runner's abort wait (WithAbortWait), and returns Aborting while the
// runner compensates in the background. An abort that is not durable by
// then, as when the journal does not answer, returns Pending, the zero
// state and an error matching ErrAbortRequested: the runner makes it
// durable once the journal answers. A Run that joined a saga only stops
// waiting: one caller giving up does not abort a saga for everyone. To
// read where a saga stands without running it, use Runner.Lookup.
func (s *Saga[S]) Run(ctx context.Context, id string, initial S) (S, Outcome, error) {
	if ctx == nil {
		var zero S
		return zero, Pending, errNilContext
	}
	var zero S
	if id == "" || len(id) > journal.MaxIDLen {
		return zero, Pending, fmt.Errorf("saga: Run: the ID must be 1 to %d bytes", journal.MaxIDLen)
	}
	if h := s.r.liveHandle(id); h != nil {
		return s.join(ctx, h, false)
	}
	epoch, leased, live, err := s.r.lease(ctx, id)
	switch {
	case err != nil:
		return zero, Pending, fmt.Errorf("saga: Run %q: %w", id, err)
	case live != nil:
		return s.join(ctx, live, false)
	}
	recs, err := s.r.log.Load(ctx, id)
	var in *instance[S]
	switch {
	case errors.Is(err, journal.ErrForgotten):
		err = fmt.Errorf("%w: %q", ErrForgotten, id)
	case err != nil:
		err = fmt.Errorf("saga: Run %q: %w", id, err)
	case len(recs) == 0 && s.r.leases != nil && epoch == 0:
		// The lease found it ended, and its tombstone expired since.
		err = fmt.Errorf("saga: Run %q: its records were forgotten as it began; run it again", id)
	case len(recs) == 0:
		in, live, err = s.begin(ctx, id, initial, epoch)
	default:
		in, live, err = s.resumeRecords(ctx, id, recs, epoch)
	}
	leased(in != nil)
	switch {
	case live != nil:
		return s.join(ctx, live, false)
	case err != nil || in == nil:
		return s.recorded(id, recs, err)
	}
	return s.drive(ctx, in)
}

// drive runs a saga that Run began or took over, forward and, should it
// abort, backward, on a goroutine of the runner's, so that Run can return
// when its caller gives up even while an action or a journal call does
// not.
//
// A ctx that can never end (context.Background) asks for no early return:
// the saga then runs on the caller's goroutine, which spares the hand-off.
func (s *Saga[S]) drive(ctx context.Context, in *instance[S]) (S, Outcome, error) {
	if ctx.Done() == nil {
		in.drive()
		s.r.live.Done()
		return in.final, in.h.outcome, in.h.err
	}
	in.start()
	return s.join(ctx, in.h, true)
}

// recorded returns what the journal says of a saga that Run does not run:
// the outcome of an ended one, or err.
func (s *Saga[S]) recorded(id string, recs []journal.Record, err error) (S, Outcome, error) {
	var zero S
	var se *Error
	switch {
	case errors.As(err, &se) && se.Outcome != Pending: // a stuck saga says so
		return zero, se.Outcome, err
	case err != nil:
		return zero, Pending, err
	}
	h, ok, err := readHistory(recs)
	switch {
	case err != nil:
		return zero, Pending, err
	case !ok || !h.ended:
		return zero, Pending, fmt.Errorf("saga: %q is not a finished saga", id)
	}
	var state S
	if len(h.end.State) > 0 {
		if err := json.Unmarshal(h.end.State, &state); err != nil {
			return zero, Pending, fmt.Errorf("saga: %q: the recorded state does not decode: %w", id, err)
		}
	}
	o := parseOutcome(h.end.Outcome)
	if o == Completed {
		return state, o, nil
	}
	return state, o, &Error{Saga: h.begin.Name, ID: id, Step: h.end.Step, Outcome: o, Err: errors.New(h.end.Error)}
}

// begin writes the Begin record of a new saga, under its lease's epoch if
// it has one, and starts it.
func (s *Saga[S]) begin(ctx context.Context, id string, initial S, lease uint64) (*instance[S], *handle, error) {
	state, err := json.Marshal(initial)
	if err != nil {
		return nil, nil, fmt.Errorf("saga: Run %q: the initial state cannot be journaled as JSON: %w", id, err)
	}
	payload, err := json.Marshal(beginPayload{Name: s.def.name, Version: s.def.version, Fingerprint: s.def.fingerprint, State: state})
	if err != nil {
		return nil, nil, err
	}
	in := newInstance(s, id, &history{epoch: max(1, lease), lease: lease})
	if live, err := s.r.claim(in.h); live != nil || err != nil {
		return nil, live, err
	}
	ctx = in.open(ctx, false, trace.SpanContext{})
	carrier := s.r.ins.tel.Record(ctx)
	if err := json.Unmarshal(state, &in.state); err != nil {
		in.stopBeforeStart(err)
		return nil, nil, err
	}
	in.durable = state
	err = s.r.log.Append(ctx, id, 0, journal.Record{Epoch: in.epoch, Kind: kindBegin, Payload: payload, Carrier: carrier})
	if err != nil {
		in.stopBeforeStart(err)
		if errors.Is(err, journal.ErrConflict) {
			return nil, nil, fmt.Errorf("saga: Run %q: another runner began this saga at the same time: %w", id, err)
		}
		return nil, nil, fmt.Errorf("saga: Run %q: %w", id, err)
	}
	in.seq = 1
	return in, nil, nil
}

// resumeRecords takes over an unfinished saga that Run was given; it
// returns no instance for an ended one.
func (s *Saga[S]) resumeRecords(ctx context.Context, id string, recs []journal.Record, lease uint64) (*instance[S], *handle, error) {
	h, ok, err := readHistory(recs)
	switch {
	case err != nil:
		return nil, nil, err
	case !ok:
		return nil, nil, fmt.Errorf("saga: Run %q: the ID belongs to a journal entry that is not a saga", id)
	case h.ended:
		return nil, nil, nil
	case h.begin.Name != s.def.name:
		return nil, nil, fmt.Errorf("saga: Run %q: the ID belongs to a %q saga, not %q", id, h.begin.Name, s.def.name)
	case h.begin.Version != s.def.version || h.begin.Fingerprint != s.def.fingerprint:
		return nil, nil, fmt.Errorf("%w: %q began as %q version %d", ErrDefinitionChanged, id, h.begin.Name, h.begin.Version)
	case h.stuck != "":
		return nil, nil, &Error{Saga: s.def.name, ID: id, Step: h.stuckAt, Outcome: Stuck, Err: errors.New(h.stuck)}
	}
	h.lease = lease
	return s.takeOver(ctx, id, h)
}

// resume takes a saga over and drives it on a goroutine of the runner's.
func (s *Saga[S]) resume(ctx context.Context, id string, h *history) (*handle, error) {
	in, live, err := s.takeOver(ctx, id, h)
	if live != nil || err != nil {
		return live, err
	}
	in.start()
	return in.h, nil
}

// takeOver rebuilds a saga from its history and appends an owner record
// with a higher epoch, which fences off any runner that still drives it.
func (s *Saga[S]) takeOver(ctx context.Context, id string, h *history) (*instance[S], *handle, error) {
	in := newInstance(s, id, h)
	if err := in.replay(h); err != nil {
		return nil, nil, err
	}
	if live, err := s.r.claim(in.h); live != nil || err != nil {
		return nil, live, err
	}
	// The saga goes on in its first caller's name: its trace linked, and
	// its baggage, as Begin recorded them.
	ctx, begun := s.r.ins.tel.Resume(ctx, h.carrier)
	in.open(ctx, true, begun)
	in.epoch = h.nextEpoch()
	kinds := []journal.Record{{Kind: kindOwner}}
	if h.stuck != "" { // RetryStuck
		kinds = append(kinds, journal.Record{Kind: kindRetry})
	}
	in.mu.Lock()
	err := in.appendLocked(kinds...)
	in.mu.Unlock()
	if err != nil {
		in.stopBeforeStart(err)
		return nil, nil, fmt.Errorf("saga: take over %q: %w", id, err)
	}
	return in, nil, nil
}

// join waits for a live saga's outcome, or for ctx. When ctx ends, the
// saga's owner (the Run that began or resumed it) requests the abort and
// waits, at most the runner's abort wait, for it to be durable; any other
// caller only stops waiting. Neither waits for the journal beyond that.
func (s *Saga[S]) join(ctx context.Context, h *handle, owner bool) (S, Outcome, error) {
	var zero S
	in, ok := h.inst.(*instance[S])
	if !ok || in.def != s.def {
		return zero, Pending, fmt.Errorf("saga: Run %q: the ID is running as a %q saga", h.id, h.name)
	}
	select {
	case <-h.done:
		return in.final, h.outcome, h.err
	case <-ctx.Done():
	}
	gaveUp := func(state S, o Outcome, err error) (S, Outcome, error) {
		return state, o, &Error{Saga: s.def.name, ID: h.id, Outcome: o, Err: err}
	}
	if !owner {
		state, o := in.trySnapshot()
		return gaveUp(state, o, ctx.Err())
	}
	aborted := in.requestAbort(context.Cause(ctx))
	wait := time.NewTimer(s.r.cfg.abortWait)
	defer wait.Stop()
	select {
	case <-h.done:
		return in.final, h.outcome, h.err
	case <-aborted:
		if v := in.abortView; !v.ended {
			return gaveUp(v.state, v.outcome, ctx.Err())
		}
		<-h.done // it ended before the abort: finish publishes the outcome next
		return in.final, h.outcome, h.err
	case <-wait.C:
		return gaveUp(zero, Pending, fmt.Errorf("%w: %w", ErrAbortRequested, ctx.Err()))
	}
}

// Recover takes over every saga that the journal shows unfinished and
// that no saga of this runner is running, and drives each to its outcome:
// forward where no step failed, backward where one did. It returns a
// report for each saga it found, once all have an outcome or ctx ends;
// the sagas go on in the background after that, and Close waits for them.
//
// A saga whose definition is not registered here is left alone (its
// report's error is ErrNotRegistered); one whose definition changed since
// it began is marked stuck (ErrDefinitionChanged); a stuck one stays
// stuck until RetryStuck or Resolve.
//
// With WithLeases, Recover takes over only the sagas that no runner holds
// a lease of, or whose runner's lease expired (journal.Leaser's Claim):
// never one whose runner is alive and renewing. It gives back at once the
// leases of those it does not run. Serve calls it in a loop.
func (r *Runner) Recover(ctx context.Context) (reports []Report, err error) {
	if ctx == nil {
		return nil, errNilContext
	}
	return r.recover(ctx, true)
}

// Serve recovers, every half of the lease time, the sagas whose runner
// died (see Recover), without waiting for their outcomes, until ctx ends
// (it returns ctx's error) or Close begins (nil). A replica runs one Serve
// beside its handlers; with several replicas on one journal, a saga whose
// replica died resumes elsewhere within the lease time and half of it.
// Errors on the way (a journal that does not answer) go to otel.Handle,
// and the next round tries again. Serve needs WithLeases: without them
// one runner's Recover takes over what another is running.
func (r *Runner) Serve(ctx context.Context) error {
	switch {
	case ctx == nil:
		return errNilContext
	case r.leases == nil:
		return errors.New("saga: Serve needs WithLeases, so that replicas take over only what a dead one left")
	}
	return r.leases.Serve(ctx, func(ctx context.Context) error {
		if _, err := r.recover(ctx, false); !errors.Is(err, ErrClosed) {
			return err
		}
		return nil
	})
}

// recover is Recover; with wait false it reports the sagas it started as
// Pending at once.
func (r *Runner) recover(ctx context.Context, wait bool) (reports []Report, err error) {
	span := telemetry.Lazy(ctx, r.ins.tel.Tracer, spanRecover) // none if nothing is pending
	defer func() { span.End(err) }()
	pending := func(ctx context.Context) ([]string, error) {
		ids, err := r.log.Pending(ctx)
		if err != nil {
			return nil, fmt.Errorf("saga: Recover: %w", err)
		}
		return ids, nil
	}
	return owned.Recover(ctx, &r.live, r.leases, pending, func(_ context.Context, id string, epoch uint64) (*handle, *Report, error) {
		ctx := span.Context()
		recs, err := r.log.Load(ctx, id)
		if err != nil {
			return nil, nil, fmt.Errorf("saga: Recover %q: %w", id, err)
		}
		h, ok, err := readHistory(recs)
		if !ok {
			return nil, nil, nil // not a saga's
		}
		rep := &Report{ID: id, Err: err}
		if err == nil {
			h.lease = epoch
			rep.Name, rep.Version = h.begin.Name, h.begin.Version
			var live *handle
			if live, rep.Outcome, rep.Err = r.recoverOne(ctx, id, h); live != nil {
				return live, nil, nil
			}
		}
		return nil, rep, nil
	}, func(ctx context.Context, h *handle) (Report, error) {
		if !wait {
			return Report{ID: h.id, Name: h.name, Outcome: Pending}, nil
		}
		select {
		case <-h.done:
			return Report{ID: h.id, Name: h.name, Outcome: h.outcome, Err: h.err}, nil
		case <-ctx.Done():
			return Report{}, ctx.Err()
		}
	})
}

// Report is what Recover did with one saga.
type Report struct {
	ID      string
	Name    string
	Version int
	Outcome Outcome
	Err     error
}

func (r *Runner) recoverOne(ctx context.Context, id string, h *history) (*handle, Outcome, error) {
	if h.stuck != "" {
		r.countStuck(ctx, id, h.begin.Name)
		return nil, Stuck, &Error{Saga: h.begin.Name, ID: id, Step: h.stuckAt, Outcome: Stuck, Err: errors.New(h.stuck)}
	}
	r.mu.Lock()
	def, ok := r.defs[defKey{h.begin.Name, h.begin.Version}]
	known := r.names[h.begin.Name]
	r.mu.Unlock()
	switch {
	case !known:
		return nil, Pending, fmt.Errorf("%w: %q version %d", ErrNotRegistered, h.begin.Name, h.begin.Version)
	case !ok || def.fingerprint() != h.begin.Fingerprint:
		reason := fmt.Sprintf("%v: %q version %d", ErrDefinitionChanged, h.begin.Name, h.begin.Version)
		err := r.log.Append(ctx, id, h.seq,
			journal.Record{Epoch: h.nextEpoch(), Kind: kindOwner},
			journal.Record{Epoch: h.nextEpoch(), Kind: kindStuck, Payload: []byte(reason)})
		if err != nil {
			return nil, Pending, fmt.Errorf("saga: mark %q stuck: %w", id, err)
		}
		r.countStuck(ctx, id, h.begin.Name)
		return nil, Stuck, &Error{Saga: h.begin.Name, ID: id, Outcome: Stuck, Err: fmt.Errorf("%w: %q version %d", ErrDefinitionChanged, h.begin.Name, h.begin.Version)}
	}
	live, err := def.resume(ctx, id, h)
	if err != nil {
		return nil, Pending, err
	}
	return live, Pending, nil
}

// countStuck counts a stuck saga in the stuck gauge, once per process.
func (r *Runner) countStuck(ctx context.Context, id, name string) {
	r.mu.Lock()
	seen := r.stuck[id]
	r.stuck[id] = true
	r.mu.Unlock()
	if !seen {
		r.ins.stuckChanged(ctx, name, 1)
	}
}

func (r *Runner) uncountStuck(ctx context.Context, id, name string) {
	r.mu.Lock()
	seen := r.stuck[id]
	delete(r.stuck, id)
	r.mu.Unlock()
	if seen {
		r.ins.stuckChanged(ctx, name, -1)
	}
}

// Close stops new sagas and waits for the ones running, compensations
// included, until ctx ends. Then it stops them where they are, with no
// further effect, leaves them to Recover, and returns ctx's error at once;
// each goroutine returns as soon as the action, compensation or journal
// call it is in does. With WithLeases, the sagas' leases are renewed while
// Close waits, and those of the sagas it stopped are given back, so that
// another replica takes them at once. Close does not close the journal.
// It is idempotent: a later Close returns nil at once.
func (r *Runner) Close(ctx context.Context) error {
	if ctx == nil {
		return errNilContext
	}
	var stopped []string
	err := r.live.Close(ctx, func(h *handle) {
		stopped = append(stopped, h.id)
		h.kill(ErrClosed)
	})
	r.leases.Close(stopped)
	return err
}
