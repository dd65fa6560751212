package breaker_test

import (
	"context"
	"errors"
	"io"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/otelpatterns/otelpatterns/retry/breaker"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var bg = context.Background()

type change struct{ from, to breaker.State }

// newBreaker returns a breaker that records its transitions, calling
// State from the callback to show it does not deadlock. Tests that wait
// for its open timeout run in a synctest bubble, whose clock a sleep
// advances at once.
func newBreaker(t *testing.T, opts ...breaker.Option) (*breaker.Breaker, func() []change) {
	t.Helper()
	var mu sync.Mutex
	var changes []change
	var b *breaker.Breaker
	opts = append(opts, breaker.WithOnStateChange(func(_ string, from, to breaker.State) {
		_ = b.State() // a breaker method called from a callback
		mu.Lock()
		changes = append(changes, change{from, to})
		mu.Unlock()
	}))
	b, err := breaker.New(opts...)
	require.NoError(t, err)
	t.Cleanup(func() { _ = b.Close() })
	return b, func() []change {
		mu.Lock()
		defer mu.Unlock()
		return append([]change(nil), changes...)
	}
}

func fail(context.Context) error    { return io.ErrUnexpectedEOF }
func succeed(context.Context) error { return nil }

func TestTripsAfterConsecutiveFailures(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b, changes := newBreaker(t, breaker.WithTripAfter(3), breaker.WithOpenFor(10*time.Second), breaker.WithHalfOpenProbes(2))
		require.Error(t, b.Execute(bg, fail))
		require.Error(t, b.Execute(bg, fail))
		assert.Equal(t, breaker.Counts{ConsecutiveFailures: 2}, b.Counts())
		require.NoError(t, b.Execute(bg, succeed), "a success resets the count")
		for range 3 {
			require.ErrorIs(t, b.Execute(bg, fail), io.ErrUnexpectedEOF)
		}
		assert.Equal(t, breaker.Open, b.State())

		called := false
		err := b.Execute(bg, func(context.Context) error { called = true; return nil })
		assert.ErrorIs(t, err, breaker.ErrOpen)
		assert.False(t, called, "an open breaker does not call the op")

		time.Sleep(10 * time.Second)
		assert.Equal(t, breaker.HalfOpen, b.State(), "half-open once the timeout has passed, before any call")
		// Half-open: at most 2 probes at once.
		hold := make(chan struct{})
		var wg sync.WaitGroup
		for range 2 {
			wg.Go(func() {
				_ = b.Execute(bg, func(context.Context) error { <-hold; return nil })
			})
		}
		synctest.Wait() // both probes are in their op
		assert.Equal(t, breaker.Counts{Probes: 2}, b.Counts())
		assert.ErrorIs(t, b.Execute(bg, succeed), breaker.ErrOpen, "a third probe is refused")
		close(hold)
		wg.Wait()
		assert.Equal(t, breaker.Closed, b.State(), "2 successful probes close it")
		assert.Equal(t, []change{{breaker.Closed, breaker.Open}, {breaker.Open, breaker.HalfOpen}, {breaker.HalfOpen, breaker.Closed}}, changes())
	})
}

func TestCallbackMayExecute(t *testing.T) {
	var b *breaker.Breaker
	calls := 0
	b, err := breaker.New(breaker.WithTripAfter(1), breaker.WithOnStateChange(func(_ string, _, to breaker.State) {
		if to == breaker.Open {
			// Called outside the breaker's lock: a call through the breaker
			// from here returns (ErrOpen) instead of deadlocking.
			calls++
			assert.ErrorIs(t, b.Execute(context.Background(), succeed), breaker.ErrOpen)
		}
	}))
	require.NoError(t, err)
	defer b.Close()
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = b.Execute(bg, fail)
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("a callback that calls the breaker deadlocked")
	}
	assert.Equal(t, 1, calls)
}

func TestOneFailedProbeReopens(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b, changes := newBreaker(t, breaker.WithTripAfter(1), breaker.WithOpenFor(time.Second), breaker.WithHalfOpenProbes(3))
		require.Error(t, b.Execute(bg, fail))
		time.Sleep(time.Second)
		require.NoError(t, b.Execute(bg, succeed))
		require.Error(t, b.Execute(bg, fail))
		assert.Equal(t, breaker.Open, b.State())
		assert.ErrorIs(t, b.Execute(bg, succeed), breaker.ErrOpen, "the open timeout starts again")
		assert.Equal(t, []change{{breaker.Closed, breaker.Open}, {breaker.Open, breaker.HalfOpen}, {breaker.HalfOpen, breaker.Open}}, changes())
	})
}

