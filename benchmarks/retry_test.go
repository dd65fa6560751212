package benchmarks

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/cenkalti/backoff/v5"
	"github.com/failsafe-go/failsafe-go"
	"github.com/failsafe-go/failsafe-go/retrypolicy"
	"github.com/sony/gobreaker/v2"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	tracenoop "go.opentelemetry.io/otel/trace/noop"

	"github.com/otelpatterns/otelpatterns/retry"
	"github.com/otelpatterns/otelpatterns/retry/breaker"
)

var (
	errFlaky = errors.New("flaky")
	sinkInt  int
)

// flaky returns an op that fails fails times, then succeeds, over and over.
func flaky(fails int) func() (int, error) {
	n := 0
	return func() (int, error) {
		if n++; n <= fails {
			return 0, errFlaky
		}
		n = 0
		return 1, nil
	}
}

// BenchmarkRetry runs an op that succeeds at once ("first_try"), and one
// that fails twice and then succeeds ("three_attempts", with no delay
// between attempts), under each library's retry, built once.
func BenchmarkRetry(b *testing.B) {
	for _, w := range []struct {
		name  string
		fails int
	}{{"first_try", 0}, {"three_attempts", 2}} {
		b.Run("lib=direct/"+w.name, func(b *testing.B) {
			op := flaky(w.fails)
			b.ReportAllocs()
			for b.Loop() {
				for {
					v, err := op()
					if err == nil {
						sinkInt = v
						break
					}
				}
			}
		})
		b.Run("lib=otelpatterns/"+w.name, func(b *testing.B) {
			p, err := retry.New(retry.WithMaxAttempts(3), retry.WithConstantBackoff(0),
				retry.WithTracerProvider(tracenoop.NewTracerProvider()), retry.WithMeterProvider(metricnoop.NewMeterProvider()))
			if err != nil {
				b.Fatal(err)
			}
			op := flaky(w.fails)
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				sinkInt, _ = retry.Do(ctx, p, func(context.Context) (int, error) { return op() })
			}
		})
		b.Run("lib=backoff/"+w.name, func(b *testing.B) {
			op := flaky(w.fails)
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				sinkInt, _ = backoff.Retry(ctx, op, backoff.WithBackOff(&backoff.ZeroBackOff{}), backoff.WithMaxTries(3))
			}
		})
		b.Run("lib=failsafe/"+w.name, func(b *testing.B) {
			rp := retrypolicy.NewBuilder[int]().WithMaxAttempts(3).WithDelay(0).Build()
			ex := failsafe.With[int](rp)
			op := flaky(w.fails)
			b.ReportAllocs()
			for b.Loop() {
				sinkInt, _ = ex.Get(op)
			}
		})
	}
}

// BenchmarkBreaker is a circuit breaker's closed path: the op succeeds.
func BenchmarkBreaker(b *testing.B) {
	op := func() (int, error) { return 1, nil }
	b.Run("lib=otelpatterns", func(b *testing.B) {
		br, err := breaker.New(breaker.WithMeterProvider(metricnoop.NewMeterProvider()))
		if err != nil {
			b.Fatal(err)
		}
		defer br.Close()
		ctx := context.Background()
		b.ReportAllocs()
		for b.Loop() {
			sinkInt, _ = breaker.Call(ctx, br, func(context.Context) (int, error) { return op() })
		}
	})
	b.Run("lib=gobreaker", func(b *testing.B) {
		br := gobreaker.NewCircuitBreaker[int](gobreaker.Settings{Name: "bench", Timeout: 30 * time.Second})
		b.ReportAllocs()
		for b.Loop() {
			sinkInt, _ = br.Execute(op)
		}
	})
}
