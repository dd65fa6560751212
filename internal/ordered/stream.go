package ordered

import (
	"context"
	"errors"
	"iter"
	"sync"
	"sync/atomic"

	"github.com/otelpatterns/otelpatterns/errs"
)

// Stream applies a Func to the items of an iter.Seq on runners, with at most
// a window of items pulled and not yet yielded, and yields the results in
// input order (or as they finish, when unordered).
//
// The input is pulled by the runners themselves, one at a time, so the
// sequence's code runs on the runners' goroutines but never concurrently
// with itself. A sequence that blocks should watch the context it was made
// with, or the stream cannot stop before it yields.
type Stream[In, Out any] struct {
	parent  context.Context
	ctx     context.Context
	cancel  context.CancelFunc
	fn      Func[In, Out]
	mode    Mode
	ordered bool
	window  int

	slots   chan struct{}    // one token per item pulled and not yet yielded
	results chan result[Out] // closed when the last runner ends
	runners atomic.Int64     // runners that have neither worked nor been abandoned
	ran     atomic.Int64     // items that ran, added as runners end

	mu        sync.Mutex // guards the pull, and the fields below
	next      func() (In, bool)
	stop      func()
	pulled    int
	closed    bool          // nothing more will be pulled
	exhausted bool          // the sequence ended by itself
	active    int           // runners inside Work
	idle      chan struct{} // closed when active reaches 0 after closed
	abandoned error         // why a runner never ran
}

type result[Out any] struct {
	i   int
	out Out
	err error
}

// NewStream prepares fn over seq for the given number of runners (at least
// one) and window (at least the number of runners). Results must then be
// ranged over exactly once, which also ends the stream.
func NewStream[In, Out any](ctx context.Context, seq iter.Seq[In], runners, window int, mode Mode, ordered bool, fn Func[In, Out]) *Stream[In, Out] {
	runners = max(runners, 1)
	window = max(window, runners)
	s := &Stream[In, Out]{
		parent: ctx, fn: fn, mode: mode, ordered: ordered, window: window,
		slots:   make(chan struct{}, window),
		results: make(chan result[Out], window),
	}
	s.ctx, s.cancel = context.WithCancel(ctx)
	s.runners.Store(int64(runners))
	s.next, s.stop = iter.Pull(seq)
	return s
}

// Work is a runner's body: it pulls and runs items until the sequence ends
// or the stream stops. Call it at most once per promised runner. pause, if
// not nil, is called between items, as in Batch.Work.
func (s *Stream[In, Out]) Work(pause func()) {
	defer s.endRunner()
	if !s.enter() {
		return
	}
	defer s.leave()
	var ran int64
	defer func() { s.ran.Add(ran) }()
	for first := true; ; first = false {
		if !first && pause != nil {
			pause()
		}
		select {
		case s.slots <- struct{}{}:
		case <-s.ctx.Done():
			return
		}
		i, in, ok, err := s.pull()
		if !ok {
			<-s.slots
			return
		}
		var out Out
		if err == nil {
			err = errs.Try(func() (err error) {
				out, err = s.fn(s.ctx, i, in)
				return err
			})
			ran++
		}
		select {
		case s.results <- result[Out]{i: i, out: out, err: err}:
		case <-s.ctx.Done():
			return
		}
	}
}

// Ran returns how many items ran (whatever their result). It is exact once
// Results has returned.
func (s *Stream[In, Out]) Ran() int { return int(s.ran.Load()) }

// AddRunner promises one more runner. Call it from a runner inside Work
// (the sequence's own code runs there), so that the count of runners
// cannot have reached zero: for a caller that starts runners as the items
// come, not all at first.
func (s *Stream[In, Out]) AddRunner() { s.runners.Add(1) }

// Abandon tells the stream that one promised runner will never run, because
// of err. If no runner ever ran, the stream yields err.
func (s *Stream[In, Out]) Abandon(err error) {
	s.mu.Lock()
	if s.abandoned == nil {
		s.abandoned = err
	}
	s.mu.Unlock()
	s.endRunner()
}

func (s *Stream[In, Out]) endRunner() {
	if s.runners.Add(-1) == 0 {
		close(s.results)
	}
}

func (s *Stream[In, Out]) enter() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.active++
	return true
}

func (s *Stream[In, Out]) leave() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.active--
	if s.active == 0 && s.idle != nil {
		close(s.idle)
		s.idle = nil
	}
}

// pull takes the next item. A panic in the sequence's own code comes back
// as err, with ok true so that it takes its place in the results.
func (s *Stream[In, Out]) pull() (i int, in In, ok bool, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return 0, in, false, nil
	}
	err = errs.Try(func() error {
		in, ok = s.next()
		return nil
	})
	if err != nil {
		s.closed, s.exhausted = true, true
		return s.pulled, in, true, err
	}
	if !ok {
		s.closed, s.exhausted = true, true
		return 0, in, false, nil
	}
	s.pulled++
	return s.pulled - 1, in, true, nil
}

// Results yields the results: (out, nil) for an item that succeeded, and
// (zero, err) for one that failed. In FailFast mode the first error is the
// last thing yielded. When the stream's context is cancelled, its error is
// yielded last. Breaking out of the range stops the stream. Results returns
// only after every runner inside the stream has left it.
func (s *Stream[In, Out]) Results() iter.Seq2[Out, error] {
	return func(yield func(Out, error) bool) {
		defer s.shutdown()
		var zero Out
		// In-flight indices lie in [nextOut, nextOut+window), so a ring of
		// window slots holds every result that arrived early.
		ring := make([]result[Out], s.window)
		have := make([]bool, s.window)
		nextOut := 0
		for {
			var r result[Out]
			var ok bool
			select {
			case r, ok = <-s.results:
			case <-s.parent.Done():
				yield(zero, s.parent.Err())
				return
			}
			if !ok {
				if err := s.unfinished(); err != nil {
					yield(zero, err)
				}
				return
			}
			if r.err != nil && s.mode == FailFast {
				yield(zero, r.err)
				return
			}
			if !s.ordered {
				if !s.yield(yield, r) {
					return
				}
				continue
			}
			ring[r.i%s.window], have[r.i%s.window] = r, true
			for have[nextOut%s.window] {
				r := ring[nextOut%s.window]
				ring[nextOut%s.window], have[nextOut%s.window] = result[Out]{}, false
				nextOut++
				if !s.yield(yield, r) {
					return
				}
			}
		}
	}
}

// yield hands r to the consumer, and only then frees its slot in the
// window, so that no more than the window is pulled and not yet consumed.
func (s *Stream[In, Out]) yield(yield func(Out, error) bool, r result[Out]) bool {
	ok := yield(r.out, r.err)
	<-s.slots
	return ok
}

// unfinished is the error to yield when every runner has ended but the
// sequence was not read to its end: the context's, when it ended (runners
// stop on it, so the results may close before the consumer sees it), or
// why the runners never ran.
func (s *Stream[In, Out]) unfinished() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.exhausted {
		return nil
	}
	if err := s.parent.Err(); err != nil {
		return err
	}
	if s.abandoned != nil {
		return s.abandoned
	}
	return errors.New("ordered: stream ended before its input")
}

// shutdown stops the runners, waits for those inside Work to leave, and
// releases the sequence.
func (s *Stream[In, Out]) shutdown() {
	s.cancel()
	s.mu.Lock()
	s.closed = true
	var idle chan struct{}
	if s.active > 0 {
		idle = make(chan struct{})
		s.idle = idle
	}
	s.mu.Unlock()
	if idle != nil {
		<-idle
	}
	s.mu.Lock()
	s.stop()
	s.mu.Unlock()
}
