// Package ordered is the ordered-worker engine that pool.Process,
// functional.ParallelMap and the concurrency stages all run on: work applied
// to many items by a bounded set of runners, with results in input order,
// fail-fast or collect-all errors, panics returned as errors, and prompt,
// leak-free cancellation.
//
// The engine does not start goroutines itself. Its caller decides where the
// runners run: functional starts its own goroutines, pool runs them as tasks
// on its workers, so the pool's bound holds for batches too. Each runner the
// caller promised must end in exactly one call of Work (it ran) or Abandon
// (it never will), so the engine knows when no one is left to do the work.
//
//   - [Batch] runs over a slice. Runners claim items by index with one atomic
//     add, so an item costs little more than the call of its function, and
//     results are written in place.
//   - [Stream] runs over an iter.Seq of unknown length, with a bounded window
//     of items in flight, and yields results in input order or as they come.
package ordered

// MaxBuffer bounds every size the library makes a channel or a set of
// goroutines from (a queue, a channel's capacity, a stage's buffer, a number
// of workers): a larger one is a constructor error that says so, never a
// "makechan: size out of range" panic, nor millions of goroutines started
// for a sequence that may hold ten items.
const MaxBuffer = 1 << 24

// KeptErrors is how many of a sequence's errors a span records in
// collect-all mode; the rest are counted. Every error is still yielded.
const KeptErrors = 8
