package pool_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/otelpatterns/otelpatterns/internal/telemetry/telemetrytest"
	"github.com/otelpatterns/otelpatterns/pool"
)

type recorders struct{ telemetrytest.Recorders }

func newRecorders(t *testing.T) recorders { return recorders{telemetrytest.NewRecorders(t)} }

func (r recorders) options(extra ...pool.Option) []pool.Option {
	return append([]pool.Option{pool.WithTracerProvider(r.TracerProvider), pool.WithMeterProvider(r.MeterProvider), pool.WithName("images")}, extra...)
}

func attr(kvs []attribute.KeyValue, key string) (attribute.Value, bool) {
	v, ok := telemetrytest.Attrs(kvs)[key]
	return v, ok
}

func TestTaskSpanIsChildOfSubmitter(t *testing.T) {
	r := newRecorders(t)
	p := mustNew(t, double, r.options(pool.WithWorkers(2))...)
	ctx, parent := r.TracerProvider.Tracer("test").Start(context.Background(), "request")
	f, err := p.Submit(ctx, 1)
	require.NoError(t, err)
	_, err = f.Wait(ctx)
	require.NoError(t, err)
	parent.End()

	tasks := r.Ended("pool.task")
	require.Len(t, tasks, 1)
	s := tasks[0]
	assert.Equal(t, parent.SpanContext().SpanID(), s.Parent().SpanID(), "parented to the Submit ctx, not the worker's")
	assert.Equal(t, parent.SpanContext().TraceID(), s.SpanContext().TraceID())
	assert.Equal(t, trace.SpanKindInternal, s.SpanKind())
	name, _ := attr(s.Attributes(), "otelpatterns.pool.name")
	assert.Equal(t, "images", name.AsString())
	wait, ok := attr(s.Attributes(), "otelpatterns.pool.task.queue_wait")
	require.True(t, ok)
	assert.GreaterOrEqual(t, wait.AsFloat64(), 0.0)
	assert.Equal(t, "Unset", s.Status().Code.String())
}

// Whether a task is traced is decided when it is submitted: a handler that
// calls Go and returns, ending its span, does not take the task's span
// with it.
func TestTaskOfAnEndedSpanIsStillTraced(t *testing.T) {
	r := newRecorders(t)
	release := make(chan struct{})
	p := mustNew(t, double, r.options(pool.WithWorkers(1))...)
	busy := make(chan struct{})
	require.NoError(t, p.Go(context.Background(), func(context.Context) error { <-busy; return nil })) // the one worker is busy
	ctx, handler := r.TracerProvider.Tracer("test").Start(context.Background(), "handler")
	ran := make(chan struct{})
	require.NoError(t, p.Go(ctx, func(context.Context) error { <-release; close(ran); return nil }))
	handler.End() // the handler returns before the task runs
	close(busy)
	close(release)
	<-ran
	require.NoError(t, p.Shutdown(context.Background()))
	var found bool
	for _, s := range r.Ended("pool.task") {
		if s.Parent().SpanID() == handler.SpanContext().SpanID() {
			found = true
		}
	}
	assert.True(t, found, "the task's span, a child of the ended handler span")
}

func TestNoTaskSpanWithoutRecordingParent(t *testing.T) {
	r := newRecorders(t)
	p := mustNew(t, double, r.options()...)
	f, err := p.Submit(context.Background(), 1)
	require.NoError(t, err)
	_, err = f.Wait(context.Background())
	require.NoError(t, err)

	never := sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.NeverSample()))
	ctx, span := never.Tracer("t").Start(context.Background(), "unsampled")
	require.NoError(t, p.Go(ctx, func(context.Context) error { return nil }))
	require.NoError(t, p.Close())
	span.End()
	assert.Empty(t, r.Spans.Started(), "fine-grained spans need a recording parent")

	r2 := newRecorders(t)
	p2 := mustNew(t, double, r2.options(pool.WithRootSpans())...)
	f, err = p2.Submit(context.Background(), 1)
	require.NoError(t, err)
	_, _ = f.Wait(context.Background())
	require.Len(t, r2.Ended("pool.task"), 1, "WithRootSpans traces every task")
	assert.False(t, r2.Ended("pool.task")[0].Parent().IsValid())
}

func TestTaskFailureIsRecorded(t *testing.T) {
	r := newRecorders(t)
	p := mustNew(t, func(context.Context, int) (int, error) { return 0, errors.New("decode failed") }, r.options(pool.WithRootSpans())...)
	f, err := p.Submit(context.Background(), 1)
	require.NoError(t, err)
	_, err = f.Wait(context.Background())
	require.Error(t, err)
	require.NoError(t, p.Close())

	s := r.Ended("pool.task")[0]
	assert.Equal(t, "Error", s.Status().Code.String())
	assert.Equal(t, "decode failed", s.Status().Description)
	et, ok := attr(s.Attributes(), "error.type")
	require.True(t, ok)
	assert.Equal(t, "*errors.errorString", et.AsString())
}

