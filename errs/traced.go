package errs

import (
	"context"
	"fmt"
	"log/slog"

	"go.opentelemetry.io/otel/trace"
)

// TracedError is an error that remembers where in a trace it happened.
//
// It carries a low-cardinality Code that becomes the span's and the metrics'
// error.type, a human Message, the error it wraps, and the trace and span IDs
// of the span that was active in the context it was built with. Build one with
// [New] or [Wrap]; match it with [errors.As] or read its code with [Code].
//
// Error() is stable: it holds the message and the wrapped error's text, never
// the IDs, so it is safe to compare, log and alert on. Format with %+v to see
// the code, the IDs and the whole chain.
type TracedError struct {
	// Code classifies the failure ("payment_declined", "stock_unavailable").
	// It is used as the error.type attribute, so keep the set of codes small
	// and fixed: never put identifiers or user input in it.
	Code string
	// Message says what was being done when the failure happened.
	Message string
	// Err is the wrapped cause, or nil.
	Err error
	// TraceID and SpanID identify the span that was active in the context the
	// error was built with. Both are zero when there was none.
	TraceID trace.TraceID
	SpanID  trace.SpanID
}

// New returns a [*TracedError] with the given code and message, stamped with
// the trace and span IDs of the span in ctx. A nil ctx gives zero IDs.
func New(ctx context.Context, code, msg string) error {
	return newTraced(ctx, nil, code, msg)
}

// Wrap returns a [*TracedError] that wraps err with the given code and
// message, stamped with the trace and span IDs of the span in ctx. Wrap of a
// nil err returns nil, so it can guard a return:
//
//	return errs.Wrap(ctx, db.Exec(ctx, q), "db_write", "save order")
func Wrap(ctx context.Context, err error, code, msg string) error {
	if err == nil {
		return nil
	}
	return newTraced(ctx, err, code, msg)
}

func newTraced(ctx context.Context, err error, code, msg string) *TracedError {
	e := &TracedError{Code: code, Message: msg, Err: err}
	if ctx != nil {
		sc := trace.SpanContextFromContext(ctx)
		e.TraceID, e.SpanID = sc.TraceID(), sc.SpanID()
	}
	return e
}

// Error returns "message: cause", or whichever of the two is set, or the code
// when both are empty. It never contains the trace or span IDs.
func (e *TracedError) Error() string {
	switch {
	case e.Message != "" && e.Err != nil:
		return e.Message + ": " + e.Err.Error()
	case e.Message != "":
		return e.Message
	case e.Err != nil:
		return e.Err.Error()
	default:
		return e.Code
	}
}

// Unwrap returns the wrapped error, so [errors.Is] and [errors.As] see through
// a TracedError.
func (e *TracedError) Unwrap() error { return e.Err }

// ErrorType returns the code. The OpenTelemetry semconv helper ErrorType, and
// so every span and metric this library marks with error.type, reads it.
func (e *TracedError) ErrorType() string { return e.Code }

// Format implements [fmt.Formatter]. %s and %v print Error(); %q prints it
// quoted; %+v prints the message, then the code and the IDs, then each cause
// in the chain, each formatted with %+v in turn.
func (e *TracedError) Format(f fmt.State, verb rune) {
	switch {
	case verb == 'v' && f.Flag('+'):
		msg := e.Message
		if msg == "" && e.Err == nil {
			msg = e.Code
		}
		fmt.Fprint(f, msg)
		if e.Code != "" {
			fmt.Fprintf(f, "\n    code: %s", e.Code)
		}
		if e.TraceID.IsValid() {
			fmt.Fprintf(f, "\n    trace_id: %s", e.TraceID)
		}
		if e.SpanID.IsValid() {
			fmt.Fprintf(f, "\n    span_id: %s", e.SpanID)
		}
		if e.Err != nil {
			if msg != "" {
				fmt.Fprint(f, "\ncaused by: ")
			}
			fmt.Fprintf(f, "%+v", e.Err)
		}
	case verb == 'q':
		fmt.Fprintf(f, "%q", e.Error())
	default:
		fmt.Fprint(f, e.Error())
	}
}

// LogValue implements [slog.LogValuer]: logging a TracedError with log/slog
// prints its message with code, trace_id and span_id beside it, so a log line
// leads straight to its trace. The IDs are left out when they are zero.
func (e *TracedError) LogValue() slog.Value {
	attrs := make([]slog.Attr, 0, 4)
	attrs = append(attrs, slog.String("msg", e.Error()))
	if e.Code != "" {
		attrs = append(attrs, slog.String("code", e.Code))
	}
	if e.TraceID.IsValid() {
		attrs = append(attrs, slog.String("trace_id", e.TraceID.String()))
	}
	if e.SpanID.IsValid() {
		attrs = append(attrs, slog.String("span_id", e.SpanID.String()))
	}
	return slog.GroupValue(attrs...)
}

// coder is what an error in a chain implements to carry a code: TracedError,
// PanicError, and any user error that OpenTelemetry's semconv reads too.
type coder interface{ ErrorType() string }

// Code returns the code of the first error in err's chain, searched as
// [errors.As] searches (through Unwrap, errors.Join and %w), that has a
// non-empty ErrorType() string method: a [*TracedError]'s Code, "panic" for a
// [*PanicError], or a user type's own. It returns "" when there is none.
func Code(err error) string {
	for err != nil {
		if c, ok := err.(coder); ok {
			if code := c.ErrorType(); code != "" {
				return code
			}
		}
		switch u := err.(type) {
		case interface{ Unwrap() error }:
			err = u.Unwrap()
		case interface{ Unwrap() []error }:
			for _, e := range u.Unwrap() {
				if code := Code(e); code != "" {
					return code
				}
			}
			return ""
		default:
			return ""
		}
	}
	return ""
}

// Interface checks.
var (
	_ error          = (*TracedError)(nil)
	_ slog.LogValuer = (*TracedError)(nil)
	_ fmt.Formatter  = (*TracedError)(nil)
)
