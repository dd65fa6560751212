package errs_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/goleak"

	"github.com/otelpatterns/otelpatterns/errs"
	"github.com/otelpatterns/otelpatterns/internal/telemetry/telemetrytest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// recording returns a tracer that records every span into the recorder.
func recording(t *testing.T) (trace.Tracer, *tracetest.SpanRecorder) {
	t.Helper()
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	return tp.Tracer("errs_test"), rec
}

func TestWrapNilIsNil(t *testing.T) {
	err := errs.Wrap(context.Background(), nil, "code", "msg")
	assert.Nil(t, err)
	assert.True(t, err == nil, "Wrap(nil) must be an untyped nil error")
}

func TestErrorText(t *testing.T) {
	ctx := context.Background()
	base := errors.New("disk full")
	assert.Equal(t, "save order: disk full", errs.Wrap(ctx, base, "db_write", "save order").Error())
	assert.Equal(t, "disk full", errs.Wrap(ctx, base, "db_write", "").Error())
	assert.Equal(t, "no stock", errs.New(ctx, "stock", "no stock").Error())
	assert.Equal(t, "stock", errs.New(ctx, "stock", "").Error())
}

func TestIsAndAsSeeThrough(t *testing.T) {
	ctx := context.Background()
	wrapped := errs.Wrap(ctx, io.EOF, "read", "read header")
	chains := map[string]error{
		"Wrap":         wrapped,
		"Wrap of Wrap": errs.Wrap(ctx, wrapped, "outer", "outer"),
		"Join":         errors.Join(errors.New("other"), wrapped),
		"%w":           fmt.Errorf("handler: %w", wrapped),
	}
	for name, err := range chains {
		t.Run(name, func(t *testing.T) {
			assert.ErrorIs(t, err, io.EOF)
			te, ok := errors.AsType[*errs.TracedError](err)
			require.True(t, ok)
			assert.NotEmpty(t, te.Code)
		})
	}
}

func TestIDsComeFromContext(t *testing.T) {
	tracer, _ := recording(t)
	ctx, span := tracer.Start(context.Background(), "op")
	defer span.End()

	te, ok := errors.AsType[*errs.TracedError](errs.New(ctx, "c", "m"))
	require.True(t, ok)
	assert.Equal(t, span.SpanContext().TraceID(), te.TraceID)
	assert.Equal(t, span.SpanContext().SpanID(), te.SpanID)

	for name, ctx := range map[string]context.Context{"no span": context.Background(), "nil ctx": nil} {
		te, ok := errors.AsType[*errs.TracedError](errs.Wrap(ctx, io.EOF, "c", "m"))
		require.True(t, ok, name)
		assert.False(t, te.TraceID.IsValid(), name)
		assert.False(t, te.SpanID.IsValid(), name)
	}
}

func TestErrorTypeReadsCode(t *testing.T) {
	ctx := context.Background()
	err := errs.Wrap(ctx, io.EOF, "payment_declined", "charge")
	assert.Equal(t, semconv.ErrorTypeKey.String("payment_declined"), semconv.ErrorType(err))
	assert.Equal(t, semconv.ErrorTypeKey.String("payment_declined"), errs.ErrorType(fmt.Errorf("x: %w", err)))
}

func TestCodeFromAnywhereInChain(t *testing.T) {
	ctx := context.Background()
	inner := errs.New(ctx, "inner", "m")
	assert.Equal(t, "inner", errs.Code(inner))
	assert.Equal(t, "inner", errs.Code(fmt.Errorf("a: %w", fmt.Errorf("b: %w", inner))))
	assert.Equal(t, "inner", errs.Code(errors.Join(io.EOF, inner)))
	assert.Equal(t, "outer", errs.Code(errs.Wrap(ctx, inner, "outer", "m")), "the outermost code wins")
	assert.Equal(t, "inner", errs.Code(errs.Wrap(ctx, inner, "", "m")), "an empty code is skipped")
	assert.Equal(t, errs.CodePanic, errs.Code(errs.Try(func() error { panic("x") })))
	assert.Equal(t, "", errs.Code(io.EOF))
	assert.Equal(t, "", errs.Code(nil))
}

