package retry_test

import (
	"context"
	"io"
	"testing"

	metricnoop "go.opentelemetry.io/otel/metric/noop"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	tracenoop "go.opentelemetry.io/otel/trace/noop"

	"github.com/otelpatterns/otelpatterns/retry"
)

var sink int

func benchPolicy(b *testing.B, opts ...retry.Option) *retry.Policy {
	p, err := retry.New(append([]retry.Option{retry.WithConstantBackoff(0)}, opts...)...)
	if err != nil {
		b.Fatal(err)
	}
	return p
}

// BenchmarkDo is the success path (the op succeeds on its first try) and a
// three-attempt path with zero delay, against calling the op directly.
func BenchmarkDo(b *testing.B) {
	ok := func(context.Context) (int, error) { return 1, nil }
	off := []retry.Option{retry.WithTracerProvider(tracenoop.NewTracerProvider()), retry.WithMeterProvider(metricnoop.NewMeterProvider())}
	b.Run("path=first_try/impl=direct", func(b *testing.B) {
		ctx := context.Background()
		for b.Loop() {
			sink, _ = ok(ctx)
		}
	})
	b.Run("path=first_try/impl=off", func(b *testing.B) {
		p := benchPolicy(b, off...)
		ctx := context.Background()
		b.ReportAllocs()
		for b.Loop() {
			sink, _ = retry.Do(ctx, p, ok)
		}
	})
	b.Run("path=three_attempts/impl=off", func(b *testing.B) {
		p := benchPolicy(b, off...)
		ctx := context.Background()
		n := 0
		flaky := func(context.Context) (int, error) {
			if n++; n%3 != 0 {
				return 0, io.EOF
			}
			return 1, nil
		}
		b.ReportAllocs()
		for b.Loop() {
			sink, _ = retry.Do(ctx, p, flaky)
		}
	})
	b.Run("path=first_try/impl=sdk", func(b *testing.B) {
		tp := sdktrace.NewTracerProvider()
		b.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
		p := benchPolicy(b, retry.WithTracerProvider(tp), retry.WithMeterProvider(metricnoop.NewMeterProvider()))
		ctx, parent := tp.Tracer("bench").Start(context.Background(), "parent")
		defer parent.End()
		b.ReportAllocs()
		for b.Loop() {
			sink, _ = retry.Do(ctx, p, ok)
		}
	})
}
