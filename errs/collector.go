package errs

import (
	"errors"
	"fmt"
	"slices"
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
//
// Set Limit to keep memory bounded over inputs of any length: the
// collector then keeps the first Limit errors and only counts the rest.
type Collector struct {
	// Limit is the most errors kept; 0 keeps every one. Set it before
	// first use.
	Limit int

	mu    sync.Mutex
	errs  []error
	extra int // added beyond Limit
}

// Add records err; a nil err is ignored.
func (c *Collector) Add(err error) {
	if err == nil {
		return
	}
	c.mu.Lock()
	if c.Limit > 0 && len(c.errs) >= c.Limit {
		c.extra++
	} else {
		c.errs = append(c.errs, err)
	}
	c.mu.Unlock()
}

// Err returns the errors added so far, in the order they were added, joined
// with [errors.Join], and, past Limit, an error that says how many more
// were added. It returns nil when none were added. The returned error does
// not change when more are added later.
func (c *Collector) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.extra > 0 {
		return errors.Join(append(slices.Clip(c.errs), fmt.Errorf("errs: and %d more errors", c.extra))...)
	}
	return errors.Join(c.errs...)
}

// Len returns the number of errors added so far, those beyond Limit
// included.
func (c *Collector) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.errs) + c.extra
}
