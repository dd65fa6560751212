package retry

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"
)

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

// DefaultClassify counts nil as a success, context.Canceled as excluded
// (the caller left; the dependency did not fail), and any other error as a
// failure.
func DefaultClassify(err error) Verdict {
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
	clock       Clock

	state    atomic.Int32
	gen      atomic.Uint64 // bumped at every transition
	fails    atomic.Int64  // consecutive failures while closed
	openedAt atomic.Int64  // clock time of the last opening, in Unix nanoseconds

	mu        sync.Mutex
	inFlight  int // half-open probes running
	succeeded int // half-open probes that succeeded
	win       *window

	inst      *breakerInstruments
	unobserve func()
}

// A BreakerOption configures a Breaker.
type BreakerOption interface{ applyBreaker(*Breaker) }

type breakerOptionFunc func(*Breaker)

func (f breakerOptionFunc) applyBreaker(b *Breaker) { f(b) }

// TripAfter opens the breaker after n consecutive failures. The default is
// 5; 0 turns the rule off (then set TripOnRate).
func TripAfter(n int) BreakerOption {
	return breakerOptionFunc(func(b *Breaker) { b.consecutive = int64(n) })
}

// TripOnRate opens the breaker when, over the last window, at least
// minRequests calls were counted and at least rate of them failed.
func TripOnRate(rate float64, minRequests int, span time.Duration) BreakerOption {
	return breakerOptionFunc(func(b *Breaker) {
		b.rate, b.minRequests = rate, minRequests
		b.win = &window{span: span}
	})
}

// OpenFor sets how long the breaker stays open before it lets probes
// through. The default is 30s.
func OpenFor(d time.Duration) BreakerOption {
	return breakerOptionFunc(func(b *Breaker) { b.openFor = d })
}

// HalfOpenProbes sets how many probes may run at once while half-open, and
// how many must succeed to close the breaker. The default is 1.
func HalfOpenProbes(n int) BreakerOption {
	return breakerOptionFunc(func(b *Breaker) { b.probes = n })
}

// Classify sets how errors count; the default is DefaultClassify.
func Classify(fn func(error) Verdict) BreakerOption {
	return breakerOptionFunc(func(b *Breaker) {
		if fn != nil {
			b.classify = fn
		}
	})
}

// OnStateChange sets a function called at every transition. It runs
// outside the breaker's lock, so it may call the breaker.
func OnStateChange(fn func(name string, from, to State)) BreakerOption {
	return breakerOptionFunc(func(b *Breaker) { b.onChange = fn })
}

// BreakerName names the breaker in its metrics (otelpatterns.breaker.name)
// and callbacks. Keep names to a small fixed set. The default is "default".
func BreakerName(name string) BreakerOption {
	return breakerOptionFunc(func(b *Breaker) { b.name = name })
}

// BreakerClock sets the clock, for tests.
func BreakerClock(c Clock) BreakerOption {
	return breakerOptionFunc(func(b *Breaker) {
		if c != nil {
			b.clock = c
		}
	})
}

// BreakerTracerProvider and BreakerMeterProvider set the providers; nil is
// ignored, and the default is the global one.
func BreakerTracerProvider(tp trace.TracerProvider) BreakerOption {
	return breakerOptionFunc(func(b *Breaker) { b.inst.cfg.SetTracerProvider(tp) })
}

// BreakerMeterProvider: see BreakerTracerProvider.
func BreakerMeterProvider(mp metric.MeterProvider) BreakerOption {
	return breakerOptionFunc(func(b *Breaker) { b.inst.cfg.SetMeterProvider(mp) })
}

