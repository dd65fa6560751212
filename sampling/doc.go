// Package sampling decides which traces are kept, consistently across
// services: the OpenTelemetry specification's consistent probability
// sampling (a 56-bit threshold carried in the W3C tracestate as ot=th:...),
// its composable samplers, and an adaptive sampler that holds a steady rate
// of root spans while traffic swings. Its samplers are the SDK's
// (sdktrace.Sampler): this is the one package of the library that imports
// the SDK, and only programs that import it link the SDK through it.
//
// # Using it
//
//	ratio, err := sampling.Probability(0.1)
//	...
//	adaptive, err := sampling.NewAdaptive(100) // root spans a second, per span name
//	...
//	tp := sdktrace.NewTracerProvider(sdktrace.WithSampler(sampling.Composite(sampling.RuleBased(
//		sampling.Rule{When: sampling.SpanName("saga.recover", "2pc.recover"), Then: sampling.AlwaysOn()},
//		sampling.Rule{When: sampling.SpanKind(trace.SpanKindServer), Then: adaptive},
//		sampling.Rule{When: sampling.Any(), Then: sampling.ParentThreshold(ratio)},
//	))), ...)
//
// A rule is a Composable: it says at which threshold a span would be kept
// (its Intent), and Composite makes the decision from the trace's
// randomness the same way for every rule. AlwaysOn, AlwaysOff and
// Probability decide alone; ParentThreshold follows a parent's threshold
// and decides roots by another rule; RuleBased picks a rule by span name,
// kind, attribute or whether it is a root; Annotating adds attributes to
// the spans a rule keeps; Adaptive holds a rate.
//
// # Consistency
//
// Every decision compares the trace's randomness R, 56 bits taken from the
// tracestate's rv or else from the trace ID's last 7 bytes, with the
// rule's threshold T: the span is kept when R ≥ T. A trace kept at
// probability p is therefore kept at every higher probability too, in
// every service that samples this way, so traces stay whole when services
// sample at different rates; and a kept span's threshold, written to the
// tracestate, gives its adjusted count, 1/p, for span-derived metrics. A
// child span under ParentThreshold keeps its parent's decision and
// threshold; a parent's th that contradicts its randomness is erased, and
// so is the th of a span kept with an unknown probability.
//
// # Adaptive
//
// An Adaptive sampler counts root spans per key (the span name, or
// WithKey) and, every interval (WithInterval, a second by default), sets
// each key's probability to the target rate over the rate it saw. From the
// second interval after a change in traffic the kept rate is back at the
// target. The first root span of each key in each interval is kept,
// whatever its randomness, so that no key goes unseen (its th is erased).
// The keys are bounded (WithMaxKeys); past the bound they share "_other".
// The recomputation runs on the first decision after the interval ends,
// which a runtime timer marks, so the sampler needs no goroutine and a
// decision reads no clock; WithClock steps it in simulations (the clock is
// then read at every decision). Close stops the timer. It
// reports each key's probability and its decisions as metrics
// (README.md's Telemetry reference lists the names). Spans with a parent
// follow it: the rate is held at the roots.
//
// # Pitfalls
//
//   - Sample at the root, and follow the parent everywhere else
//     (ParentThreshold, which Adaptive does for children): a rule that
//     decides children by itself cuts traces apart.
//   - Do not mix with sdktrace.TraceIDRatioBased in one system: it reads
//     different bits of the trace ID, and writes no threshold, so its
//     decisions are not consistent with these.
//   - A trace ID's last 7 bytes must be random, as the W3C random flag
//     promises and every OpenTelemetry SDK makes them; give an explicit rv
//     in the tracestate otherwise.
//   - In Jaeger and other backends, a span kept at probability p stands
//     for 1/p spans: weigh counts by the th in its tracestate, or by the
//     probability metric, not by the raw number of spans.
package sampling
