package pool

import (
	"context"
	"fmt"
	"runtime"
	"sync/atomic"

	"github.com/otelpatterns/otelpatterns/errs"
	"github.com/otelpatterns/otelpatterns/internal/telemetry"
)

// worker is one worker goroutine's state. Only its goroutine writes it, so
// a task costs no write to memory that other workers share; its counts are
// flushed to the pool's when it runs out of work, and at least every
// flushEvery tasks.
type worker struct {
	busy    atomic.Bool
	tally   tally
	pauseFn func() // p.pause for this worker, made once
	_       cacheLinePad
}

const flushEvery = 256

// spawn starts n workers. resizeMu is held.
func (p *WorkerPool[In, Out]) spawn(n int) {
	for range n {
		w := &worker{}
		w.pauseFn = func() { p.pause(w) }
		p.workerSet[w] = struct{}{}
		p.live.Add(1)
		p.workers.Add(1)
		go p.work(w)
	}
}

// work is a worker's loop. It waits for work with a bare receive from the
// queue, the cheapest wait there is: Close closes the queue once no submit
// can reach it, and Resize wakes idle workers with zero jobs.
func (p *WorkerPool[In, Out]) work(w *worker) {
	defer p.workers.Done()
	for {
		if p.retire(w) {
			return
		}
		if w.tally.tasks >= flushEvery {
			p.stats.add(&w.tally)
		}
		j, ok := p.next(w)
		if !ok {
			p.resizeMu.Lock()
			p.leave(w)
			p.resizeMu.Unlock()
			return
		}
		if j.ctx == nil {
			continue // woken to retire
		}
		p.execute(w, j)
	}
}

// next receives the next job. When the queue is empty, the worker yields
// the processor a few times before it sleeps, and flushes its counts just
// before: a submitter that shares the processor often refills the queue
// meanwhile, and a sleeping worker costs a wake-up to each submit.
func (p *WorkerPool[In, Out]) next(w *worker) (job[In, Out], bool) {
	select {
	case j, ok := <-p.queue:
		return j, ok
	default:
	}
	for range idleSpins {
		runtime.Gosched()
		select {
		case j, ok := <-p.queue:
			return j, ok
		default:
		}
	}
	p.stats.add(&w.tally)
	j, ok := <-p.queue
	return j, ok
}

// idleSpins is how many times an idle worker yields before it sleeps.
const idleSpins = 4

// retire ends this worker if there are more than the target. The check is
// made again under resizeMu, so that Resize, which counts the live workers
// under it, never misses one that is retiring.
func (p *WorkerPool[In, Out]) retire(w *worker) bool {
	if p.live.Load() <= p.target.Load() {
		return false
	}
	p.resizeMu.Lock()
	defer p.resizeMu.Unlock()
	if p.live.Load() <= p.target.Load() {
		return false
	}
	p.leave(w)
	return true
}

// leave flushes the worker's counts and removes it. resizeMu is held.
func (p *WorkerPool[In, Out]) leave(w *worker) {
	p.stats.add(&w.tally)
	delete(p.workerSet, w)
	p.live.Add(-1)
}

// busy counts the workers running a task.
func (p *WorkerPool[In, Out]) busy() int64 {
	p.resizeMu.Lock()
	defer p.resizeMu.Unlock()
	var n int64
	for w := range p.workerSet {
		if w.busy.Load() {
			n++
		}
	}
	return n
}

// execute runs one job on worker w, inside the running bound.
func (p *WorkerPool[In, Out]) execute(w *worker, j job[In, Out]) {
	if errp := p.discardErr.Load(); errp != nil {
		p.reject(j, *errp)
		return
	}
	p.admit(w)
	p.run(j, &w.tally, w.pauseFn)
	p.release(w)
}

