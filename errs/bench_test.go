package errs_test

import (
	"context"
	"fmt"
	"io"
	"testing"

	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/otelpatterns/otelpatterns/errs"
)

// recordingCtx returns a ctx whose span records, with nothing exported.
func recordingCtx(b *testing.B) (context.Context, trace.Span) {
	tp := sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.AlwaysSample()))
	b.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	ctx, span := tp.Tracer("bench").Start(context.Background(), "op")
	b.Cleanup(func() { span.End() })
	return ctx, span
}

var sink error

func BenchmarkWrap(b *testing.B) {
	b.Run("recording", func(b *testing.B) {
		ctx, _ := recordingCtx(b)
		b.ReportAllocs()
		for b.Loop() {
			sink = errs.Wrap(ctx, io.EOF, "read", "read header")
		}
	})
	b.Run("no_span", func(b *testing.B) {
		ctx := context.Background()
		b.ReportAllocs()
		for b.Loop() {
			sink = errs.Wrap(ctx, io.EOF, "read", "read header")
		}
	})
	b.Run("baseline_fmt_errorf", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			sink = fmt.Errorf("read header: %w", io.EOF)
		}
	})
}

func BenchmarkRecord(b *testing.B) {
	b.Run("not_recording", func(b *testing.B) {
		span := trace.SpanFromContext(context.Background())
		b.ReportAllocs()
		for b.Loop() {
			errs.Record(span, io.EOF)
		}
	})
	b.Run("recording", func(b *testing.B) {
		_, span := recordingCtx(b)
		err := errs.New(context.Background(), "read", "read header")
		b.ReportAllocs()
		for b.Loop() {
			errs.Record(span, err)
		}
	})
	// The same OpenTelemetry calls made bare: what Record adds on top of them.
	b.Run("baseline_bare_otel", func(b *testing.B) {
		_, span := recordingCtx(b)
		err := errs.New(context.Background(), "read", "read header")
		b.ReportAllocs()
		for b.Loop() {
			span.SetStatus(codes.Error, err.Error())
			span.SetAttributes(semconv.ErrorTypeKey.String("read"))
		}
	})
}
