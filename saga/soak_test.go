package saga_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/otelpatterns/otelpatterns/journal"
	"github.com/otelpatterns/otelpatterns/saga"
)

// BenchmarkSoakRetention runs b.N five-step sagas, 64 at a time, on the
// file journal with retention on, and logs the resident memory, the live
// heap and the journal's size after every tenth of them: with retention,
// all three stay flat once the first retention period has passed. It is
// long, so it runs only when OTELPATTERNS_SOAK is set:
//
//	OTELPATTERNS_SOAK=1 go test -run '^$' -bench SoakRetention -benchtime 1000000x ./saga
//
// OTELPATTERNS_SOAK_DIR picks the journal's directory (default: a
// temporary one; /dev/shm spares the disk's fsync latency).
func BenchmarkSoakRetention(b *testing.B) {
	if os.Getenv("OTELPATTERNS_SOAK") == "" {
		b.Skip("set OTELPATTERNS_SOAK=1 to run the soak benchmark")
	}
	dir := b.TempDir()
	if base := os.Getenv("OTELPATTERNS_SOAK_DIR"); base != "" {
		d, err := os.MkdirTemp(base, "soak")
		if err != nil {
			b.Fatal(err)
		}
		defer os.RemoveAll(d)
		dir = d
	}
	const (
		retention = time.Second
		horizon   = 2 * time.Second
		workers   = 64
	)
	log, err := journal.Open(dir, journal.WithTombstoneHorizon(horizon))
	if err != nil {
		b.Fatal(err)
	}
	defer log.Close()
	r, s := benchSaga(b, log, 5, saga.WithRetention(retention))
	defer r.Close(context.Background())

	every := max(b.N/10, 1)
	var next, done atomic.Int64
	var sample sync.Mutex
	b.ResetTimer()
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for {
				i := next.Add(1)
				if i > int64(b.N) {
					return
				}
				if _, o, err := s.Run(context.Background(), "soak-"+strconv.FormatInt(i, 10), benchState{}); o != saga.Completed {
					b.Errorf("Run = %v, %v", o, err)
					return
				}
				if n := done.Add(1); n%int64(every) == 0 {
					sample.Lock()
					rss, heap, size := soakSample(b, dir)
					b.Logf("%8d sagas: rss %6.1f MB, live heap %6.1f MB, journal %6.1f MB", n, rss, heap, size)
					sample.Unlock()
				}
			}
		})
	}
	wg.Wait()
	b.StopTimer()
	rss, heap, size := soakSample(b, dir)
	b.ReportMetric(rss, "rss-MB")
	b.ReportMetric(heap, "heap-MB")
	b.ReportMetric(size, "journal-MB")
}

// soakSample returns the process's resident memory, its live heap after a
// collection, and the journal directory's size, in MB.
func soakSample(b *testing.B, dir string) (rss, heap, size float64) {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	heap = float64(ms.HeapAlloc) / 1e6
	if status, err := os.ReadFile("/proc/self/status"); err == nil {
		for line := range strings.Lines(string(status)) {
			if kb, ok := strings.CutPrefix(line, "VmRSS:"); ok {
				var n float64
				fmt.Sscanf(strings.TrimSpace(kb), "%f", &n)
				rss = n / 1e3
			}
		}
	}
	err := filepath.WalkDir(dir, func(_ string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		info, err := d.Info()
		if err == nil {
			size += float64(info.Size()) / 1e6
		}
		return err
	})
	if err != nil {
		b.Fatal(err)
	}
	return rss, heap, size
}
