package benchmarks

import (
	"context"
	"slices"
	"testing"

	"github.com/sourcegraph/conc/stream"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	tracenoop "go.opentelemetry.io/otel/trace/noop"

	"github.com/otelpatterns/otelpatterns/concurrency/pipeline"
	"github.com/otelpatterns/otelpatterns/internal/workload"
)

// BenchmarkOrderedStream runs 1e5 values through one ordered stage of 4
// workers, each value about 1µs of CPU, and reads the results in order.
func BenchmarkOrderedStream(b *testing.B) {
	b.Run("lib=otelpatterns", func(b *testing.B) {
		st, err := pipeline.NewStage("spin", func(_ context.Context, x int) (int, error) { return workload.Spin1us(x), nil },
			pipeline.WithWorkers(benchWorkers))
		if err != nil {
			b.Fatal(err)
		}
		opts := []pipeline.Option{pipeline.WithTracerProvider(tracenoop.NewTracerProvider()),
			pipeline.WithMeterProvider(metricnoop.NewMeterProvider())}
		for b.Loop() {
			out := pipeline.Then(pipeline.From(context.Background(), "bench", slices.Values(inputs), opts...), st)
			for v := range out.All() {
				sinkInt = v
			}
		}
		perTask(b)
	})
	b.Run("lib=conc", func(b *testing.B) {
		for b.Loop() {
			s := stream.New().WithMaxGoroutines(benchWorkers)
			for _, x := range inputs {
				s.Go(func() stream.Callback {
					v := workload.Spin1us(x)
					return func() { sinkInt = v }
				})
			}
			s.Wait()
		}
		perTask(b)
	})
}
