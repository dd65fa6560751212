package pipeline_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/metric"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.uber.org/goleak"

	"github.com/otelpatterns/otelpatterns/concurrency/pipeline"
	"github.com/otelpatterns/otelpatterns/errs"
	"github.com/otelpatterns/otelpatterns/internal/telemetry/telemetrytest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var bg = context.Background()

func stage[In, Out any](t *testing.T, name string, fn func(context.Context, In) (Out, error), opts ...pipeline.StageOption) *pipeline.Stage[In, Out] {
	t.Helper()
	s, err := pipeline.NewStage(name, fn, opts...)
	require.NoError(t, err)
	return s
}

func words(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = strconv.Itoa(i)
	}
	return out
}

func TestTypedPipelineKeepsOrder(t *testing.T) {
	parse := stage(t, "parse", func(_ context.Context, s string) (int, error) { return strconv.Atoi(s) }, pipeline.WithWorkers(3))
	square := stage(t, "square", func(_ context.Context, n int) (int, error) {
		if n%7 == 0 {
			time.Sleep(50 * time.Microsecond) // finish out of order
		}
		return n * n, nil
	}, pipeline.WithWorkers(4), pipeline.WithBuffer(8))
	format := stage(t, "format", func(_ context.Context, n int) (string, error) { return "#" + strconv.Itoa(n), nil })

	parsed := pipeline.Then(pipeline.From(bg, "numbers", slices.Values(words(200))), parse)
	out := pipeline.Then(pipeline.Then(parsed, square), format)
	got := slices.Collect(out.All())
	require.NoError(t, out.Err())
	require.Len(t, got, 200)
	for i, s := range got {
		require.Equal(t, "#"+strconv.Itoa(i*i), s)
	}
}

func TestUnorderedStage(t *testing.T) {
	slow := stage(t, "slow-first", func(_ context.Context, n int) (int, error) {
		if n == 0 {
			time.Sleep(20 * time.Millisecond)
		}
		return n, nil
	}, pipeline.WithWorkers(2), pipeline.Unordered())
	out := pipeline.Then(pipeline.From(bg, "u", slices.Values([]int{0, 1, 2, 3})), slow)
	got := slices.Collect(out.All())
	require.NoError(t, out.Err())
	assert.ElementsMatch(t, []int{0, 1, 2, 3}, got)
	assert.NotEqual(t, 0, got[0], "a slow value does not hold back the ones after it")
}

func TestFirstFailureStopsThePipeline(t *testing.T) {
	boom := errors.New("boom")
	var after atomic.Int64
	fail := stage(t, "fail", func(_ context.Context, n int) (int, error) {
		if n == 5 {
			return 0, boom
		}
		return n, nil
	})
	count := stage(t, "count", func(_ context.Context, n int) (int, error) { after.Add(1); return n, nil })
	endless := func(yield func(int) bool) {
		for i := 0; ; i++ {
			if !yield(i) {
				return
			}
		}
	}
	out := pipeline.Then(pipeline.Then(pipeline.From(bg, "f", endless), fail), count)
	got := slices.Collect(out.All())
	assert.Equal(t, boom, out.Err())
	assert.Less(t, len(got), 10)
	assert.LessOrEqual(t, after.Load(), int64(5), "nothing after the failed value reaches the next stage")
}

// With CollectAll a run goes on past failed values, drops them, and Err
// returns every failure, the panic among them.
func TestCollectAll(t *testing.T) {
	odd := stage(t, "odd-only", func(_ context.Context, n int) (int, error) {
		if n%2 == 0 {
			return 0, fmt.Errorf("even %d", n)
		}
		if n == 7 {
			panic("seven")
		}
		return n, nil
	}, pipeline.WithWorkers(2))
	out := pipeline.Then(pipeline.From(bg, "skip", slices.Values([]int{1, 2, 3, 4, 5, 6, 7, 9}), pipeline.CollectAll()), odd)
	got := slices.Collect(out.All())
	assert.Equal(t, []int{1, 3, 5, 9}, got)
	assert.EqualValues(t, 4, out.Skipped())
	err := out.Err()
	for _, want := range []string{"even 2", "even 4", "even 6", "seven"} {
		assert.ErrorContains(t, err, want)
	}
	var pe *errs.PanicError
	assert.ErrorAs(t, err, &pe)
}

