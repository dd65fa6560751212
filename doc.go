// Package otelpatterns is a library of generic concurrency and
// distributed-transaction patterns for Go services, with OpenTelemetry
// tracing and metrics built in and right by construction: spans parented to
// the request that caused the work, errors recorded once, metrics with
// bounded attributes, no goroutine that outlives its owner, and durable
// state that survives a crash.
//
// # Packages
//
// Each package is one pattern; import the ones you need.
//
//   - [github.com/otelpatterns/otelpatterns/errs]: TracedError, the one way to
//     record an error on a span, panic capture.
//   - [github.com/otelpatterns/otelpatterns/pool]: WorkerPool, bounded and
//     generic, with futures, batches and graceful shutdown.
//   - [github.com/otelpatterns/otelpatterns/functional]: Map, Filter, Reduce
//     over slices and iter.Seq; ParallelMap; Result.
//   - [github.com/otelpatterns/otelpatterns/retry]: retry policies with backoff
//     and jitter, retry budgets.
//   - [github.com/otelpatterns/otelpatterns/retry/breaker]: a circuit breaker,
//     alone or under a retry policy.
//   - [github.com/otelpatterns/otelpatterns/concurrency]: TracedChannel, trace
//     context across goroutines.
//   - [github.com/otelpatterns/otelpatterns/concurrency/pipeline]: typed
//     pipelines, fan-out, fan-in, batching.
//   - [github.com/otelpatterns/otelpatterns/concurrency/singleflight]: typed
//     call de-duplication.
//   - [github.com/otelpatterns/otelpatterns/journal]: the durable write-ahead
//     log that saga and twophase share.
//   - [github.com/otelpatterns/otelpatterns/saga]: a durable Saga runner:
//     steps, compensation, recovery after a crash.
//   - [github.com/otelpatterns/otelpatterns/twophase]: a two-phase-commit
//     coordinator with presumed abort and recovery, and its HTTP transport.
//   - [github.com/otelpatterns/otelpatterns/sampling]: consistent, composable
//     and adaptive samplers for the SDK.
//
// Start with the quickstart, a guided tour of every package that prints its
// traces as trees: go -C examples run ./quickstart, in a clone of the
// module. The examples directory also holds a shop's order saga and a
// bank's transfers, runnable against any OpenTelemetry backend.
//
// # Passing providers
//
// Every constructor, and every generic function that emits telemetry,
// accepts WithTracerProvider and WithMeterProvider options (and
// WithPropagators where context crosses a boundary that serialises it). A
// nil provider is ignored; when none is given the global one from
// go.opentelemetry.io/otel is used. The library never imports the
// OpenTelemetry SDK (but for package sampling, whose samplers are the SDK's
// type, so that only programs that import it link the SDK through it): the
// application owns the providers, their exporters and their shutdown.
//
//	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exporter))
//	defer tp.Shutdown(context.Background())
//	p, err := pool.New(resize, pool.WithTracerProvider(tp), pool.WithMeterProvider(mp))
//
// # What is traced
//
// Coarse operations (a saga, a two-phase commit, a batch) always get a
// span. Fine-grained work (one pool task, one channel value, one retry
// attempt) gets a span only when the span in its context is recording, so
// with telemetry off, or for requests a sampler dropped, the hot paths start
// no span, read no clock and build no attribute. Failures are recorded with
// errs.Record: status Error and an error.type attribute, never status Ok.
//
// Every span, attribute and metric name the library emits is listed in the
// "Telemetry reference" of the module's README, and the tests check that
// the code emits exactly those names.
package otelpatterns
