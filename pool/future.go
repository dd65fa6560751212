package pool

import (
	"context"
	"sync/atomic"
)

// Future is the result of a task handed to Submit or TrySubmit. It is safe
// for concurrent use: any number of goroutines may Wait.
type Future[Out any] struct {
	done atomic.Bool
	// wake is empty until someone must block: then it holds the channel
	// (a chan struct{}) that completion closes; after completion it holds
	// closedChan. A channel is pointer-shaped, so storing it allocates
	// nothing beyond the channel.
	wake atomic.Value
	out  Out
	err  error
	// helper is set for a task submitted by a task of the same pool (see
	// Wait); nil otherwise.
	helper *helper
}

// helper lets a task that waits for a future of its own pool run the
// future's task itself, if no worker has claimed it yet.
type helper struct {
	owner   any    // the pool
	run     func() // runs the task on the calling goroutine
	claimed atomic.Bool
}

// futureTask is a future and its task's context, allocated together.
type futureTask[Out any] struct {
	f  Future[Out]
	tc taskContext
}

// closedChan is what a finished future's Done returns when nobody asked
// before it finished.
var closedChan = func() chan struct{} {
	ch := make(chan struct{})
	close(ch)
	return ch
}()

// Wait waits for the task to finish and returns its result. If ctx ends
// first, Wait returns the zero Out and an error that matches ctx's; the task
// goes on, and a later Wait can still collect it.
//
// A task that waits, with its own context, for a task it submitted to its
// own pool runs that task itself if no worker has started it yet. So tasks
// that fan out into the pool and wait for the results never deadlock, even
// when every worker is waiting.
func (f *Future[Out]) Wait(ctx context.Context) (Out, error) {
	if f.done.Load() {
		return f.out, f.err
	}
	if ctx == nil {
		var zero Out
		return zero, errNilContext
	}
	if h := f.helper; h != nil && ctx.Value(inTaskKey{}) == h.owner {
		h.run() // runs the task unless a worker has claimed it
	}
	select {
	case <-f.Done():
		return f.out, f.err
	case <-ctx.Done():
		var zero Out
		return zero, ctx.Err()
	}
}

// Done returns a channel that is closed when the task has finished. The
// channel is made only when someone asks for it before the task finishes,
// so a future that is waited on after its task is done makes none.
func (f *Future[Out]) Done() <-chan struct{} {
	if ch, ok := f.wake.Load().(chan struct{}); ok {
		return ch
	}
	ch := make(chan struct{})
	if f.wake.CompareAndSwap(nil, ch) {
		return ch
	}
	return f.wake.Load().(chan struct{}) // another waiter's, or closedChan
}

// claim reports whether the caller is the one to run the task: always,
// unless a waiter may help (see Wait), and then only for the first to ask.
func (f *Future[Out]) claim() bool {
	return f.helper == nil || f.helper.claimed.CompareAndSwap(false, true)
}

func (f *Future[Out]) complete(out Out, err error) {
	f.out, f.err = out, err
	if ch, ok := f.wake.Swap(closedChan).(chan struct{}); ok {
		close(ch)
	}
	f.done.Store(true) // last: once it is seen, Done is closed too
}