// A CollectAll run over more failures than it keeps holds the first 8
// and counts the rest, so its memory stays bounded on any input.
func TestCollectAllKeepsBoundedErrors(t *testing.T) {
	fail := stage(t, "fail", func(_ context.Context, n int) (int, error) { return 0, fmt.Errorf("value %d", n) })
	in := make([]int, 1000)
	for i := range in {
		in[i] = i
	}
	out := pipeline.Then(pipeline.From(bg, "many", slices.Values(in), pipeline.CollectAll()), fail)
	assert.Empty(t, slices.Collect(out.All()))
	assert.EqualValues(t, 1000, out.Skipped())
	err := out.Err()
	require.Error(t, err)
	assert.Equal(t, 8, strings.Count(err.Error(), "value "), "the failures kept")
	assert.Contains(t, err.Error(), "and 992 more errors")
}

func TestPanicIsAnError(t *testing.T) {
	bad := stage(t, "bad", func(_ context.Context, n int) (int, error) { panic("nope") })
	out := pipeline.Then(pipeline.From(bg, "p", slices.Values([]int{1})), bad)
	_ = slices.Collect(out.All())
	var pe *errs.PanicError
	require.ErrorAs(t, out.Err(), &pe)
	assert.Equal(t, "nope", pe.Value)
}

// A source whose sequence panics fails the run; the process goes on.
func TestPanickingSourceIsAnError(t *testing.T) {
	source := func(yield func(int) bool) {
		yield(1)
		panic("the source broke")
	}
	id := stage(t, "id", func(_ context.Context, n int) (int, error) { return n, nil })
	out := pipeline.Then(pipeline.From(bg, "p", source), id)
	_ = slices.Collect(out.All())
	var pe *errs.PanicError
	require.ErrorAs(t, out.Err(), &pe)
	assert.Equal(t, "the source broke", pe.Value)
}

func TestEarlyBreakAndCancel(t *testing.T) {
	var pulled atomic.Int64
	endless := func(yield func(int) bool) {
		for i := 0; ; i++ {
			pulled.Add(1)
			if !yield(i) {
				return
			}
		}
	}
	id := stage(t, "id", func(_ context.Context, n int) (int, error) { return n, nil }, pipeline.WithWorkers(2))
	out := pipeline.Then(pipeline.From(bg, "b", endless), id)
	n := 0
	for range out.All() {
		if n++; n == 10 {
			break
		}
	}
	assert.NoError(t, out.Err(), "breaking out is not a failure")
	after := pulled.Load()
	time.Sleep(5 * time.Millisecond)
	assert.Equal(t, after, pulled.Load(), "the source stopped; goleak checks the goroutines")

	ctx, cancel := context.WithCancel(bg)
	defer cancel()
	out = pipeline.Then(pipeline.From(ctx, "c", endless), id)
	n = 0
	for range out.All() {
		if n++; n == 10 {
			cancel()
		}
	}
	assert.ErrorIs(t, out.Err(), context.Canceled)
}

func TestFanOutAndMerge(t *testing.T) {
	double := stage(t, "double", func(_ context.Context, n int) (int, error) { return 2 * n, nil })
	triple := stage(t, "triple", func(_ context.Context, n int) (int, error) { return 3 * n, nil })
	src := pipeline.From(bg, "fan", slices.Values(words(100)))
	parse := stage(t, "parse", func(_ context.Context, s string) (int, error) { return strconv.Atoi(s) })
	branches := pipeline.FanOut(pipeline.Then(src, parse), 2)
	merged := pipeline.Merge(pipeline.Then(branches[0], double), pipeline.Then(branches[1], triple))
	got := slices.Collect(merged.All())
	require.NoError(t, merged.Err())
	assert.Len(t, got, 100, "each value goes to exactly one branch")
}

