package ordered

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"

	"github.com/otelpatterns/otelpatterns/errs"
)

// Func is the work applied to one item; i is the item's index in its input.
type Func[In, Out any] func(ctx context.Context, i int, in In) (Out, error)

// Mode chooses what an error does to the rest of the work.
type Mode uint8

const (
	// FailFast stops at the first error: no item starts after it, the
	// context of the items in flight is cancelled, and the error is returned.
	FailFast Mode = iota
	// CollectAll runs every item and returns every error, joined with
	// errors.Join in input order.
	CollectAll
)

// claimedAll is stored in next when the remaining items are taken away from
// the runners; any later claim is past the end.
const claimedAll = int64(1) << 62

// Batch applies a Func to every item of a slice, on runners that claim
// items in turn, and writes each result at its item's index.
type Batch[In, Out any] struct {
	ctx    context.Context
	cancel context.CancelCauseFunc
	parent context.Context
	in     []In
	out    []Out
	fn     Func[In, Out]
	mode   Mode

	next      atomic.Int64 // the next index to claim
	ran       atomic.Int64 // items that ran, added as runners end
	remaining atomic.Int64 // items not yet settled: run, or skipped
	runners   atomic.Int64 // runners that have neither worked nor been abandoned
	done      chan struct{}

	mu      sync.Mutex
	first   error   // FailFast: the first error
	errs    []error // CollectAll: errors by index, made on the first error
	skipped error   // why items were left unrun, if they were
}

// NewBatch prepares fn over in for the given number of runners (at least
// one; the caller should not promise more runners than items). The items see
// a context derived from ctx, cancelled at the first error in FailFast mode.
func NewBatch[In, Out any](ctx context.Context, in []In, runners int, mode Mode, fn Func[In, Out]) *Batch[In, Out] {
	b := &Batch[In, Out]{parent: ctx, in: in, out: make([]Out, len(in)), fn: fn, mode: mode, done: make(chan struct{})}
	b.ctx, b.cancel = context.WithCancelCause(ctx)
	b.remaining.Store(int64(len(in)))
	b.runners.Store(int64(max(runners, 1)))
	if len(in) == 0 {
		close(b.done)
	}
	return b
}

// Work is a runner's body: it claims and runs items until none is left or
// the batch stops. Call it at most once per promised runner. pause, if not
// nil, is called between items: a pool uses it to hold a runner back after
// a resize down.
func (b *Batch[In, Out]) Work(pause func()) {
	n := int64(len(b.in))
	var ran int64
	for b.ctx.Err() == nil {
		if ran > 0 && pause != nil {
			pause()
		}
		i := b.next.Add(1) - 1
		if i >= n {
			break
		}
		b.run(int(i))
		ran++
	}
	b.ran.Add(ran)
	b.runners.Add(-1)
	b.settle(ran)
}

// Ran returns how many items ran (whatever their result). It is exact after
// Wait.
func (b *Batch[In, Out]) Ran() int { return int(b.ran.Load()) }

// Abandon tells the batch that one promised runner will never run, because
// of err (the pool was shut down, say). When no runner is left, the items
// nobody claimed fail with err.
func (b *Batch[In, Out]) Abandon(err error) {
	if b.runners.Add(-1) == 0 {
		b.skipRest(err)
	}
}

// Wait waits for every item to be settled and returns the results, indexed
// as the input, and the error. When ctx (the one given to NewBatch) is
// cancelled, the items not yet started are skipped, the items in flight
// see the cancellation, and Wait returns once they have returned, with an
// error that matches ctx's. out[i] holds item i's result when it succeeded,
// and the zero value otherwise.
func (b *Batch[In, Out]) Wait() ([]Out, error) {
	select {
	case <-b.done:
	case <-b.parent.Done():
		b.skipRest(b.parent.Err())
		<-b.done
	}
	b.cancel(nil)
	return b.out, b.err()
}

func (b *Batch[In, Out]) run(i int) {
	var out Out
	err := errs.Try(func() (err error) {
		out, err = b.fn(b.ctx, i, b.in[i])
		return err
	})
	if err == nil {
		b.out[i] = out
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.mode == CollectAll {
		if b.errs == nil {
			b.errs = make([]error, len(b.in))
		}
		b.errs[i] = err
		return
	}
	if b.first == nil {
		b.first = err
		b.cancel(err)
		b.skipLocked(nil)
	}
}

// skipRest takes the unclaimed items away from the runners and settles them,
// unrun, because of why.
func (b *Batch[In, Out]) skipRest(why error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.skipLocked(why)
}

func (b *Batch[In, Out]) skipLocked(why error) {
	claimed := min(b.next.Swap(claimedAll), int64(len(b.in)))
	if unrun := int64(len(b.in)) - claimed; unrun > 0 {
		if b.skipped == nil {
			b.skipped = why
		}
		b.settle(unrun)
	}
}

func (b *Batch[In, Out]) settle(k int64) {
	if k > 0 && b.remaining.Add(-k) == 0 {
		close(b.done)
	}
}

// err is the batch's error: the first one in FailFast mode; every item's,
// in input order, in CollectAll mode; and why items were skipped, if any
// were.
func (b *Batch[In, Out]) err() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.first != nil {
		return b.first
	}
	if b.errs != nil {
		return errors.Join(append(b.errs, b.skipped)...)
	}
	return b.skipped
}