// admit marks w busy. Workers pass at once unless the pool has more
// workers than its target, which happens only after a Resize down until the
// extra workers have exited; then w waits until fewer than the target run.
// w is marked busy before the check, so a Resize that lowers the target
// after it counts w as already running.
func (p *WorkerPool[In, Out]) admit(w *worker) {
	w.busy.Store(true)
	if p.live.Load() <= p.target.Load() {
		return
	}
	p.gateMu.Lock()
	p.gateWait.Add(1)
	for p.busy() > p.target.Load() {
		w.busy.Store(false)
		p.gateCond.Wait()
		w.busy.Store(true)
	}
	p.gateWait.Add(-1)
	p.gateMu.Unlock()
}

// release marks w idle, and wakes the workers waiting in admit.
func (p *WorkerPool[In, Out]) release(w *worker) {
	w.busy.Store(false)
	if p.gateWait.Load() > 0 {
		p.gateMu.Lock()
		p.gateCond.Broadcast()
		p.gateMu.Unlock()
	}
}

// pause lets a batch runner on w obey a Resize down between items, as
// single tasks do between tasks.
func (p *WorkerPool[In, Out]) pause(w *worker) {
	if p.live.Load() > p.target.Load() {
		p.release(w)
		p.admit(w)
	}
}

// run runs a job on a goroutine that is already admitted: a worker, or a
// task that submitted to its own full pool. It counts the task in t; pause
// is for batch runners (see pause).
func (p *WorkerPool[In, Out]) run(j job[In, Out], t *tally, pause func()) {
	if j.runner != nil {
		j.runner.Work(pause)
		return
	}
	if j.fut != nil && !j.fut.claim() {
		return // a waiting task ran it already
	}
	if j.group != nil {
		if err := j.group.skip(); err != nil {
			p.reject(j, err) // the group failed while the task waited
			return
		}
	}
	p.inst.recordWait(j.ctx, j.waited)
	var out Out
	err := p.call(j.ctx, j.waited, j.traced, func(ctx context.Context) (err error) {
		if j.fn != nil {
			return j.fn(ctx)
		}
		out, err = p.process(ctx, j.in)
		return err
	})
	t.count(err)
	if tc, ok := j.ctx.(*taskContext); ok && j.group == nil { // a group's is released by Wait
		tc.release()
	}
	if j.fut != nil {
		j.fut.complete(out, err)
	}
	if j.group != nil {
		j.group.done(err)
	}
}

// call runs one task or batch item: rate limit, span, panic capture and
// metrics.
func (p *WorkerPool[In, Out]) call(ctx context.Context, waited telemetry.Stopwatch, traced bool, fn func(context.Context) error) error {
	span := telemetry.NoSpan
	if traced {
		ctx, span = p.inst.startTask(ctx, waited)
	}
	ran := telemetry.StartStopwatch(telemetry.Measuring(ctx, span, p.inst.duration))
	var err error
	if p.limiter != nil && p.limiter.Wait(ctx) != nil {
		err = ctx.Err() // canceled, or the deadline passed while it waited
		if err == nil { // the wait would outlast the deadline: it never began
			err = fmt.Errorf("%w: %w", ErrRateLimited, context.DeadlineExceeded)
		}
	}
	if err == nil {
		err = errs.Try(func() error { return fn(ctx) })
	}
	p.inst.finish(ctx, span, ran, err)
	return err
}

// reject fails a job that will never run.
func (p *WorkerPool[In, Out]) reject(j job[In, Out], err error) {
	if j.runner != nil {
		j.runner.Abandon(err)
		return
	}
	if j.fut != nil && !j.fut.claim() {
		return // a waiting task ran it already
	}
	p.stats.canceled.Add(1)
	p.inst.count(j.ctx, telemetry.OutcomeCanceled)
	if tc, ok := j.ctx.(*taskContext); ok && j.group == nil { // a group's is released by Wait
		tc.release()
	}
	if j.fut != nil {
		var zero Out
		j.fut.complete(zero, err)
	}
	if j.group != nil {
		j.group.done(err)
	}
}
