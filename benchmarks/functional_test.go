package benchmarks

import (
	"context"
	"testing"

	"github.com/samber/lo"
	loparallel "github.com/samber/lo/parallel"
	conciter "github.com/sourcegraph/conc/iter"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	tracenoop "go.opentelemetry.io/otel/trace/noop"

	"github.com/otelpatterns/otelpatterns/functional"
	"github.com/otelpatterns/otelpatterns/internal/workload"
)

var (
	mapItems = inputs[:10_000]
	cpuItems = inputs[:1_000]
	sinkInts []int
)

func double(x int) int { return 2 * x }

// BenchmarkMap maps 1e4 ints with a cheap function.
func BenchmarkMap(b *testing.B) {
	fn := double
	b.Run("lib=otelpatterns", func(b *testing.B) {
		ctx := context.Background()
		b.ReportAllocs()
		for b.Loop() {
			sinkInts, _ = functional.Map(ctx, mapItems, fn)
		}
	})
	b.Run("lib=lo", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			sinkInts = lo.Map(mapItems, func(x int, _ int) int { return fn(x) })
		}
	})
	b.Run("lib=loop", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			out := make([]int, len(mapItems))
			for i, x := range mapItems {
				out[i] = fn(x)
			}
			sinkInts = out
		}
	})
}

// BenchmarkParallelMap maps 1e3 items with about 10µs of CPU each, on
// GOMAXPROCS goroutines where the library lets one choose.
func BenchmarkParallelMap(b *testing.B) {
	b.Run("lib=otelpatterns", func(b *testing.B) {
		opts := []functional.Option{functional.WithTracerProvider(tracenoop.NewTracerProvider()),
			functional.WithMeterProvider(metricnoop.NewMeterProvider())}
		b.ReportAllocs()
		for b.Loop() {
			sinkInts, _ = functional.ParallelMap(context.Background(), cpuItems,
				func(_ context.Context, x int) (int, error) { return workload.Spin10us(x), nil }, opts...)
		}
	})
	b.Run("lib=conc", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			sinkInts = conciter.Map(cpuItems, func(x *int) int { return workload.Spin10us(*x) })
		}
	})
	b.Run("lib=lo", func(b *testing.B) {
		// lo/parallel starts a goroutine per item; it has no bound.
		b.ReportAllocs()
		for b.Loop() {
			sinkInts = loparallel.Map(cpuItems, func(x int, _ int) int { return workload.Spin10us(x) })
		}
	})
	b.Run("lib=sequential", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			out := make([]int, len(cpuItems))
			for i, x := range cpuItems {
				out[i] = workload.Spin10us(x)
			}
			sinkInts = out
		}
	})
}
