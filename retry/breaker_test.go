package retry_test

import (
	"context"
	"errors"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/otelpatterns/otelpatterns/retry"
)

type change struct{ from, to retry.State }

// newBreaker returns a breaker on a fake clock that records its
// transitions, calling State from the callback to show it does not
// deadlock.
func newBreaker(t *testing.T, clk *fakeClock, opts ...retry.BreakerOption) (*retry.Breaker, func() []change) {
	t.Helper()
	var mu sync.Mutex
	var changes []change
	var b *retry.Breaker
	opts = append(opts, retry.BreakerClock(clk), retry.OnStateChange(func(_ string, from, to retry.State) {
		_ = b.State() // a breaker method called from a callback
		mu.Lock()
		changes = append(changes, change{from, to})
		mu.Unlock()
	}))
	b, err := retry.NewBreaker(opts...)
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

func TestBreakerTripsAfterConsecutiveFailures(t *testing.T) {
	clk := newClock()
	b, changes := newBreaker(t, clk, retry.TripAfter(3), retry.OpenFor(10*time.Second), retry.HalfOpenProbes(2))
	require.Error(t, b.Execute(bg, fail))
	require.Error(t, b.Execute(bg, fail))
	require.NoError(t, b.Execute(bg, succeed), "a success resets the count")
	for range 3 {
		require.ErrorIs(t, b.Execute(bg, fail), io.ErrUnexpectedEOF)
	}
	assert.Equal(t, retry.Open, b.State())

	called := false
	err := b.Execute(bg, func(context.Context) error { called = true; return nil })
	assert.ErrorIs(t, err, retry.ErrOpen)
	assert.False(t, called, "an open breaker does not call the op")

	clk.advance(10 * time.Second)
	// Half-open: at most 2 probes at once.
	hold := make(chan struct{})
	var wg sync.WaitGroup
	started := make(chan struct{}, 2)
	for range 2 {
		wg.Go(func() {
			_ = b.Execute(bg, func(context.Context) error { started <- struct{}{}; <-hold; return nil })
		})
	}
	for range 2 {
		select {
		case <-started:
		case <-time.After(5 * time.Second):
			t.Fatal("the two probes did not both start")
		}
	}
	assert.Equal(t, retry.HalfOpen, b.State())
	assert.ErrorIs(t, b.Execute(bg, succeed), retry.ErrOpen, "a third probe is refused")
	close(hold)
	wg.Wait()
	assert.Equal(t, retry.Closed, b.State(), "2 successful probes close it")
	assert.Equal(t, []change{{retry.Closed, retry.Open}, {retry.Open, retry.HalfOpen}, {retry.HalfOpen, retry.Closed}}, changes())
}

func TestBreakerCallbackMayExecute(t *testing.T) {
	clk := newClock()
	var b *retry.Breaker
	calls := 0
	b, err := retry.NewBreaker(retry.TripAfter(1), retry.BreakerClock(clk), retry.OnStateChange(func(_ string, _, to retry.State) {
		if to == retry.Open {
			// Called outside the breaker's lock: a call through the breaker
			// from here returns (ErrOpen) instead of deadlocking.
			calls++
			assert.ErrorIs(t, b.Execute(context.Background(), succeed), retry.ErrOpen)
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

func TestBreakerOneFailedProbeReopens(t *testing.T) {
	clk := newClock()
	b, changes := newBreaker(t, clk, retry.TripAfter(1), retry.OpenFor(time.Second), retry.HalfOpenProbes(3))
	require.Error(t, b.Execute(bg, fail))
	clk.advance(time.Second)
	require.NoError(t, b.Execute(bg, succeed))
	require.Error(t, b.Execute(bg, fail))
	assert.Equal(t, retry.Open, b.State())
	assert.ErrorIs(t, b.Execute(bg, succeed), retry.ErrOpen, "the open timeout starts again")
	assert.Equal(t, []change{{retry.Closed, retry.Open}, {retry.Open, retry.HalfOpen}, {retry.HalfOpen, retry.Open}}, changes())
}

// A probe that panics counts as a failed probe and gives its slot back;
// the panic reaches the caller.
func TestBreakerPanickingProbeDoesNotWedgeIt(t *testing.T) {
	clk := newClock()
	b, _ := newBreaker(t, clk, retry.TripAfter(1), retry.OpenFor(time.Second), retry.HalfOpenProbes(1))
	require.Error(t, b.Execute(bg, fail))
	clk.advance(time.Second)
	assert.PanicsWithValue(t, "probe broke", func() {
		_ = b.Execute(bg, func(context.Context) error { panic("probe broke") })
	})
	assert.Equal(t, retry.Open, b.State(), "a panicking probe is a failed probe")
	clk.advance(time.Second)
	require.NoError(t, b.Execute(bg, succeed), "the probe slot was given back")
	assert.Equal(t, retry.Closed, b.State())
	clk.advance(time.Second)
	assert.Panics(t, func() {
		_, _ = retry.Call(bg, b, func(context.Context) (int, error) { panic("call broke") })
	})
}

func TestBreakerExcludesCancellation(t *testing.T) {
	b, _ := newBreaker(t, newClock(), retry.TripAfter(2))
	for range 5 {
		_ = b.Execute(bg, func(context.Context) error { return context.Canceled })
	}
	assert.Equal(t, retry.Closed, b.State(), "a caller's cancellation is not the dependency's failure")

	custom, _ := newBreaker(t, newClock(), retry.TripAfter(1), retry.Classify(func(err error) retry.Verdict {
		if errors.Is(err, io.EOF) {
			return retry.Success // end of stream is fine
		}
		return retry.DefaultClassify(err)
	}))
	_ = custom.Execute(bg, func(context.Context) error { return io.EOF })
	assert.Equal(t, retry.Closed, custom.State())
}

func TestBreakerFailureRate(t *testing.T) {
	clk := newClock()
	b, _ := newBreaker(t, clk, retry.TripAfter(0), retry.TripOnRate(0.5, 10, time.Minute))
	for i := range 9 {
		if i%2 == 0 {
			_ = b.Execute(bg, fail)
		} else {
			_ = b.Execute(bg, succeed)
		}
	}
	assert.Equal(t, retry.Closed, b.State(), "fewer than 10 calls: no verdict yet")
	_ = b.Execute(bg, fail) // 10 calls, 6 failures
	assert.Equal(t, retry.Open, b.State())

	clk2 := newClock()
	old, _ := newBreaker(t, clk2, retry.TripAfter(0), retry.TripOnRate(0.5, 4, time.Minute))
	_ = old.Execute(bg, fail)
	_ = old.Execute(bg, fail)
	clk2.advance(2 * time.Minute) // those fall out of the window
	_ = old.Execute(bg, succeed)
	_ = old.Execute(bg, succeed)
	_ = old.Execute(bg, fail)
	assert.Equal(t, retry.Closed, old.State(), "only the last minute counts")
}

func TestBreakerServesAnyResultType(t *testing.T) {
	b, _ := newBreaker(t, newClock(), retry.TripAfter(2))
	n, err := retry.Call(bg, b, func(context.Context) (int, error) { return 3, nil })
	assert.Equal(t, 3, n)
	assert.NoError(t, err)
	s, err := retry.Call(bg, b, func(context.Context) (string, error) { return "", io.EOF })
	assert.Empty(t, s)
	assert.ErrorIs(t, err, io.EOF)
}

func TestPolicyWithBreaker(t *testing.T) {
	clk := newClock()
	b, _ := newBreaker(t, clk, retry.TripAfter(2))
	p := mustPolicy(t, retry.WithMaxAttempts(5), retry.WithBreaker(b), retry.WithClock(clk))
	calls := 0
	err := retry.Run(bg, p, func(context.Context) error { calls++; return io.EOF })
	assert.Equal(t, 2, calls, "the breaker opens after 2 and stops the retries")
	assert.ErrorIs(t, err, retry.ErrOpen)
	assert.ErrorIs(t, err, io.EOF, "the last error the op returned is kept")

	calls = 0
	err = retry.Run(bg, p, func(context.Context) error { calls++; return nil })
	assert.Zero(t, calls)
	var re *retry.Error
	require.ErrorAs(t, err, &re)
	assert.Equal(t, 0, re.Attempts)
	assert.Equal(t, retry.ErrOpen, re.Cause)
	assert.Nil(t, re.Last)
}

func TestNewBreakerRejectsBadConfiguration(t *testing.T) {
	for want, opt := range map[string]retry.BreakerOption{
		"TripAfter(-1)":           retry.TripAfter(-1),
		"TripAfter(0)":            retry.TripAfter(0),
		"TripOnRate(0, ...)":      retry.TripOnRate(0, 10, time.Second),
		"TripOnRate(..., 0, ...)": retry.TripOnRate(0.5, 0, time.Second),
		"TripOnRate(..., 0s)":     retry.TripOnRate(0.5, 10, 0),
		"OpenFor(0s)":             retry.OpenFor(0),
		"HalfOpenProbes(0)":       retry.HalfOpenProbes(0),
		`BreakerName("")`:         retry.BreakerName(""),
	} {
		b, err := retry.NewBreaker(opt)
		assert.Nil(t, b, want)
		assert.ErrorContains(t, err, want)
	}
}
