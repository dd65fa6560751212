package journal

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/otelpatterns/otelpatterns/internal/telemetry/telemetrytest"
)

func TestGroupCommitSharesSyncs(t *testing.T) {
	fs := newMemFS()
	fs.delay = 2 * time.Millisecond // a slow disk, so that appenders queue up
	r := telemetrytest.NewRecorders(t)
	l, err := Open("j", withFS(fs), WithSegmentSize(64<<10), WithMeterProvider(r.MeterProvider))
	if err != nil {
		t.Fatal(err)
	}
	const appenders, each = 32, 10
	var wg sync.WaitGroup
	for i := range appenders {
		wg.Go(func() {
			for seq := range uint64(each) {
				if err := l.Append(context.Background(), fmt.Sprint(i), seq, Record{Kind: "k"}); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	m := r.Metrics(t)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	syncs := m[metricSyncs].Data.(metricdata.Sum[int64]).DataPoints[0].Value
	records := m[metricSyncRecords].Data.(metricdata.Histogram[int64]).DataPoints[0]
	if records.Sum != appenders*each || records.Count != uint64(syncs) {
		t.Fatalf("the metrics count %d records in %d syncs, and %d syncs; want %d records", records.Sum, records.Count, syncs, appenders*each)
	}
	if syncs > appenders*each/4 {
		t.Fatalf("%d appends took %d syncs: group commit is not grouping", appenders*each, syncs)
	}
}

func TestWithoutGroupCommitEveryAppendSyncs(t *testing.T) {
	fs := newMemFS()
	l, err := Open("j", withFS(fs), WithSegmentSize(64<<10), WithMaxGroup(1))
	if err != nil {
		t.Fatal(err)
	}
	before := fs.syncs
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			if err := l.Append(context.Background(), fmt.Sprint(i), 0, Record{Kind: "k"}); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	l.Close()
	if got := fs.syncs - before; got != 8 {
		t.Fatalf("8 appends with WithMaxGroup(1) took %d syncs, want 8", got)
	}
}

func TestFailedSyncFailsTheLogForGood(t *testing.T) {
	fs := newMemFS()
	l, err := Open("j", withFS(fs), WithSegmentSize(64<<10))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	ctx := context.Background()
	if err := l.Append(ctx, "a", 0, Record{Kind: "k"}); err != nil {
		t.Fatal(err)
	}
	eio := errors.New("EIO")
	fs.failSync = eio
	err = l.Append(ctx, "b", 0, Record{Kind: "k"})
	if !errors.Is(err, ErrFailed) || !errors.Is(err, eio) {
		t.Fatalf("Append whose fdatasync failed = %v, want ErrFailed wrapping the cause", err)
	}
	syncs := fs.syncs
	// The disk works again, but the log does not retry.
	for _, err := range []error{
		l.Append(ctx, "c", 0, Record{Kind: "k"}),
		l.Forget(ctx, "a"),
		l.Compact(ctx),
		func() error { _, err := l.Load(ctx, "a"); return err }(),
		func() error { _, err := l.Pending(ctx); return err }(),
	} {
		if !errors.Is(err, ErrFailed) {
			t.Fatalf("a call after a failed sync = %v, want ErrFailed", err)
		}
	}
	if fs.syncs != syncs {
		t.Fatal("the log synced again after a failed fdatasync")
	}
	// Reopening reads what is really on disk: a; b, whose sync failed,
	// perhaps; and not c, which was refused.
	l.Close()
	l2, err := Open("j", withFS(fs.image(rand.New(rand.NewPCG(1, 2)))), WithSegmentSize(64<<10))
	if err != nil {
		t.Fatal(err)
	}
	defer l2.Close()
	if p, _ := l2.Pending(ctx); len(p) == 0 || p[0] != "a" || slices.Contains(p, "c") {
		t.Fatalf("after reopening, Pending = %q, want a, perhaps b, and not c", p)
	}
}

func TestTelemetryReference(t *testing.T) {
	r := telemetrytest.NewRecorders(t)
	fs := newMemFS()
	opts := []Option{withFS(fs), WithSegmentSize(64 << 10), WithTracerProvider(r.TracerProvider), WithMeterProvider(r.MeterProvider)}
	ctx := context.Background()
	// Opening a log with nothing to recover is not traced; reopening one
	// with a pending transaction is.
	l, err := Open("j", opts...)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Append(ctx, "p", 0, Record{Kind: "k"}); err != nil {
		t.Fatal(err)
	}
	l.Close()
	if opened := r.Ended(spanOpen); len(opened) != 0 {
		t.Fatalf("%d journal.open spans for a new log, want none", len(opened))
	}
	if l, err = Open("j", opts...); err != nil {
		t.Fatal(err)
	}
	if err := l.Append(ctx, "a", 0, Record{Kind: "k", End: true}); err != nil {
		t.Fatal(err)
	}
	if err := l.Append(ctx, "a", 0, Record{Kind: "k"}); err == nil { // a failed append
		t.Fatal("an append to an ended transaction succeeded")
	}
	if err := l.Compact(ctx); err != nil {
		t.Fatal(err)
	}
	m, err := NewMemory(WithMeterProvider(r.MeterProvider))
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Append(ctx, "b", 0, Record{Kind: "k"}); err != nil {
		t.Fatal(err)
	}
	fs.failSync = errors.New("EIO")
	_ = l.Compact(ctx) // a failed compaction
	emitted := telemetrytest.Collect(t, r.Spans, r.Reader)
	l.Close()
	m.Close()
	telemetrytest.Check(t, "journal", emitted)

	opened := r.Ended(spanOpen)
	if len(opened) != 1 || opened[0].Parent().IsValid() {
		t.Fatalf("%d journal.open spans; want 1, a root", len(opened))
	}
	if compacted := r.Ended(spanCompact); len(compacted) != 2 {
		t.Fatalf("%d journal.compact spans, want 2", len(compacted))
	}
}