func TestFormatPlusV(t *testing.T) {
	tracer, _ := recording(t)
	ctx, span := tracer.Start(context.Background(), "op")
	defer span.End()
	err := errs.Wrap(ctx, errs.New(ctx, "inner_code", "inner"), "outer_code", "outer")

	plain := fmt.Sprintf("%v", err)
	assert.Equal(t, "outer: inner", plain)
	assert.NotContains(t, plain, span.SpanContext().TraceID().String())
	assert.Equal(t, `"outer: inner"`, fmt.Sprintf("%q", err))

	full := fmt.Sprintf("%+v", err)
	for _, want := range []string{
		"outer\n", "code: outer_code", "code: inner_code", "caused by: inner",
		"trace_id: " + span.SpanContext().TraceID().String(),
		"span_id: " + span.SpanContext().SpanID().String(),
	} {
		assert.Contains(t, full, want)
	}
}

func TestSlogShowsIDs(t *testing.T) {
	tracer, _ := recording(t)
	ctx, span := tracer.Start(context.Background(), "op")
	defer span.End()

	var buf bytes.Buffer
	logger := slog.New(slog.NewJSONHandler(&buf, nil))
	logger.Error("checkout failed", "err", errs.Wrap(ctx, io.EOF, "read", "read body"))

	out := buf.String()
	assert.Contains(t, out, `"trace_id":"`+span.SpanContext().TraceID().String()+`"`)
	assert.Contains(t, out, `"span_id":"`+span.SpanContext().SpanID().String()+`"`)
	assert.Contains(t, out, `"code":"read"`)
	assert.Contains(t, out, `"msg":"read body: EOF"`)
}

func TestRecordMarksFailure(t *testing.T) {
	tracer, rec := recording(t)
	_, span := tracer.Start(context.Background(), "op")
	errs.Record(span, errs.New(context.Background(), "stock", "out of stock"))
	span.End()

	got := rec.Ended()[0]
	assert.Equal(t, "Error", got.Status().Code.String())
	assert.Equal(t, "out of stock", got.Status().Description)
	assert.Contains(t, got.Attributes(), semconv.ErrorTypeKey.String("stock"))
	assert.Empty(t, got.Events(), "no exception event by default")
}

func TestRecordExceptionEventOptIn(t *testing.T) {
	tracer, rec := recording(t)
	_, span := tracer.Start(context.Background(), "op")
	errs.Record(span, errs.Try(func() error { panic("boom") }), errs.WithExceptionEvent())
	span.End()

	events := rec.Ended()[0].Events()
	require.Len(t, events, 1)
	assert.Equal(t, semconv.ExceptionEventName, events[0].Name)
	var stack string
	for _, kv := range events[0].Attributes {
		if kv.Key == semconv.ExceptionStacktraceKey {
			stack = kv.Value.AsString()
		}
	}
	assert.Contains(t, stack, "TestRecordExceptionEventOptIn", "the stack is the panic's")
}

func TestRecordSummarisesJoinedErrors(t *testing.T) {
	tracer, rec := recording(t)
	_, span := tracer.Start(context.Background(), "batch")
	errs.Record(span, errors.Join(errs.New(context.Background(), "bad_item", "item 3"), io.EOF, io.ErrClosedPipe))
	span.End()
	got := rec.Ended()[0]
	assert.Equal(t, "item 3 (and 2 more)", got.Status().Description)
	assert.Contains(t, got.Attributes(), semconv.ErrorTypeKey.String("bad_item"), "the first error's type")

	_, span = tracer.Start(context.Background(), "one")
	errs.Record(span, errors.Join(nil, io.EOF))
	span.End()
	assert.Equal(t, "EOF", rec.Ended()[1].Status().Description, "a join of one error is that error")

	_, span = tracer.Start(context.Background(), "multi")
	errs.Record(span, multiError{io.EOF, io.ErrClosedPipe})
	span.End()
	assert.Equal(t, "EOF, then io: read/write on closed pipe", rec.Ended()[2].Status().Description,
		"only errors.Join's errors are summarised; other types keep their own message")
}

// multiError wraps two errors and words them its own way.
type multiError [2]error

func (m multiError) Error() string   { return m[0].Error() + ", then " + m[1].Error() }
func (m multiError) Unwrap() []error { return m[:] }

