package benchmarks

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/alitto/pond/v2"
	"github.com/panjf2000/ants/v2"
	concpool "github.com/sourcegraph/conc/pool"
	"go.opentelemetry.io/otel/attribute"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	tracenoop "go.opentelemetry.io/otel/trace/noop"
	"golang.org/x/sync/errgroup"

	"github.com/otelpatterns/otelpatterns/internal/workload"
	"github.com/otelpatterns/otelpatterns/pool"
)

// spinSink keeps the spins' results, so the compiler cannot drop them.
var spinSink atomic.Int64

func offPool(b *testing.B, extra ...pool.Option) *pool.Tasks {
	p, err := pool.NewTasks(append([]pool.Option{pool.WithWorkers(benchWorkers),
		pool.WithTracerProvider(tracenoop.NewTracerProvider()),
		pool.WithMeterProvider(metricnoop.NewMeterProvider())}, extra...)...)
	if err != nil {
		b.Fatal(err)
	}
	return p
}

// BenchmarkPoolSleep runs 100 tasks that each sleep 10ms on 4 workers:
// what matters here is that nothing adds to the 250ms the sleeps take.
func BenchmarkPoolSleep(b *testing.B) {
	const tasks = 100
	sleep := func() { time.Sleep(10 * time.Millisecond) }
	report := func(b *testing.B) { workload.PerItem(b, tasks) }
	b.Run("lib=otelpatterns", func(b *testing.B) {
		for b.Loop() {
			p := offPool(b)
			for range tasks {
				_ = p.Go(context.Background(), func(context.Context) error { sleep(); return nil })
			}
			_ = p.Close()
		}
		report(b)
	})
	b.Run("lib=pond", func(b *testing.B) {
		for b.Loop() {
			p := pond.NewPool(benchWorkers)
			for range tasks {
				p.Submit(sleep)
			}
			p.StopAndWait()
		}
		report(b)
	})
	b.Run("lib=conc", func(b *testing.B) {
		for b.Loop() {
			p := concpool.New().WithMaxGoroutines(benchWorkers)
			for range tasks {
				p.Go(sleep)
			}
			p.Wait()
		}
		report(b)
	})
	b.Run("lib=errgroup", func(b *testing.B) {
		for b.Loop() {
			var g errgroup.Group
			g.SetLimit(benchWorkers)
			for range tasks {
				g.Go(func() error { sleep(); return nil })
			}
			_ = g.Wait()
		}
		report(b)
	})
}

// BenchmarkPoolSubmitters runs 1e5 no-op tasks submitted by S goroutines at
// once, T tasks each (S·T = 1e5), from 1×1e5 to 1e4×10.
func BenchmarkPoolSubmitters(b *testing.B) {
	for _, s := range []int{1, 10, 100, 1000, 10000} {
		t := benchTasks / s
		shape := fmt.Sprintf("submitters=%d", s)
		fanOut := func(submit func()) {
			var wg sync.WaitGroup
			for range s {
				wg.Go(func() {
					for range t {
						submit()
					}
				})
			}
			wg.Wait()
		}
		noop := func() {}
		b.Run("lib=otelpatterns/"+shape, func(b *testing.B) {
			ctx := context.Background()
			task := func(context.Context) error { return nil }
			for b.Loop() {
				p := offPool(b)
				fanOut(func() { _ = p.Go(ctx, task) })
				_ = p.Close()
			}
			perTask(b)
		})
		b.Run("lib=pond/"+shape, func(b *testing.B) {
			for b.Loop() {
				p := pond.NewPool(benchWorkers)
				fanOut(func() { _ = p.Go(noop) })
				p.StopAndWait()
			}
			perTask(b)
		})
		b.Run("lib=conc/"+shape, func(b *testing.B) {
			for b.Loop() {
				p := concpool.New().WithMaxGoroutines(benchWorkers)
				fanOut(func() { p.Go(noop) })
				p.Wait()
			}
			perTask(b)
		})
		b.Run("lib=errgroup/"+shape, func(b *testing.B) {
			task := func() error { return nil }
			for b.Loop() {
				var g errgroup.Group
				g.SetLimit(benchWorkers)
				fanOut(func() { g.Go(task) })
				_ = g.Wait()
			}
			perTask(b)
		})
	}
}

