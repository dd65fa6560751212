package benchmarks

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/sourcegraph/conc/stream"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
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

// BenchmarkPipelineSDK runs 1e5 ints through three one-worker stages (x*2,
// +1, +1) and sums them, in a recording run with the SDK's tracer and
// meter, against raw goroutines and channels that make the same
// OpenTelemetry calls by hand (lib=bare): the run's span, and per value
// and stage the in and out counters and the duration histogram, with
// attribute sets built once, of the same two attributes.
func BenchmarkPipelineSDK(b *testing.B) {
	fns := []func(int) int{func(x int) int { return x * 2 }, func(x int) int { return x + 1 }, func(x int) int { return x + 1 }}
	sdk := func(b *testing.B) (*sdktrace.TracerProvider, *sdkmetric.MeterProvider) {
		mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
		b.Cleanup(func() { _ = mp.Shutdown(context.Background()) })
		return recordingTracer(b), mp
	}
	b.Run("lib=otelpatterns", func(b *testing.B) {
		tp, mp := sdk(b)
		stages := make([]*pipeline.Stage[int, int], len(fns))
		for i, fn := range fns {
			stages[i], _ = pipeline.NewStage(fmt.Sprint("s", i), func(_ context.Context, x int) (int, error) { return fn(x), nil })
		}
		p, err := pipeline.NewPipeline("bench", stages...)
		if err != nil {
			b.Fatal(err)
		}
		opts := []pipeline.Option{pipeline.WithTracerProvider(tp), pipeline.WithMeterProvider(mp)}
		for b.Loop() {
			sum := 0
			for v := range p.Run(context.Background(), slices.Values(inputs), opts...).All() {
				sum += v
			}
			sinkInt = sum
		}
		perTask(b)
	})
	b.Run("lib=bare", func(b *testing.B) {
		tp, mp := sdk(b)
		tracer, meter := tp.Tracer("bench"), mp.Meter("bench")
		in, _ := meter.Int64Counter("items.in")
		out, _ := meter.Int64Counter("items.out")
		took, _ := meter.Float64Histogram("item.duration")
		addOpts := make([][]metric.AddOption, len(fns)) // built once, passed without a slice per call
		recOpts := make([][]metric.RecordOption, len(fns))
		for i := range fns {
			set := metric.WithAttributeSet(attribute.NewSet( // the pipeline's and the stage's name, as the library records them
				attribute.String("otelpatterns.pipeline.name", "bench"), attribute.String("otelpatterns.pipeline.stage", fmt.Sprint("s", i))))
			addOpts[i], recOpts[i] = []metric.AddOption{set}, []metric.RecordOption{set}
		}
		for b.Loop() {
			ctx, span := tracer.Start(context.Background(), "pipeline bench")
			src := make(chan int, 1)
			go func() {
				for _, x := range inputs {
					src <- x
				}
				close(src)
			}()
			var ch <-chan int = src
			for i, fn := range fns {
				next := make(chan int, 1)
				go func(from <-chan int) {
					for v := range from {
						in.Add(ctx, 1, addOpts[i]...)
						start := time.Now()
						v = fn(v)
						took.Record(ctx, time.Since(start).Seconds(), recOpts[i]...)
						next <- v
						out.Add(ctx, 1, addOpts[i]...)
					}
					close(next)
				}(ch)
				ch = next
			}
			sum := 0
			for v := range ch {
				sum += v
			}
			sinkInt = sum
			span.End()
		}
		perTask(b)
	})
}
