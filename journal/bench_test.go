package journal

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sync/atomic"
	"testing"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
)

// benchRecord is what a saga step's record looks like: a small payload and
// a trace context.
func benchRecord() Record {
	return Record{Epoch: 1, Kind: "saga.step.started", Step: "reserve-stock", Attempt: 1,
		Payload: make([]byte, 128),
		Carrier: map[string]string{"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}}
}

// batchBytes is the size of the batch one Append of benchRecord writes.
func batchBytes() int {
	r := benchRecord()
	r.TxID, r.Seq = "tx-000000", 1
	return len(encodeBatch(1, []Record{r}))
}

// BenchmarkBaseline is what one durable append cannot beat: one write and
// one fdatasync of the same bytes into a preallocated file.
func BenchmarkBaseline(b *testing.B) {
	f, err := os.Create(filepath.Join(b.TempDir(), "baseline"))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	const size = 64 << 20
	if err := allocate(f, size); err != nil {
		b.Fatal(err)
	}
	buf := make([]byte, batchBytes())
	off := int64(0)
	b.ReportAllocs()
	for b.Loop() {
		if off+int64(len(buf)) > size {
			off = 0
		}
		if _, err := f.WriteAt(buf, off); err != nil {
			b.Fatal(err)
		}
		if err := datasync(f); err != nil {
			b.Fatal(err)
		}
		off += int64(len(buf))
	}
}

// BenchmarkFileAppend appends from 1 and from 64 goroutines, with group
// commit and without, and reports the fdatasyncs per append.
func BenchmarkFileAppend(b *testing.B) {
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
			rd := sdkmetric.NewManualReader()
			mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(rd))
			l, err := Open(b.TempDir(), WithMaxGroup(c.maxGroup), WithMeterProvider(mp))
			if err != nil {
				b.Fatal(err)
			}
			defer l.Close()
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
			var rm metricdata.ResourceMetrics
			if err := rd.Collect(context.Background(), &rm); err != nil {
				b.Fatal(err)
			}
			for _, sm := range rm.ScopeMetrics {
				for _, m := range sm.Metrics {
					if m.Name == metricSyncs {
						syncs := m.Data.(metricdata.Sum[int64]).DataPoints[0].Value
						b.ReportMetric(float64(syncs)/float64(next.Load()), "syncs/append")
					}
				}
			}
		})
	}
}

// BenchmarkMemoryAppend is the cost of the log itself, without a disk.
func BenchmarkMemoryAppend(b *testing.B) {
	m, err := NewMemory()
	if err != nil {
		b.Fatal(err)
	}
	defer m.Close()
	rec := benchRecord()
	n := 0
	b.ReportAllocs()
	for b.Loop() {
		n++
		if err := m.Append(context.Background(), "tx", uint64(n-1), rec); err != nil {
			b.Fatal(err)
		}
	}
}
