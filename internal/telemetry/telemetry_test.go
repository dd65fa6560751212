package telemetry_test

import (
	"context"
	"fmt"
	"regexp"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/metric"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/propagation"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	tracenoop "go.opentelemetry.io/otel/trace/noop"
	"go.uber.org/goleak"

	"github.com/otelpatterns/otelpatterns/errs"
	"github.com/otelpatterns/otelpatterns/internal/telemetry"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type providers struct {
	tp  *sdktrace.TracerProvider
	rec *tracetest.SpanRecorder
	mp  *sdkmetric.MeterProvider
	rd  *sdkmetric.ManualReader
}

func newProviders(t *testing.T, sampler sdktrace.Sampler) providers {
	t.Helper()
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec), sdktrace.WithSampler(sampler))
	rd := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(rd))
	t.Cleanup(func() {
		_ = tp.Shutdown(context.Background())
		_ = mp.Shutdown(context.Background())
	})
	return providers{tp: tp, rec: rec, mp: mp, rd: rd}
}

func (p providers) config() telemetry.Config {
	var c telemetry.Config
	c.SetTracerProvider(p.tp)
	c.SetMeterProvider(p.mp)
	return c
}

func (p providers) collect(t *testing.T) metricdata.ResourceMetrics {
	t.Helper()
	var rm metricdata.ResourceMetrics
	require.NoError(t, p.rd.Collect(context.Background(), &rm))
	return rm
}

func TestVersionIsSemver(t *testing.T) {
	// The pattern from semver.org, item 2 of its FAQ.
	semver := regexp.MustCompile(`^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$`)
	assert.Regexp(t, semver, telemetry.Version)
}

func TestConfigIgnoresNilAndDefaultsToGlobal(t *testing.T) {
	var c telemetry.Config
	assert.Equal(t, otel.GetTracerProvider(), c.TracerProvider())
	assert.Equal(t, otel.GetMeterProvider(), c.MeterProvider())
	assert.Equal(t, otel.GetTextMapPropagator(), c.Propagators())

	p := newProviders(t, sdktrace.AlwaysSample())
	prop := propagation.TraceContext{}
	c.SetTracerProvider(p.tp)
	c.SetMeterProvider(p.mp)
	c.SetPropagators(prop)
	c.SetTracerProvider(nil)
	c.SetMeterProvider(nil)
	c.SetPropagators(nil)
	assert.Same(t, p.tp, c.TracerProvider())
	assert.Same(t, p.mp, c.MeterProvider())
	assert.Equal(t, prop, c.Propagators())
}

func TestNewScopesTracerAndMeter(t *testing.T) {
	p := newProviders(t, sdktrace.AlwaysSample())
	tel := telemetry.New(telemetry.ModulePath+"/pool", p.config())

	_, span := tel.Tracer.Start(context.Background(), "op")
	span.End()
	scope := p.rec.Ended()[0].InstrumentationScope()
	assert.Equal(t, "github.com/otelpatterns/otelpatterns/pool", scope.Name)
	assert.Equal(t, telemetry.Version, scope.Version)
	assert.Equal(t, telemetry.SchemaURL, scope.SchemaURL)
	assert.Equal(t, "https://opentelemetry.io/schemas/1.43.0", scope.SchemaURL)

	tel.Counter("otelpatterns.test.count", "{op}", "ops").Add(context.Background(), 1)
	sm := p.collect(t).ScopeMetrics[0]
	assert.Equal(t, scope.Name, sm.Scope.Name)
	assert.Equal(t, telemetry.Version, sm.Scope.Version)
	assert.Equal(t, telemetry.SchemaURL, sm.Scope.SchemaURL)
}

func TestStartFineOnlyUnderRecordingParent(t *testing.T) {
	p := newProviders(t, sdktrace.ParentBased(sdktrace.AlwaysSample()))
	tel := telemetry.New("test", p.config())

	// No span in ctx: no span.
	ctx, span := tel.StartFine(context.Background(), "fine")
	assert.False(t, span.IsRecording())
	assert.False(t, trace.SpanContextFromContext(ctx).IsValid(), "ctx is returned unchanged")
	span.End()

	// A parent that does not record: no span, not even a non-sampled one.
	never := sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.NeverSample()))
	parentCtx, parent := never.Tracer("t").Start(context.Background(), "parent")
	require.False(t, parent.IsRecording())
	assert.False(t, tel.Fine(parentCtx))
	ctx, span = tel.StartFine(parentCtx, "fine")
	assert.Equal(t, parentCtx, ctx)
	assert.False(t, span.IsRecording())
	span.End()
	span.End() // ending the stand-in twice is harmless and must not end the parent
	assert.Empty(t, p.rec.Started(), "no span started under a non-recording parent")

	// A recording parent: a child span of it.
	parentCtx, parent = p.tp.Tracer("t").Start(context.Background(), "parent")
	_, span = tel.StartFine(parentCtx, "fine")
	span.End()
	parent.End()
	ended := p.rec.Ended()
	require.Len(t, ended, 2)
	assert.Equal(t, "fine", ended[0].Name())
	assert.Equal(t, parent.SpanContext().SpanID(), ended[0].Parent().SpanID())
}

