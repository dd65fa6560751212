// Package pipeline runs typed pipelines with OpenTelemetry built in.
//
// A pipeline is stages connected by channels: values flow from a source
// (From) through typed stages (Then), may split (FanOut), join (Merge) or
// group (Batch), and are read at the end (Flow.All). Every stage runs on
// its own workers, with its own buffer: a stage of several workers on the
// same ordered-worker engine as pool.Process, a stage of one straight from
// channel to channel. Every value carries the span context of its last hop.
//
//	run := pipeline.From(ctx, "orders", lines, pipeline.WithTracerProvider(tp))
//	parsed := pipeline.Then(run, parse)    // Flow[string] → Flow[Order]
//	stored := pipeline.Then(parsed, store) // Flow[Order] → Flow[Receipt]
//	for r := range stored.All() { ... }
//	if err := stored.Err(); err != nil { ... }
//
// By default the first error, or a panic, in any stage stops the whole
// pipeline and is what Err returns; with CollectAll the run goes on past
// failed values, dropping them, and Err returns their errors joined.
// Cancelling ctx, or breaking out of All, stops every goroutine of the
// pipeline before All returns.
//
// Pipeline[T] is the classic shape, a named chain of Stage[T, T].
//
// Read a pipeline's last flow with All: its goroutines run until that
// read ends (or ctx does). A pipeline has one end: Merge fanned-out flows
// before reading them.
//
// # Telemetry
//
// A run has one "pipeline {name}" span; WithItemSpans adds a
// "stage {stage}" span per value and stage, linked to the span of the
// value's previous hop, and a traced Batch has a "batch {pipeline}" span
// with messaging.batch.message_count. Metrics count values in, out and
// failed per stage, time each value in each stage, and show the buffers.
// README.md's Telemetry reference lists every name.
//
// # Buffers
//
// A stage's output buffer defaults to its number of workers: enough for
// every worker to hand on a result without waiting for the next stage, and
// no more, so that backpressure reaches the source quickly and a failed
// run has few values in flight to drop. From buffers up to 64 values ahead
// of the first stage: a stage of several workers pulls faster than a
// one-value hand-off from the source's goroutine feeds it (with a buffer of
// 1, an ordered stage of 4 workers over values of about 1 µs took 1.4× as
// long), and such a stage keeps 16 values a worker in flight anyway. A
// failed run drops the values read ahead: a source whose values are
// messages taken off a queue should have them acknowledged by the last
// stage, not when they are read. A larger buffer (WithBuffer) smooths a
// bursty stage at the cost of memory and of values in flight.
package pipeline
