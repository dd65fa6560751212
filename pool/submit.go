package pool

import (
	"context"
	"errors"

	"github.com/otelpatterns/otelpatterns/internal/telemetry"
)

// Submit queues process(ctx, in) and returns its future. It blocks while
// the queue is full, and returns early with an error when ctx ends (one that
// matches ctx's) or the pool closes (ErrClosed).
//
// The task runs with a context that carries ctx's values, deadline and
// cancellation, so its pool.task span is a child of the span in ctx; the
// context is also cancelled if Shutdown gives up on running tasks.
//
// A task that submits to its own pool, passing its own context, never
// deadlocks on a full queue: the new task then runs at once on the
// submitting worker.
func (p *WorkerPool[In, Out]) Submit(ctx context.Context, in In) (*Future[Out], error) {
	if ctx == nil {
		return nil, errNilContext
	}
	j := p.futureJob(ctx, in)
	if ctx.Value(inTaskKey{}) == p { // a task submits: let its Wait help (see Future.Wait)
		j.fut.helper = &helper{owner: p, run: func() { p.runHere(j) }}
	}
	if err := p.enqueue(ctx, j, true); err != nil {
		return nil, err
	}
	return j.fut, nil
}

// TrySubmit queues process(ctx, in) if the queue has room, and never
// blocks. A task it refuses is counted as dropped, and it returns
// ErrQueueFull (or ErrClosed, or ctx's error when ctx has ended).
func (p *WorkerPool[In, Out]) TrySubmit(ctx context.Context, in In) (*Future[Out], error) {
	if ctx == nil {
		return nil, errNilContext
	}
	// Under overload most offers are refused: refuse those before making a
	// future for them. A queue that looks full may have room a moment later;
	// that offer is refused all the same, as it would have been a moment
	// earlier.
	if cap(p.queue) > 0 && len(p.queue) == cap(p.queue) && !p.isClosed() {
		return nil, p.drop(ctx)
	}
	j := p.futureJob(ctx, in)
	if err := p.enqueue(ctx, j, false); err != nil {
		if err == ErrQueueFull {
			return nil, p.drop(ctx)
		}
		return nil, err
	}
	return j.fut, nil
}

// drop counts a task that TrySubmit refused, and returns ErrQueueFull.
func (p *WorkerPool[In, Out]) drop(ctx context.Context) error {
	p.dropped.Add(1)
	p.inst.count(ctx, telemetry.OutcomeDropped)
	return ErrQueueFull
}

// Go queues fn, a task of any shape, to run on the pool's workers. It
// blocks and returns like Submit. The task's error is not returned to the
// caller, who has no future to read it from: it is recorded on the task's
// span, in the metrics and in Stats. To collect errors, use Submit, or have
// fn report them.
func (p *WorkerPool[In, Out]) Go(ctx context.Context, fn func(context.Context) error) error {
	if fn == nil {
		return errors.New("pool: Go(ctx, nil): the task function must not be nil")
	}
	if ctx == nil {
		return errNilContext
	}
	j := job[In, Out]{fn: fn}
	p.prepare(ctx, &j, nil)
	return p.enqueue(ctx, j, true)
}

// futureJob makes the job of a task with a future: one allocation, the
// future, with room for the task's context when it needs one.
func (p *WorkerPool[In, Out]) futureJob(ctx context.Context, in In) job[In, Out] {
	j := job[In, Out]{in: in}
	if ctx == context.Background() {
		j.fut = new(Future[Out])
		p.prepare(ctx, &j, nil)
	} else {
		ft := new(futureTask[Out])
		j.fut = &ft.f
		p.prepare(ctx, &j, &ft.tc)
	}
	return j
}

var errNilContext = errors.New("pool: nil context: pass context.Background() if there is none")

// prepare gives the job its context, decides whether it gets a span (now,
// at submission: a task that outlives its submitter's span, as one from a
// handler that returns does, still belongs to its trace), and starts the
// queue-wait stopwatch if anyone will read it. context.Background() becomes the pool's base context
// as it is; any other context is wrapped, in tc when the caller has one to
// spare (a future's), or in a new one. A Group's tasks come with the
// context they share.
func (p *WorkerPool[In, Out]) prepare(ctx context.Context, j *job[In, Out], tc *taskContext) {
	switch {
	case j.ctx != nil: // a Group's context, shared by its tasks
	case ctx == context.Background():
		j.ctx = p.base
	default:
		if tc == nil {
			tc = new(taskContext)
		}
		tc.Context, tc.base = ctx, p.base
		j.ctx = tc
	}
	j.traced = p.inst.tel.Fine(ctx)
	j.waited = telemetry.StartStopwatch(j.traced || p.inst.queueWait.Enabled(ctx))
}

// enqueue hands j to the queue. With block, it waits for room until ctx
// ends or the pool closes; a task of this pool that finds its queue full
// runs j itself instead.
func (p *WorkerPool[In, Out]) enqueue(ctx context.Context, j job[In, Out], block bool) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	p.intake.RLock()
	if p.closed {
		p.intake.RUnlock()
		return ErrClosed
	}
	select {
	case p.queue <- j:
		p.intake.RUnlock()
		p.accepted(j)
		return nil
	default:
	}
	if !block {
		p.intake.RUnlock()
		return ErrQueueFull
	}
	if ctx.Value(inTaskKey{}) == p {
		p.intake.RUnlock()
		p.accepted(j)
		p.runHere(j)
		return nil
	}
	select {
	case p.queue <- j:
		p.intake.RUnlock()
		p.accepted(j)
		return nil
	case <-ctx.Done():
		p.intake.RUnlock()
		return ctx.Err()
	case <-p.stopping:
		p.intake.RUnlock()
		return ErrClosed
	}
}

// runHere runs j on the calling goroutine, a task of this pool that
// already holds a running slot.
func (p *WorkerPool[In, Out]) runHere(j job[In, Out]) {
	var t tally
	p.run(j, &t, nil)
	p.stats.add(&t)
}

func (p *WorkerPool[In, Out]) accepted(j job[In, Out]) {
	if j.runner == nil {
		p.submitted.Add(1)
	}
}
