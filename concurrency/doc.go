// Package concurrency carries trace context across the goroutine
// boundaries that channels create.
//
// A value sent on a plain channel loses the request it came from: the
// goroutine that receives it starts work that no trace connects to the
// producer. A TracedChannel sends each value with its sender's span context
// and baggage, and the receiving side picks them up:
//
//	orders, _ := concurrency.NewChannel[Order](64, concurrency.WithName("orders"),
//		concurrency.WithTracerProvider(tp))
//
//	// producer, in a request's goroutine
//	err := orders.Send(ctx, order) // a "send orders" PRODUCER span
//
//	// consumer, in a worker goroutine
//	err := orders.Consume(ctx, func(ctx context.Context, o Order) error {
//		return ship(ctx, o) // inside a "process orders" CONSUMER span, linked to the send
//	})
//
// Two packages beside it carry the same trace context through other
// shapes: concurrency/pipeline runs typed pipelines of stages, each value
// travelling with the span context of its last hop, and
// concurrency/singleflight de-duplicates concurrent calls by key, with
// the shared call in the first caller's trace.
//
// # Linked or parented
//
// By default, as the OpenTelemetry messaging conventions recommend, the
// process span is linked to the send span: the consumer's work is its own
// trace (or part of the consumer's), one click from the producer's. With
// WithParentedConsumer it is a child of the send span instead, in the
// producer's trace, which reads well when one request fans work out to a
// few goroutines and waits for them.
//
// # Cost
//
// The trace context travels inside the channel, so a hop costs no
// propagator and, when no span records, no allocation beyond the value's
// own. Spans are fine-grained: Send starts one only under a recording span,
// Consume only under one or for a sampled sender, unless WithRootSpans asks
// for them; a bare Receive never does.
//
// # Pitfalls
//
//   - Close the channel when no more values will be sent; Consume and All
//     end once it is drained.
//   - A value's span context is the sender's, not the receiver's: to work
//     on a value inside its trace, use Consume, or pass the span context
//     Receive returns to trace.WithLinks yourself.
package concurrency