// A probe that panics counts as a failed probe and gives its slot back;
// the panic reaches the caller.
func TestPanickingProbeDoesNotWedgeIt(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b, _ := newBreaker(t, breaker.WithTripAfter(1), breaker.WithOpenFor(time.Second), breaker.WithHalfOpenProbes(1))
		require.Error(t, b.Execute(bg, fail))
		time.Sleep(time.Second)
		assert.PanicsWithValue(t, "probe broke", func() {
			_ = b.Execute(bg, func(context.Context) error { panic("probe broke") })
		})
		assert.Equal(t, breaker.Open, b.State(), "a panicking probe is a failed probe")
		time.Sleep(time.Second)
		require.NoError(t, b.Execute(bg, succeed), "the probe slot was given back")
		assert.Equal(t, breaker.Closed, b.State())
		assert.Panics(t, func() {
			_, _ = breaker.Call(bg, b, func(context.Context) (int, error) { panic("call broke") })
		})
		assert.Equal(t, breaker.Open, b.State(), "a panicking call is a failure")
	})
}

// Allow and Permit let a caller make the call itself, as a retry policy
// does.
func TestAllowAndPermit(t *testing.T) {
	b, _ := newBreaker(t, breaker.WithTripAfter(2))
	for range 2 {
		p, err := b.Allow()
		require.NoError(t, err)
		p.Done(io.EOF)
	}
	_, err := b.Allow()
	assert.ErrorIs(t, err, breaker.ErrOpen)
	b2, _ := newBreaker(t, breaker.WithTripAfter(1))
	p, _ := b2.Allow()
	p.Panicked()
	assert.Equal(t, breaker.Open, b2.State(), "Panicked counts a failure")
}

func TestExcludesCancellation(t *testing.T) {
	b, _ := newBreaker(t, breaker.WithTripAfter(2))
	for range 5 {
		_ = b.Execute(bg, func(context.Context) error { return context.Canceled })
	}
	assert.Equal(t, breaker.Closed, b.State(), "a caller's cancellation is not the dependency's failure")

	custom, _ := newBreaker(t, breaker.WithTripAfter(1), breaker.WithClassifier(func(err error) breaker.Verdict {
		if errors.Is(err, io.EOF) {
			return breaker.Success // end of stream is fine
		}
		return breaker.DefaultClassifier(err)
	}))
	_ = custom.Execute(bg, func(context.Context) error { return io.EOF })
	assert.Equal(t, breaker.Closed, custom.State())
}

func TestFailureRate(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b, _ := newBreaker(t, breaker.WithTripAfter(0), breaker.WithTripOnRate(0.5, 10, time.Minute))
		for i := range 9 {
			if i%2 == 0 {
				_ = b.Execute(bg, fail)
			} else {
				_ = b.Execute(bg, succeed)
			}
		}
		assert.Equal(t, breaker.Closed, b.State(), "fewer than 10 calls: no verdict yet")
		c := b.Counts()
		assert.Equal(t, [2]int64{9, 5}, [2]int64{c.Requests, c.Failures})
		_ = b.Execute(bg, fail) // 10 calls, 6 failures
		assert.Equal(t, breaker.Open, b.State())

		old, _ := newBreaker(t, breaker.WithTripAfter(0), breaker.WithTripOnRate(0.5, 4, time.Minute))
		_ = old.Execute(bg, fail)
		_ = old.Execute(bg, fail)
		time.Sleep(2 * time.Minute) // those fall out of the window
		_ = old.Execute(bg, succeed)
		_ = old.Execute(bg, succeed)
		_ = old.Execute(bg, fail)
		assert.Equal(t, breaker.Closed, old.State(), "only the last minute counts")
	})
}

func TestServesAnyResultType(t *testing.T) {
	b, _ := newBreaker(t, breaker.WithTripAfter(2))
	n, err := breaker.Call(bg, b, func(context.Context) (int, error) { return 3, nil })
	assert.Equal(t, 3, n)
	assert.NoError(t, err)
	s, err := breaker.Call(bg, b, func(context.Context) (string, error) { return "", io.EOF })
	assert.Empty(t, s)
	assert.ErrorIs(t, err, io.EOF)
}

func TestNewRejectsBadConfiguration(t *testing.T) {
	for want, opt := range map[string]breaker.Option{
		"WithTripAfter(-1)":           breaker.WithTripAfter(-1),
		"WithTripAfter(0)":            breaker.WithTripAfter(0),
		"WithTripOnRate(0, ...)":      breaker.WithTripOnRate(0, 10, time.Second),
		"WithTripOnRate(..., 0, ...)": breaker.WithTripOnRate(0.5, 0, time.Second),
		"WithTripOnRate(..., 0s)":     breaker.WithTripOnRate(0.5, 10, 0),
		"WithOpenFor(0s)":             breaker.WithOpenFor(0),
		"WithHalfOpenProbes(0)":       breaker.WithHalfOpenProbes(0),
		`WithName("")`:                breaker.WithName(""),
	} {
		b, err := breaker.New(opt)
		assert.Nil(t, b, want)
		assert.ErrorContains(t, err, want)
	}
}
