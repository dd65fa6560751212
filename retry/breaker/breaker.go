package breaker

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// ErrOpen is a call that the breaker refused without making it: it is
// open, or half-open with every probe slot taken.
var ErrOpen = errors.New("breaker: circuit open")

// State is a circuit breaker's state.
type State int32

const (
	// Closed: calls go through; failures are counted.
	Closed State = iota
	// Open: calls fail at once with ErrOpen, until the open timeout ends.
	Open
	// HalfOpen: a few probe calls go through; one failure opens the
	// breaker again, enough successes close it.
	HalfOpen
)

func (s State) String() string {
	switch s {
	case Closed:
		return "closed"
	case Open:
		return "open"
	case HalfOpen:
		return "half_open"
	}
	return fmt.Sprintf("State(%d)", int32(s))
}

// Verdict is how a Breaker counts an operation's error.
type Verdict uint8

const (
	Success  Verdict = iota // counts as a success
	Failure                 // counts towards tripping
	Excluded                // not counted at all (a caller's cancellation, say)
)

// DefaultClassifier counts nil as a success, context.Canceled as excluded
// (the caller left; the dependency did not fail), and any other error as a
// failure.
func DefaultClassifier(err error) Verdict {
	switch {
	case err == nil:
		return Success
	case errors.Is(err, context.Canceled):
		return Excluded
	}
	return Failure
}

// Breaker is a circuit breaker: after enough failures it opens and fails
// calls at once, sparing a dependency that is down, then lets a few probes
// through to see if it is back. One Breaker serves operations of any result
// type (see Execute and Call) and is safe for concurrent use; the closed
// path costs a few atomic operations.
type Breaker struct {
	name        string
	consecutive int64
	rate        float64
	minRequests int
	openFor     time.Duration
	probes      int
	classify    func(error) Verdict
	onChange    func(name string, from, to State)

	state    atomic.Int32
	gen      atomic.Uint64 // bumped at every transition
	fails    atomic.Int64  // consecutive failures while closed
	openedAt atomic.Int64  // time of the last opening, in Unix nanoseconds

	mu        sync.Mutex
	inFlight  int // half-open probes running
	succeeded int // half-open probes that succeeded
	win       *window

	inst      *instruments
	unobserve func()
}

// New returns a closed breaker. It fails, naming the option to fix, when a
// count is negative, a rate is not in (0, 1], or a duration is not
// positive. Close it to unregister its state metric.
func New(opts ...Option) (*Breaker, error) {
	b := &Breaker{
		name: "default", consecutive: 5, openFor: 30 * time.Second, probes: 1,
		classify: DefaultClassifier, inst: &instruments{},
	}
	for _, o := range opts {
		if o != nil {
			o.apply(b)
		}
	}
	switch {
	case b.consecutive < 0:
		return nil, fmt.Errorf("breaker: WithTripAfter(%d): the count must not be negative", b.consecutive)
	case b.win != nil && !(b.rate > 0 && b.rate <= 1):
		return nil, fmt.Errorf("breaker: WithTripOnRate(%v, ...): the rate must be in (0, 1]", b.rate)
	case b.win != nil && b.minRequests < 1:
		return nil, fmt.Errorf("breaker: WithTripOnRate(..., %d, ...): the minimum number of requests must be at least 1", b.minRequests)
	case b.win != nil && b.win.span <= 0:
		return nil, fmt.Errorf("breaker: WithTripOnRate(..., %v): the window must be more than 0", b.win.span)
	case b.consecutive == 0 && b.win == nil:
		return nil, errors.New("breaker: WithTripAfter(0) turns off the only trip rule: set WithTripOnRate too")
	case b.openFor <= 0:
		return nil, fmt.Errorf("breaker: WithOpenFor(%v): the duration must be more than 0", b.openFor)
	case b.probes < 1:
		return nil, fmt.Errorf("breaker: WithHalfOpenProbes(%d): at least one probe is needed to close the breaker", b.probes)
	case b.name == "":
		return nil, errors.New(`breaker: WithName(""): the name must not be empty`)
	}
	b.inst.build(b.name)
	b.unobserve = b.inst.observe(b.State)
	return b, nil
}

// Close unregisters the breaker's state metric; the breaker still works.
// Close is idempotent.
func (b *Breaker) Close() error {
	b.unobserve()
	return nil
}

// Name returns the breaker's name (WithName).
func (b *Breaker) Name() string { return b.name }

// State returns the breaker's state now: an open breaker whose timeout
// has passed is HalfOpen, ready for a probe, even before one came.
func (b *Breaker) State() State {
	s := State(b.state.Load())
	if s == Open && b.openElapsed() {
		return HalfOpen
	}
	return s
}

// Counts is what a breaker has counted since its last change of state.
type Counts struct {
	// ConsecutiveFailures while closed, for WithTripAfter.
	ConsecutiveFailures int64
	// Requests and Failures counted in the window, for WithTripOnRate
	// (zero without it).
	Requests, Failures int64
	// Probes running and ProbeSuccesses so far, while half-open.
	Probes, ProbeSuccesses int
}

// Counts returns what the breaker has counted since its last change of
// state.
func (b *Breaker) Counts() Counts {
	b.mu.Lock()
	defer b.mu.Unlock()
	if State(b.state.Load()) != Closed {
		return Counts{Probes: b.inFlight, ProbeSuccesses: b.succeeded}
	}
	c := Counts{ConsecutiveFailures: b.fails.Load()}
	if b.win != nil {
		c.Requests, c.Failures = b.win.totals(time.Now())
	}
	return c
}

