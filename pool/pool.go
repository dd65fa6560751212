package pool

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"golang.org/x/time/rate"

	"github.com/otelpatterns/otelpatterns/internal/telemetry"
)

var (
	// ErrClosed is returned by every call that submits work after Close or
	// Shutdown, and by Resize after them.
	ErrClosed = errors.New("pool: closed")
	// ErrQueueFull is returned by TrySubmit when the queue has no room; the
	// task is counted as dropped.
	ErrQueueFull = errors.New("pool: queue full")
	// ErrRateLimited: the pool's rate limit (WithRateLimit) would not let
	// the task start before its context's deadline. The error matches
	// context.DeadlineExceeded too, and counts as outcome rate_limited.
	ErrRateLimited = errors.New("pool: rate limited: the task could not start before its deadline")
)

// WorkerPool runs tasks on a bounded set of workers, fed by a bounded queue.
// Its workers call one function, process, for the inputs handed to Submit,
// TrySubmit, Process and ProcessSeq; Go runs tasks of any shape on the same
// workers. At most the configured number of tasks run at once.
//
// A WorkerPool is safe for concurrent use. Close or Shutdown it when done:
// its workers are goroutines that live until then.
type WorkerPool[In, Out any] struct {
	// Read on every task, written only at start and by Resize.
	process func(context.Context, In) (Out, error)
	limiter *rate.Limiter
	inst    *instruments
	queue   chan job[In, Out]
	target  atomic.Int64 // workers wanted
	live    atomic.Int64 // workers alive
	// base is the context of every task submitted with context.Background():
	// it names the pool, and Shutdown cancels it when it gives up, which
	// cancels every running task. Other tasks' contexts merge it in.
	base       context.Context
	killTasks  context.CancelFunc
	discardErr atomic.Pointer[error] // set when Shutdown gives up: queued tasks fail with it
	gateWait   atomic.Int64          // workers waiting in admit, after a Resize down
	_          cacheLinePad

	// Written by submitters. A submit holds intake for reading while it
	// hands a task over; closing takes it for writing, so no task enters
	// after closed is set and the queue can be closed.
	intake    sync.RWMutex
	closed    bool
	submitted atomic.Uint64
	dropped   atomic.Uint64
	_         cacheLinePad

	// Written by workers now and then: flushed counts, the resize gate.
	stats     counts
	gateMu    sync.Mutex
	gateCond  sync.Cond
	resizeMu  sync.Mutex // guards workerSet and worker births and deaths
	workerSet map[*worker]struct{}
	workers   sync.WaitGroup

	stopping  chan struct{} // closed first on close: wakes submitters blocked on a full queue
	exited    chan struct{} // closed when every worker has exited after close
	closeOnce sync.Once
	unobserve func()
}

type cacheLinePad [64]byte

// job is one entry of the queue: a task for process (with a future, from
// Submit, or not), a task of its own shape (fn, from Go), or a batch runner.
// The zero job wakes an idle worker (see Resize).
type job[In, Out any] struct {
	ctx    context.Context
	in     In
	fut    *Future[Out]
	fn     func(context.Context) error
	runner runner
	group  *Group // the Group the task belongs to, if any
	waited telemetry.Stopwatch
	traced bool // decided at submission: the task gets a pool.task span
}

// runner is a batch's share of work: ordered.Batch and ordered.Stream.
type runner interface {
	Work(pause func())
	Abandon(error)
}

// New returns a running pool whose workers call process for each input.
// It fails, saying which option to fix, when process is nil or an option is
// out of range.
func New[In, Out any](process func(context.Context, In) (Out, error), opts ...Option) (*WorkerPool[In, Out], error) {
	if process == nil {
		return nil, errors.New("pool: New(nil): the process function must not be nil")
	}
	cfg, err := newConfig(opts)
	if err != nil {
		return nil, err
	}
	p := &WorkerPool[In, Out]{
		process:   process,
		limiter:   cfg.limiter,
		inst:      newInstruments(cfg.tel, cfg.name),
		queue:     make(chan job[In, Out], cfg.queueSize),
		workerSet: make(map[*worker]struct{}, cfg.workers),
		stopping:  make(chan struct{}),
		exited:    make(chan struct{}),
	}
	base, kill := context.WithCancel(context.Background())
	p.base, p.killTasks = context.WithValue(base, inTaskKey{}, p), kill
	p.gateCond.L = &p.gateMu
	p.target.Store(int64(cfg.workers))
	p.resizeMu.Lock()
	p.spawn(cfg.workers)
	p.resizeMu.Unlock()
	p.unobserve = p.inst.observe(func() int64 { return int64(len(p.queue)) }, p.busy)
	return p, nil
}

// Resize sets the number of workers to n while the pool runs. Going up, new
// workers start at once. Going down, running tasks are never interrupted:
// no new task starts while n or more are running, and the extra workers
// exit as they become idle.
func (p *WorkerPool[In, Out]) Resize(n int) error {
	if n <= 0 {
		return fmt.Errorf("pool: Resize(%d): the number of workers must be at least 1", n)
	}
	p.intake.RLock() // held so that the pool cannot close while workers are added
	defer p.intake.RUnlock()
	if p.closed {
		return ErrClosed
	}
	p.resizeMu.Lock()
	old := p.target.Swap(int64(n))
	if missing := int64(n) - p.live.Load(); missing > 0 {
		p.spawn(int(missing))
	}
	p.resizeMu.Unlock()
	for range max(0, old-int64(n)) { // wake idle workers to retire; busy ones retire when done
		select {
		case p.queue <- job[In, Out]{}:
		default:
		}
	}
	p.gateMu.Lock()
	p.gateCond.Broadcast()
	p.gateMu.Unlock()
	return nil
}

// Close stops the intake (later submits fail with ErrClosed), runs every
// task already queued, and returns when all workers have exited. It is
// idempotent and always returns nil.
func (p *WorkerPool[In, Out]) Close() error {
	p.shut()
	<-p.exited
	return nil
}

// Shutdown stops the intake like Close and waits for the queue to drain
// until ctx ends. Then it gives up: tasks still queued fail with ctx's error
// without running, and the contexts of the running tasks are cancelled.
// Shutdown returns when every worker has exited, with nil if the queue
// drained and ctx's error if it gave up; tasks must honour their context
// for it to return promptly. It is idempotent.
func (p *WorkerPool[In, Out]) Shutdown(ctx context.Context) error {
	if ctx == nil {
		return errNilContext
	}
	p.shut()
	select {
	case <-p.exited:
		return nil
	case <-ctx.Done():
	}
	err := ctx.Err()
	p.discardErr.CompareAndSwap(nil, &err)
	p.killTasks()
	<-p.exited
	return err
}

// isClosed reports whether the intake is closed. A batch checks it first:
// once closed, the pool's base context is cancelled too, and a batch would
// otherwise report that instead of ErrClosed.
func (p *WorkerPool[In, Out]) isClosed() bool {
	p.intake.RLock()
	defer p.intake.RUnlock()
	return p.closed
}

// shut closes the intake and then the queue, once.
func (p *WorkerPool[In, Out]) shut() {
	p.closeOnce.Do(func() {
		close(p.stopping)
		p.intake.Lock()
		p.closed = true
		close(p.queue)
		p.intake.Unlock()
		go func() {
			p.workers.Wait()
			p.unobserve()
			p.killTasks()
			close(p.exited)
		}()
	})
}