// NewBreaker returns a closed breaker. It fails, naming the option to fix,
// when a count is negative, a rate is not in (0, 1], or a duration is not
// positive. Close it to unregister its state metric.
func NewBreaker(opts ...BreakerOption) (*Breaker, error) {
	b := &Breaker{
		name: "default", consecutive: 5, openFor: 30 * time.Second, probes: 1,
		classify: DefaultClassify, clock: realClock{}, inst: &breakerInstruments{},
	}
	for _, o := range opts {
		if o != nil {
			o.applyBreaker(b)
		}
	}
	switch {
	case b.consecutive < 0:
		return nil, fmt.Errorf("retry: TripAfter(%d): the count must not be negative", b.consecutive)
	case b.win != nil && !(b.rate > 0 && b.rate <= 1):
		return nil, fmt.Errorf("retry: TripOnRate(%v, ...): the rate must be in (0, 1]", b.rate)
	case b.win != nil && b.minRequests < 1:
		return nil, fmt.Errorf("retry: TripOnRate(..., %d, ...): the minimum number of requests must be at least 1", b.minRequests)
	case b.win != nil && b.win.span <= 0:
		return nil, fmt.Errorf("retry: TripOnRate(..., %v): the window must be more than 0", b.win.span)
	case b.consecutive == 0 && b.win == nil:
		return nil, errors.New("retry: TripAfter(0) turns off the only trip rule: set TripOnRate too")
	case b.openFor <= 0:
		return nil, fmt.Errorf("retry: OpenFor(%v): the duration must be more than 0", b.openFor)
	case b.probes < 1:
		return nil, fmt.Errorf("retry: HalfOpenProbes(%d): at least one probe is needed to close the breaker", b.probes)
	case b.name == "":
		return nil, errors.New(`retry: BreakerName(""): the name must not be empty`)
	}
	b.inst.build(b.name)
	b.unobserve = b.inst.observe(b.State)
	return b, nil
}

// Close unregisters the breaker's state metric. The breaker still works.
func (b *Breaker) Close() error {
	b.unobserve()
	return nil
}

// State returns the breaker's state now. An open breaker whose timeout has
// ended reports HalfOpen only once a call has gone through.
func (b *Breaker) State() State { return State(b.state.Load()) }

// Execute calls op unless the breaker is open, and counts its error. When
// the breaker is open, or half-open with every probe slot taken, it returns
// ErrOpen without calling op.
func (b *Breaker) Execute(ctx context.Context, op func(context.Context) error) error {
	ticket, err := b.before()
	if err != nil {
		return err
	}
	defer b.afterPanic(ticket)
	err = op(ctx)
	b.after(ticket, err)
	return err
}

// Call is Execute for an op with a result: one breaker serves operations of
// any result type.
func Call[T any](ctx context.Context, b *Breaker, op func(context.Context) (T, error)) (T, error) {
	ticket, err := b.before()
	if err != nil {
		var zero T
		return zero, err
	}
	defer b.afterPanic(ticket)
	out, err := op(ctx)
	b.after(ticket, err)
	return out, err
}

// ticket is what a call that was let through carries to after: the
// generation it started in, and whether it is a half-open probe.
type ticket struct {
	gen   uint64
	probe bool
}

// afterPanic, deferred before op is called, counts a call whose op
// panicked as a failure, whatever the classifier says, so that a
// panicking probe gives its slot back and the breaker does not stay
// half-open for ever (gobreaker's rule); then the panic goes on up.
func (b *Breaker) afterPanic(t ticket) {
	if r := recover(); r != nil {
		b.settle(t, Failure)
		panic(r)
	}
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
	return b.clock.Now().UnixNano()-b.openedAt.Load() >= int64(b.openFor)
}

func (b *Breaker) after(t ticket, err error) { b.settle(t, b.classify(err)) }

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
	total, failures := b.win.add(b.clock.Now(), failed)
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
		b.openedAt.Store(b.clock.Now().UnixNano())
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

// window counts outcomes over a sliding span of time, in ten buckets.
type window struct {
	span    time.Duration
	buckets [10]bucket
}

type bucket struct {
	start           time.Time
	total, failures int64
}

// add counts one outcome at now and returns the totals over the span.
func (w *window) add(now time.Time, failed bool) (total, failures int64) {
	width := max(w.span/time.Duration(len(w.buckets)), 1)
	slot := now.Truncate(width)
	bk := &w.buckets[(slot.UnixNano()/int64(width))%int64(len(w.buckets))]
	if !bk.start.Equal(slot) {
		*bk = bucket{start: slot}
	}
	bk.total++
	if failed {
		bk.failures++
	}
	for _, b := range w.buckets {
		if !b.start.IsZero() && now.Sub(b.start) < w.span {
			total += b.total
			failures += b.failures
		}
	}
	return total, failures
}

func (w *window) reset() { w.buckets = [10]bucket{} }
