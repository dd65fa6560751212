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
				workload.IndexPool(benchTasks, benchWorkers, func(i int) { out[i] = w.Fn(inputs[i]) })
			}
			perTask(b)
		})
		// Workers take tasks with a future each; the caller waits on all.
		b.Run("futures/"+w.Name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				workload.FuturesPool(context.Background(), inputs, benchWorkers,
					func(_ context.Context, _ time.Time, x int) int { return w.Fn(x) })
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
		tracer := newTP(b).Tracer("bench")
		ctx, parent := tracer.Start(context.Background(), "parent")
		defer parent.End()
		b.ReportAllocs()
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

// discard is a span processor that drops every span: the SDK's cost without
// an exporter's.
type discard struct{}

func (discard) OnStart(context.Context, sdktrace.ReadWriteSpan) {}
func (discard) OnEnd(sdktrace.ReadOnlySpan)                     {}
func (discard) Shutdown(context.Context) error                  { return nil }
func (discard) ForceFlush(context.Context) error                { return nil }
