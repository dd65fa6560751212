package errs

import (
	"errors"
	"sync"
)

// Collector gathers errors from concurrent work and joins them, with the
// semantics of [errors.Join]. Its zero value is ready to use and it is safe
// for concurrent use; it must not be copied after first use.
//
//	var c errs.Collector
//	for _, item := range items {
//		wg.Go(func() { c.Add(handle(ctx, item)) })
//	}
//	wg.Wait()
//	return c.Err()
type Collector struct {
	mu   sync.Mutex
	errs []error
}

// Add records err; a nil err is ignored.
func (c *Collector) Add(err error) {
	if err == nil {
		return
	}
	c.mu.Lock()
	c.errs = append(c.errs, err)
	c.mu.Unlock()
}

// Err returns the errors added so far, in the order they were added, joined
// with [errors.Join]. It returns nil when none were added. The returned
// error does not change when more are added later.
func (c *Collector) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return errors.Join(c.errs...)
}

// Len returns the number of errors added so far.
func (c *Collector) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.errs)
}