func TestProcessSpans(t *testing.T) {
	r := newRecorders(t)
	p := mustNew(t, double, r.options(pool.WithWorkers(2))...)
	_, err := p.Process(context.Background(), []int{1, 2, 3})
	require.NoError(t, err)
	batches := r.Ended("pool.process")
	require.Len(t, batches, 1, "a batch always has its span, a root one here")
	size, _ := attr(batches[0].Attributes(), "otelpatterns.pool.batch.size")
	assert.EqualValues(t, 3, size.AsInt64())
	assert.Empty(t, r.Ended("pool.task"), "no per-item spans unless asked for")

	_, err = p.Process(context.Background(), []int{1, 2, 3}, pool.WithItemSpans())
	require.NoError(t, err)
	items := r.Ended("pool.task")
	require.Len(t, items, 3)
	batch := r.Ended("pool.process")[1]
	for _, it := range items {
		assert.Equal(t, batch.SpanContext().SpanID(), it.Parent().SpanID())
	}
}

func sumByOutcome(m metricdata.Metrics) map[string]int64 {
	out := map[string]int64{}
	for _, dp := range m.Data.(metricdata.Sum[int64]).DataPoints {
		o, _ := dp.Attributes.Value("otelpatterns.outcome")
		out[o.AsString()] += dp.Value
	}
	return out
}

func TestMetrics(t *testing.T) {
	r := newRecorders(t)
	b := newBlocker()
	p, err := pool.New(func(ctx context.Context, x int) (int, error) {
		switch x {
		case -1:
			return 0, errors.New("bad")
		case -2:
			panic("worse")
		case -3:
			return b.process(ctx, x)
		}
		return x, nil
	}, r.options(pool.WithWorkers(1), pool.WithQueueSize(1))...)
	require.NoError(t, err)
	for _, x := range []int{1, 2, -1, -2} {
		f, err := p.Submit(context.Background(), x)
		require.NoError(t, err)
		_, _ = f.Wait(context.Background())
	}
	_, err = p.Submit(context.Background(), -3) // holds the worker
	require.NoError(t, err)
	<-b.started
	_, err = p.Submit(context.Background(), 3) // waits in the queue
	require.NoError(t, err)
	_, err = p.TrySubmit(context.Background(), 4)
	require.ErrorIs(t, err, pool.ErrQueueFull)

	m := r.Metrics(t)
	for name, want := range map[string]int64{"otelpatterns.pool.queue.length": 1, "otelpatterns.pool.workers.busy": 1} {
		dps := m[name].Data.(metricdata.Sum[int64]).DataPoints
		require.Len(t, dps, 1, name)
		assert.Equal(t, want, dps[0].Value, name)
		assert.Equal(t, "{"+map[string]string{"otelpatterns.pool.queue.length": "task", "otelpatterns.pool.workers.busy": "worker"}[name]+"}", m[name].Unit)
	}
	close(b.release)
	require.NoError(t, p.Close())

	m = r.Metrics(t)
	assert.Equal(t, map[string]int64{"success": 4, "error": 1, "panic": 1, "dropped": 1}, sumByOutcome(m["otelpatterns.pool.tasks"]))

	dur := m["otelpatterns.pool.task.duration"]
	assert.Equal(t, "s", dur.Unit)
	types := map[string]uint64{}
	for _, dp := range dur.Data.(metricdata.Histogram[float64]).DataPoints {
		et, _ := dp.Attributes.Value("error.type")
		types[et.AsString()] += dp.Count
		name, _ := dp.Attributes.Value("otelpatterns.pool.name")
		assert.Equal(t, "images", name.AsString())
	}
	assert.Equal(t, map[string]uint64{"": 4, "*errors.errorString": 1, "panic": 1}, types, "error.type on failures only")

	var waits uint64
	for _, dp := range m["otelpatterns.pool.task.queue_wait"].Data.(metricdata.Histogram[float64]).DataPoints {
		waits += dp.Count
	}
	assert.EqualValues(t, 6, waits)

	for _, name := range []string{"otelpatterns.pool.queue.length", "otelpatterns.pool.workers.busy"} {
		if got, ok := m[name]; ok {
			assert.Empty(t, got.Data.(metricdata.Sum[int64]).DataPoints, "%s is not observed after Close", name)
		}
	}
}

func TestTelemetryReference(t *testing.T) {
	r := newRecorders(t)
	p, err := pool.New(func(ctx context.Context, x int) (int, error) {
		if x < 0 {
			return 0, errors.New("bad")
		}
		time.Sleep(time.Microsecond)
		return x, nil
	}, r.options(pool.WithWorkers(1), pool.WithQueueSize(0))...)
	require.NoError(t, err)
	ctx, parent := r.TracerProvider.Tracer("test").Start(context.Background(), "request")
	f, err := p.Submit(ctx, -1)
	require.NoError(t, err)
	_, _ = f.Wait(ctx)
	_, _ = p.Process(ctx, []int{1, 2})
	_, _ = p.TrySubmit(ctx, 1) // no idle worker may be waiting: dropped or not, both are fine
	emitted := telemetrytest.Collect(t, r.Spans, nil)
	more := telemetrytest.Collect(t, nil, r.Reader)
	require.NoError(t, p.Close())
	parent.End()
	for k, v := range more {
		emitted[k] = v
	}
	delete(emitted[telemetrytest.Span], "request")
	telemetrytest.Check(t, "pool", emitted)
}
