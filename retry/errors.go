package retry

import (
	"errors"
	"fmt"
	"time"

	"github.com/otelpatterns/otelpatterns/errs"
)

// The reasons retrying stops. A *Error's Cause is one of them, or the
// context's error; errors.Is finds it.
var (
	// ErrExhausted: the policy's attempts were used up.
	ErrExhausted = errors.New("retry: attempts exhausted")
	// ErrElapsed: the next attempt would have started past WithMaxElapsed.
	ErrElapsed = errors.New("retry: max elapsed time reached")
	// ErrPermanent: the op returned an error wrapped with Permanent.
	ErrPermanent = errors.New("retry: permanent error")
	// ErrNotRetryable: the WithRetryIf classifier refused the error.
	ErrNotRetryable = errors.New("retry: error not retryable")
	// ErrBudgetExhausted: the policy's Budget allowed no more retries.
	ErrBudgetExhausted = errors.New("retry: retry budget exhausted")
	// ErrRateLimited: the policy's rate limit would not let the op start
	// before the context's deadline; the op was not called.
	ErrRateLimited = errors.New("retry: rate limited")
)

// Error is the error of an operation that failed under a Policy. errors.Is
// and errors.As see both the last error the op returned (Last) and why
// retrying stopped (Cause).
type Error struct {
	Attempts int   // how many times the op was called
	Last     error // the op's last error; nil when the op was never called
	Cause    error // ErrExhausted, ErrElapsed, ..., or the context's error
}

// Error says why retrying stopped, after how many attempts, and the op's
// last error.
func (e *Error) Error() string {
	if e.Last == nil {
		return e.Cause.Error()
	}
	return fmt.Sprintf("%v after %d attempt(s): %v", e.Cause, e.Attempts, e.Last)
}

// Unwrap returns the last error and the cause.
func (e *Error) Unwrap() []error {
	if e.Last == nil {
		return []error{e.Cause}
	}
	return []error{e.Last, e.Cause}
}

// ErrorType is the error.type of the op's last error, so that spans and
// metrics say what failed rather than that retrying stopped; without one,
// the cause's.
func (e *Error) ErrorType() string {
	if e.Last != nil {
		return errs.ErrorType(e.Last).Value.AsString()
	}
	return errs.ErrorType(e.Cause).Value.AsString()
}

// Permanent wraps err so that a policy stops at once, without another
// attempt. Permanent(nil) is nil.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &permanentError{err}
}

type permanentError struct{ err error }

func (p *permanentError) Error() string { return p.err.Error() }
func (p *permanentError) Unwrap() error { return p.err }

// RetryAfter wraps err with a hint that the next attempt should wait d (an
// HTTP 429 or 503 with Retry-After, say). The policy waits d instead of its
// backoff, but never more than WithMaxRetryAfter. RetryAfter(d, nil) is nil.
func RetryAfter(d time.Duration, err error) error {
	if err == nil {
		return nil
	}
	return &retryAfterError{after: d, err: err}
}

type retryAfterError struct {
	after time.Duration
	err   error
}

func (r *retryAfterError) Error() string { return r.err.Error() }
func (r *retryAfterError) Unwrap() error { return r.err }

// isPermanent reports whether err, or an error it wraps, was made by
// Permanent. It walks the chain by hand: errors.As would allocate on every
// failed attempt.
func isPermanent(err error) bool {
	for ; err != nil; err = errors.Unwrap(err) {
		if _, ok := err.(*permanentError); ok {
			return true
		}
	}
	return false
}

// retryAfter returns the wait that a RetryAfter in err's chain asks for.
func retryAfter(err error) (time.Duration, bool) {
	for ; err != nil; err = errors.Unwrap(err) {
		if r, ok := err.(*retryAfterError); ok {
			return r.after, true
		}
	}
	return 0, false
}

// unwrapped removes the Permanent and RetryAfter wrappers, which describe
// how to retry, not what failed.
func unwrapped(err error) error {
	for {
		switch e := err.(type) {
		case *permanentError:
			err = e.err
		case *retryAfterError:
			err = e.err
		default:
			return err
		}
	}
}
