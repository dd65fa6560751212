package pool

import "context"

// Tasks is a pool for closures: a bounded set of workers that run tasks of
// any shape, one at a time with Go or as a Group. It is a WorkerPool without
// a process function, so it has no Submit or Process to misuse; everything
// else (the bound, the queue, contexts, telemetry, Resize and the shutdown
// rules) is the WorkerPool's.
type Tasks struct {
	p *WorkerPool[struct{}, struct{}]
}

// NewTasks returns a running pool for closures. It takes the options of New
// and fails, saying which to fix, when one is out of range.
func NewTasks(opts ...Option) (*Tasks, error) {
	p, err := New(func(context.Context, struct{}) (struct{}, error) { return struct{}{}, nil }, opts...)
	if err != nil {
		return nil, err
	}
	return &Tasks{p: p}, nil
}

// Go queues fn to run on one of the workers, as WorkerPool.Go does.
func (t *Tasks) Go(ctx context.Context, fn func(context.Context) error) error { return t.p.Go(ctx, fn) }

// Group returns a new Group of tasks that run on t's workers, as
// WorkerPool.Group does.
func (t *Tasks) Group(ctx context.Context, opts ...GroupOption) *Group {
	return newGroup(ctx, t.p, opts)
}

// Resize sets the number of workers, as WorkerPool.Resize does.
func (t *Tasks) Resize(n int) error { return t.p.Resize(n) }

// Stats returns the pool's counts, as WorkerPool.Stats does.
func (t *Tasks) Stats() Stats { return t.p.Stats() }

// Close stops the intake and waits for the queued tasks, as
// WorkerPool.Close does.
func (t *Tasks) Close() error { return t.p.Close() }

// Shutdown stops the intake and waits until ctx ends, as
// WorkerPool.Shutdown does.
func (t *Tasks) Shutdown(ctx context.Context) error { return t.p.Shutdown(ctx) }
