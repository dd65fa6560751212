package retry

import (
	"context"
	"errors"
	"math/rand/v2"
	"runtime/debug"
	"time"

	"github.com/otelpatterns/otelpatterns/errs"
	"github.com/otelpatterns/otelpatterns/internal/retryhook"
	"github.com/otelpatterns/otelpatterns/internal/telemetry"
	"github.com/otelpatterns/otelpatterns/retry/breaker"
)

// Policy is how to retry: attempts, backoff, limits, and the budget,
// breaker and rate limit it shares. Build it once with New and use it for
// any number of calls, concurrently.
type Policy struct {
	c    *config
	inst *policyInstruments
	// plain is true when attempts need no rate limit, breaker, budget or
	// timeout: untraced attempts then take the shortest path.
	plain bool
}

// New returns a policy. It fails, naming the option to fix, when an option
// is out of range.
func New(opts ...Option) (*Policy, error) {
	c, err := newConfig(opts)
	if err != nil {
		return nil, err
	}
	plain := c.limiter == nil && c.breaker == nil && c.budget == nil && c.attemptTimeout == 0
	return &Policy{c: c, inst: newPolicyInstruments(c.tel, c.name), plain: plain}, nil
}

var (
	errNilContext = errors.New("retry: nil context: pass context.Background() if there is none")
	errNilPolicy  = errors.New("retry: nil *Policy: build one with retry.New")
	errNilOp      = errors.New("retry: the operation must not be nil")
)

// Do calls op until it succeeds or the policy gives up, and returns op's
// result. op gets the caller's ctx, or, with WithAttemptTimeout, one that
// ends after the attempt timeout.
//
// When it gives up, Do returns a *Error whose Last is op's last error and
// whose Cause says why (ErrExhausted, ErrElapsed, ErrPermanent,
// ErrNotRetryable, ErrBudgetExhausted, breaker.ErrOpen, ErrRateLimited, or ctx's
// error); errors.Is finds both. It never sleeps after the last attempt.
//
// Under a recording span, the operation has a retry span and each attempt
// a retry.attempt span under it; a failed attempt marks only its own span,
// and the retry span shows only the final outcome.
func Do[T any](ctx context.Context, p *Policy, op func(context.Context) (T, error)) (T, error) {
	var out T
	if op == nil {
		return out, errNilOp
	}
	err := p.run(ctx, func(ctx context.Context) (err error) {
		out, err = op(ctx)
		return err
	}, true)
	if err != nil {
		var zero T
		return zero, err
	}
	return out, nil
}

// Run is Do for an op with no result.
func Run(ctx context.Context, p *Policy, op func(context.Context) error) error {
	if op == nil {
		return errNilOp
	}
	return p.run(ctx, op, true)
}

func init() {
	retryhook.RunUntraced = func(ctx context.Context, policy any, op func(context.Context) error) error {
		p, _ := policy.(*Policy)
		return p.run(ctx, op, false)
	}
}

// WithRetry calls op under a policy built from opts, for one-off calls.
// Build a Policy once with New for calls on a hot path: WithRetry builds
// one per call.
func WithRetry[T any](ctx context.Context, op func(context.Context) (T, error), opts ...Option) (T, error) {
	p, err := New(opts...)
	if err != nil {
		var zero T
		return zero, err
	}
	return Do(ctx, p, op)
}