func TestStartFineRootSpansOptIn(t *testing.T) {
	p := newProviders(t, sdktrace.AlwaysSample())
	cfg := p.config()
	cfg.SetRootSpans(true)
	tel := telemetry.New("test", cfg)

	_, span := tel.StartFine(context.Background(), "fine")
	assert.True(t, span.IsRecording())
	span.End()
	require.Len(t, p.rec.Ended(), 1)
	assert.False(t, p.rec.Ended()[0].Parent().IsValid(), "a root span")
}

func TestCacheBuildsOncePerProviders(t *testing.T) {
	var builds atomic.Int32
	cache := telemetry.NewCache("test", func(tel *telemetry.Telemetry) *telemetry.Telemetry {
		builds.Add(1)
		return tel
	})
	p1 := newProviders(t, sdktrace.AlwaysSample())
	p2 := newProviders(t, sdktrace.AlwaysSample())

	var wg sync.WaitGroup
	results := make([]*telemetry.Telemetry, 50)
	for i := range results {
		wg.Go(func() { results[i] = cache.Get(p1.config()) })
	}
	wg.Wait()
	for _, r := range results {
		assert.Same(t, results[0], r, "every call with the same providers shares one value")
	}
	assert.LessOrEqual(t, builds.Load(), int32(2), "built once, or twice in a race for the first use")

	other := cache.Get(p2.config())
	assert.NotSame(t, results[0], other)
	assert.Same(t, other, cache.Get(p2.config()))

	// Instruments built through the cached value report to the right provider.
	other.Counter("otelpatterns.test.count", "{op}", "ops").Add(context.Background(), 1)
	assert.Len(t, p2.collect(t).ScopeMetrics, 1)
	assert.Empty(t, p1.collect(t).ScopeMetrics)
}

// sliceProp is a propagator of a type that is not comparable, as a
// user-written composite might be: it must not make the cache panic.
type sliceProp []propagation.TextMapPropagator

func (sliceProp) Inject(context.Context, propagation.TextMapCarrier) {}
func (s sliceProp) Extract(ctx context.Context, _ propagation.TextMapCarrier) context.Context {
	return ctx
}
func (sliceProp) Fields() []string { return nil }

func TestCacheWithUncomparableConfig(t *testing.T) {
	builds := 0
	cache := telemetry.NewCache("test", func(*telemetry.Telemetry) int { builds++; return builds })
	cache.Get(telemetry.Config{}) // the map now exists, and is looked up
	var c telemetry.Config
	c.SetPropagators(sliceProp{propagation.TraceContext{}})
	assert.NotPanics(t, func() {
		cache.Get(c)
		cache.Get(c)
	})
	assert.Equal(t, 3, builds, "an uncomparable config is built each time")
}

func TestLinksCap(t *testing.T) {
	scs := make([]trace.SpanContext, 0, 300)
	for i := range 300 {
		scs = append(scs, trace.NewSpanContext(trace.SpanContextConfig{
			TraceID: trace.TraceID{1, byte(i >> 8), byte(i)},
			SpanID:  trace.SpanID{1, byte(i >> 8), byte(i)},
		}))
	}
	scs = append(scs, trace.SpanContext{}) // an input that was not traced

	links := telemetry.Links(scs)
	assert.Len(t, links, telemetry.MaxLinks)
	assert.Equal(t, scs[0], links[0].SpanContext)
	assert.Len(t, telemetry.Links(scs[:3]), 3)
	assert.Empty(t, telemetry.Links(nil))
	assert.Len(t, telemetry.Links([]trace.SpanContext{{}, scs[0]}), 1, "untraced inputs are skipped")

	// Through the SDK: the span carries the capped links, none dropped.
	p := newProviders(t, sdktrace.AlwaysSample())
	_, span := p.tp.Tracer("t").Start(context.Background(), "fan-in", trace.WithLinks(links...))
	span.End()
	got := p.rec.Ended()[0]
	assert.Len(t, got.Links(), telemetry.MaxLinks)
	assert.Zero(t, got.DroppedLinks())
}

