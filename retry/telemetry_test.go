package retry_test

import (
	"context"
	"io"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	tracenoop "go.opentelemetry.io/otel/trace/noop"

	"github.com/otelpatterns/otelpatterns/internal/retryhook"
	"github.com/otelpatterns/otelpatterns/internal/telemetry/telemetrytest"
	"github.com/otelpatterns/otelpatterns/retry"
	"github.com/otelpatterns/otelpatterns/retry/breaker"
)

type recorders struct{ telemetrytest.Recorders }

func newRecorders(t *testing.T) recorders { return recorders{telemetrytest.NewRecorders(t)} }

func (r recorders) policy(t *testing.T, opts ...retry.Option) *retry.Policy {
	return mustPolicy(t, append([]retry.Option{retry.WithTracerProvider(r.TracerProvider), retry.WithMeterProvider(r.MeterProvider),
		retry.WithName("payments"), retry.WithConstantBackoff(time.Millisecond)}, opts...)...)
}

var attrs = telemetrytest.Attrs

func TestSpansPerOperationAndAttempt(t *testing.T) {
	r := newRecorders(t)
	p := r.policy(t, retry.WithMaxAttempts(3))
	ctx, parent := r.TracerProvider.Tracer("test").Start(bg, "request")
	calls := 0
	err := retry.Run(ctx, p, func(context.Context) error {
		if calls++; calls < 3 {
			return io.EOF
		}
		return nil
	})
	require.NoError(t, err)
	parent.End()

	var op sdktrace.ReadOnlySpan
	var attempts []sdktrace.ReadOnlySpan
	for _, s := range r.Spans.Ended() {
		switch s.Name() {
		case "retry":
			op = s
		case "retry.attempt":
			attempts = append(attempts, s)
		}
	}
	require.NotNil(t, op)
	assert.Equal(t, parent.SpanContext().SpanID(), op.Parent().SpanID())
	assert.Equal(t, "Unset", op.Status().Code.String(), "the operation span shows only the final outcome")
	assert.EqualValues(t, 3, attrs(op.Attributes())["otelpatterns.retry.attempts"].AsInt64())
	assert.Equal(t, "payments", attrs(op.Attributes())["otelpatterns.retry.policy"].AsString())
	require.Len(t, attempts, 3)
	for i, a := range attempts {
		assert.Equal(t, op.SpanContext().SpanID(), a.Parent().SpanID())
		assert.EqualValues(t, i+1, attrs(a.Attributes())["otelpatterns.retry.attempt"].AsInt64())
		want := "Error"
		if i == 2 {
			want = "Unset"
		}
		assert.Equal(t, want, a.Status().Code.String(), "a failed attempt marks only its own span")
	}
}

func TestFailedOperationSpanAndNoSpanUntraced(t *testing.T) {
	r := newRecorders(t)
	p := r.policy(t, retry.WithMaxAttempts(2))
	ctx, parent := r.TracerProvider.Tracer("test").Start(bg, "request")
	_ = retry.Run(ctx, p, func(context.Context) error { return io.ErrUnexpectedEOF })
	parent.End()
	var op sdktrace.ReadOnlySpan
	for _, s := range r.Spans.Ended() {
		if s.Name() == "retry" {
			op = s
		}
	}
	require.NotNil(t, op)
	assert.Equal(t, "Error", op.Status().Code.String())
	assert.Equal(t, "retry: attempts exhausted after 2 attempt(s): unexpected EOF", op.Status().Description)
	assert.Equal(t, "*errors.errorString", attrs(op.Attributes())["error.type"].AsString(), "the op's error's type, not the stop cause's")

	r2 := newRecorders(t)
	p2 := r2.policy(t)
	_ = retry.Run(bg, p2, func(context.Context) error { return nil })
	never := sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.NeverSample()))
	uctx, unsampled := never.Tracer("t").Start(bg, "unsampled")
	_ = retry.Run(uctx, p2, func(context.Context) error { return nil })
	unsampled.End()
	assert.Empty(t, r2.Spans.Started(), "fine-grained: no span without a recording parent")

	p3 := r2.policy(t, retry.WithRootSpans())
	_ = retry.Run(bg, p3, func(context.Context) error { return nil })
	assert.Len(t, r2.Spans.Ended(), 2, "WithRootSpans: the operation and its attempt")
}

