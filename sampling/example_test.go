package sampling_test

import (
	"context"
	"fmt"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/otelpatterns/otelpatterns/sampling"
)

// Keep every recovery, hold server spans to 100 a second, and follow the
// parent, at 10% for new traces, everywhere else.
func Example() {
	ratio, err := sampling.Probability(0.1)
	if err != nil {
		panic(err)
	}
	adaptive, err := sampling.NewAdaptive(100)
	if err != nil {
		panic(err)
	}
	defer adaptive.Close()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSampler(sampling.Composite(sampling.RuleBased(
		sampling.Rule{When: sampling.SpanName("saga.recover", "2pc.recover"), Then: sampling.AlwaysOn()},
		sampling.Rule{When: sampling.SpanKind(trace.SpanKindServer), Then: adaptive},
		sampling.Rule{When: sampling.Any(), Then: sampling.ParentThreshold(ratio)},
	))))
	defer tp.Shutdown(context.Background())

	_, span := tp.Tracer("example").Start(context.Background(), "saga.recover")
	defer span.End()
	fmt.Println(span.SpanContext().IsSampled(), span.SpanContext().TraceState())
	// Output: true ot=th:0
}
