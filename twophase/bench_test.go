package twophase_test

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
	"github.com/otelpatterns/otelpatterns/twophase"
)

// nop is a participant that says yes to everything, at no cost.
type nop string

func (n nop) Name() string                        { return string(n) }
func (nop) Prepare(context.Context, string) error { return nil }
func (nop) Commit(context.Context, string) error  { return nil }
func (nop) Abort(context.Context, string) error   { return nil }
func benchParticipants() []twophase.Participant {
	return []twophase.Participant{nop("a"), nop("b"), nop("c")}
}
func benchID(n int64) string { return fmt.Sprintf("tx-%d", n) }
func noopOptions() []twophase.Option {
	return []twophase.Option{twophase.WithTracerProvider(tracenoop.NewTracerProvider()), twophase.WithMeterProvider(metricnoop.NewMeterProvider())}
}

// BenchmarkTransaction is the coordinator's cost for a transaction of 3
// participants that do nothing, with the memory journal and no-op
// providers, against the six calls made directly.
func BenchmarkTransaction(b *testing.B) {
	ps := benchParticipants()
	ctx := context.Background()
	b.Run("coordinator", func(b *testing.B) {
		log, _ := journal.NewMemory()
		c, err := twophase.NewCoordinator(log, noopOptions()...)
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close(ctx)
		var n int64
		b.ReportAllocs()
		for b.Loop() {
			n++
			id := benchID(n)
			if _, err := c.Execute(ctx, id, ps...); err != nil {
				b.Fatal(err)
			}
			_ = log.Forget(ctx, id)
		}
	})
	b.Run("direct", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			for _, p := range ps {
				_ = p.Prepare(ctx, "tx")
			}
			for _, p := range ps {
				_ = p.Commit(ctx, "tx")
			}
		}
	})
}

// BenchmarkConcurrentFile runs 64 concurrent transactions on the file
// journal and reports the fdatasyncs per transaction: without group
// commit, each would force Begin and the commit decision, 2.
func BenchmarkConcurrentFile(b *testing.B) {
	rd := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(rd))
	log, err := journal.Open(b.TempDir(), journal.WithMeterProvider(mp))
	if err != nil {
		b.Fatal(err)
	}
	defer log.Close()
	c, err := twophase.NewCoordinator(log)
	if err != nil {
		b.Fatal(err)
	}
	ps := benchParticipants()
	var next atomic.Int64
	b.SetParallelism(32) // 64 goroutines on 2 Ps
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := c.Execute(context.Background(), benchID(next.Add(1)), ps...); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.StopTimer()
	if err := c.Close(context.Background()); err != nil { // the last Ends
		b.Fatal(err)
	}
	var rm metricdata.ResourceMetrics
	if err := rd.Collect(context.Background(), &rm); err != nil {
		b.Fatal(err)
	}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name == "otelpatterns.journal.syncs" {
				syncs := m.Data.(metricdata.Sum[int64]).DataPoints[0].Value
				b.ReportMetric(float64(syncs)/float64(next.Load()), "syncs/tx")
			}
		}
	}
}
