// Package breaker is a circuit breaker: after enough failures of a
// dependency it opens and fails calls at once with ErrOpen, sparing the
// dependency and the callers' time, then, once its open timeout has
// passed, lets a few probes through and closes again when they succeed.
//
// # Using it
//
// Make one Breaker per dependency and share it among every call to it:
//
//	ledger, err := breaker.New(breaker.WithName("ledger"),
//		breaker.WithTripAfter(5), breaker.WithOpenFor(10*time.Second))
//	...
//	err = ledger.Execute(ctx, func(ctx context.Context) error { return client.Post(ctx, entry) })
//	balance, err := breaker.Call(ctx, ledger, client.Balance)
//
// or put it under a retry policy, which then stops retrying while it is
// open: retry.New(..., retry.WithBreaker(ledger)).
//
// It trips on consecutive failures (WithTripAfter, 5 by default), on a
// failure rate over a sliding window (WithTripOnRate), or on either.
// Errors count as a success, a failure or not at all (WithClassifier): a
// caller's context.Canceled is not counted by default, since the caller
// left and the dependency did not fail. An op that panics counts as a
// failure, whatever the classifier says, and the panic goes on up.
//
// # Telemetry
//
// A breaker makes no spans; its state (otelpatterns.breaker.state, 1 for
// the state it is in) and its transitions are metrics, by its name.
// README.md's Telemetry reference lists every name. Close unregisters the
// state metric.
package breaker