func TestRecordContextErrors(t *testing.T) {
	cases := map[error]string{
		context.Canceled:                                                      "context.Canceled",
		fmt.Errorf("call: %w", context.Canceled):                              "context.Canceled",
		context.DeadlineExceeded:                                              "context.DeadlineExceeded",
		errors.Join(context.DeadlineExceeded, io.EOF):                         "context.DeadlineExceeded", // a join is typed by its first
		errs.Wrap(context.Background(), context.Canceled, "shutdown", "stop"): "shutdown",
		io.EOF: "*errors.errorString",
	}
	for err, want := range cases {
		t.Run(want, func(t *testing.T) {
			tracer, rec := recording(t)
			_, span := tracer.Start(context.Background(), "op")
			errs.Record(span, err)
			span.End()
			assert.Contains(t, rec.Ended()[0].Attributes(), semconv.ErrorTypeKey.String(want))
		})
	}
}

func TestRecordNeverSetsOkAndIgnoresNil(t *testing.T) {
	tracer, rec := recording(t)
	_, span := tracer.Start(context.Background(), "op")
	errs.Record(span, nil)
	errs.Record(nil, io.EOF) // must not panic
	span.End()
	assert.Equal(t, "Unset", rec.Ended()[0].Status().Code.String())
	assert.Empty(t, rec.Ended()[0].Attributes())
}

func TestTryCapturesPanic(t *testing.T) {
	tracer, rec := recording(t)
	_, span := tracer.Start(context.Background(), "op")

	err := errs.Try(func() error { panic(io.ErrUnexpectedEOF) })
	errs.Record(span, err)
	span.End()

	p, ok := errors.AsType[*errs.PanicError](err)
	require.True(t, ok)
	assert.Equal(t, io.ErrUnexpectedEOF, p.Value)
	assert.ErrorIs(t, err, io.ErrUnexpectedEOF, "an error value is unwrapped")
	assert.Contains(t, string(p.Stack), "TestTryCapturesPanic.func1", "the stack reaches the panic site")
	assert.Equal(t, "panic: unexpected EOF", err.Error())
	assert.Contains(t, fmt.Sprintf("%+v", err), "goroutine ")

	got := rec.Ended()[0]
	assert.Equal(t, "Error", got.Status().Code.String())
	assert.Contains(t, got.Attributes(), semconv.ErrorTypeKey.String("panic"))
}

func TestTryPassesThrough(t *testing.T) {
	assert.NoError(t, errs.Try(func() error { return nil }))
	assert.Equal(t, io.EOF, errs.Try(func() error { return io.EOF }))

	err := errs.Try(func() error { panic("not an error") })
	assert.Nil(t, errors.Unwrap(err), "a non-error value unwraps to nil")

	var nilPanic *errs.PanicError
	err = errs.Try(func() error { panic(nil) })
	require.ErrorAs(t, err, &nilPanic, "panic(nil) is still a panic")
}

func TestCollector(t *testing.T) {
	var c errs.Collector
	assert.NoError(t, c.Err(), "nil when nothing was added")
	c.Add(nil)
	assert.NoError(t, c.Err(), "nil errors are ignored")

	const n = 64
	done := make(chan struct{})
	for i := range n {
		go func() {
			c.Add(fmt.Errorf("task %d: %w", i, io.EOF))
			done <- struct{}{}
		}()
	}
	for range n {
		<-done
	}
	err := c.Err()
	require.Error(t, err)
	assert.ErrorIs(t, err, io.EOF)
	assert.Len(t, err.(interface{ Unwrap() []error }).Unwrap(), n)
	assert.Equal(t, n, c.Len())

	c.Add(os.ErrClosed)
	assert.NotErrorIs(t, err, os.ErrClosed, "an error returned earlier does not change")
	assert.True(t, strings.Contains(c.Err().Error(), os.ErrClosed.Error()))
}

func TestTelemetryReference(t *testing.T) {
	tracer, rec := recording(t)
	for _, err := range []error{io.EOF, errs.Try(func() error { panic("x") })} {
		_, span := tracer.Start(context.Background(), "op")
		errs.Record(span, err, errs.WithExceptionEvent())
		span.End()
	}
	emitted := telemetrytest.Collect(t, rec, nil)
	delete(emitted, telemetrytest.Span) // the test's own span
	telemetrytest.Check(t, "errs", emitted)
}

// A Collector with a Limit keeps the first errors and counts the rest.
func TestCollectorLimit(t *testing.T) {
	c := errs.Collector{Limit: 2}
	for i := range 1000 {
		c.Add(fmt.Errorf("e%d", i))
	}
	if c.Len() != 1000 {
		t.Fatalf("Len = %d", c.Len())
	}
	if got := c.Err().Error(); got != "e0\ne1\nerrs: and 998 more errors" {
		t.Fatalf("Err = %q", got)
	}
}
