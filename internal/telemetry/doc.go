// Package telemetry is the one place in otelpatterns that turns options into
// tracers, meters and instruments, and that holds the rules every package
// follows when it emits telemetry:
//
//   - [Config]: the providers and propagators from options, nil ignored,
//     globals by default; each package's options.go is a thin face over it.
//   - [New] and [Cache]: a tracer and a meter per constructor, scoped to the
//     package's import path with [Version] and [SchemaURL]; for package-level
//     generic functions, built once per provider and reused.
//   - [Telemetry.Fine] and [Telemetry.StartFine]: fine-grained work gets a
//     span only under a recording parent, unless root spans were asked for.
//   - [Measuring] and [Stopwatch]: no clock read and no attribute built
//     unless a span records or an instrument is enabled.
//   - [Links]: fan-in spans link to at most [MaxLinks] inputs and record the
//     true count.
//   - [Prefix], [DurationBuckets] and the instrument helpers: the naming and
//     the units of every metric; [Outcome], which classifies how work
//     ended (it reads errs, the one floor below this package).
//
// It imports errs (floor 1) and is imported by every package above it.
package telemetry
