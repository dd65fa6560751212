package saga_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"

	metricnoop "go.opentelemetry.io/otel/metric/noop"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	tracenoop "go.opentelemetry.io/otel/trace/noop"

	"github.com/otelpatterns/otelpatterns/journal"
	"github.com/otelpatterns/otelpatterns/saga"
)

type benchState struct {
	Order string `json:"order"`
	Done  int    `json:"done"`
}

func benchSteps(n int) []saga.Step[benchState] {
	steps := make([]saga.Step[benchState], n)
	for i := range steps {
		steps[i] = saga.Step[benchState]{
			Name:       fmt.Sprintf("step-%d", i),
			Action:     func(_ context.Context, s benchState) (benchState, error) { s.Done++; return s, nil },
			Compensate: func(context.Context, benchState) error { return nil },
		}
	}
	return steps
}

func benchSaga(b *testing.B, log journal.Log, steps int, opts ...saga.Option) (*saga.Runner, *saga.Saga[benchState]) {
	r, err := saga.NewRunner(log, opts...)
	if err != nil {
		b.Fatal(err)
	}
	def, err := saga.New("bench", 1, benchSteps(steps))
	if err != nil {
		b.Fatal(err)
	}
	s, err := saga.Register(r, def)
	if err != nil {
		b.Fatal(err)
	}
	return r, s
}

// BenchmarkStepOverhead is the runner's cost with the memory journal and
// no-op providers, for sagas of 1, 5 and 10 steps that do nothing: the
// difference between two lengths, divided by the difference in steps, is
// the cost of a step; what a 1-step saga costs beyond it is the cost of
// Begin and End. The baseline calls the same five steps in a loop.
func BenchmarkStepOverhead(b *testing.B) {
	for _, steps := range []int{1, 5, 10} {
		b.Run(fmt.Sprintf("steps=%d", steps), func(b *testing.B) {
			log, _ := journal.NewMemory()
			r, s := benchSaga(b, log, steps,
				saga.WithTracerProvider(tracenoop.NewTracerProvider()), saga.WithMeterProvider(metricnoop.NewMeterProvider()))
			defer r.Close(context.Background())
			ctx := context.Background()
			n := 0
			b.ReportAllocs()
			for b.Loop() {
				n++
				id := fmt.Sprintf("s-%d", n)
				if _, _, err := s.Run(ctx, id, benchState{Order: "o"}); err != nil {
					b.Fatal(err)
				}
				_ = log.Forget(ctx, id)
			}
		})
	}
	// A state that holds a slice: each step gets its own copy, decoded
	// from the journaled state, where a flat state is copied plainly.
	b.Run("steps=5/state=slice", func(b *testing.B) {
		log, _ := journal.NewMemory()
		r, _ := saga.NewRunner(log, saga.WithTracerProvider(tracenoop.NewTracerProvider()), saga.WithMeterProvider(metricnoop.NewMeterProvider()))
		defer r.Close(context.Background())
		steps := make([]saga.Step[order], 5)
		for i := range steps {
			steps[i] = saga.Step[order]{Name: fmt.Sprintf("step-%d", i),
				Action: func(_ context.Context, o order) (order, error) { o.Items++; return o, nil }}
		}
		def, err := saga.New("bench-slice", 1, steps)
		if err != nil {
			b.Fatal(err)
		}
		s, _ := saga.Register(r, def)
		ctx := context.Background()
		n := 0
		b.ReportAllocs()
		for b.Loop() {
			n++
			id := fmt.Sprintf("s-%d", n)
			if _, _, err := s.Run(ctx, id, order{Trail: []string{"a", "b"}}); err != nil {
				b.Fatal(err)
			}
			_ = log.Forget(ctx, id)
		}
	})
	// A request's ctx can end, so the saga runs on a goroutine of the
	// runner's, for Run to return when it does: one hand-off a saga.
	b.Run("steps=5/ctx=cancellable", func(b *testing.B) {
		log, _ := journal.NewMemory()
		r, s := benchSaga(b, log, 5,
			saga.WithTracerProvider(tracenoop.NewTracerProvider()), saga.WithMeterProvider(metricnoop.NewMeterProvider()))
		defer r.Close(context.Background())
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		n := 0
		b.ReportAllocs()
		for b.Loop() {
			n++
			id := fmt.Sprintf("s-%d", n)
			if _, _, err := s.Run(ctx, id, benchState{Order: "o"}); err != nil {
				b.Fatal(err)
			}
			_ = log.Forget(ctx, id)
		}
	})
	b.Run("baseline/steps=5", func(b *testing.B) {
		fns := benchSteps(5)
		ctx := context.Background()
		b.ReportAllocs()
		for b.Loop() {
			s := benchState{Order: "o"}
			for _, st := range fns {
				s, _ = st.Action(ctx, s)
			}
		}
	})
}

// BenchmarkConcurrentSagasFile runs 64 concurrent 5-step sagas on the file
// journal, and reports the fdatasyncs per step: group commit shares them.
func BenchmarkConcurrentSagasFile(b *testing.B) {
	rd := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(rd))
	log, err := journal.Open(b.TempDir(), journal.WithMeterProvider(mp))
	if err != nil {
		b.Fatal(err)
	}
	defer log.Close()
	const steps = 5
	r, s := benchSaga(b, log, steps)
	defer r.Close(context.Background())
	var next atomic.Int64
	b.SetParallelism(32) // 64 goroutines on 2 Ps
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, _, err := s.Run(context.Background(), fmt.Sprintf("s-%d", next.Add(1)), benchState{}); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.StopTimer()
	var rm metricdata.ResourceMetrics
	if err := rd.Collect(context.Background(), &rm); err != nil {
		b.Fatal(err)
	}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name == "otelpatterns.journal.syncs" {
				syncs := m.Data.(metricdata.Sum[int64]).DataPoints[0].Value
				b.ReportMetric(float64(syncs)/float64(next.Load()*steps), "syncs/step")
			}
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(next.Load()), "ns/saga")
}
