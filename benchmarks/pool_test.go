package benchmarks

import (
	"context"
	"sync"
	"testing"

	"github.com/alitto/pond/v2"
	"github.com/panjf2000/ants/v2"
	concpool "github.com/sourcegraph/conc/pool"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	tracenoop "go.opentelemetry.io/otel/trace/noop"
	"golang.org/x/sync/errgroup"

	"github.com/otelpatterns/otelpatterns/internal/workload"
	"github.com/otelpatterns/otelpatterns/pool"
)

// BenchmarkPoolGo runs benchTasks fire-and-forget tasks, each writing its
// result to out[i], and waits for all of them: every library gets the same
// closure and the same WaitGroup.
// requestKey is the key of the value a request's context carries.
type requestKey struct{}

func BenchmarkPoolGo(b *testing.B) {
	for _, w := range workloads {
		out := make([]int, benchTasks)
		// Pools that outlive a batch are made and closed per iteration, so
		// that Close's drain, not a WaitGroup per task, tells when all ran,
		// as Wait does for conc and errgroup; a pool costs microseconds
		// against the 1e5 tasks.
		// otelpatterns with the background context, and with a request's:
		// cancellable, with a value, as a handler's is.
		request, cancel := context.WithCancel(context.WithValue(context.Background(), requestKey{}, "request"))
		for _, c := range []struct {
			lib string
			ctx context.Context
		}{{"otelpatterns", context.Background()}, {"otelpatterns-request-ctx", request}} {
			ctx := c.ctx
			b.Run("lib="+c.lib+"/"+w.Name, func(b *testing.B) {
				opts := []pool.Option{pool.WithWorkers(benchWorkers),
					pool.WithTracerProvider(tracenoop.NewTracerProvider()),
					pool.WithMeterProvider(metricnoop.NewMeterProvider())}
				b.ReportAllocs()
				for b.Loop() {
					p, err := pool.NewTasks(opts...)
					if err != nil {
						b.Fatal(err)
					}
					for i := range inputs {
						_ = p.Go(ctx, func(context.Context) error {
							out[i] = w.Fn(inputs[i])
							return nil
						})
					}
					_ = p.Close()
				}
				perTask(b)
			})
		}
		cancel()
		b.Run("lib=pond/"+w.Name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				p := pond.NewPool(benchWorkers)
				for i := range inputs {
					_ = p.Go(func() { out[i] = w.Fn(inputs[i]) })
				}
				p.StopAndWait()
			}
			perTask(b)
		})
		// ants has no drain-and-wait, so a WaitGroup tells when all ran.
		b.Run("lib=ants/"+w.Name, func(b *testing.B) {
			p, err := ants.NewPool(benchWorkers)
			if err != nil {
				b.Fatal(err)
			}
			defer p.Release()
			b.ReportAllocs()
			for b.Loop() {
				var wg sync.WaitGroup
				wg.Add(benchTasks)
				for i := range inputs {
					_ = p.Submit(func() {
						out[i] = w.Fn(inputs[i])
						wg.Done()
					})
				}
				wg.Wait()
			}
			perTask(b)
		})
		b.Run("lib=conc/"+w.Name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				p := concpool.New().WithMaxGoroutines(benchWorkers)
				for i := range inputs {
					p.Go(func() { out[i] = w.Fn(inputs[i]) })
				}
				p.Wait()
			}
			perTask(b)
		})
		b.Run("lib=errgroup/"+w.Name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				var g errgroup.Group
				g.SetLimit(benchWorkers)
				for i := range inputs {
					g.Go(func() error {
						out[i] = w.Fn(inputs[i])
						return nil
					})
				}
				_ = g.Wait()
			}
			perTask(b)
		})
		b.Run("lib=handwritten/"+w.Name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				workload.ClosurePool(benchWorkers, func(run func(func())) {
					for i := range inputs {
						run(func() { out[i] = w.Fn(inputs[i]) })
					}
				})
			}
			perTask(b)
		})
	}
}