func TestBatch(t *testing.T) {
	out := pipeline.Batch(pipeline.From(bg, "b", slices.Values([]int{1, 2, 3, 4, 5, 6, 7})), 3, 0)
	got := slices.Collect(out.All())
	require.NoError(t, out.Err())
	assert.Equal(t, [][]int{{1, 2, 3}, {4, 5, 6}, {7}}, got)

	// By time: a slow source, a batch flushed after maxWait.
	slow := func(yield func(int) bool) {
		for i := range 3 {
			if !yield(i) {
				return
			}
			time.Sleep(30 * time.Millisecond)
		}
	}
	out = pipeline.Batch(pipeline.From(bg, "t", slow), 100, 10*time.Millisecond)
	got = slices.Collect(out.All())
	require.NoError(t, out.Err())
	assert.Equal(t, [][]int{{0}, {1}, {2}}, got, "each value waited at most maxWait")
}

func TestClassicPipeline(t *testing.T) {
	trim := stage(t, "trim", func(_ context.Context, s string) (string, error) { return s[1:], nil })
	upper := stage(t, "upper", func(_ context.Context, s string) (string, error) { return s + "!", nil })
	p, err := pipeline.NewPipeline("shout", trim, upper)
	require.NoError(t, err)
	out := p.Run(bg, slices.Values([]string{"xa", "xb"}))
	assert.Equal(t, []string{"a!", "b!"}, slices.Collect(out.All()))
	require.NoError(t, out.Err())

	_, err = pipeline.NewPipeline("dup", trim, trim)
	assert.ErrorContains(t, err, `two stages are named "trim"`)
	_, err = pipeline.NewPipeline[string]("none")
	assert.ErrorContains(t, err, "at least one stage")
	_, err = pipeline.NewPipeline[string]("", trim)
	assert.ErrorContains(t, err, `NewPipeline("")`)
}

func TestBadStages(t *testing.T) {
	fn := func(_ context.Context, n int) (int, error) { return n, nil }
	for want, make := range map[string]func() error{
		`NewStage("")`: func() error { _, err := pipeline.NewStage("", fn); return err },
		"nil":          func() error { _, err := pipeline.NewStage[int, int]("s", nil); return err },
		"Workers(0)":   func() error { _, err := pipeline.NewStage("s", fn, pipeline.WithWorkers(0)); return err },
		"Buffer(-1)":   func() error { _, err := pipeline.NewStage("s", fn, pipeline.WithBuffer(-1)); return err },
		"Batch(flow, 0,": func() error {
			f := pipeline.Batch(pipeline.From(bg, "b", slices.Values([]int{1})), 0, 0)
			_ = slices.Collect(f.All())
			return f.Err()
		},
	} {
		assert.ErrorContains(t, make(), want, want)
	}
}

func TestSpansLinkAcrossEveryHop(t *testing.T) {
	r := telemetrytest.NewRecorders(t)
	a := stage(t, "a", func(_ context.Context, n int) (int, error) { return n + 1, nil })
	b := stage(t, "b", func(_ context.Context, n int) (int, error) { return n * 2, nil }, pipeline.WithWorkers(2))
	c := stage(t, "c", func(_ context.Context, n int) (int, error) { return n - 1, nil })
	ctx, request := r.TracerProvider.Tracer("test").Start(bg, "request")
	out := pipeline.Then(pipeline.Then(pipeline.Then(
		pipeline.From(ctx, "hops", slices.Values([]int{1, 2, 3}), pipeline.WithItemSpans(),
			pipeline.WithTracerProvider(r.TracerProvider), pipeline.WithMeterProvider(r.MeterProvider)),
		a), b), c)
	got := slices.Collect(out.All())
	request.End()
	require.NoError(t, out.Err())
	assert.Equal(t, []int{3, 5, 7}, got)

	run := r.Ended("pipeline hops")
	require.Len(t, run, 1)
	assert.Equal(t, request.SpanContext().SpanID(), run[0].Parent().SpanID())
	byID := map[string]sdktrace.ReadOnlySpan{}
	for _, s := range r.Spans.Ended() {
		byID[s.SpanContext().SpanID().String()] = s
	}
	for _, name := range []string{"stage a", "stage b", "stage c"} {
		spans := r.Ended(name)
		require.Len(t, spans, 3, name)
		for _, s := range spans {
			require.Len(t, s.Links(), 1, name)
			prev := byID[s.Links()[0].SpanContext.SpanID().String()]
			require.NotNil(t, prev, "%s links to a span of this run", name)
			want := map[string]string{"stage a": "pipeline hops", "stage b": "stage a", "stage c": "stage b"}[name]
			assert.Equal(t, want, prev.Name(), "%s links to the value's previous hop", name)
		}
	}
}

