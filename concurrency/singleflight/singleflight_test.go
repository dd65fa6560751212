package singleflight_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.uber.org/goleak"

	"github.com/otelpatterns/otelpatterns/concurrency/singleflight"
	"github.com/otelpatterns/otelpatterns/errs"
	"github.com/otelpatterns/otelpatterns/internal/telemetry/telemetrytest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var bg = context.Background()

func TestSharesOneCall(t *testing.T) {
	r := telemetrytest.NewRecorders(t)
	g, err := singleflight.New[string, int](singleflight.WithName("prices"),
		singleflight.WithTracerProvider(r.TracerProvider), singleflight.WithMeterProvider(r.MeterProvider))
	require.NoError(t, err)
	var calls atomic.Int32
	release := make(chan struct{})
	fn := func(context.Context) (int, error) {
		calls.Add(1)
		<-release
		return 42, nil
	}
	ctx, request := r.TracerProvider.Tracer("test").Start(bg, "request")
	var wg sync.WaitGroup
	var sharedCount atomic.Int32
	results := make([]int, 10)
	leaderIn := make(chan struct{})
	wg.Go(func() {
		close(leaderIn)
		v, shared, err := g.Do(ctx, "sku-1", fn)
		assert.NoError(t, err)
		assert.False(t, shared)
		results[0] = v
	})
	<-leaderIn
	require.Eventually(t, func() bool { return calls.Load() == 1 }, 5*time.Second, time.Millisecond)
	for i := 1; i < 10; i++ {
		wg.Go(func() {
			v, shared, err := g.Do(ctx, "sku-1", fn)
			assert.NoError(t, err)
			if shared {
				sharedCount.Add(1)
			}
			results[i] = v
		})
	}
	time.Sleep(10 * time.Millisecond)
	close(release)
	wg.Wait()
	request.End()
	assert.EqualValues(t, 1, calls.Load(), "one call for ten callers")
	assert.EqualValues(t, 9, sharedCount.Load())
	for _, v := range results {
		assert.Equal(t, 42, v)
	}

	call := r.Ended("singleflight.call")
	require.Len(t, call, 1)
	assert.Equal(t, request.SpanContext().SpanID(), call[0].Parent().SpanID())
	waits := r.Ended("singleflight.wait")
	require.Len(t, waits, 9)
	for _, w := range waits {
		require.Len(t, w.Links(), 1)
		assert.Equal(t, call[0].SpanContext(), w.Links()[0].SpanContext, "a later caller links to the shared call")
	}
	var sharedMetric int64
	for _, dp := range r.Metrics(t)["otelpatterns.singleflight.shared"].Data.(metricdata.Sum[int64]).DataPoints {
		sharedMetric += dp.Value
	}
	assert.EqualValues(t, 9, sharedMetric)
}

func TestFirstCallerLeaving(t *testing.T) { synctest.Test(t, testFirstCallerLeaving) }

// testFirstCallerLeaving runs in a synctest bubble, so that each caller
// is waiting in Do before the next step (synctest.Wait).
func testFirstCallerLeaving(t *testing.T) {
	g, err := singleflight.New[int, string]()
	require.NoError(t, err)
	release := make(chan struct{})
	var sawCancel atomic.Bool
	fn := func(ctx context.Context) (string, error) {
		select {
		case <-release:
			return "ok", nil
		case <-ctx.Done():
			sawCancel.Store(true)
			return "", ctx.Err()
		}
	}
	leaderCtx, leave := context.WithCancel(bg)
	leaderDone := make(chan error)
	go func() {
		_, _, err := g.Do(leaderCtx, 1, fn)
		leaderDone <- err
	}()
	synctest.Wait()
	followerDone := make(chan string)
	go func() {
		v, _, _ := g.Do(bg, 1, fn)
		followerDone <- v
	}()
	synctest.Wait()
	leave()
	assert.ErrorIs(t, <-leaderDone, context.Canceled, "the first caller returns when its ctx ends")
	close(release)
	assert.Equal(t, "ok", <-followerDone, "the call went on for the others")
	assert.False(t, sawCancel.Load())
}

