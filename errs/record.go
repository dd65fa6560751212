package errs

import (
	"context"
	"errors"
	"reflect"
	"strconv"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
)

// Record marks span as failed with err. It is the one way this library, and
// code that follows it, records a final failure on a span:
//
//   - the span's status is set to Error with err.Error() as its description;
//   - the error.type attribute is set to [ErrorType] of err;
//   - errors joined with errors.Join (the errors of a batch, say) are
//     recorded as the first of them, with "(and N more)" after its message,
//     so that a batch of a million failures does not put a million messages
//     in one status;
//   - the status is never set to Ok, and nothing else is added unless asked
//     for: an exception event only with [WithExceptionEvent].
//
// Record does nothing when err is nil, when span is nil, or when span is not
// recording; in those cases it does not allocate. Call it once, for the
// failure that ends the operation the span stands for: an error that was
// retried or handled is not a failure of that operation.
func Record(span trace.Span, err error, opts ...RecordOption) {
	if err == nil || span == nil || !span.IsRecording() {
		return
	}
	desc := err.Error()
	if more, first := firstJoined(err); more > 0 {
		desc = first.Error() + " (and " + strconv.Itoa(more) + " more)"
	}
	span.SetStatus(codes.Error, desc)
	span.SetAttributes(ErrorType(err))
	if len(opts) > 0 && newRecordConfig(opts).event {
		var eventOpts []trace.EventOption
		if p, ok := errors.AsType[*PanicError](err); ok {
			eventOpts = append(eventOpts, trace.WithAttributes(semconv.ExceptionStacktrace(string(p.Stack))))
		}
		span.RecordError(err, eventOpts...)
	}
}

// A RecordOption changes what [Record] adds to a span.
type RecordOption interface{ applyRecord(*recordConfig) }

type recordConfig struct{ event bool }

// newRecordConfig is apart from Record so that the config, which escapes
// through the options' interface calls, is allocated only when options are
// passed.
func newRecordConfig(opts []RecordOption) *recordConfig {
	c := new(recordConfig)
	for _, o := range opts {
		o.applyRecord(c)
	}
	return c
}

type recordOptionFunc func(*recordConfig)

func (f recordOptionFunc) applyRecord(c *recordConfig) { f(c) }

// WithExceptionEvent makes [Record] also add an "exception" span event with
// the error's type and message (and, for a [*PanicError], the panic's stack).
// It is off by default: OpenTelemetry now prefers logs for exception details,
// and an event per failure is costly at volume.
func WithExceptionEvent() RecordOption {
	return recordOptionFunc(func(c *recordConfig) { c.event = true })
}

// Error types of the two context errors. Go's own types for them
// (*errors.errorString, context.deadlineExceededError) say nothing useful.
const (
	TypeCanceled         = "context.Canceled"
	TypeDeadlineExceeded = "context.DeadlineExceeded"
)

// ErrorType returns the error.type attribute for err, as OpenTelemetry's
// semantic conventions define it. For errors joined with errors.Join it is
// the first one's; otherwise:
//
//   - the [Code] of the first error in the chain that has one (a
//     [*TracedError]'s Code, "panic" for a [*PanicError]);
//   - otherwise "context.Canceled" or "context.DeadlineExceeded" when err is,
//     or wraps, a context error;
//   - otherwise what semconv.ErrorType returns: the error's Go type name.
//
// Use it as a metric attribute on failures; a nil err gives "_OTHER".
func ErrorType(err error) attribute.KeyValue {
	if err == nil {
		return semconv.ErrorTypeOther
	}
	_, err = firstJoined(err)
	if code := Code(err); code != "" {
		return semconv.ErrorTypeKey.String(code)
	}
	switch {
	case errors.Is(err, context.Canceled):
		return semconv.ErrorTypeKey.String(TypeCanceled)
	case errors.Is(err, context.DeadlineExceeded):
		return semconv.ErrorTypeKey.String(TypeDeadlineExceeded)
	}
	return semconv.ErrorType(err)
}

// firstJoined returns how many more errors follow the first of those joined
// in err by errors.Join, and the first; for any other error, 0 and err.
// Only errors.Join's own errors are summarised: another type that wraps
// several errors (a retry's, holding its last error and its cause, say)
// has a message of its own that says more.
func firstJoined(err error) (more int, first error) {
	if reflect.TypeOf(err) == joinType {
		if all := err.(interface{ Unwrap() []error }).Unwrap(); len(all) > 1 {
			return len(all) - 1, all[0]
		}
	}
	return 0, err
}

var joinType = reflect.TypeOf(errors.Join(errors.New("a"), errors.New("b")))