func TestBatchSpanLinksItsItems(t *testing.T) {
	r := telemetrytest.NewRecorders(t)
	id := stage(t, "id", func(_ context.Context, n int) (int, error) { return n, nil })
	ctx, request := r.TracerProvider.Tracer("test").Start(bg, "request")
	out := pipeline.Batch(pipeline.Then(pipeline.From(ctx, "batches", slices.Values(make([]int, 300)),
		pipeline.WithItemSpans(), pipeline.WithTracerProvider(r.TracerProvider)), id), 200, 0)
	got := slices.Collect(out.All())
	request.End()
	require.NoError(t, out.Err())
	require.Len(t, got, 2)
	batches := r.Ended("batch batches")
	require.Len(t, batches, 2)
	assert.Len(t, batches[0].Links(), 128, "at most 128 links")
	assert.EqualValues(t, 200, telemetrytest.Attrs(batches[0].Attributes())["messaging.batch.message_count"].AsInt64(), "and the true count")
	assert.Len(t, batches[1].Links(), 100)
}

func TestPipelineMetrics(t *testing.T) {
	r := telemetrytest.NewRecorders(t)
	odd := stage(t, "odd", func(_ context.Context, n int) (int, error) {
		if n%2 == 0 {
			return 0, errors.New("even")
		}
		return n, nil
	})
	out := pipeline.Then(pipeline.From(bg, "m", slices.Values([]int{1, 2, 3}), pipeline.CollectAll(),
		pipeline.WithMeterProvider(r.MeterProvider), pipeline.WithTracerProvider(r.TracerProvider)), odd)
	_ = slices.Collect(out.All())
	m := r.Metrics(t)
	sum := func(name string) int64 {
		var n int64
		for _, dp := range m[name].Data.(metricdata.Sum[int64]).DataPoints {
			s, _ := dp.Attributes.Value("otelpatterns.pipeline.stage")
			assert.Equal(t, "odd", s.AsString())
			n += dp.Value
		}
		return n
	}
	assert.EqualValues(t, 3, sum("otelpatterns.pipeline.items.in"))
	assert.EqualValues(t, 2, sum("otelpatterns.pipeline.items.out"))
	assert.EqualValues(t, 1, sum("otelpatterns.pipeline.items.failed"))
	var durations uint64
	for _, dp := range m["otelpatterns.pipeline.item.duration"].Data.(metricdata.Histogram[float64]).DataPoints {
		durations += dp.Count
	}
	assert.EqualValues(t, 3, durations)
	run := r.Ended("pipeline m")
	require.Len(t, run, 1)
	assert.EqualValues(t, 1, telemetrytest.Attrs(run[0].Attributes())["otelpatterns.pipeline.skipped"].AsInt64())
}

// Sizes too large to make are constructor errors, never a makechan panic.
func TestHugeSizesAreErrors(t *testing.T) {
	_, err := pipeline.NewStage("s", func(_ context.Context, n int) (int, error) { return n, nil }, pipeline.WithBuffer(math.MaxInt))
	assert.ErrorContains(t, err, "WithBuffer")
	_, err = pipeline.NewStage("s", func(_ context.Context, n int) (int, error) { return n, nil }, pipeline.WithWorkers(math.MaxInt))
	assert.ErrorContains(t, err, "WithWorkers")
}

