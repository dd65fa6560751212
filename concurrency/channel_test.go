package concurrency_test

import (
	"context"
	"errors"
	"math"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/baggage"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	tracenoop "go.opentelemetry.io/otel/trace/noop"
	"go.uber.org/goleak"

	"github.com/otelpatterns/otelpatterns/concurrency"
	"github.com/otelpatterns/otelpatterns/internal/telemetry/telemetrytest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var bg = context.Background()

func mustChannel[T any](t *testing.T, capacity int, opts ...concurrency.Option) *concurrency.TracedChannel[T] {
	t.Helper()
	c, err := concurrency.NewChannel[T](capacity, opts...)
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func TestSendReceiveInOrder(t *testing.T) {
	c := mustChannel[int](t, 3)
	assert.Equal(t, 3, c.Cap())
	for i := range 3 {
		require.NoError(t, c.Send(bg, i))
	}
	assert.Equal(t, 3, c.Len())
	assert.ErrorIs(t, c.TrySend(bg, 9), concurrency.ErrFull)
	for i := range 3 {
		v, _, err := c.Receive(bg)
		require.NoError(t, err)
		assert.Equal(t, i, v)
	}
}

func TestUnbufferedHandOff(t *testing.T) {
	c := mustChannel[string](t, 0)
	done := make(chan error)
	go func() { done <- c.Send(bg, "hello") }()
	v, _, err := c.Receive(bg)
	require.NoError(t, err)
	assert.Equal(t, "hello", v)
	require.NoError(t, <-done)
}

func TestClose(t *testing.T) {
	c := mustChannel[int](t, 2)
	require.NoError(t, c.Send(bg, 1))
	require.NoError(t, c.Close())
	require.NoError(t, c.Close(), "idempotent")
	assert.ErrorIs(t, c.Send(bg, 2), concurrency.ErrClosed)
	assert.ErrorIs(t, c.TrySend(bg, 2), concurrency.ErrClosed)
	v, _, err := c.Receive(bg)
	require.NoError(t, err, "values sent before Close are still received")
	assert.Equal(t, 1, v)
	_, _, err = c.Receive(bg)
	assert.ErrorIs(t, err, concurrency.ErrClosed)
}

func TestBlockedSendHonoursContextAndClose(t *testing.T) {
	c := mustChannel[int](t, 1)
	require.NoError(t, c.Send(bg, 1))
	ctx, cancel := context.WithTimeout(bg, 20*time.Millisecond)
	defer cancel()
	assert.ErrorIs(t, c.Send(ctx, 2), context.DeadlineExceeded)

	done := make(chan error)
	go func() { done <- c.Send(bg, 3) }()
	time.Sleep(10 * time.Millisecond)
	require.NoError(t, c.Close())
	select {
	case err := <-done:
		assert.ErrorIs(t, err, concurrency.ErrClosed, "a sender waiting for room is woken by Close")
	case <-time.After(5 * time.Second):
		t.Fatal("Send did not return after Close")
	}

	rctx, rcancel := context.WithCancel(bg)
	rcancel()
	empty := mustChannel[int](t, 1)
	_, _, err := empty.Receive(rctx)
	assert.ErrorIs(t, err, context.Canceled)
}

func TestConsumeAndAll(t *testing.T) {
	c := mustChannel[int](t, 10)
	for i := range 5 {
		require.NoError(t, c.Send(bg, i))
	}
	require.NoError(t, c.Close())
	var got []int
	require.NoError(t, c.Consume(bg, func(_ context.Context, v int) error { got = append(got, v); return nil }))
	assert.Equal(t, []int{0, 1, 2, 3, 4}, got)

	c2 := mustChannel[int](t, 10)
	for i := range 5 {
		require.NoError(t, c2.Send(bg, i))
	}
	boom := errors.New("boom")
	n := 0
	err := c2.Consume(bg, func(_ context.Context, v int) error {
		n++
		if v == 2 {
			return boom
		}
		return nil
	})
	assert.Equal(t, boom, err)
	assert.Equal(t, 3, n, "nothing is received after fn fails")
	require.NoError(t, c2.Close())
	assert.Equal(t, []int{3, 4}, slices.Collect(c2.All(bg)))
}

func TestManySendersAndReceivers(t *testing.T) {
	c := mustChannel[int](t, 4)
	var wg sync.WaitGroup
	for s := range 4 {
		wg.Go(func() {
			for i := range 250 {
				require.NoError(t, c.Send(bg, s*1000+i))
			}
		})
	}
	var mu sync.Mutex
	seen := map[int]bool{}
	var rg sync.WaitGroup
	for range 3 {
		rg.Go(func() {
			for v := range c.All(bg) {
				mu.Lock()
				seen[v] = true
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	require.NoError(t, c.Close())
	rg.Wait()
	assert.Len(t, seen, 1000, "every value is received exactly once")
}

func TestBadInput(t *testing.T) {
	_, err := concurrency.NewChannel[int](-1)
	assert.ErrorContains(t, err, "NewChannel(-1)")
	_, err = concurrency.NewChannel[int](math.MaxInt) // too large to make: an error, not a makechan panic
	assert.ErrorContains(t, err, "capacity")
	_, err = concurrency.NewChannel[int](1, concurrency.WithName(""))
	assert.ErrorContains(t, err, `WithName("")`)
	c := mustChannel[int](t, 1)
	//lint:ignore SA1012 passing nil is the point of the test
	assert.ErrorContains(t, c.Send(nil, 1), "nil context") //nolint:staticcheck
	assert.ErrorContains(t, c.Consume(bg, nil), "must not be nil")
}

func TestTraceContextCrossesTheChannel(t *testing.T) {
	r := telemetrytest.NewRecorders(t)
	c := mustChannel[string](t, 1, concurrency.WithName("orders"),
		concurrency.WithTracerProvider(r.TracerProvider), concurrency.WithMeterProvider(r.MeterProvider))

	member, err := baggage.NewMember("tenant", "acme")
	require.NoError(t, err)
	bag, err := baggage.New(member)
	require.NoError(t, err)
	pctx, request := r.TracerProvider.Tracer("test").Start(baggage.ContextWithBaggage(bg, bag), "request")
	require.NoError(t, c.Send(pctx, "order-1"))
	request.End()
	require.NoError(t, c.Close())

	var tenant string
	require.NoError(t, c.Consume(bg, func(ctx context.Context, _ string) error {
		tenant = baggage.FromContext(ctx).Member("tenant").Value()
		return nil
	}))
	assert.Equal(t, "acme", tenant, "baggage travels with the value")

	send := r.Ended("send orders")
	process := r.Ended("process orders")
	require.Len(t, send, 1)
	require.Len(t, process, 1)
	assert.Equal(t, trace.SpanKindProducer, send[0].SpanKind())
	assert.Equal(t, request.SpanContext().SpanID(), send[0].Parent().SpanID())
	assert.Equal(t, trace.SpanKindConsumer, process[0].SpanKind())
	assert.False(t, process[0].Parent().IsValid(), "linked, not parented, by default")
	require.Len(t, process[0].Links(), 1)
	assert.Equal(t, send[0].SpanContext(), process[0].Links()[0].SpanContext)
	attrs := telemetrytest.Attrs(process[0].Attributes())
	assert.Equal(t, "orders", attrs["messaging.destination.name"].AsString())
	assert.Equal(t, "process", attrs["messaging.operation.type"].AsString())
}

// A Consume function that panics ends its process span, with the panic
// recorded, before the panic reaches Consume's caller.
func TestConsumePanicEndsItsSpan(t *testing.T) {
	r := telemetrytest.NewRecorders(t)
	c := mustChannel[string](t, 1, concurrency.WithName("orders"),
		concurrency.WithTracerProvider(r.TracerProvider), concurrency.WithMeterProvider(r.MeterProvider))
	pctx, request := r.TracerProvider.Tracer("test").Start(bg, "request")
	require.NoError(t, c.Send(pctx, "order-1"))
	request.End()
	assert.PanicsWithValue(t, "consumer broke", func() {
		_ = c.Consume(bg, func(context.Context, string) error { panic("consumer broke") })
	})
	process := r.Ended("process orders")
	require.Len(t, process, 1, "the process span ended")
	assert.Equal(t, "panic", telemetrytest.Attrs(process[0].Attributes())["error.type"].AsString())
}

func TestParentedConsumer(t *testing.T) {
	r := telemetrytest.NewRecorders(t)
	c := mustChannel[int](t, 1, concurrency.WithParentedConsumer(), concurrency.WithTracerProvider(r.TracerProvider))
	pctx, request := r.TracerProvider.Tracer("test").Start(bg, "request")
	require.NoError(t, c.Send(pctx, 1))
	request.End()
	require.NoError(t, c.Close())
	require.EqualError(t, c.Consume(bg, func(context.Context, int) error { return errors.New("bad") }), "bad")
	send, process := r.Ended("send channel")[0], r.Ended("process channel")[0]
	assert.Equal(t, send.SpanContext().SpanID(), process.Parent().SpanID())
	assert.Equal(t, send.SpanContext().TraceID(), process.SpanContext().TraceID())
	assert.Equal(t, "Error", process.Status().Code.String(), "fn's error is recorded on the process span")
}

func TestNoSpansWithoutARecordingParent(t *testing.T) {
	r := telemetrytest.NewRecorders(t)
	c := mustChannel[int](t, 4, concurrency.WithTracerProvider(r.TracerProvider))
	require.NoError(t, c.Send(bg, 1))
	never := sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.NeverSample()))
	uctx, unsampled := never.Tracer("t").Start(bg, "unsampled")
	require.NoError(t, c.Send(uctx, 2))
	unsampled.End()
	_, _, err := c.Receive(bg)
	require.NoError(t, err)
	require.NoError(t, c.Close())
	require.NoError(t, c.Consume(bg, func(context.Context, int) error { return nil }))
	assert.Empty(t, r.Spans.Started(), "no recording parent, no sampled sender: no spans")

	r2 := telemetrytest.NewRecorders(t)
	c2 := mustChannel[int](t, 1, concurrency.WithRootSpans(), concurrency.WithTracerProvider(r2.TracerProvider))
	require.NoError(t, c2.Send(bg, 1))
	require.NoError(t, c2.Close())
	require.NoError(t, c2.Consume(bg, func(context.Context, int) error { return nil }))
	assert.Len(t, r2.Ended("send channel"), 1)
	assert.Len(t, r2.Ended("process channel"), 1)
}

// sendBlocked sends v to a full c, and makes room only once the send is
// waiting for it, 5 ms later on the bubble's clock. Call it in a
// synctest bubble, with c made in it.
func sendBlocked(t *testing.T, ctx context.Context, c *concurrency.TracedChannel[int], v int) {
	t.Helper()
	sent := make(chan error, 1)
	go func() { sent <- c.Send(ctx, v) }()
	synctest.Wait() // the send waits for room
	time.Sleep(5 * time.Millisecond)
	_, _, _ = c.Receive(bg)
	require.NoError(t, <-sent)
}

func TestMetrics(t *testing.T) { synctest.Test(t, testMetrics) }

func testMetrics(t *testing.T) {
	r := telemetrytest.NewRecorders(t)
	c, err := concurrency.NewChannel[int](1, concurrency.WithName("jobs"),
		concurrency.WithTracerProvider(r.TracerProvider), concurrency.WithMeterProvider(r.MeterProvider))
	require.NoError(t, err)
	require.NoError(t, c.Send(bg, 1))
	sendBlocked(t, bg, c, 2)

	m := r.Metrics(t)
	sum := func(name string) int64 {
		var n int64
		for _, dp := range m[name].Data.(metricdata.Sum[int64]).DataPoints {
			v, _ := dp.Attributes.Value("otelpatterns.channel.name")
			assert.Equal(t, "jobs", v.AsString())
			n += dp.Value
		}
		return n
	}
	assert.EqualValues(t, 2, sum("otelpatterns.channel.sent"))
	assert.EqualValues(t, 1, sum("otelpatterns.channel.received"))
	assert.EqualValues(t, 1, sum("otelpatterns.channel.length"))
	blocked := m["otelpatterns.channel.send.blocked"].Data.(metricdata.Histogram[float64]).DataPoints
	require.Len(t, blocked, 1)
	assert.EqualValues(t, 1, blocked[0].Count, "only the send that waited")
	assert.GreaterOrEqual(t, blocked[0].Sum, 0.001)

	require.NoError(t, c.Close())
	if got, ok := r.Metrics(t)["otelpatterns.channel.length"]; ok {
		assert.Empty(t, got.Data.(metricdata.Sum[int64]).DataPoints, "not observed after Close")
	}
}

func TestTelemetryReference(t *testing.T) { synctest.Test(t, testTelemetryReference) }

func testTelemetryReference(t *testing.T) {
	r := telemetrytest.NewRecorders(t)
	c := mustChannel[int](t, 1, concurrency.WithTracerProvider(r.TracerProvider), concurrency.WithMeterProvider(r.MeterProvider))
	ctx, request := r.TracerProvider.Tracer("test").Start(bg, "request")
	require.NoError(t, c.Send(ctx, 1))
	sendBlocked(t, ctx, c, 2)
	_ = c.Consume(ctx, func(context.Context, int) error { return errors.New("bad") })

	request.End()
	emitted := telemetrytest.Collect(t, r.Spans, r.Reader)
	delete(emitted[telemetrytest.Span], "request")
	telemetrytest.Check(t, "concurrency", emitted)
}

func TestHopAllocatesNothingWhenUntraced(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector changes allocation counts")
	}
	c := mustChannel[int](t, 1, concurrency.WithTracerProvider(tracenoop.NewTracerProvider()),
		concurrency.WithMeterProvider(metricnoop.NewMeterProvider()))
	if n := testing.AllocsPerRun(1000, func() {
		_ = c.Send(bg, 1)
		_, _, _ = c.Receive(bg)
	}); n != 0 {
		t.Errorf("a Send/Receive pair: %v allocations, want 0", n)
	}
}
