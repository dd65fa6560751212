package telemetry_test

import (
	"context"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/otelpatterns/otelpatterns/internal/telemetry"
)

func BenchmarkStartFine(b *testing.B) {
	b.Run("off", func(b *testing.B) {
		tel := telemetry.New("bench", offConfig())
		ctx := context.Background()
		b.ReportAllocs()
		for b.Loop() {
			_, span := tel.StartFine(ctx, "fine")
			span.End()
		}
	})
	b.Run("sdk", func(b *testing.B) {
		tp := sdktrace.NewTracerProvider()
		b.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
		var c telemetry.Config
		c.SetTracerProvider(tp)
		tel := telemetry.New("bench", c)
		ctx, parent := tel.Tracer.Start(context.Background(), "parent")
		defer parent.End()
		b.ReportAllocs()
		for b.Loop() {
			_, span := tel.StartFine(ctx, "fine")
			span.End()
		}
	})
}

func BenchmarkCacheGet(b *testing.B) {
	cache := telemetry.NewCache("bench", func(t *telemetry.Telemetry) *telemetry.Telemetry { return t })
	cfg := offConfig()
	cache.Get(cfg)
	b.ReportAllocs()
	for b.Loop() {
		_ = cache.Get(cfg)
	}
}
