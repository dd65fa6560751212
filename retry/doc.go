// Package retry retries operations without turning an outage into a storm:
// a Policy with capped, jittered exponential backoff, attempt and time
// limits, and Retry-After hints; a Budget that caps retries across a whole
// client; and, through WithBreaker, the circuit breaker of package
// retry/breaker, which stops calling a dependency that is down. Every
// attempt can be seen in a trace.
//
// # Using it
//
// Build a Policy once and use it for every call to a dependency:
//
//	payments, err := retry.New(
//		retry.WithName("payments"),
//		retry.WithMaxAttempts(4),
//		retry.WithExponentialBackoff(50*time.Millisecond, 2*time.Second, retry.FullJitter),
//		retry.WithBudget(budget),   // shared by every policy of this client
//		retry.WithBreaker(breaker), // shared by every call to this dependency
//	)
//	...
//	receipt, err := retry.Do(ctx, payments, func(ctx context.Context) (Receipt, error) {
//		return client.Charge(ctx, order)
//	})
//
// The op gets the caller's ctx (or, with WithAttemptTimeout, one per
// attempt). To stop at once, wrap the error with Permanent; to honour a
// server's Retry-After, wrap it with RetryAfter. When Do gives up, its
// error is a *Error: errors.Is finds both the op's last error and why
// retrying stopped (ErrExhausted, ErrElapsed, ErrBudgetExhausted,
// breaker.ErrOpen, the context's error ...), and Attempts says how many calls were made.
//
// # Not making things worse
//
//   - Jitter spreads out clients that failed together: FullJitter by
//     default, EqualJitter and DecorrelatedJitter as AWS's "Exponential
//     Backoff And Jitter" describes them.
//   - A Budget (gRPC's retry throttling) allows retries only while most
//     calls succeed, so a dependency that is down gets each caller's first
//     attempt, not three.
//   - A breaker (retry/breaker) fails calls at once while open, then lets
//     a few probes through.
//   - No sleep is started that would end past WithMaxElapsed, and none
//     after the last attempt.
//
// # Telemetry
//
// Under a recording span, an operation has a retry span and each attempt a
// retry.attempt child with its number; a failed attempt marks only its own
// span, and the retry span shows only the final outcome, so a call that
// succeeded on its second try is not an error in the trace. Attempts by
// outcome, operation durations and budget rejections are metrics. With telemetry off, the success path allocates
// nothing.
package retry
