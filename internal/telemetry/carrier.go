package telemetry

import (
	"context"

	"go.opentelemetry.io/otel/baggage"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// Record writes the trace context and baggage of ctx into a carrier, as a
// runner's first journal record keeps them for whoever resumes the work.
func (t *Telemetry) Record(ctx context.Context) propagation.MapCarrier {
	carrier := propagation.MapCarrier{}
	t.Propagators.Inject(ctx, carrier)
	return carrier
}

// Resume reads back what Record wrote: ctx with the recorded baggage (when
// there is any: the work goes on in its first caller's name), and the
// recorded span context, for the resumed span to link to.
func (t *Telemetry) Resume(ctx context.Context, carrier map[string]string) (context.Context, trace.SpanContext) {
	recorded := t.Propagators.Extract(context.Background(), propagation.MapCarrier(carrier))
	if bag := baggage.FromContext(recorded); bag.Len() > 0 {
		ctx = baggage.ContextWithBaggage(ctx, bag)
	}
	return ctx, trace.SpanContextFromContext(recorded)
}
