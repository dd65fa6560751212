// Package functional is Map, Filter and Reduce for Go services: over
// slices, lazily over iter.Seq, and in parallel, with contexts, errors and
// OpenTelemetry where they earn their cost.
//
// # The forms
//
//   - Slices: Map, Filter and Reduce take a plain function; MapErr,
//     FilterErr and ReduceErr take one that gets ctx and can fail, and stop
//     at the first error. All look at ctx every few hundred items, so a
//     cancelled request stops a long loop without the check dominating a
//     cheap function.
//   - Iterators: MapSeq, FilterSeq, ReduceSeq and their Seq2 forms are lazy
//     and compose with slices.Values, maps.All, slices.Collect and the rest
//     of the standard library; breaking out of a range stops the source.
//     MapSeqErr is the form for functions that can fail.
//   - Parallel: ParallelMap, ParallelFilter and ParallelForEach run a slice
//     on a bounded number of goroutines (never one per item) and keep the
//     input order; ParallelMapSeq does the same for an iter.Seq. The first
//     error cancels the rest unless CollectAll asks for every error. A
//     panic comes back as an *errs.PanicError. They run on the same
//     ordered-worker engine as pool.Process.
//   - Result: a value or its error, for where a (T, error) pair cannot
//     travel: channels, iterators, slices of outcomes. (T, error) stays the
//     way to return from a function.
//
// # Telemetry, and what it costs
//
// A span around a loop over ten items costs more than the loop and floods
// a backend, so:
//
//   - the parallel functions always make one span per call
//     (functional.parallel_map, _filter, _for_each) with the item count, the
//     concurrency and the outcome, and record the call's duration; a
//     parallel call is worth a span, and costs a few microseconds anyway;
//   - the sequential functions make a span (functional.map, .filter,
//     .reduce) only with WithSpan; without options they allocate nothing
//     beyond their result and cost a plain loop's time plus a function call
//     per item; built with a profile that shows the call hot (go build
//     -pgo), they cost a plain loop's time, since the compiler then inlines
//     the whole call and the function in it;
//   - the lazy forms emit nothing: they are plumbing.
//
// The instruments are built once per provider and shared by every call, so
// passing WithTracerProvider on each call is cheap.
package functional
