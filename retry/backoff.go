package retry

import (
	"fmt"
	"math"
	"time"
)

// Backoff computes how long to wait before a retry. Implementations must be
// safe for concurrent use: one Policy serves many calls at once.
type Backoff interface {
	// Delay returns the wait before retry number retry (1 for the first),
	// given the previous wait (0 before the first) and a source of
	// uniform random numbers in [0, 1). It never returns a negative delay.
	Delay(retry int, prev time.Duration, rand func() float64) time.Duration
}

// Jitter chooses how Exponential randomises its delays. Randomising keeps
// many clients that failed together from retrying together.
type Jitter uint8

const (
	// NoJitter waits exactly min(cap, base·2^(retry-1)).
	NoJitter Jitter = iota
	// FullJitter waits U(0, b), b = min(cap, base·2^(retry-1)): the least
	// total work under contention, in AWS's "Exponential Backoff And
	// Jitter" analysis.
	FullJitter
	// EqualJitter waits b/2 + U(0, b/2): never less than half the backoff.
	EqualJitter
	// DecorrelatedJitter waits min(cap, U(base, 3·prev)), growing from the
	// previous delay rather than from the attempt number.
	DecorrelatedJitter
)

// Exponential returns a backoff that doubles from base up to max (cap) and
// randomises as jitter says. It fails when base is not positive, when max is
// below base, or when jitter is unknown.
func Exponential(base, max time.Duration, jitter Jitter) (Backoff, error) {
	switch {
	case base <= 0:
		return nil, fmt.Errorf("retry: Exponential(%v, %v): the base must be more than 0", base, max)
	case max < base:
		return nil, fmt.Errorf("retry: Exponential(%v, %v): the cap must be at least the base", base, max)
	case jitter > DecorrelatedJitter:
		return nil, fmt.Errorf("retry: Exponential: unknown jitter %d", jitter)
	}
	return exponential{base: base, max: max, jitter: jitter}, nil
}

type exponential struct {
	base, max time.Duration
	jitter    Jitter
}

func (e exponential) Delay(retry int, prev time.Duration, rand func() float64) time.Duration {
	b := e.capped(retry)
	switch e.jitter {
	case FullJitter:
		return time.Duration(rand() * float64(b))
	case EqualJitter:
		return b/2 + time.Duration(rand()*float64(b-b/2))
	case DecorrelatedJitter:
		lo, hi := float64(e.base), 3*float64(max(prev, e.base))
		return min(e.max, time.Duration(lo+rand()*(hi-lo)))
	default:
		return b
	}
}

// capped is min(max, base·2^(retry-1)), computed without overflow at any
// retry number.
func (e exponential) capped(retry int) time.Duration {
	if retry < 1 {
		retry = 1
	}
	shift := retry - 1
	if shift >= 62 || e.base > math.MaxInt64>>shift {
		return e.max
	}
	return min(e.max, e.base<<shift)
}

// Constant returns a backoff that always waits d. It fails when d is
// negative.
func Constant(d time.Duration) (Backoff, error) {
	if d < 0 {
		return nil, fmt.Errorf("retry: Constant(%v): the delay must not be negative", d)
	}
	return constant(d), nil
}

type constant time.Duration

func (c constant) Delay(int, time.Duration, func() float64) time.Duration { return time.Duration(c) }