// countingMeter counts the instruments built through it.
type countingMeter struct {
	metricnoop.Meter
	built *atomic.Int64
}

func (m countingMeter) Int64Counter(name string, opts ...metric.Int64CounterOption) (metric.Int64Counter, error) {
	m.built.Add(1)
	return m.Meter.Int64Counter(name, opts...)
}

type countingProvider struct {
	metricnoop.MeterProvider
	built *atomic.Int64
}

func (p countingProvider) Meter(string, ...metric.MeterOption) metric.Meter {
	return countingMeter{built: p.built}
}

// Runs on the same providers share their instruments: twenty runs build
// them once.
func TestRunsShareInstruments(t *testing.T) {
	var built atomic.Int64
	mp := countingProvider{built: &built}
	id := stage(t, "id", func(_ context.Context, n int) (int, error) { return n, nil })
	for range 20 {
		out := pipeline.Then(pipeline.From(bg, "p", slices.Values([]int{1, 2}), pipeline.WithMeterProvider(mp)), id)
		_ = slices.Collect(out.All())
		require.NoError(t, out.Err())
	}
	assert.Equal(t, int64(3), built.Load(), "in, out and failed counters, built once")
}

func TestTelemetryReference(t *testing.T) {
	r := telemetrytest.NewRecorders(t)
	ctx, request := r.TracerProvider.Tracer("test").Start(bg, "request")
	odd, err := pipeline.NewStage("odd", func(_ context.Context, n int) (int, error) {
		if n%2 == 0 {
			return 0, errors.New("even")
		}
		return n, nil
	})
	require.NoError(t, err)
	flow := pipeline.Batch(pipeline.Then(pipeline.From(ctx, "numbers", slices.Values([]int{1, 2, 3}),
		pipeline.CollectAll(), pipeline.WithItemSpans(),
		pipeline.WithTracerProvider(r.TracerProvider), pipeline.WithMeterProvider(r.MeterProvider)), odd), 2, 0)
	metrics := telemetrytest.Collect(t, nil, r.Reader) // while the stage's buffer is observed
	_ = slices.Collect(flow.All())
	failing := pipeline.Then(pipeline.From(ctx, "failing", slices.Values([]int{2}),
		pipeline.WithTracerProvider(r.TracerProvider), pipeline.WithMeterProvider(r.MeterProvider)), odd)
	_ = slices.Collect(failing.All())
	request.End()
	emitted := telemetrytest.Collect(t, r.Spans, r.Reader)
	for kind, names := range metrics {
		for n := range names {
			if emitted[kind] == nil {
				emitted[kind] = map[string]bool{}
			}
			emitted[kind][n] = true
		}
	}
	delete(emitted[telemetrytest.Span], "request")
	telemetrytest.Check(t, "concurrency/pipeline", emitted)
}

// From reads ahead of a stage that does not keep up, but only so far:
// backpressure reaches the source.
func TestFromReadsBoundedAhead(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var read atomic.Int64
	source := func(yield func(int) bool) {
		for i := 0; ctx.Err() == nil; i++ {
			read.Add(1)
			if !yield(i) {
				return
			}
		}
	}
	release := make(chan struct{})
	st, err := pipeline.NewStage("stuck", func(ctx context.Context, n int) (int, error) {
		select {
		case <-release:
		case <-ctx.Done():
		}
		return n, nil
	})
	require.NoError(t, err)
	out := pipeline.Then(pipeline.From(ctx, "bounded", source), st)
	// 64 buffered, one in the stage, one in the source's hands.
	require.Eventually(t, func() bool { return read.Load() >= 65 }, 5*time.Second, time.Millisecond, "From did not read ahead")
	time.Sleep(20 * time.Millisecond) // time to read further, if it would
	assert.LessOrEqual(t, read.Load(), int64(66), "From read this far ahead of a stuck stage")
	close(release)
	cancel()
	for range out.All() {
	}
}