// A panicking op ends its attempt's span and the operation's, with the
// panic recorded, gives a breaker's probe slot back, and then panics on.
func TestPanickingOpEndsItsSpans(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRecorders(t)
		b, err := breaker.New(breaker.WithTripAfter(1), breaker.WithOpenFor(time.Second), breaker.WithHalfOpenProbes(1))
		require.NoError(t, err)
		defer b.Close()
		p := r.policy(t, retry.WithMaxAttempts(3), retry.WithBreaker(b))
		ctx, parent := r.TracerProvider.Tracer("test").Start(bg, "request")
		defer parent.End()
		_ = retry.Run(ctx, p, func(context.Context) error { return io.EOF }) // trips the breaker
		time.Sleep(time.Second)
		assert.PanicsWithValue(t, "op broke", func() {
			_ = retry.Run(ctx, p, func(context.Context) error { panic("op broke") })
		})
		ops := r.Ended("retry")
		require.Len(t, ops, 2, "both operation spans ended")
		assert.Equal(t, "panic", attrs(ops[1].Attributes())["error.type"].AsString())
		attempts := r.Ended("retry.attempt")
		assert.Equal(t, "panic", attrs(attempts[len(attempts)-1].Attributes())["error.type"].AsString())
		assert.Equal(t, breaker.Open, b.State(), "the panicking probe counted as a failed probe")
		time.Sleep(time.Second)
		require.NoError(t, b.Execute(bg, func(context.Context) error { return nil }), "its probe slot was given back")
	})
}

func TestMetrics(t *testing.T) {
	r := newRecorders(t)
	budget, err := retry.NewBudget(2, 0.1, nil)
	require.NoError(t, err)
	p := r.policy(t, retry.WithMaxAttempts(3), retry.WithBudget(budget))
	_ = retry.Run(bg, p, func(context.Context) error { return nil })
	_ = retry.Run(bg, p, func(context.Context) error { return io.EOF }) // one attempt, then the budget refuses

	var rm metricdata.ResourceMetrics
	require.NoError(t, r.Reader.Collect(bg, &rm))
	got := map[string]metricdata.Metrics{}
	for _, m := range rm.ScopeMetrics[0].Metrics {
		got[m.Name] = m
	}
	attempts := map[string]int64{}
	for _, dp := range got["otelpatterns.retry.attempts"].Data.(metricdata.Sum[int64]).DataPoints {
		o, _ := dp.Attributes.Value("otelpatterns.outcome")
		attempts[o.AsString()] += dp.Value
	}
	assert.Equal(t, map[string]int64{"success": 1, "error": 1}, attempts)
	rej := got["otelpatterns.retry.budget.rejections"].Data.(metricdata.Sum[int64]).DataPoints
	require.Len(t, rej, 1)
	assert.EqualValues(t, 1, rej[0].Value)
	types := map[string]uint64{}
	for _, dp := range got["otelpatterns.retry.duration"].Data.(metricdata.Histogram[float64]).DataPoints {
		et, _ := dp.Attributes.Value("error.type")
		types[et.AsString()] += dp.Count
	}
	assert.Equal(t, map[string]uint64{"": 1, "*errors.errorString": 1}, types)
}

func TestTelemetryReference(t *testing.T) {
	r := newRecorders(t)
	budget, _ := retry.NewBudget(2, 0.1, nil)
	p := r.policy(t, retry.WithMaxAttempts(3), retry.WithBudget(budget))
	ctx, parent := r.TracerProvider.Tracer("test").Start(bg, "request")
	_ = retry.Run(ctx, p, func(context.Context) error { return io.EOF })
	_ = retry.Run(ctx, p, func(context.Context) error { return nil })
	parent.End()
	emitted := telemetrytest.Collect(t, r.Spans, r.Reader)
	delete(emitted[telemetrytest.Span], "request")
	telemetrytest.Check(t, "retry", emitted)
}

func TestSuccessPathAllocatesNothing(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector changes allocation counts")
	}
	p := mustPolicy(t, retry.WithTracerProvider(tracenoop.NewTracerProvider()), retry.WithMeterProvider(metricnoop.NewMeterProvider()))
	op := func(context.Context) (int, error) { return 1, nil }
	if n := testing.AllocsPerRun(1000, func() { _, _ = retry.Do(bg, p, op) }); n != 0 {
		t.Errorf("Do on the success path: %v allocations, want 0", n)
	}
}

// The runners' untraced path (retryhook) makes no span of retry's own, and
// its op runs under the caller's span; the metrics are still recorded.
func TestUntracedRunForTheRunners(t *testing.T) {
	r := newRecorders(t)
	p := r.policy(t, retry.WithMaxAttempts(2))
	ctx, parent := r.TracerProvider.Tracer("test").Start(bg, "saga.step")
	calls := 0
	err := retryhook.RunUntraced(ctx, p, func(ctx context.Context) error {
		calls++
		assert.Equal(t, parent.SpanContext(), trace.SpanContextFromContext(ctx), "the op runs under the caller's span")
		return io.EOF
	})
	parent.End()
	assert.ErrorIs(t, err, io.EOF)
	assert.Equal(t, 2, calls)
	assert.Empty(t, r.Ended("retry"))
	assert.Empty(t, r.Ended("retry.attempt"))
	assert.Contains(t, r.Metrics(t), "otelpatterns.retry.attempts")
}