func TestCancelledWhenEveryoneLeaves(t *testing.T) {
	g, err := singleflight.New[int, int]()
	require.NoError(t, err)
	cancelled := make(chan struct{})
	ctx, leave := context.WithCancel(bg)
	_, _, err = g.Do(ctx, 7, func(ctx context.Context) (int, error) {
		leave() // the only caller leaves while the call runs
		<-ctx.Done()
		close(cancelled)
		return 0, ctx.Err()
	})
	assert.ErrorIs(t, err, context.Canceled)
	select {
	case <-cancelled:
	case <-time.After(5 * time.Second):
		t.Fatal("the shared call was not cancelled when its last caller left")
	}
	v, shared, err := g.Do(bg, 7, func(context.Context) (int, error) { return 8, nil })
	assert.NoError(t, err)
	assert.False(t, shared, "a caller after everyone left starts a new call")
	assert.Equal(t, 8, v)
}

func TestPanicAndBadInput(t *testing.T) {
	g, err := singleflight.New[string, int]()
	require.NoError(t, err)
	_, _, err = g.Do(bg, "k", func(context.Context) (int, error) { panic("boom") })
	var pe *errs.PanicError
	require.ErrorAs(t, err, &pe)
	assert.Equal(t, "boom", pe.Value)
	_, _, err = g.Do(bg, "k", nil)
	assert.ErrorContains(t, err, "must not be nil")
	//lint:ignore SA1012 passing nil is the point of the test
	_, _, err = g.Do(nil, "k", func(context.Context) (int, error) { return 0, nil }) //nolint:staticcheck
	assert.ErrorContains(t, err, "nil context")
	_, err = singleflight.New[string, int](singleflight.WithName(""))
	assert.ErrorContains(t, err, `WithName("")`)
}

// Forget makes the next caller start a call of its own while one is in
// flight; the callers of the forgotten call still get its result.
func TestForget(t *testing.T) {
	g, err := singleflight.New[string, int]()
	require.NoError(t, err)
	release := make(chan struct{})
	old := make(chan int)
	go func() {
		v, _, _ := g.Do(bg, "k", func(context.Context) (int, error) { <-release; return 1, nil })
		old <- v
	}()
	require.Eventually(t, func() bool {
		_, shared, _ := g.Do(bg, "probe", func(context.Context) (int, error) { return 0, nil })
		return !shared
	}, time.Second, time.Millisecond)
	time.Sleep(5 * time.Millisecond) // the first call is in flight
	g.Forget("k")
	v, shared, err := g.Do(bg, "k", func(context.Context) (int, error) { return 2, nil })
	require.NoError(t, err)
	assert.False(t, shared, "after Forget, a new call")
	assert.Equal(t, 2, v)
	close(release)
	assert.Equal(t, 1, <-old, "the forgotten call's caller gets its result")
}

// The last caller of a forgotten call leaving cancels it.
func TestForgottenCallCancelledWhenItsCallersLeave(t *testing.T) {
	g, err := singleflight.New[string, int]()
	require.NoError(t, err)
	started, cancelled := make(chan struct{}), make(chan struct{})
	ctx, leave := context.WithCancel(bg)
	go func() {
		<-started
		g.Forget("k")
		leave()
	}()
	_, _, err = g.Do(ctx, "k", func(ctx context.Context) (int, error) {
		close(started)
		<-ctx.Done()
		close(cancelled)
		return 0, ctx.Err()
	})
	assert.ErrorIs(t, err, context.Canceled)
	select {
	case <-cancelled:
	case <-time.After(5 * time.Second):
		t.Fatal("a forgotten call went on with no caller left")
	}
}

func TestTelemetryReference(t *testing.T) {
	r := telemetrytest.NewRecorders(t)
	ctx, request := r.TracerProvider.Tracer("test").Start(bg, "request")
	g, err := singleflight.New[int, int](singleflight.WithTracerProvider(r.TracerProvider), singleflight.WithMeterProvider(r.MeterProvider))
	require.NoError(t, err)
	release := make(chan struct{})
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() {
			_, _, _ = g.Do(ctx, 1, func(context.Context) (int, error) { <-release; return 0, errors.New("bad") })
		})
	}
	time.Sleep(10 * time.Millisecond)
	close(release)
	wg.Wait()
	request.End()
	emitted := telemetrytest.Collect(t, r.Spans, r.Reader)
	delete(emitted[telemetrytest.Span], "request")
	telemetrytest.Check(t, "concurrency/singleflight", emitted)
}
