package concurrency_test

import (
	"context"
	"errors"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	tracenoop "go.opentelemetry.io/otel/trace/noop"

	"github.com/otelpatterns/otelpatterns/concurrency"
)

var sinkInt int

// BenchmarkHop is one Send/Receive pair on a buffered channel, by the
// TracedChannel with telemetry off, and by the two hand-written channels it
// replaces: a raw one, and one that selects on ctx and on a close signal.
func BenchmarkHop(b *testing.B) {
	ctx := context.Background()
	b.Run("impl=raw", func(b *testing.B) {
		ch := make(chan int, 64)
		b.ReportAllocs()
		for b.Loop() {
			ch <- 1
			sinkInt = <-ch
		}
	})
	b.Run("impl=ctx_aware", func(b *testing.B) {
		ch := make(chan int, 64)
		closing := make(chan struct{})
		errClosed := errors.New("closed")
		send := func(ctx context.Context, v int) error {
			select {
			case ch <- v:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			case <-closing:
				return errClosed
			}
		}
		recv := func(ctx context.Context) (int, error) {
			select {
			case v := <-ch:
				return v, nil
			case <-ctx.Done():
				return 0, ctx.Err()
			}
		}
		b.ReportAllocs()
		for b.Loop() {
			_ = send(ctx, 1)
			sinkInt, _ = recv(ctx)
		}
	})
	b.Run("impl=traced", func(b *testing.B) {
		c, err := concurrency.NewChannel[int](64, concurrency.WithTracerProvider(tracenoop.NewTracerProvider()),
			concurrency.WithMeterProvider(metricnoop.NewMeterProvider()))
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		b.ReportAllocs()
		for b.Loop() {
			_ = c.Send(ctx, 1)
			sinkInt, _, _ = c.Receive(ctx)
		}
	})
}

// BenchmarkHopSDK is one traced hop with the SDK recording (AlwaysSample, a
// discarding processor): a Send under a recording span and its Consume,
// which make a send and a process span; against the same two spans started
// and ended bare, and a bare buffered channel beside them.
func BenchmarkHopSDK(b *testing.B) {
	tp := sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.AlwaysSample()), sdktrace.WithSpanProcessor(discard{}))
	b.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	ctx, parent := tp.Tracer("bench").Start(context.Background(), "request")
	defer parent.End()
	b.Run("impl=traced", func(b *testing.B) {
		c, err := concurrency.NewChannel[int](64, concurrency.WithTracerProvider(tp), concurrency.WithMeterProvider(metricnoop.NewMeterProvider()))
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		stop := errors.New("one")
		b.ReportAllocs()
		for b.Loop() {
			_ = c.Send(ctx, 1)
			_ = c.Consume(ctx, func(context.Context, int) error { return stop })
		}
	})
	b.Run("impl=bare_spans", func(b *testing.B) {
		tracer := tp.Tracer("bench")
		ch := make(chan int, 64)
		common := []attribute.KeyValue{attribute.String("messaging.system", "otelpatterns"), attribute.String("messaging.destination.name", "channel")}
		sendAttrs := append([]attribute.KeyValue{attribute.String("messaging.operation.type", "send")}, common...)
		procAttrs := append([]attribute.KeyValue{attribute.String("messaging.operation.type", "process")}, common...)
		b.ReportAllocs()
		for b.Loop() {
			_, send := tracer.Start(ctx, "send channel", trace.WithSpanKind(trace.SpanKindProducer), trace.WithAttributes(sendAttrs...))
			ch <- 1
			send.End()
			<-ch
			_, process := tracer.Start(ctx, "process channel", trace.WithSpanKind(trace.SpanKindConsumer),
				trace.WithLinks(trace.Link{SpanContext: send.SpanContext()}), trace.WithAttributes(procAttrs...))
			// Consume above ends its loop with an error, recorded on its span:
			// record the same here.
			process.SetStatus(codes.Error, "one")
			process.SetAttributes(attribute.String("error.type", "*errors.errorString"))
			process.End()
		}
	})
}

// discard is a span processor that drops every span.
type discard struct{}

func (discard) OnStart(context.Context, sdktrace.ReadWriteSpan) {}
func (discard) OnEnd(sdktrace.ReadOnlySpan)                     {}
func (discard) Shutdown(context.Context) error                  { return nil }
func (discard) ForceFlush(context.Context) error                { return nil }