// BenchmarkPoolGroup runs benchTasks tasks as one group that returns the
// first error, on a pool that outlives the group: the errgroup pattern.
func BenchmarkPoolGroup(b *testing.B) {
	for _, w := range workloads {
		out := make([]int, benchTasks)
		b.Run("lib=otelpatterns/"+w.Name, func(b *testing.B) {
			p := offPool(b)
			defer p.Close()
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				g := p.Group(ctx)
				for i := range inputs {
					_ = g.Go(func(context.Context) error {
						out[i] = w.Fn(inputs[i])
						return nil
					})
				}
				_ = g.Wait()
			}
			perTask(b)
		})
		b.Run("lib=conc/"+w.Name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				p := concpool.New().WithMaxGoroutines(benchWorkers).WithContext(context.Background()).WithCancelOnError()
				for i := range inputs {
					p.Go(func(context.Context) error {
						out[i] = w.Fn(inputs[i])
						return nil
					})
				}
				_ = p.Wait()
			}
			perTask(b)
		})
		b.Run("lib=errgroup/"+w.Name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				g, _ := errgroup.WithContext(context.Background())
				g.SetLimit(benchWorkers)
				for i := range inputs {
					g.Go(func() error {
						out[i] = w.Fn(inputs[i])
						return nil
					})
				}
				_ = g.Wait()
			}
			perTask(b)
		})
	}
}

// BenchmarkPoolOrdered maps benchTasks inputs to outputs kept in input order.
func BenchmarkPoolOrdered(b *testing.B) {
	for _, w := range workloads {
		b.Run("lib=otelpatterns/"+w.Name, func(b *testing.B) {
			p, err := pool.New(func(_ context.Context, x int) (int, error) { return w.Fn(x), nil },
				pool.WithWorkers(benchWorkers),
				pool.WithTracerProvider(tracenoop.NewTracerProvider()),
				pool.WithMeterProvider(metricnoop.NewMeterProvider()))
			if err != nil {
				b.Fatal(err)
			}
			defer p.Close()
			b.ReportAllocs()
			for b.Loop() {
				if _, err := p.Process(context.Background(), inputs); err != nil {
					b.Fatal(err)
				}
			}
			perTask(b)
		})
		b.Run("lib=ants/"+w.Name, func(b *testing.B) {
			out := make([]int, benchTasks)
			var wg sync.WaitGroup
			p, err := ants.NewPoolWithFuncGeneric(benchWorkers, func(i int) {
				out[i] = w.Fn(inputs[i])
				wg.Done()
			})
			if err != nil {
				b.Fatal(err)
			}
			defer p.Release()
			b.ReportAllocs()
			for b.Loop() {
				wg.Add(benchTasks)
				for i := range inputs {
					_ = p.Invoke(i)
				}
				wg.Wait()
			}
			perTask(b)
		})
		b.Run("lib=handwritten/"+w.Name, func(b *testing.B) {
			out := make([]int, benchTasks)
			b.ReportAllocs()
			for b.Loop() {
				workload.IndexPool(benchTasks, benchWorkers, func(i int) { out[i] = w.Fn(inputs[i]) })
			}
			perTask(b)
		})
	}
}

// BenchmarkPoolFutures submits benchTasks tasks with a result each and
// waits for every result.
func BenchmarkPoolFutures(b *testing.B) {
	for _, w := range workloads {
		b.Run("lib=otelpatterns/"+w.Name, func(b *testing.B) {
			p, err := pool.New(func(_ context.Context, x int) (int, error) { return w.Fn(x), nil },
				pool.WithWorkers(benchWorkers),
				pool.WithTracerProvider(tracenoop.NewTracerProvider()),
				pool.WithMeterProvider(metricnoop.NewMeterProvider()))
			if err != nil {
				b.Fatal(err)
			}
			defer p.Close()
			futs := make([]*pool.Future[int], benchTasks)
			ctx := context.Background()
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
		b.Run("lib=pond/"+w.Name, func(b *testing.B) {
			p := pond.NewResultPool[int](benchWorkers)
			defer p.StopAndWait()
			futs := make([]pond.ResultTask[int], benchTasks)
			b.ReportAllocs()
			for b.Loop() {
				for i, x := range inputs {
					futs[i] = p.Submit(func() int { return w.Fn(x) })
				}
				for _, f := range futs {
					_, _ = f.Wait()
				}
			}
			perTask(b)
		})
	}
}
