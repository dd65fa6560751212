package pgjournal

import (
	"context"
	"fmt"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/otelpatterns/otelpatterns/internal/telemetry/telemetrytest"
	"github.com/otelpatterns/otelpatterns/journal"
	"github.com/otelpatterns/otelpatterns/saga"
)

// benchRecord is what a saga step's record looks like: a small payload and
// a trace context (as the file log's benchmark).
func benchRecord() journal.Record {
	return journal.Record{Epoch: 1, Kind: "saga.step.started", Step: "reserve-stock", Attempt: 1,
		Payload: make([]byte, 128),
		Carrier: map[string]string{"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}}
}

// BenchmarkBaseline is what one durable append cannot beat: one INSERT of
// the same record into a table of the same shape, committed on its own
// (autocommit, one round trip), on one connection.
func BenchmarkBaseline(b *testing.B) {
	pool := newPool(b)
	prefix := newTables(b, pool)
	s := newStatements(prefix)
	ctx := context.Background()
	conn, err := pool.Acquire(ctx)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Release()
	r := benchRecord()
	carrier := `{"traceparent": "` + r.Carrier["traceparent"] + `"}`
	insert := "INSERT INTO " + s.records + " (tx_id, seq, epoch, kind, step, attempt, is_end, payload, carrier) VALUES ($1, 1, 1, $2, $3, 1, false, $4, $5::jsonb)"
	n := 0
	b.ReportAllocs()
	for b.Loop() {
		n++
		if _, err := conn.Exec(ctx, insert, fmt.Sprintf("tx-%06d", n), r.Kind, r.Step, r.Payload, carrier); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAppend appends one record to a new transaction from 1 and from
// 64 goroutines, with group commit and without, and reports the COMMITs
// per append.
func BenchmarkAppend(b *testing.B) {
	for _, c := range []struct {
		name      string
		appenders int
		maxGroup  int
	}{
		{"appenders=1", 1, DefaultMaxGroup},
		{"appenders=64", 64, DefaultMaxGroup},
		{"appenders=64/no-group-commit", 64, 1},
	} {
		b.Run(c.name, func(b *testing.B) {
			pool := newPool(b)
			r := telemetrytest.NewRecorders(b)
			l := mustOpen(b, pool, newTables(b, pool), WithMaxGroup(c.maxGroup), WithMeterProvider(r.MeterProvider))
			var next atomic.Int64
			rec := benchRecord()
			b.ReportAllocs()
			b.SetParallelism(max(1, c.appenders/runtime.GOMAXPROCS(0))) // RunParallel runs this many per P
			if c.appenders == 1 {
				for b.Loop() {
					tx := fmt.Sprintf("tx-%06d", next.Add(1))
					if err := l.Append(context.Background(), tx, 0, rec); err != nil {
						b.Fatal(err)
					}
				}
			} else {
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						tx := fmt.Sprintf("tx-%06d", next.Add(1))
						if err := l.Append(context.Background(), tx, 0, rec); err != nil {
							b.Error(err)
							return
						}
					}
				})
			}
			b.StopTimer()
			b.ReportMetric(float64(commits(b, r))/float64(next.Load()), "commits/append")
		})
	}
}

// BenchmarkConcurrentSagas runs 64 sagas of 5 steps that do nothing at
// once on this log, as saga's BenchmarkConcurrentSagasFile does on the
// file log, with leases and without, and reports the time per saga and
// per step and the COMMITs per step.
func BenchmarkConcurrentSagas(b *testing.B) {
	const steps = 5
	for _, leased := range []bool{false, true} {
		b.Run(fmt.Sprintf("leases=%v", leased), func(b *testing.B) {
			pool := newPool(b)
			r := telemetrytest.NewRecorders(b)
			l := mustOpen(b, pool, newTables(b, pool), WithMeterProvider(r.MeterProvider))
			var opts []saga.Option
			if leased {
				opts = append(opts, saga.WithLeases("bench", 10*time.Second))
			}
			runner, err := saga.NewRunner(l, opts...)
			if err != nil {
				b.Fatal(err)
			}
			defer runner.Close(context.Background())
			var ss []saga.Step[struct{}]
			for i := range steps {
				ss = append(ss, saga.Step[struct{}]{Name: fmt.Sprint("step-", i),
					Action: func(_ context.Context, s struct{}) (struct{}, error) { return s, nil }})
			}
			def, err := saga.New("bench", 1, ss)
			if err != nil {
				b.Fatal(err)
			}
			s, err := saga.Register(runner, def)
			if err != nil {
				b.Fatal(err)
			}
			var next atomic.Int64
			b.SetParallelism(64 / runtime.GOMAXPROCS(0))
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, _, err := s.Run(context.Background(), fmt.Sprintf("s-%d", next.Add(1)), struct{}{}); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.StopTimer()
			n := float64(next.Load())
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/n, "ns/saga")
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/(n*steps), "ns/step")
			b.ReportMetric(float64(commits(b, r))/(n*steps), "commits/step")
		})
	}
}
