package pipeline_test

import (
	"context"
	"fmt"
	"testing"

	metricnoop "go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/trace"
	tracenoop "go.opentelemetry.io/otel/trace/noop"

	"github.com/otelpatterns/otelpatterns/concurrency/pipeline"
)

var sinkInt int

// BenchmarkPipeline runs 1e5 ints through three stages of one worker
// each, by a concurrency pipeline with telemetry off and by hand-written
// pipelines: raw goroutines and channels, and ones that also select on ctx
// and carry each value's span context.
func BenchmarkPipeline(b *testing.B) {
	const n = 100_000
	inc := func(_ context.Context, x int) (int, error) { return x + 1, nil }
	perItem := func(b *testing.B) {
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/n, "ns/item")
	}
	b.Run("impl=raw", func(b *testing.B) {
		for b.Loop() {
			src := make(chan int, 1)
			go func() {
				for i := range n {
					src <- i
				}
				close(src)
			}()
			in := src
			for range 3 {
				out := make(chan int, 1)
				go func(in <-chan int) {
					for v := range in {
						out <- v + 1
					}
					close(out)
				}(in)
				in = out
			}
			for v := range in {
				sinkInt = v
			}
		}
		perItem(b)
	})
	b.Run("impl=ctx_aware", func(b *testing.B) {
		type env struct {
			v  int
			sc trace.SpanContext
		}
		ctx, cancel := context.WithCancel(context.Background()) // a pipeline can be cancelled
		defer cancel()
		for b.Loop() {
			src := make(chan env, 1)
			go func() {
				defer close(src)
				for i := range n {
					select {
					case src <- env{v: i}:
					case <-ctx.Done():
						return
					}
				}
			}()
			in := src
			for range 3 {
				out := make(chan env, 1)
				go func(in <-chan env) {
					defer close(out)
					for e := range in {
						v, _ := inc(ctx, e.v)
						select {
						case out <- env{v: v, sc: e.sc}:
						case <-ctx.Done():
							return
						}
					}
				}(in)
				in = out
			}
			for e := range in {
				sinkInt = e.v
			}
		}
		perItem(b)
	})
	b.Run("impl=pipeline", func(b *testing.B) {
		opts := []pipeline.Option{pipeline.WithTracerProvider(tracenoop.NewTracerProvider()),
			pipeline.WithMeterProvider(metricnoop.NewMeterProvider())}
		stages := make([]*pipeline.Stage[int, int], 3)
		for i := range stages {
			stages[i], _ = pipeline.NewStage(fmt.Sprint("s", i), inc)
		}
		p, err := pipeline.NewPipeline("bench", stages...)
		if err != nil {
			b.Fatal(err)
		}
		for b.Loop() {
			src := func(yield func(int) bool) {
				for i := range n {
					if !yield(i) {
						return
					}
				}
			}
			for v := range p.Run(context.Background(), src, opts...).All() {
				sinkInt = v
			}
		}
		perItem(b)
	})
}
