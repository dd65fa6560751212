package retry_test

import (
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
	"golang.org/x/time/rate"

	"github.com/otelpatterns/otelpatterns/retry"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var bg = context.Background()

// A tape records when each attempt began. Run inside a testing/synctest
// bubble, where the policy's sleeps pass at once on a fake clock, its gaps
// are the waits exactly.
type tape struct{ at []time.Time }

func (t *tape) mark() { t.at = append(t.at, time.Now()) }

func (t *tape) gaps() []time.Duration {
	var d []time.Duration
	for i := 1; i < len(t.at); i++ {
		d = append(d, t.at[i].Sub(t.at[i-1]))
	}
	return d
}

func mustPolicy(t *testing.T, opts ...retry.Option) *retry.Policy {
	t.Helper()
	p, err := retry.New(opts...)
	require.NoError(t, err)
	return p
}

func TestNewRejectsBadConfiguration(t *testing.T) {
	cases := map[string]retry.Option{
		"WithMaxAttempts(0)":       retry.WithMaxAttempts(0),
		"WithMaxAttempts(-2)":      retry.WithMaxAttempts(-2),
		"Exponential(0s, 1s)":      retry.WithExponentialBackoff(0, time.Second, retry.FullJitter),
		"Exponential(-1s, 1s)":     retry.WithExponentialBackoff(-time.Second, time.Second, retry.FullJitter),
		"Exponential(2s, 1s)":      retry.WithExponentialBackoff(2*time.Second, time.Second, retry.NoJitter),
		"unknown jitter":           retry.WithExponentialBackoff(time.Second, time.Second, retry.Jitter(9)),
		"Constant(-1s)":            retry.WithConstantBackoff(-time.Second),
		"WithMaxElapsed(-1s)":      retry.WithMaxElapsed(-time.Second),
		"WithAttemptTimeout(-1s)":  retry.WithAttemptTimeout(-time.Second),
		`WithName("")`:             retry.WithName(""),
		"the limiter's limit is 0": retry.WithRateLimit(rate.NewLimiter(0, 1)),
		"the limiter's burst is 0": retry.WithRateLimit(rate.NewLimiter(10, 0)),
	}
	for want, opt := range cases {
		p, err := retry.New(opt)
		assert.Nil(t, p, want)
		assert.ErrorContains(t, err, want)
	}
}

func TestStopsAtMaxAttemptsWithoutSleepingAfterTheLast(t *testing.T) {
	synctest.Test(t, testStopsAtMaxAttempts)
}

func testStopsAtMaxAttempts(t *testing.T) {
	p := mustPolicy(t, retry.WithMaxAttempts(4), retry.WithConstantBackoff(time.Second))
	var attempts tape
	start := time.Now()
	_, err := retry.Do(bg, p, func(context.Context) (int, error) {
		attempts.mark()
		return 0, io.ErrUnexpectedEOF
	})
	assert.Len(t, attempts.at, 4)
	assert.ErrorIs(t, err, io.ErrUnexpectedEOF, "the op's last error")
	assert.ErrorIs(t, err, retry.ErrExhausted, "and why retrying stopped")
	var re *retry.Error
	require.ErrorAs(t, err, &re)
	assert.Equal(t, 4, re.Attempts)
	assert.Equal(t, []time.Duration{time.Second, time.Second, time.Second}, attempts.gaps())
	assert.Equal(t, 3*time.Second, time.Since(start), "no sleep after the last attempt")
	assert.Equal(t, "retry: attempts exhausted after 4 attempt(s): unexpected EOF", err.Error())
}

func TestSucceedsAfterFailures(t *testing.T) { synctest.Test(t, testSucceedsAfterFailures) }

func testSucceedsAfterFailures(t *testing.T) {
	p := mustPolicy(t, retry.WithMaxAttempts(5))
	calls := 0
	v, err := retry.Do(bg, p, func(context.Context) (string, error) {
		if calls++; calls < 3 {
			return "", io.EOF
		}
		return "ok", nil
	})
	require.NoError(t, err)
	assert.Equal(t, "ok", v)
	assert.Equal(t, 3, calls)
}

func TestPermanentMeansOneCall(t *testing.T) { synctest.Test(t, testPermanentMeansOneCall) }

func testPermanentMeansOneCall(t *testing.T) {
	p := mustPolicy(t, retry.WithMaxAttempts(5))
	calls := 0
	err := retry.Run(bg, p, func(context.Context) error {
		calls++
		return retry.Permanent(io.ErrClosedPipe)
	})
	assert.Equal(t, 1, calls)
	assert.ErrorIs(t, err, retry.ErrPermanent)
	assert.ErrorIs(t, err, io.ErrClosedPipe)
	assert.Nil(t, retry.Permanent(nil))
}

func TestRetryIf(t *testing.T) { synctest.Test(t, testRetryIf) }

func testRetryIf(t *testing.T) {
	p := mustPolicy(t, retry.WithRetryIf(func(err error) bool { return !errors.Is(err, io.EOF) }))
	calls := 0
	err := retry.Run(bg, p, func(context.Context) error { calls++; return io.EOF })
	assert.Equal(t, 1, calls)
	assert.ErrorIs(t, err, retry.ErrNotRetryable)
	assert.ErrorIs(t, err, io.EOF)
}

func TestCancelDuringBackoffReturnsPromptly(t *testing.T) {
	p := mustPolicy(t, retry.WithMaxAttempts(10), retry.WithConstantBackoff(time.Hour))
	ctx, cancel := context.WithCancel(bg)
	calls := 0
	start := time.Now()
	err := retry.Run(ctx, p, func(context.Context) error {
		if calls++; calls == 1 {
			time.AfterFunc(20*time.Millisecond, cancel) // while Run waits out the hour
		}
		return io.ErrNoProgress
	})
	assert.Less(t, time.Since(start), 5*time.Second)
	assert.Equal(t, 1, calls)
	assert.ErrorIs(t, err, context.Canceled)
	assert.ErrorIs(t, err, io.ErrNoProgress)
}

func TestJitterBounds(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	draw := r.Float64
	base, cap := 10*time.Millisecond, time.Second
	for _, j := range []retry.Jitter{retry.NoJitter, retry.FullJitter, retry.EqualJitter, retry.DecorrelatedJitter} {
		b, err := retry.Exponential(base, cap, j)
		require.NoError(t, err)
		prev := time.Duration(0)
		for n := 1; n <= 2000; n++ {
			exp := min(cap, base<<min(n-1, 20))
			d := b.Delay(n, prev, draw)
			switch j {
			case retry.NoJitter:
				require.Equal(t, exp, d)
			case retry.FullJitter:
				require.True(t, d >= 0 && d <= exp, "full %v not in [0, %v]", d, exp)
			case retry.EqualJitter:
				require.True(t, d >= exp/2 && d <= exp, "equal %v not in [%v, %v]", d, exp/2, exp)
			case retry.DecorrelatedJitter:
				hi := min(cap, 3*max(prev, base))
				require.True(t, d >= base && d <= hi, "decorrelated %v not in [%v, %v]", d, base, hi)
			}
			prev = d
		}
	}
	huge, err := retry.Exponential(time.Hour, 24*time.Hour, retry.NoJitter)
	require.NoError(t, err)
	for _, n := range []int{0, 1, 40, 62, 63, 64, 1000, 1 << 30} {
		d := huge.Delay(n, 0, draw)
		assert.True(t, d > 0 && d <= 24*time.Hour, "attempt %d: %v overflowed", n, d)
	}
}

func TestRetryAfterIsHonouredAndCapped(t *testing.T) { synctest.Test(t, testRetryAfter) }

func testRetryAfter(t *testing.T) {
	p := mustPolicy(t, retry.WithMaxAttempts(3), retry.WithMaxRetryAfter(time.Second))
	var attempts tape
	err := retry.Run(bg, p, func(context.Context) error {
		attempts.mark()
		if len(attempts.at) == 1 {
			return retry.RetryAfter(300*time.Millisecond, io.EOF)
		}
		return retry.RetryAfter(time.Hour, io.EOF)
	})
	assert.ErrorIs(t, err, io.EOF)
	assert.Equal(t, []time.Duration{300 * time.Millisecond, time.Second}, attempts.gaps())
}

func TestMaxElapsed(t *testing.T) { synctest.Test(t, testMaxElapsed) }

func testMaxElapsed(t *testing.T) {
	p := mustPolicy(t, retry.WithMaxAttempts(100), retry.WithConstantBackoff(time.Second),
		retry.WithMaxElapsed(2500*time.Millisecond))
	var attempts tape
	start := time.Now()
	err := retry.Run(bg, p, func(context.Context) error { attempts.mark(); return io.EOF })
	assert.ErrorIs(t, err, retry.ErrElapsed)
	assert.Len(t, attempts.at, 3, "at 0s, 1s and 2s; a wait to 3s would end past 2.5s")
	assert.Equal(t, 2*time.Second, time.Since(start), "no sleep that ends past the limit is started")
}

func TestAttemptTimeout(t *testing.T) {
	p := mustPolicy(t, retry.WithMaxAttempts(2), retry.WithConstantBackoff(0), retry.WithAttemptTimeout(10*time.Millisecond))
	var deadlines int
	err := retry.Run(bg, p, func(ctx context.Context) error {
		if _, ok := ctx.Deadline(); ok {
			deadlines++
		}
		<-ctx.Done()
		return ctx.Err()
	})
	assert.Equal(t, 2, deadlines, "each attempt gets its own deadline")
	assert.ErrorIs(t, err, context.DeadlineExceeded)
	assert.ErrorIs(t, err, retry.ErrExhausted, "an attempt's timeout is retried; the caller's ctx is fine")

	noTimeout := mustPolicy(t)
	_ = retry.Run(bg, noTimeout, func(ctx context.Context) error {
		assert.Equal(t, bg, ctx, "without an attempt timeout the op gets the caller's ctx")
		return nil
	})
}

func TestBudget(t *testing.T) { synctest.Test(t, testBudget) }

func testBudget(t *testing.T) {
	budget, err := retry.NewBudget(4, 0.5, nil)
	require.NoError(t, err)
	p := mustPolicy(t, retry.WithMaxAttempts(10), retry.WithBudget(budget))
	calls := 0
	err = retry.Run(bg, p, func(context.Context) error { calls++; return io.EOF })
	assert.ErrorIs(t, err, retry.ErrBudgetExhausted)
	assert.Equal(t, 2, calls, "4 tokens: retries stop once 2 or fewer are left")
	assert.Equal(t, 2.0, budget.Tokens())

	calls = 0
	err = retry.Run(bg, p, func(context.Context) error { calls++; return io.EOF })
	assert.Equal(t, 1, calls, "a first attempt is always allowed, a retry is not")
	assert.ErrorIs(t, err, retry.ErrBudgetExhausted)

	for range 4 {
		require.NoError(t, retry.Run(bg, p, func(context.Context) error { return nil }))
	}
	assert.Equal(t, 3.0, budget.Tokens(), "successes give back half a token each")

	floor, err := retry.NewBudget(2, 0.1, rate.NewLimiter(rate.Inf, 1))
	require.NoError(t, err)
	pf := mustPolicy(t, retry.WithMaxAttempts(5), retry.WithBudget(floor))
	calls = 0
	err = retry.Run(bg, pf, func(context.Context) error { calls++; return io.EOF })
	assert.Equal(t, 5, calls, "the floor grants retries beyond the budget")
	assert.ErrorIs(t, err, retry.ErrExhausted)

	for _, bad := range []func() (*retry.Budget, error){
		func() (*retry.Budget, error) { return retry.NewBudget(0, 0.1, nil) },
		func() (*retry.Budget, error) { return retry.NewBudget(10, 0, nil) },
		func() (*retry.Budget, error) { return retry.NewBudget(10, 1.5, nil) },
	} {
		b, err := bad()
		assert.Nil(t, b)
		assert.Error(t, err)
	}
}

func TestRateLimit(t *testing.T) {
	lim := rate.NewLimiter(rate.Every(time.Hour), 1)
	p := mustPolicy(t, retry.WithRateLimit(lim), retry.WithMaxAttempts(1))
	require.NoError(t, retry.Run(bg, p, func(context.Context) error { return nil }), "the burst lets one through")

	ctx, cancel := context.WithTimeout(bg, time.Second)
	defer cancel()
	called := false
	start := time.Now()
	err := retry.Run(ctx, p, func(context.Context) error { called = true; return nil })
	assert.ErrorIs(t, err, retry.ErrRateLimited)
	assert.False(t, called)
	assert.Less(t, time.Since(start), 500*time.Millisecond, "it does not wait for a turn past the deadline")
}

func TestWithRetrySugar(t *testing.T) {
	calls := 0
	v, err := retry.WithRetry(bg, func(context.Context) (int, error) {
		if calls++; calls < 2 {
			return 0, io.EOF
		}
		return 7, nil
	}, retry.WithConstantBackoff(0))
	require.NoError(t, err)
	assert.Equal(t, 7, v)

	_, err = retry.WithRetry(bg, func(context.Context) (int, error) { return 0, nil }, retry.WithMaxAttempts(0))
	assert.ErrorContains(t, err, "WithMaxAttempts(0)")
}

func TestBadArguments(t *testing.T) {
	p := mustPolicy(t)
	_, err := retry.Do[int](bg, p, nil)
	assert.ErrorContains(t, err, "must not be nil")
	assert.ErrorContains(t, retry.Run(bg, nil, func(context.Context) error { return nil }), "nil *Policy")
	//lint:ignore SA1012 passing nil is the point of the test
	assert.ErrorContains(t, retry.Run(nil, p, func(context.Context) error { return nil }), "nil context") //nolint:staticcheck
}
