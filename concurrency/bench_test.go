package concurrency_test

import (
	"context"
	"errors"
	"testing"

	metricnoop "go.opentelemetry.io/otel/metric/noop"
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
		c, err := concurrency.New[int](64, concurrency.WithTracerProvider(tracenoop.NewTracerProvider()),
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
