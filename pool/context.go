package pool

import (
	"context"
	"sync"
	"sync/atomic"
)

// inTaskKey is the context key under which a task's context names the pool
// that runs it, so a task that submits to its own full pool is detected.
type inTaskKey struct{}

// taskContext is a task's context: the values and the deadline of the
// context it was submitted with, cancelled also when Shutdown gives up on
// the pool's running tasks. Merging the two cancellations needs a channel
// and two callbacks, which are made only if the task asks for Done.
//
// It keeps the whole context.Context contract for as long as anyone holds
// it, also after the task returned (a child it started may still run):
// Err is non-nil exactly when Done is closed. Once the task has returned
// (release), Shutdown no longer concerns it; from then on it ends only
// with the submitter's context, so that the pool's context does not hold
// a callback per finished task. It implements AfterFunc, so contexts
// derived from it in a task start no goroutine to follow it.
type taskContext struct {
	context.Context                 // the submitter's
	base            context.Context // the pool's: names it, cancelled by Shutdown

	mu       sync.Mutex
	done     chan struct{} // the merged Done, made on first use
	stopBase func() bool   // the callback on base that closes done
	detached bool          // the task returned: base no longer ends it
	viaBase  bool          // Done is base's own (the submitter's never ends): base always ends it
	baseErr  atomic.Pointer[error]
}

func (c *taskContext) Done() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case c.done != nil:
		return c.done
	case c.viaBase:
		return c.base.Done()
	case c.Context.Done() == nil && !c.detached && c.baseErr.Load() == nil:
		// Only Shutdown can end it, for good: base's channel serves,
		// with nothing to set up or to release.
		c.viaBase = true
		return c.base.Done()
	case c.baseErr.Load() == nil && c.Context.Done() == nil && c.detached:
		return nil // nothing can end it any more
	}
	c.done = make(chan struct{})
	closeDone := sync.OnceFunc(func() { close(c.done) })
	endedByBase := func() {
		if !c.baseEnds() && c.baseErr.Load() == nil {
			return // the task returned first: Shutdown no longer ends it
		}
		err := c.base.Err()
		c.baseErr.CompareAndSwap(nil, &err)
		closeDone()
	}
	switch {
	case c.baseErr.Load() != nil:
		closeDone()
		return c.done
	case !c.detached && c.base.Err() != nil:
		err := c.base.Err()
		c.baseErr.CompareAndSwap(nil, &err)
		closeDone()
		return c.done
	case c.Context.Err() != nil:
		closeDone()
		return c.done
	}
	if c.Context.Done() != nil {
		context.AfterFunc(c.Context, closeDone)
	}
	if !c.detached {
		c.stopBase = context.AfterFunc(c.base, endedByBase)
	}
	return c.done
}

// Err says why the context ended: Shutdown, while the task ran, or the
// submitter's context. It is non-nil by the time Done is closed.
func (c *taskContext) Err() error {
	if err := c.baseErr.Load(); err != nil {
		return *err // Shutdown ended it while the task ran
	}
	if err := c.Context.Err(); err != nil {
		return err
	}
	if c.baseEnds() {
		return c.base.Err()
	}
	return nil
}

// baseEnds reports whether Shutdown still ends the context.
func (c *taskContext) baseEnds() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return !c.detached || c.viaBase
}

func (c *taskContext) Value(key any) any {
	if key == (inTaskKey{}) {
		return c.base.Value(key)
	}
	return c.Context.Value(key)
}

// AfterFunc runs f, on a goroutine of its own, once the context is done,
// and its stop reports whether it kept f from running, as
// context.AfterFunc does. The context package calls it to follow a task's
// context from the contexts derived from it, which then need no goroutine.
func (c *taskContext) AfterFunc(f func()) (stop func() bool) {
	var state atomic.Int32 // 0: waiting, 1: ran, 2: stopped
	run := func() {
		if state.CompareAndSwap(0, 1) {
			f()
		}
	}
	var stops [2]func() bool
	if c.Context.Done() != nil {
		stops[0] = context.AfterFunc(c.Context, run)
	}
	if c.baseEnds() {
		stops[1] = context.AfterFunc(c.base, func() {
			if !c.baseEnds() && c.baseErr.Load() == nil {
				return // the task returned first: Shutdown no longer ends it
			}
			err := c.base.Err()
			c.baseErr.CompareAndSwap(nil, &err) // before f, which asks Err
			run()
		})
	} else if c.baseErr.Load() != nil {
		go run() // ended already
	}
	return func() bool {
		for _, s := range stops {
			if s != nil {
				s()
			}
		}
		return state.CompareAndSwap(0, 2)
	}
}

// release is called once the task has returned: from then on only the
// submitter's context ends the task's, unless Shutdown already did.
func (c *taskContext) release() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.detached {
		return
	}
	if c.base.Err() != nil && c.baseErr.Load() == nil {
		// Shutdown ended the task: it stays ended.
		err := c.base.Err()
		c.baseErr.Store(&err)
	}
	c.detached = true
	if c.stopBase != nil {
		c.stopBase()
	}
}
