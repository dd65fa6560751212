// Package concurrency carries trace context across the goroutine
// boundaries that channels create.
//
// A value sent on a plain channel loses the request it came from: the
// goroutine that receives it starts work that no trace connects to the
// producer. A TracedChannel sends each value with its sender's span context
// and baggage, and the receiving side picks them up:
//
//	orders, _ := concurrency.New[Order](64, concurrency.WithName("orders"),
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
// Pipelines carry it through every hop: From starts one over an iter.Seq,
// Then runs a typed stage on its own workers (several of them on the same
// ordered-worker engine as pool.Process), FanOut, Merge and Batch reshape the flow, and each value
// travels with the span context of its last hop, so that per-value spans
// (WithItemSpans) link from stage to stage. The run has one span; the first
// failure stops it, or WithSkipFailed skips failed values and counts them.
// Pipeline[T] is the classic shape, a named chain of Stage[T, T].
//
// Singleflight, in the same spirit, de-duplicates concurrent calls by key
// (the cache-aside pattern's guard against a stampede), with the shared
// call in the first caller's trace and every later caller's span linked to
// it.
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
//   - Read a pipeline's last flow with All: its goroutines run until that
//     read ends (or ctx does). A pipeline has one end: Merge fanned-out
//     flows before reading them.
//   - A value's span context is the sender's, not the receiver's: to work
//     on a value inside its trace, use Consume, or pass the span context
//     Receive returns to trace.WithLinks yourself.
package concurrency
