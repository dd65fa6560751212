package owned

import (
	"context"
	"sync"
	"time"
)

// retained is an ended work that the set forgets at a time.
type retained struct {
	id string
	at time.Time
}

// Retain makes the set forget each work that Ended reports, through
// forget, d after it ended; d <= 0 keeps ended work for ever. Call it
// before the first Ended.
//
// One goroutine does the forgetting, counted as the set's, while any is
// due: it starts at the first Ended after an idle spell and returns once
// nothing is left to forget, or when Close begins. forget's errors are
// dropped: what was not forgotten stays on record, which loses nothing.
func (s *Set[T]) Retain(d time.Duration, forget func(ctx context.Context, id string) error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.retain, s.forget = d, forget
}

// Ended reports that id's work ended and is on record, so that the set
// forgets it once the retention period has passed.
func (s *Set[T]) Ended(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.retain <= 0 || s.closed {
		return
	}
	// Every work waits the same d, so the queue stays sorted by time.
	s.due = append(s.due, retained{id: id, at: time.Now().Add(s.retain)})
	if !s.forgetting {
		s.forgetting = true
		if s.closing == nil {
			s.closing = make(chan struct{})
		}
		if s.forgetCtx == nil {
			s.forgetCtx, s.stopForget = context.WithCancel(context.Background())
		}
		s.wg.Add(1)
		go s.forgetDue(s.forgetCtx, s.closing)
	}
}

// forgetBatch bounds the forgets made at once: a journal shares one write
// among concurrent calls (group commit), so forgetting one at a time would
// fall behind a runner that ends work as fast as the journal writes.
const forgetBatch = 128

// forgetDue forgets the queued work as it falls due, up to forgetBatch at
// once, until none is left or closing closes. ctx ends when Close begins,
// so that the forgets in flight then give up.
func (s *Set[T]) forgetDue(ctx context.Context, closing <-chan struct{}) {
	defer s.wg.Done()
	var timer *time.Timer
	for {
		s.mu.Lock()
		if len(s.due) == 0 || s.closed {
			s.forgetting = false
			s.mu.Unlock()
			return
		}
		now := time.Now()
		n := 0
		for n < len(s.due) && n < forgetBatch && !s.due[n].at.After(now) {
			n++
		}
		batch := s.due[:n:n]
		next := s.due[0].at
		s.mu.Unlock()
		if n == 0 {
			if timer == nil {
				timer = time.NewTimer(next.Sub(now))
				defer timer.Stop()
			} else {
				timer.Reset(next.Sub(now))
			}
			select {
			case <-timer.C:
			case <-closing: // the next turn returns
			}
			continue
		}
		var wg sync.WaitGroup
		for _, r := range batch {
			wg.Go(func() { _ = s.forget(ctx, r.id) })
		}
		wg.Wait()
		s.mu.Lock()
		clear(s.due[:n])
		s.due = s.due[n:]
		s.mu.Unlock()
	}
}
