// Package owned keeps the work that a runner owns, by ID, and the
// goroutines that drive it: the saga runner's sagas and the two-phase-commit
// coordinator's transactions share the rules here. At most one piece of
// work is live per ID; Close waits for the goroutines, and when its ctx
// ends first, stops the work and returns at once: a goroutine stuck in a
// call that does not heed its ctx (a hung disk) must not hang Close too.
// A stopped work makes no further call, so its goroutine returns as soon
// as the call it is in does.
package owned

import (
	"context"
	"sync"
	"time"
)

// Set is the live work of a runner, by ID. The zero Set is ready to use.
type Set[T comparable] struct {
	mu      sync.Mutex
	byID    map[string]T
	closed  bool
	closing chan struct{} // closed when Close begins
	wg      sync.WaitGroup

	// Retention (retention.go).
	retain     time.Duration
	forget     func(ctx context.Context, id string) error
	due        []retained // by time
	forgetting bool       // forgetDue is running
	forgetCtx  context.Context
	stopForget context.CancelFunc
}

// Closing returns a channel that is closed when Close begins: work waiting
// to try again gives up at once.
func (s *Set[T]) Closing() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing == nil {
		s.closing = make(chan struct{})
	}
	return s.closing
}

// Claim makes t the live work of id and counts one goroutine for it (see
// Done), unless id has live work already, which it returns with claimed
// false, or the set is closed (open false).
func (s *Set[T]) Claim(id string, t T) (live T, claimed, open bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return live, false, false
	}
	if live, ok := s.byID[id]; ok {
		return live, false, true
	}
	if s.byID == nil {
		s.byID = map[string]T{}
	}
	s.byID[id] = t
	s.wg.Add(1)
	return t, true, true
}

// Get returns the live work of id.
func (s *Set[T]) Get(id string) (T, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.byID[id]
	return t, ok
}

// Live returns the IDs of the live work and the work, in no order.
func (s *Set[T]) Live() (ids []string, work []T) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for id, t := range s.byID {
		ids, work = append(ids, id), append(work, t)
	}
	return ids, work
}

// Release forgets t, if it is still the live work of id.
func (s *Set[T]) Release(id string, t T) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.byID[id] == t {
		delete(s.byID, id)
	}
}

// Add counts one more goroutine, which calls Done when it returns.
func (s *Set[T]) Add() { s.wg.Add(1) }

// Done uncounts a goroutine counted by Claim or Add.
func (s *Set[T]) Done() { s.wg.Done() }

// Close refuses new claims, closes Closing, and waits for every counted
// goroutine until ctx ends; then it calls stop for each live work and
// returns ctx's error without waiting again. Close is idempotent: a later
// call returns nil at once (it does not wait again for goroutines that a
// first Close may have stopped and left in a call that hangs).
func (s *Set[T]) Close(ctx context.Context, stop func(T)) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	if s.closing == nil {
		s.closing = make(chan struct{})
	}
	close(s.closing)
	if s.stopForget != nil {
		s.stopForget()
	}
	s.mu.Unlock()
	done := make(chan struct{})
	go func() {
		s.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
	}
	s.mu.Lock()
	for _, t := range s.byID {
		stop(t)
	}
	s.mu.Unlock()
	return ctx.Err()
}
