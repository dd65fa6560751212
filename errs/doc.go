// Package errs is the one way errors are carried and recorded in
// otelpatterns, and the way it recommends for code built on it.
//
// It holds four small tools:
//
//   - [TracedError], built by [New] and [Wrap]: an error with a
//     low-cardinality code, a message, a cause, and the trace and span IDs of
//     the span that was active where it was made. Its Error() text is stable;
//     %+v and log/slog show the code and the IDs, so a log line or an error
//     report leads straight to its trace. [Code] reads the code from anywhere
//     in a chain.
//   - [Record]: marks a span as failed. Status Error with the message, and
//     error.type from [ErrorType] (which maps context errors to
//     "context.Canceled" and "context.DeadlineExceeded"). Never status Ok,
//     and no exception event unless [WithExceptionEvent] asks for one.
//   - [Try] and [PanicError]: runs user code and turns a panic into an error
//     carrying the value and the stack, so a panic on a library goroutine is
//     returned to the caller, never lost and never a crash.
//   - [Collector]: gathers errors from concurrent work, with errors.Join
//     semantics.
//
// # Recording errors well
//
// Record a failure once, on the span of the operation that failed, at the
// point where the operation gives up: an error that was retried, or handled
// by a fallback, is not a failure of the outer operation. Recording the same
// error on every span it passes through is the most common tracing mistake;
// it multiplies error counts and hides where the failure began.
//
// Codes become the error.type attribute on spans and metrics, so they must
// come from a small fixed set ("payment_declined", "timeout"). Identifiers
// and user input belong in the message or in span attributes, never in a
// code.
//
// This package sits at the bottom of the module: it imports only the
// OpenTelemetry API (trace, codes, attribute, semconv) and the standard
// library, so every other package can use it.
package errs