func TestMeasuringAndStopwatch(t *testing.T) {
	ctx := context.Background()
	off := telemetry.New("test", offConfig())
	notRecording := trace.SpanFromContext(ctx)
	hist := off.Duration("otelpatterns.test.duration", "d")
	assert.False(t, telemetry.Measuring(ctx, notRecording, hist))

	sw := telemetry.StartStopwatch(false)
	time.Sleep(time.Millisecond)
	assert.False(t, sw.Running())
	assert.Zero(t, sw.Elapsed(), "a stopwatch started off never reads the clock")

	p := newProviders(t, sdktrace.AlwaysSample())
	on := telemetry.New("test", p.config())
	assert.True(t, telemetry.Measuring(ctx, notRecording, on.Duration("otelpatterns.test.duration", "d")),
		"an enabled instrument is a reader")
	_, span := on.Tracer.Start(ctx, "op")
	defer span.End()
	assert.True(t, telemetry.Measuring(ctx, span), "a recording span is a reader")

	sw = telemetry.StartStopwatch(true)
	time.Sleep(time.Millisecond)
	assert.True(t, sw.Running())
	assert.GreaterOrEqual(t, sw.Elapsed(), time.Millisecond)
	assert.Greater(t, sw.Seconds(), 0.0)
}

func TestDurationReachesMicroseconds(t *testing.T) {
	p := newProviders(t, sdktrace.AlwaysSample())
	tel := telemetry.New("test", p.config())
	tel.Duration("otelpatterns.test.duration", "d").Record(context.Background(), 3e-6)

	m := p.collect(t).ScopeMetrics[0].Metrics[0]
	assert.Equal(t, "s", m.Unit)
	h := m.Data.(metricdata.Histogram[float64])
	dp := h.DataPoints[0]
	assert.Equal(t, telemetry.DurationBuckets, dp.Bounds)
	assert.Equal(t, 1e-6, dp.Bounds[0])
	assert.Equal(t, uint64(1), dp.BucketCounts[2], "3µs falls in (2.5µs, 5µs]")
}

func TestObserveUnregisters(t *testing.T) {
	p := newProviders(t, sdktrace.AlwaysSample())
	tel := telemetry.New("test", p.config())
	queue := tel.ObservableUpDownCounter("otelpatterns.test.queue", "{item}", "q")
	calls := 0
	unregister := tel.Observe(func(_ context.Context, o metric.Observer) error {
		calls++
		o.ObserveInt64(queue, 7)
		return nil
	}, queue)

	p.collect(t)
	assert.Equal(t, 1, calls)
	unregister()
	p.collect(t)
	assert.Equal(t, 1, calls, "no callback after unregister")
}

func TestInvalidInstrumentNameIsReportedNotFatal(t *testing.T) {
	var reported []error
	prev := otel.GetErrorHandler()
	otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) { reported = append(reported, err) }))
	defer otel.SetErrorHandler(prev)

	p := newProviders(t, sdktrace.AlwaysSample())
	tel := telemetry.New("test", p.config())
	h := tel.Duration("not a valid name!", "d")
	require.NotNil(t, h)
	assert.NotPanics(t, func() { h.Record(context.Background(), 1) })
	assert.NotEmpty(t, reported)
}

func TestOutcome(t *testing.T) {
	cases := map[string]error{
		telemetry.OutcomeSuccess:  nil,
		telemetry.OutcomeError:    fmt.Errorf("x"),
		telemetry.OutcomeCanceled: fmt.Errorf("wait: %w", context.DeadlineExceeded),
		telemetry.OutcomePanic:    errs.Wrap(context.Background(), errs.Try(func() error { panic(1) }), "task", "run"),
	}
	for want, err := range cases {
		assert.Equal(t, want, telemetry.Outcome(err), "%v", err)
	}
}

// offConfig returns a config whose providers are no-ops.
func offConfig() telemetry.Config {
	var c telemetry.Config
	c.SetTracerProvider(tracenoop.NewTracerProvider())
	c.SetMeterProvider(metricnoop.NewMeterProvider())
	return c
}
