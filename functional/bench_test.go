package functional_test

import (
	"context"
	"slices"
	"testing"

	metricnoop "go.opentelemetry.io/otel/metric/noop"
	tracenoop "go.opentelemetry.io/otel/trace/noop"

	"github.com/otelpatterns/otelpatterns/functional"
	"github.com/otelpatterns/otelpatterns/internal/workload"
)

var ints = workload.Ints(10_000)

var sinkInts []int

func double(x int) int { return 2 * x }

// funcValue hides fn's identity from the compiler, as a function passed in
// from elsewhere is hidden, so that it is called, not inlined.
//
//go:noinline
func funcValue(fn func(int) int) func(int) int { return fn }

// BenchmarkMap is Map over 1e4 ints against the plain loop it replaces:
// with the function inlined into the loop (loop_inlined), and called
// through a function value, as Map must call it (loop).
func BenchmarkMap(b *testing.B) {
	b.Run("impl=loop_inlined", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			out := make([]int, len(ints))
			for i, x := range ints {
				out[i] = double(x)
			}
			sinkInts = out
		}
	})
	b.Run("impl=loop", func(b *testing.B) {
		fn := funcValue(double)
		b.ReportAllocs()
		for b.Loop() {
			out := make([]int, len(ints))
			for i, x := range ints {
				out[i] = fn(x)
			}
			sinkInts = out
		}
	})
	b.Run("impl=functional", func(b *testing.B) {
		ctx := context.Background()
		b.ReportAllocs()
		for b.Loop() {
			sinkInts, _ = functional.Map(ctx, ints, double)
		}
	})
}

// BenchmarkMapSeq is the lazy form against a hand-written range-over-func.
func BenchmarkMapSeq(b *testing.B) {
	b.Run("impl=handwritten", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			seq := func(yield func(int) bool) {
				for _, x := range ints {
					if !yield(double(x)) {
						return
					}
				}
			}
			sum := 0
			for v := range seq {
				sum += v
			}
			sinkInts = ints[:sum&1]
		}
	})
	b.Run("impl=functional", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			sum := 0
			for v := range functional.MapSeq(slices.Values(ints), double) {
				sum += v
			}
			sinkInts = ints[:sum&1]
		}
	})
}

// BenchmarkParallelMap runs a 10µs CPU-bound fn over 1000 items, in
// parallel with telemetry off, and sequentially.
func BenchmarkParallelMap(b *testing.B) {
	items := ints[:1000]
	fn := func(_ context.Context, x int) (int, error) { return workload.Spin10us(x), nil }
	b.Run("impl=sequential", func(b *testing.B) {
		for b.Loop() {
			sinkInts, _ = functional.MapErr(context.Background(), items, fn)
		}
	})
	b.Run("impl=parallel", func(b *testing.B) {
		opts := []functional.Option{functional.WithTracerProvider(tracenoop.NewTracerProvider()),
			functional.WithMeterProvider(metricnoop.NewMeterProvider())}
		b.ReportAllocs()
		for b.Loop() {
			sinkInts, _ = functional.ParallelMap(context.Background(), items, fn, opts...)
		}
	})
}