// run calls op under the policy; spans false makes no span (retryhook).
func (p *Policy) run(ctx context.Context, op func(context.Context) error, spans bool) error {
	switch {
	case ctx == nil:
		return errNilContext
	case p == nil:
		return errNilPolicy
	}
	c := p.c
	opCtx, span := ctx, telemetry.NoSpan
	if spans {
		opCtx, span = p.inst.startOperation(ctx)
	}
	w := watch{traced: span.IsRecording(), counting: p.inst.attempts.Enabled(ctx)}
	ran := telemetry.StartStopwatch(w.traced || p.inst.duration.Enabled(ctx))
	var deadline time.Time
	if c.maxElapsed > 0 {
		deadline = time.Now().Add(c.maxElapsed)
	}
	var (
		prev time.Duration
		last error // op's last error
		n    int   // calls of op
	)
	for {
		var called bool
		var err error
		switch {
		case n > 0 && ctx.Err() != nil:
			// The first attempt is made whatever the state of ctx, as a
			// call without a policy would be: the op sees ctx and answers
			// for it. Later ones are not.
			err = ctx.Err()
		case p.plain && !w.traced: // the shortest path: nothing to guard or trace
			called, err = true, op(opCtx)
			if w.counting {
				p.inst.attempted(ctx, err)
			}
		default:
			var panicked any
			if called, panicked, err = p.attempt(opCtx, w, n+1, op); panicked != nil {
				// The op panicked: its attempt is counted and its span ended;
				// the operation's span ends too, and the panic goes on up.
				p.inst.finish(ctx, w, span, ran, n+1, err)
				panic(panicked)
			}
		}
		if called {
			n++
			if err == nil {
				p.inst.finish(ctx, w, span, ran, n, nil)
				return nil
			}
			last = unwrapped(err)
		}
		delay, stop := p.next(ctx, n, called, prev, deadline, err)
		if stop == nil {
			stop = sleep(ctx, delay)
		}
		if stop != nil {
			failure := &Error{Attempts: n, Last: last, Cause: stop}
			p.inst.finish(ctx, w, span, ran, n, failure)
			return failure
		}
		prev = delay
	}
}

// attempt makes attempt number n through the rate limit, the breaker, the
// budget, the attempt timeout and the attempt's span, as the policy has
// them. called reports whether op was called; when it was not, err says
// what refused the call. When op panics, the attempt counts as failed
// (err is the *errs.PanicError) and panicked is the panic's value, for
// the caller to panic with once its own span has ended.
func (p *Policy) attempt(ctx context.Context, w watch, n int, op func(context.Context) error) (called bool, panicked any, err error) {
	c := p.c
	if c.limiter != nil {
		if err := c.limiter.Wait(ctx); err != nil {
			if ctx.Err() != nil {
				return false, nil, ctx.Err()
			}
			return false, nil, ErrRateLimited
		}
	}
	var permit breaker.Permit
	if c.breaker != nil {
		if permit, err = c.breaker.Allow(); err != nil {
			return false, nil, err
		}
	}
	span := telemetry.NoSpan
	if w.traced {
		ctx, span = p.inst.startAttempt(ctx, n)
	}
	if c.attemptTimeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.attemptTimeout)
		defer cancel()
	}
	err = func() (err error) {
		defer func() {
			if v := recover(); v != nil {
				panicked, err = v, &errs.PanicError{Value: v, Stack: debug.Stack()}
			}
		}()
		return op(ctx)
	}()
	switch {
	case c.breaker != nil && panicked != nil:
		permit.Panicked() // a failure, whatever the classifier says
	case c.breaker != nil:
		permit.Done(unwrapped(err))
	}
	if c.budget != nil {
		if err == nil {
			c.budget.succeeded()
		} else {
			c.budget.failed()
		}
	}
	if w.counting {
		p.inst.attempted(ctx, err)
	}
	if w.traced {
		errs.Record(span, unwrapped(err)) // a failed attempt marks its own span only
		span.End()
	}
	return true, panicked, err
}

// next decides, after a failed attempt, whether to stop (and why) or how
// long to wait before the next one.
func (p *Policy) next(ctx context.Context, n int, called bool, prev time.Duration, deadline time.Time, err error) (delay time.Duration, stop error) {
	c := p.c
	after, hinted := retryAfter(err)
	switch {
	case !called:
		return 0, err // the context, the breaker or the rate limit refused the call
	case ctx.Err() != nil:
		return 0, ctx.Err()
	case isPermanent(err):
		return 0, ErrPermanent
	case c.retryIf != nil && !c.retryIf(unwrapped(err)):
		return 0, ErrNotRetryable
	case n >= c.maxAttempts:
		return 0, ErrExhausted
	case c.budget != nil && !c.budget.allowRetry():
		p.inst.rejected(ctx)
		return 0, ErrBudgetExhausted
	case hinted:
		delay = min(max(after, 0), c.maxRetryAfter)
	default:
		delay = max(c.backoff.Delay(n, prev, rand.Float64), 0)
	}
	if !deadline.IsZero() && time.Now().Add(delay).After(deadline) {
		return 0, ErrElapsed
	}
	return delay, nil
}

// watch is what an operation's telemetry needs, decided once per
// operation: whether its spans record, whether its attempts are counted.
type watch struct{ traced, counting bool }
