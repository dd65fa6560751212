// Package pool is a bounded, generic worker pool with OpenTelemetry built
// in: a fixed set of workers calls one function for the inputs it is given,
// with futures, batches, fan-out from inside tasks, resizing and graceful
// shutdown.
//
// # Using it
//
// Build a pool around the function its workers run, submit inputs, and
// close it when done:
//
//	p, err := pool.New(resize, pool.WithWorkers(8), pool.WithName("thumbnails"),
//		pool.WithTracerProvider(tp), pool.WithMeterProvider(mp))
//	if err != nil { ... }
//	defer p.Close()
//
//	f, err := p.Submit(ctx, img)     // blocks while the queue is full
//	thumb, err := f.Wait(ctx)
//
//	thumbs, err := p.Process(ctx, imgs) // a batch, results in input order
//
// Submit returns a Future; TrySubmit never blocks and drops what does not
// fit; Go runs a task of any shape on the same workers; Process and
// ProcessSeq run a slice or an iter.Seq and return results in input order.
//
// For closures alone, NewTasks makes a pool with no process function. On
// either kind, Group makes errgroup's pattern: tasks added with Go, waited
// for with Wait, which returns the first error (the first failure cancels
// the group's context and skips the tasks that have not started) or, with
// CollectAll, all of them:
//
//	p, err := pool.NewTasks(pool.WithWorkers(8))
//	...
//	g := p.Group(ctx)
//	for _, url := range urls {
//		g.Go(func(ctx context.Context) error { return fetch(ctx, url) })
//	}
//	err = g.Wait()
//
// At most the configured number of tasks run at once, and the queue is
// always bounded, so a pool is backpressure as well as concurrency.
//
// # Contexts and traces
//
// A task runs with the context it was submitted with: its values, its
// deadline and its cancellation, and Shutdown's too. So a task's pool.task
// span is a child of the request that submitted it, not of the worker, and
// a log line written in the task carries the request's trace. The span is
// started only when that parent span is recording (or WithRootSpans asks
// for it), so untraced work pays nothing for it. A batch has one
// pool.process span; per-item spans are opt-in with WithItemSpans, since a
// span per item of a large batch floods a backend.
//
// # Tasks that submit tasks
//
// A task may submit to its own pool with its own context, and wait for the
// results, without deadlocking even when every worker does so at once: a
// submit that finds the queue full runs the new task on the submitting
// worker, a Wait for a task that no worker has started runs it there too,
// and a Process started by a task works on its batch itself. The bound
// holds throughout: those tasks run in the slot of the task that waits.
// Submitting with a context that is not the task's (context.Background(),
// say) opts out of this and may wait for room like any other caller.
//
// # Pitfalls
//
//   - Tasks must honour their context for Shutdown to return promptly.
//   - Close and Shutdown wait for the workers, so a task must not call them
//     on its own pool.
//   - Go has no future: a task's error is recorded on its span, in the
//     metrics and in Stats, but not returned. Use Submit or a Group to
//     collect it.
//   - Call a Group's Wait: it releases what the group holds in the pool.
//   - WithName labels metrics, so keep names to a small fixed set.
//   - Counts in Stats may trail by the tasks just finished while the pool
//     runs; they are exact once it is closed.
//
// # Cost
//
// With telemetry off (no-op providers, or no recording parent) the pool
// starts no span, reads no clock and builds no attribute. A task submitted
// with Submit or Go costs one hand-off through a channel, as with every
// peer; a Process item costs one atomic add more than its function call.
// See the module's README for the measured figures and the peers they are
// compared with.
package pool
