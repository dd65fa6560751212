package pool

import (
	"context"
	"sync"
)

// inTaskKey is the context key under which a task's context names the pool
// that runs it, so a task that submits to its own full pool is detected.
type inTaskKey struct{}

// taskContext is a task's context: the values and the deadline of the
// context it was submitted with, cancelled also when Shutdown gives up on
// the pool's running tasks. Merging the two cancellations needs a channel
// and two callbacks, which are made only if the task asks for Done.
type taskContext struct {
	context.Context                 // the submitter's
	base            context.Context // the pool's: names it, cancelled by Shutdown

	once  sync.Once
	done  chan struct{}
	stops [2]func() bool
}

func (c *taskContext) Done() <-chan struct{} {
	if c.Context.Done() == nil {
		return c.base.Done()
	}
	c.once.Do(func() {
		c.done = make(chan struct{})
		closeDone := sync.OnceFunc(func() { close(c.done) })
		c.stops[0] = context.AfterFunc(c.Context, closeDone)
		c.stops[1] = context.AfterFunc(c.base, closeDone)
	})
	if c.done == nil { // asked for only after the task returned
		return c.base.Done()
	}
	return c.done
}

func (c *taskContext) Err() error {
	if err := c.base.Err(); err != nil {
		return err
	}
	return c.Context.Err()
}

func (c *taskContext) Value(key any) any {
	if key == (inTaskKey{}) {
		return c.base.Value(key)
	}
	return c.Context.Value(key)
}

// release stops the callbacks that Done set up, once the task has ended. A
// task's context is not meant to be used after the task returns; if it is,
// its Done reports only the pool's Shutdown.
func (c *taskContext) release() {
	c.once.Do(func() {}) // orders this after any setup in Done, and bars later ones
	for _, stop := range c.stops {
		if stop != nil {
			stop()
		}
	}
}