// BenchmarkPoolOverload offers 1e5 tasks of about 1µs, without blocking, to
// 4 workers behind a queue of 64: most are refused. It reports the time per
// offer and the share dropped.
func BenchmarkPoolOverload(b *testing.B) {
	const queue = 64
	report := func(b *testing.B, dropped int) {
		perTask(b)
		b.ReportMetric(float64(dropped)/float64(b.N)/benchTasks, "dropped/task")
	}
	b.Run("lib=otelpatterns", func(b *testing.B) {
		ctx := context.Background()
		dropped := 0
		for b.Loop() {
			p, err := pool.New(func(_ context.Context, x int) (int, error) { return workload.Spin1us(x), nil },
				pool.WithWorkers(benchWorkers), pool.WithQueueSize(queue),
				pool.WithTracerProvider(tracenoop.NewTracerProvider()), pool.WithMeterProvider(metricnoop.NewMeterProvider()))
			if err != nil {
				b.Fatal(err)
			}
			for _, x := range inputs {
				if _, err := p.TrySubmit(ctx, x); errors.Is(err, pool.ErrQueueFull) {
					dropped++
				}
			}
			_ = p.Close()
		}
		report(b, dropped)
	})
	b.Run("lib=pond", func(b *testing.B) {
		dropped := 0
		for b.Loop() {
			p := pond.NewPool(benchWorkers, pond.WithQueueSize(queue), pond.WithNonBlocking(true))
			for _, x := range inputs {
				if err := p.Go(func() { spinSink.Add(int64(workload.Spin1us(x))) }); err != nil {
					dropped++
				}
			}
			p.StopAndWait()
		}
		report(b, dropped)
	})
	b.Run("lib=ants", func(b *testing.B) {
		dropped := 0
		for b.Loop() {
			p, err := ants.NewPool(benchWorkers, ants.WithNonblocking(true))
			if err != nil {
				b.Fatal(err)
			}
			for _, x := range inputs {
				if err := p.Submit(func() { spinSink.Add(int64(workload.Spin1us(x))) }); err != nil {
					dropped++
				}
			}
			_ = p.ReleaseTimeout(10 * time.Second)
		}
		report(b, dropped)
	})
}

// discard is a span processor that drops every span: the SDK's cost
// without an exporter's.
type discard struct{}

func (discard) OnStart(context.Context, sdktrace.ReadWriteSpan) {}
func (discard) OnEnd(sdktrace.ReadOnlySpan)                     {}
func (discard) Shutdown(context.Context) error                  { return nil }
func (discard) ForceFlush(context.Context) error                { return nil }

func recordingTracer(b *testing.B) *sdktrace.TracerProvider {
	tp := sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.AlwaysSample()), sdktrace.WithSpanProcessor(discard{}))
	b.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	return tp
}

// BenchmarkPoolSDK submits 1e5 no-op tasks under a recording span, with
// the SDK recording a pool.task span per task, against a hand-written
// futures pool that makes the same OpenTelemetry calls (lib=bare).
func BenchmarkPoolSDK(b *testing.B) {
	b.Run("lib=otelpatterns", func(b *testing.B) {
		tp := recordingTracer(b)
		p, err := pool.New(func(_ context.Context, x int) (int, error) { return x, nil },
			pool.WithWorkers(benchWorkers), pool.WithTracerProvider(tp), pool.WithMeterProvider(metricnoop.NewMeterProvider()))
		if err != nil {
			b.Fatal(err)
		}
		defer p.Close()
		ctx, parent := tp.Tracer("bench").Start(context.Background(), "request")
		defer parent.End()
		futs := make([]*pool.Future[int], benchTasks)
		for b.Loop() {
			for i, x := range inputs {
				futs[i], _ = p.Submit(ctx, x)
			}
			for _, f := range futs {
				_, _ = f.Wait(ctx)
			}
		}
		perTask(b)
	})
	b.Run("lib=bare", func(b *testing.B) {
		tracer := recordingTracer(b).Tracer("bench")
		name := attribute.String("otelpatterns.pool.name", "default")
		ctx, parent := tracer.Start(context.Background(), "request")
		defer parent.End()
		for b.Loop() {
			workload.FuturesPool(ctx, inputs, benchWorkers, func(ctx context.Context, queued time.Time, x int) int {
				_, span := tracer.Start(ctx, "pool.task", trace.WithAttributes(
					name, attribute.Float64("otelpatterns.pool.task.queue_wait", time.Since(queued).Seconds())))
				span.End()
				return x
			})
		}
		perTask(b)
	})
}
