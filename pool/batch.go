package pool

import (
	"context"
	"iter"
	"sync"

	"go.opentelemetry.io/otel/trace"

	"github.com/otelpatterns/otelpatterns/errs"
	"github.com/otelpatterns/otelpatterns/internal/ordered"
	"github.com/otelpatterns/otelpatterns/internal/telemetry"
)

// Process runs process over items on the pool's workers and returns the
// results in the items' order. It blocks until every item is done.
//
// By default the first error cancels the context of the items in flight,
// starts no more, and is returned; with CollectAll every item runs and all
// errors are returned joined. On error, out[i] still holds item i's result
// if it succeeded. When ctx ends, items not yet started are skipped and
// Process returns, once the items in flight have returned, with an error
// that matches ctx's.
//
// The batch has one pool.process span; each item gets a pool.task span only
// with WithItemSpans. Items share the pool's bound with every other task:
// up to one runner a worker claims items in turn, so a batch costs one
// queue hand-off per worker, not per item.
func (p *WorkerPool[In, Out]) Process(ctx context.Context, items []In, opts ...BatchOption) ([]Out, error) {
	if ctx == nil {
		return nil, errNilContext
	}
	bc := newBatchConfig(opts)
	ctx, span := p.inst.tel.Tracer.Start(ctx, spanProcess, trace.WithAttributes(p.inst.name, keyBatchSize.Int(len(items))))
	defer span.End()
	if len(items) == 0 {
		return []Out{}, nil
	}
	if p.isClosed() {
		errs.Record(span, ErrClosed)
		return nil, ErrClosed
	}
	itemCtx, stop := p.itemContext(ctx)
	defer stop()

	runners := max(1, min(int(p.target.Load()), len(items)))
	var failures tally
	b := ordered.NewBatch(itemCtx, items, runners, bc.mode(), p.item(bc, &failures))
	p.launch(ctx, b, runners, true)
	out, err := b.Wait()
	p.countBatch(b.Ran(), &failures)
	errs.Record(span, err)
	return out, err
}

// ProcessSeq runs process over the items of seq on the pool's workers and
// yields each result with its error, in the items' order (or as they
// finish, with Unordered). It pulls items as workers free up, holding at
// most twice the worker count pulled and not yet yielded, so it suits
// inputs too large to hold in memory.
//
// Errors are handled as in Process: by default the first error is the last
// thing yielded. Breaking out of the range cancels the items in flight and
// stops pulling from seq. The run has one pool.process span, from the first
// item pulled to the last yielded.
func (p *WorkerPool[In, Out]) ProcessSeq(ctx context.Context, seq iter.Seq[In], opts ...BatchOption) iter.Seq2[Out, error] {
	bc := newBatchConfig(opts)
	return func(yield func(Out, error) bool) {
		if ctx == nil {
			var zero Out
			yield(zero, errNilContext)
			return
		}
		ctx, span := p.inst.tel.Tracer.Start(ctx, spanProcess, trace.WithAttributes(p.inst.name))
		defer span.End()
		if p.isClosed() {
			errs.Record(span, ErrClosed)
			var zero Out
			yield(zero, ErrClosed)
			return
		}
		itemCtx, stop := p.itemContext(ctx)
		defer stop()

		runners := max(1, int(p.target.Load()))
		var failures tally
		s := ordered.NewStream(itemCtx, seq, runners, 2*runners, bc.mode(), !bc.unordered, p.item(bc, &failures))
		p.launch(ctx, s, runners, false)
		defer func() { p.countBatch(s.Ran(), &failures) }()
		failed := errs.Collector{Limit: ordered.KeptErrors} // for the span, over a sequence of any length
		for out, err := range s.Results() {
			failed.Add(err)
			if !yield(out, err) {
				break
			}
		}
		errs.Record(span, failed.Err())
	}
}

// itemContext derives the context of a batch's items. Like a single task's,
// it names the pool (so items that submit to it are tasks of it) and is
// cancelled also when Shutdown gives up on the running tasks.
func (p *WorkerPool[In, Out]) itemContext(ctx context.Context) (context.Context, func()) {
	ctx, cancel := context.WithCancel(context.WithValue(ctx, inTaskKey{}, p))
	unregister := context.AfterFunc(p.base, cancel)
	return ctx, func() {
		unregister()
		cancel()
	}
}

func (bc batchConfig) mode() ordered.Mode {
	if bc.collectAll {
		return ordered.CollectAll
	}
	return ordered.FailFast
}

// launch queues a batch's runners, abandoning any that cannot be queued.
//
// A batch started from a task of this pool must not wait for a queue that
// the pool's own busy workers may never empty. So its runners are queued
// only if there is room, and for Process (help) the calling worker, which
// already holds a running slot, works on the batch itself: the batch always
// makes progress.
//
// ctx is the caller's: whether it is a task of this pool decides the above.
func (p *WorkerPool[In, Out]) launch(ctx context.Context, r runner, runners int, help bool) {
	inTask := ctx.Value(inTaskKey{}) == p
	if inTask && help {
		runners--
		defer r.Work(nil)
	}
	for i := range runners {
		if err := p.enqueue(ctx, job[In, Out]{ctx: ctx, runner: r}, !inTask); err != nil {
			for range runners - i {
				r.Abandon(err)
			}
			return
		}
	}
}

// item is the function a batch runs for each item. Items that succeed are
// counted once, at the end of the batch (countBatch); the rare failures are
// counted as they happen, in failures, under failMu.
func (p *WorkerPool[In, Out]) item(bc batchConfig, failures *tally) ordered.Func[In, Out] {
	var failMu sync.Mutex
	return func(ctx context.Context, _ int, in In) (Out, error) {
		var out Out
		err := p.call(ctx, telemetry.Stopwatch{}, bc.itemSpans && p.inst.tel.Fine(ctx), func(ctx context.Context) (err error) {
			out, err = p.process(ctx, in)
			return err
		})
		if err != nil {
			failMu.Lock()
			failures.count(err)
			failMu.Unlock()
		}
		return out, err
	}
}

// countBatch adds a batch's items to the pool's counts: ran of them ran,
// and failures holds those that failed.
func (p *WorkerPool[In, Out]) countBatch(ran int, failures *tally) {
	p.submitted.Add(uint64(ran))
	failures.completed = uint64(ran) - failures.tasks
	p.stats.add(failures)
}
