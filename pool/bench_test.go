package pool_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	tracenoop "go.opentelemetry.io/otel/trace/noop"

	"github.com/otelpatterns/otelpatterns/internal/workload"
	"github.com/otelpatterns/otelpatterns/pool"
)

// The workloads of the pool's performance targets: 1e5 tasks on 4 workers,
// each a no-op or about a microsecond of CPU.
const (
	benchTasks   = workload.PoolTasks
	benchWorkers = workload.PoolWorkers
)

var (
	workloads = workload.Tasks
	inputs    = workload.Ints(benchTasks)
)

func perTask(b *testing.B) { workload.PerItem(b, benchTasks) }

func offOptions() []pool.Option {
	return []pool.Option{
		pool.WithWorkers(benchWorkers),
		pool.WithTracerProvider(tracenoop.NewTracerProvider()),
		pool.WithMeterProvider(metricnoop.NewMeterProvider()),
	}
}

func newPool(b *testing.B, fn func(int) int, opts ...pool.Option) *pool.WorkerPool[int, int] {
	p, err := pool.New(func(_ context.Context, x int) (int, error) { return fn(x), nil }, opts...)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = p.Close() })
	return p
}

// BenchmarkBaseline is what the pool replaces, written by hand.
func BenchmarkBaseline(b *testing.B) {
	for _, w := range workloads {
		// Workers take indices from a channel and write out[i].
		b.Run("index/"+w.Name, func(b *testing.B) {
			b.ReportAllocs()
			out := make([]int, benchTasks)
			for b.Loop() {
				idx := make(chan int, 1024)
				var wg sync.WaitGroup
				for range benchWorkers {
					wg.Go(func() {
						for i := range idx {
							out[i] = w.Fn(inputs[i])
						}
					})
				}
				for i := range inputs {
					idx <- i
				}
				close(idx)
				wg.Wait()
			}
			perTask(b)
		})
		// Workers take tasks with a future each; the caller waits on all.
		b.Run("futures/"+w.Name, func(b *testing.B) {
			type future struct {
				done chan struct{}
				out  int
			}
			type task struct {
				in  int
				fut *future
			}
			b.ReportAllocs()
			futs := make([]*future, benchTasks)
			for b.Loop() {
				tasks := make(chan task, 1024)
				var wg sync.WaitGroup
				for range benchWorkers {
					wg.Go(func() {
						for t := range tasks {
							t.fut.out = w.Fn(t.in)
							close(t.fut.done)
						}
					})
				}
				for i, x := range inputs {
					f := &future{done: make(chan struct{})}
					futs[i] = f
					tasks <- task{in: x, fut: f}
				}
				for _, f := range futs {
					<-f.done
				}
				close(tasks)
				wg.Wait()
			}
			perTask(b)
		})
	}
}

func BenchmarkProcess(b *testing.B) {
	for _, w := range workloads {
		b.Run("off/"+w.Name, func(b *testing.B) {
			p := newPool(b, w.Fn, offOptions()...)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := p.Process(context.Background(), inputs); err != nil {
					b.Fatal(err)
				}
			}
			perTask(b)
		})
	}
}

func BenchmarkGo(b *testing.B) {
	for _, w := range workloads {
		b.Run("off/"+w.Name, func(b *testing.B) {
			p := newPool(b, w.Fn, offOptions()...)
			out := make([]int, benchTasks)
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				var wg sync.WaitGroup
				wg.Add(benchTasks)
				for i, x := range inputs {
					_ = p.Go(ctx, func(context.Context) error {
						out[i] = w.Fn(x)
						wg.Done()
						return nil
					})
				}
				wg.Wait()
			}
			perTask(b)
		})
	}
}

func BenchmarkSubmitWait(b *testing.B) {
	for _, w := range workloads {
		b.Run("off/"+w.Name, func(b *testing.B) {
			p := newPool(b, w.Fn, offOptions()...)
			futs := make([]*pool.Future[int], benchTasks)
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				for i, x := range inputs {
					futs[i], _ = p.Submit(ctx, x)
				}
				for _, f := range futs {
					if _, err := f.Wait(ctx); err != nil {
						b.Fatal(err)
					}
				}
			}
			perTask(b)
		})
	}
}

// BenchmarkSDK measures a pool.task span per task under a recording parent,
// against the same OpenTelemetry calls made bare by a hand-written pool.
func BenchmarkSDK(b *testing.B) {
	newTP := func(b *testing.B) *sdktrace.TracerProvider {
		tp := sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.AlwaysSample()),
			sdktrace.WithSpanProcessor(discard{}))
		b.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
		return tp
	}
	b.Run("pool/submit", func(b *testing.B) {
		tp := newTP(b)
		p := newPool(b, workloads[0].Fn, pool.WithWorkers(benchWorkers), pool.WithTracerProvider(tp),
			pool.WithMeterProvider(metricnoop.NewMeterProvider()))
		ctx, parent := tp.Tracer("bench").Start(context.Background(), "parent")
		defer parent.End()
		futs := make([]*pool.Future[int], benchTasks)
		b.ReportAllocs()
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
	// The same OpenTelemetry calls, made by a hand-written futures pool: a
	// span per task under the submitter's, with the same two attributes.
	b.Run("bare/futures", func(b *testing.B) {
		name := attribute.String("otelpatterns.pool.name", "default")
		tp := newTP(b)
		tracer := tp.Tracer("bench")
		ctx, parent := tracer.Start(context.Background(), "parent")
		defer parent.End()
		type future struct {
			done chan struct{}
			out  int
		}
		type task struct {
			ctx      context.Context
			in       int
			fut      *future
			enqueued time.Time
		}
		futs := make([]*future, benchTasks)
		b.ReportAllocs()
		for b.Loop() {
			tasks := make(chan task, 1024)
			var wg sync.WaitGroup
			for range benchWorkers {
				wg.Go(func() {
					for t := range tasks {
						_, span := tracer.Start(t.ctx, "pool.task", trace.WithAttributes(
							name, attribute.Float64("otelpatterns.pool.task.queue_wait", time.Since(t.enqueued).Seconds())))
						t.fut.out = t.in
						span.End()
						close(t.fut.done)
					}
				})
			}
			for i, x := range inputs {
				f := &future{done: make(chan struct{})}
				futs[i] = f
				tasks <- task{ctx: ctx, in: x, fut: f, enqueued: time.Now()}
			}
			for _, f := range futs {
				<-f.done
			}
			close(tasks)
			wg.Wait()
		}
		perTask(b)
	})
}

// discard is a span processor that drops every span: the SDK's cost without
// an exporter's.
type discard struct{}

func (discard) OnStart(context.Context, sdktrace.ReadWriteSpan) {}
func (discard) OnEnd(sdktrace.ReadOnlySpan)                     {}
func (discard) Shutdown(context.Context) error                  { return nil }
func (discard) ForceFlush(context.Context) error                { return nil }