// Execute calls op unless the breaker is open, and counts its error. When
// the breaker is open, or half-open with every probe slot taken, it returns
// ErrOpen without calling op. An op that panics counts as a failure, and
// the panic goes on.
func (b *Breaker) Execute(ctx context.Context, op func(context.Context) error) error {
	p, err := b.Allow()
	if err != nil {
		return err
	}
	defer p.donePanicking()
	err = op(ctx)
	p.Done(err)
	return err
}

// Call is Execute for an op with a result: one breaker serves operations of
// any result type.
func Call[T any](ctx context.Context, b *Breaker, op func(context.Context) (T, error)) (T, error) {
	p, err := b.Allow()
	if err != nil {
		var zero T
		return zero, err
	}
	defer p.donePanicking()
	out, err := op(ctx)
	p.Done(err)
	return out, err
}

// Allow is the first half of a call that the caller makes itself, as a
// retry policy does: it returns ErrOpen, or a Permit whose Done must be
// called, once, with the call's error.
func (b *Breaker) Allow() (Permit, error) {
	t, err := b.before()
	if err != nil {
		return Permit{}, err
	}
	return Permit{b: b, t: t}, nil
}

// Permit is a call that Allow let through.
type Permit struct {
	b *Breaker
	t ticket
}

// Done counts the call's error, through the breaker's classifier.
func (p Permit) Done(err error) { p.b.settle(p.t, p.b.classify(err)) }

// Panicked counts a call that panicked: a failure whatever the classifier
// says, so that a panicking probe gives its slot back and the breaker does
// not stay half-open for ever (gobreaker's rule).
func (p Permit) Panicked() { p.b.settle(p.t, Failure) }

// donePanicking, deferred before op is called, counts a panic as
// Panicked does, then lets the panic go on up.
func (p Permit) donePanicking() {
	if r := recover(); r != nil {
		p.Panicked()
		panic(r)
	}
}

// ticket is what a call that was let through carries to after: the
// generation it started in, and whether it is a half-open probe.
type ticket struct {
	gen   uint64
	probe bool
}

func (b *Breaker) before() (ticket, error) {
	gen := b.gen.Load()
	switch State(b.state.Load()) {
	case Closed:
		return ticket{gen: gen}, nil
	case Open:
		if !b.openElapsed() {
			return ticket{}, ErrOpen
		}
	}
	// Half-open, or open and due to be: take a probe slot.
	b.mu.Lock()
	change := b.toLocked(HalfOpen, Open)
	ok := State(b.state.Load()) == HalfOpen && b.inFlight < b.probes
	if ok {
		b.inFlight++
	}
	gen = b.gen.Load()
	b.mu.Unlock()
	b.changed(change)
	if !ok {
		return ticket{}, ErrOpen
	}
	return ticket{gen: gen, probe: true}, nil
}

// openElapsed reports whether the breaker has been open for its timeout.
func (b *Breaker) openElapsed() bool {
	return time.Now().UnixNano()-b.openedAt.Load() >= int64(b.openFor)
}

// settle counts a call's verdict.
func (b *Breaker) settle(t ticket, verdict Verdict) {
	if !t.probe {
		if verdict == Excluded {
			return
		}
		if verdict == Success {
			if b.fails.Load() != 0 {
				b.fails.Store(0)
			}
			if b.win != nil {
				b.record(t.gen, false)
			}
			return
		}
		n := b.fails.Add(1)
		trip := b.consecutive > 0 && n >= b.consecutive
		if b.win != nil {
			trip = b.record(t.gen, true) || trip
		}
		if trip {
			b.transition(t.gen, Open, Closed)
		}
		return
	}
	b.mu.Lock()
	var change transition
	if t.gen == b.gen.Load() {
		b.inFlight--
		switch verdict {
		case Failure:
			change = b.toLocked(Open, HalfOpen)
		case Success:
			if b.succeeded++; b.succeeded >= b.probes {
				change = b.toLocked(Closed, HalfOpen)
			}
		}
	}
	b.mu.Unlock()
	b.changed(change)
}

// record counts a closed-state outcome in the window and reports whether
// the failure rate trips the breaker.
func (b *Breaker) record(gen uint64, failed bool) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if gen != b.gen.Load() {
		return false
	}
	total, failures := b.win.add(time.Now(), failed)
	return failed && total >= int64(b.minRequests) && float64(failures) >= b.rate*float64(total)
}

// transition moves the breaker from 'from' to 'to' if it is still in the
// generation gen.
func (b *Breaker) transition(gen uint64, to, from State) {
	b.mu.Lock()
	var change transition
	if gen == b.gen.Load() {
		change = b.toLocked(to, from)
	}
	b.mu.Unlock()
	b.changed(change)
}

type transition struct{ from, to State }

// toLocked moves to 'to' if the state is 'from', resetting the counts of
// the state it enters, and returns the change to report (zero if none).
// b.mu is held.
func (b *Breaker) toLocked(to, from State) transition {
	if State(b.state.Load()) != from {
		return transition{}
	}
	if from == Open && !b.openElapsed() {
		return transition{}
	}
	switch to {
	case Open:
		b.openedAt.Store(time.Now().UnixNano())
	case Closed:
		b.fails.Store(0)
		if b.win != nil {
			b.win.reset()
		}
	}
	b.inFlight, b.succeeded = 0, 0
	b.gen.Add(1)
	b.state.Store(int32(to))
	return transition{from: from, to: to}
}

// changed reports a transition, outside the lock.
func (b *Breaker) changed(t transition) {
	if t == (transition{}) {
		return
	}
	b.inst.transitioned(t.to)
	if b.onChange != nil {
		b.onChange(b.name, t.from, t.to)
	}
}
