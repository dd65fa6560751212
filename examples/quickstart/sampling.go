package main

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"math/rand/v2"
	"sync"
	"time"

	"go.opentelemetry.io/otel/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/otelpatterns/otelpatterns/sampling"
)

// sampleTraffic shows the sampling package on a tracer provider of its
// own: every recovery is kept, requests are held to 100 root spans a
// second whatever the traffic, and every other span follows its parent.
// The traffic is simulated, on a stepped clock and with seeded trace IDs,
// so the counts are the same on every run; the spans are counted, not
// printed.
func sampleTraffic(w io.Writer, mp metric.MeterProvider) error {
	clock := time.Unix(1_800_000_000, 0)
	adaptive, err := sampling.NewAdaptive(100, sampling.WithClock(func() time.Time { return clock }), sampling.WithMeterProvider(mp))
	if err != nil {
		return err
	}
	defer adaptive.Close()
	tp := sdktrace.NewTracerProvider(
		sdktrace.WithIDGenerator(&seededIDs{rng: rand.New(rand.NewPCG(1, 2))}),
		sdktrace.WithSampler(sampling.Composite(sampling.RuleBased(
			sampling.Rule{When: sampling.SpanName("saga.recover"), Then: sampling.AlwaysOn()},
			sampling.Rule{When: sampling.SpanKind(trace.SpanKindServer), Then: adaptive},
			sampling.Rule{When: sampling.Any(), Then: sampling.ParentThreshold(sampling.AlwaysOff())},
		))))
	defer tp.Shutdown(context.Background())
	tracer := tp.Tracer("github.com/otelpatterns/otelpatterns/examples/quickstart")

	for second, rate := range []int{1000, 1000, 1000, 10000, 10000, 10000} {
		kept, whole := 0, true
		for range rate {
			clock = clock.Add(time.Second / time.Duration(rate))
			ctx, req := tracer.Start(context.Background(), "GET /orders", trace.WithSpanKind(trace.SpanKindServer))
			_, load := tracer.Start(ctx, "load order")
			if req.SpanContext().IsSampled() {
				kept++
			}
			whole = whole && load.SpanContext().IsSampled() == req.SpanContext().IsSampled()
			load.End()
			req.End()
		}
		_, recovery := tracer.Start(context.Background(), "saga.recover")
		fmt.Fprintf(w, "second %d: %5d requests, %4d kept (probability now %.4f); children kept with their parents: %t; recovery kept: %t\n",
			second+1, rate, kept, adaptive.Probability("GET /orders"), whole, recovery.SpanContext().IsSampled())
		recovery.End()
	}
	return nil
}

// seededIDs makes trace and span IDs from a seeded source, so that the
// tour's sampling is the same on every run. Real programs keep the SDK's
// random IDs.
type seededIDs struct {
	mu  sync.Mutex
	rng *rand.Rand
}

func (g *seededIDs) NewIDs(context.Context) (trace.TraceID, trace.SpanID) {
	g.mu.Lock()
	defer g.mu.Unlock()
	var tid trace.TraceID
	var sid trace.SpanID
	binary.BigEndian.PutUint64(tid[:8], g.rng.Uint64())
	binary.BigEndian.PutUint64(tid[8:], g.rng.Uint64())
	binary.BigEndian.PutUint64(sid[:], g.rng.Uint64()|1)
	return tid, sid
}

func (g *seededIDs) NewSpanID(context.Context, trace.TraceID) trace.SpanID {
	g.mu.Lock()
	defer g.mu.Unlock()
	var sid trace.SpanID
	binary.BigEndian.PutUint64(sid[:], g.rng.Uint64()|1)
	return sid
}
