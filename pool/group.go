package pool

import (
	"context"
	"errors"
	"sync"
)

// A Group is a set of tasks that run on a pool's workers and are waited for
// together: errgroup's pattern, inside the pool's bound and its telemetry.
// Make one with WorkerPool.Group or Tasks.Group for each set of tasks; it
// is waited for once.
//
// By default the first task to fail cancels the group's context, tasks
// that have not started by then are skipped (counted as canceled), and
// Wait returns that first error. With CollectAll every task runs and Wait
// returns all their errors, joined.
//
// A Group is safe for concurrent use. Its tasks may add tasks to it; that
// Go blocks while the pool's queue is full, like a Go from anywhere else,
// so tasks that only wait for room their own group holds can fill a small
// queue: add from outside the group, or size the queue for it.
type Group struct {
	ctx     context.Context
	cancel  context.CancelCauseFunc
	pool    groupPool
	collect bool
	nilCtx  bool // made with a nil context: every Go fails
	// tc is the context every task of the group runs with: the group's,
	// merged with the pool's, made once for the group rather than per task.
	// Wait releases it.
	tc taskContext

	mu      sync.Mutex
	pending int           // tasks handed to Go that have not finished
	idle    chan struct{} // made by Wait when it must block; closed at pending == 0
	waited  bool          // Wait has returned: Go is refused
	first   error         // fail fast: the first error
	errs    []error       // CollectAll: every error, in the order the tasks ended
}

// groupPool is what a Group needs of its pool, whatever the pool's types.
type groupPool interface {
	goGroup(g *Group, fn func(context.Context) error) error
	baseContext() context.Context
}

// A GroupOption configures a Group.
type GroupOption interface{ applyGroup(*Group) }

var errGroupWaited = errors.New("pool: Group.Go after Wait: a group is waited for once; make a new one")

func newGroup(ctx context.Context, p groupPool, opts []GroupOption) *Group {
	g := &Group{pool: p}
	if ctx == nil {
		ctx, g.nilCtx = context.Background(), true
	}
	g.ctx, g.cancel = context.WithCancelCause(ctx)
	g.tc.Context, g.tc.base = g.ctx, p.baseContext()
	for _, o := range opts {
		if o != nil {
			o.applyGroup(g)
		}
	}
	return g
}

// Group returns a new, empty Group of tasks that run on p's workers with a
// context derived from ctx. A nil ctx makes a group whose every Go fails
// with a nil-context error, which Wait returns.
func (p *WorkerPool[In, Out]) Group(ctx context.Context, opts ...GroupOption) *Group {
	return newGroup(ctx, p, opts)
}

// Go runs fn on one of the pool's workers, with the group's context. It
// blocks while the queue is full, and fails when the group's context ends
// first (the group failed, or its parent was cancelled), the pool closes
// (ErrClosed) or Wait has returned. A task that could not be queued counts
// as a failed task of the group, so Wait reports it even when Go's own
// error is ignored.
func (g *Group) Go(fn func(context.Context) error) error {
	if fn == nil {
		return errors.New("pool: Group.Go(nil): the task function must not be nil")
	}
	g.mu.Lock()
	if g.waited {
		g.mu.Unlock()
		return errGroupWaited
	}
	g.pending++
	g.mu.Unlock()
	err := g.skip()
	if err == nil {
		err = g.pool.goGroup(g, fn)
	}
	if err != nil {
		g.done(err)
		return err
	}
	return nil
}

// Wait waits for every task handed to Go, cancels the group's context, and
// returns the group's error: the first task error, or with CollectAll all
// of them joined (nil when every task succeeded).
func (g *Group) Wait() error {
	g.mu.Lock()
	for g.pending > 0 { // tasks may still add tasks while Wait waits
		g.idle = make(chan struct{})
		idle := g.idle
		g.mu.Unlock()
		<-idle
		g.mu.Lock()
	}
	g.waited = true
	g.tc.release()
	err := g.first
	if g.collect {
		err = errors.Join(g.errs...)
	}
	g.mu.Unlock()
	g.cancel(context.Canceled)
	return err
}

// done ends one task of the group with err.
func (g *Group) done(err error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if err != nil {
		switch {
		case g.collect:
			g.errs = append(g.errs, err)
		case g.first == nil:
			g.first = err
			g.cancel(err)
		}
	}
	if g.pending--; g.pending == 0 && g.idle != nil {
		close(g.idle)
		g.idle = nil
	}
}

// skip returns why a task of the group must not start, or nil: the group
// was made with a nil context, it has failed (fail fast: its first error),
// or its parent context has ended.
func (g *Group) skip() error {
	switch {
	case g.nilCtx:
		return errNilContext
	case g.ctx.Err() != nil:
		return context.Cause(g.ctx)
	}
	return nil
}

func (p *WorkerPool[In, Out]) goGroup(g *Group, fn func(context.Context) error) error {
	j := job[In, Out]{fn: fn, group: g, ctx: &g.tc}
	p.prepare(g.ctx, &j, nil)
	return p.enqueue(g.ctx, j, true)
}

func (p *WorkerPool[In, Out]) baseContext() context.Context { return p.base }
