package functional_test

import (
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/otelpatterns/otelpatterns/functional"
	"github.com/otelpatterns/otelpatterns/internal/telemetry/telemetrytest"
)

type recorders struct {
	telemetrytest.Recorders
	opts []functional.Option
}

func newRecorders(t *testing.T) recorders {
	r := telemetrytest.NewRecorders(t)
	return recorders{r, []functional.Option{functional.WithTracerProvider(r.TracerProvider), functional.WithMeterProvider(r.MeterProvider)}}
}

var attrsOf = telemetrytest.Attrs

func TestParallelSpan(t *testing.T) {
	r := newRecorders(t)
	opts := append(r.opts, functional.WithWorkers(3))
	_, err := functional.ParallelMap(bg, []int{1, 2, 3, 4, 5}, func(_ context.Context, x int) (int, error) { return x, nil }, opts...)
	require.NoError(t, err)
	_, err = functional.ParallelMap(bg, []int{1, 2}, func(context.Context, int) (int, error) { return 0, errors.New("bad") }, opts...)
	require.Error(t, err)

	spans := r.Spans.Ended()
	require.Len(t, spans, 2, "one span per call, a root one when ctx has none")
	ok := attrsOf(spans[0].Attributes())
	assert.Equal(t, "functional.parallel_map", spans[0].Name())
	assert.EqualValues(t, 5, ok["otelpatterns.functional.items"].AsInt64())
	assert.EqualValues(t, 3, ok["otelpatterns.functional.concurrency"].AsInt64())
	assert.Equal(t, "success", ok["otelpatterns.outcome"].AsString())

	failed := attrsOf(spans[1].Attributes())
	assert.EqualValues(t, 2, failed["otelpatterns.functional.concurrency"].AsInt64(), "never more goroutines than items")
	assert.Equal(t, "error", failed["otelpatterns.outcome"].AsString())
	assert.Equal(t, "Error", spans[1].Status().Code.String())
	assert.Equal(t, "*errors.errorString", failed["error.type"].AsString())
}

func TestSequentialSpanIsOptIn(t *testing.T) {
	r := newRecorders(t)
	_, err := functional.Map(bg, []int{1, 2}, func(x int) int { return x }, r.opts...)
	require.NoError(t, err)
	assert.Empty(t, r.Spans.Ended(), "no span without WithSpan")

	_, err = functional.Map(bg, []int{1, 2}, func(x int) int { return x }, append(r.opts, functional.WithSpan())...)
	require.NoError(t, err)
	_, err = functional.Reduce(bg, []int{1, 2}, 0, func(a, x int) int { return a + x }, append(r.opts, functional.WithSpan())...)
	require.NoError(t, err)
	names := []string{}
	for _, s := range r.Spans.Ended() {
		names = append(names, s.Name())
	}
	assert.Equal(t, []string{"functional.map", "functional.reduce"}, names)
}

func TestDurationMetric(t *testing.T) {
	r := newRecorders(t)
	_ = functional.ParallelForEach(bg, []int{1, 2}, func(context.Context, int) error { return nil }, r.opts...)
	_ = functional.ParallelForEach(bg, []int{1}, func(context.Context, int) error { return context.Canceled }, r.opts...)
	var rm metricdata.ResourceMetrics
	require.NoError(t, r.Reader.Collect(context.Background(), &rm))
	m := rm.ScopeMetrics[0].Metrics[0]
	assert.Equal(t, "otelpatterns.functional.duration", m.Name)
	assert.Equal(t, "s", m.Unit)
	got := map[string]uint64{}
	for _, dp := range m.Data.(metricdata.Histogram[float64]).DataPoints {
		op, _ := dp.Attributes.Value("otelpatterns.functional.operation")
		outcome, _ := dp.Attributes.Value("otelpatterns.outcome")
		et, _ := dp.Attributes.Value("error.type")
		got[op.AsString()+"/"+outcome.AsString()+"/"+et.AsString()] += dp.Count
	}
	assert.Equal(t, map[string]uint64{
		"parallel_for_each/success/":                  1,
		"parallel_for_each/canceled/context.Canceled": 1,
	}, got)
}

func TestTelemetryReference(t *testing.T) {
	r := newRecorders(t)
	fn := func(_ context.Context, x int) (int, error) {
		if x < 0 {
			return 0, errors.New("negative")
		}
		return x, nil
	}
	_, _ = functional.ParallelMap(bg, []int{1, -1}, fn, r.opts...)
	_, _ = functional.ParallelFilter(bg, []int{1}, func(context.Context, int) (bool, error) { return true, nil }, r.opts...)
	_ = functional.ParallelForEach(bg, []int{1}, func(context.Context, int) error { return nil }, r.opts...)
	withSpan := append(r.opts, functional.WithSpan())
	_, _ = functional.Map(bg, []int{1}, func(x int) int { return x }, withSpan...)
	_, _ = functional.Filter(bg, []int{1}, func(int) bool { return true }, withSpan...)
	_, _ = functional.Reduce(bg, []int{1}, 0, func(a, x int) int { return a + x }, withSpan...)
	emitted := telemetrytest.Collect(t, r.Spans, r.Reader)
	telemetrytest.Check(t, "functional", emitted)
}

func TestMapAllocatesOnlyItsResult(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector changes allocation counts")
	}
	items := make([]int, 1000)
	double := func(x int) int { return 2 * x }
	if n := testing.AllocsPerRun(100, func() { _, _ = functional.Map(bg, items, double) }); n != 1 {
		t.Errorf("Map: %v allocations, want 1 (the result)", n)
	}
	if n := testing.AllocsPerRun(100, func() { _, _ = functional.Reduce(bg, items, 0, func(a, x int) int { return a + x }) }); n != 0 {
		t.Errorf("Reduce: %v allocations, want 0", n)
	}
}
