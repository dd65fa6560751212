package pipeline

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"sync"
	"sync/atomic"
	"time"

	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/otelpatterns/otelpatterns/errs"
	"github.com/otelpatterns/otelpatterns/internal/ordered"
	"github.com/otelpatterns/otelpatterns/internal/telemetry"
)

// Stage is a named step of a pipeline, from In to Out.
type Stage[In, Out any] struct {
	name      string
	fn        func(context.Context, In) (Out, error)
	workers   int
	buffer    int
	unordered bool
}

// NewStage returns a stage that applies fn. It fails, naming what to fix,
// when the name is empty, fn is nil, or a count is out of range.
func NewStage[In, Out any](name string, fn func(context.Context, In) (Out, error), opts ...StageOption) (*Stage[In, Out], error) {
	c := stageConfig{workers: 1}
	for _, o := range opts {
		if o != nil {
			o.applyStage(&c)
		}
	}
	if !c.bufferSet {
		c.buffer = c.workers
	}
	switch {
	case name == "":
		return nil, errors.New(`pipeline: NewStage(""): a stage needs a name; it labels its spans and metrics`)
	case fn == nil:
		return nil, fmt.Errorf("pipeline: NewStage(%q, nil): the function must not be nil", name)
	case c.workers < 1 || c.workers > ordered.MaxBuffer:
		return nil, fmt.Errorf("pipeline: stage %q: WithWorkers(%d): the workers must be 1 to %d", name, c.workers, ordered.MaxBuffer)
	case c.buffer < 0 || c.buffer > ordered.MaxBuffer:
		return nil, fmt.Errorf("pipeline: stage %q: WithBuffer(%d): the buffer must be 0 to %d", name, c.buffer, ordered.MaxBuffer)
	}
	return &Stage[In, Out]{name: name, fn: fn, workers: c.workers, buffer: c.buffer, unordered: c.unordered}, nil
}

// item is a value on its way through a pipeline, with the span context of
// its last hop.
type item[T any] struct {
	v  T
	sc trace.SpanContext
}

// Flow is the values between two parts of a pipeline. Pass it to Then,
// FanOut, Merge or Batch, or read it with All. A Flow is read once.
type Flow[T any] struct {
	run *run
	ch  chan item[T]
}

// run is what the parts of one pipeline share.
type run struct {
	parent   context.Context // the caller's
	broke    atomic.Bool     // the reader broke out of All
	ctx      context.Context
	cancel   context.CancelCauseFunc
	span     trace.Span
	inst     *pipelineInstruments
	collect  bool
	items    bool
	wg       sync.WaitGroup
	failed   atomic.Int64
	failures errs.Collector // the values' failures, with CollectAll
	first    atomic.Pointer[error]
	endOnce  sync.Once
	observed []func()
	obsMu    sync.Mutex
}

// fromBuffer is how many values From buffers ahead of the first stage (the
// package doc says why).
const fromBuffer = 64

// From starts a pipeline named name whose values come from seq. The run
// has one "pipeline {name}" span, under ctx's span, from here until the
// last Flow is read to its end. seq is read on a goroutine of the
// pipeline; it should end when ctx does if it can block.
func From[T any](ctx context.Context, name string, seq iter.Seq[T], opts ...Option) *Flow[T] {
	c := &config{name: name}
	for _, o := range opts {
		if o != nil {
			o.apply(c)
		}
	}
	r := &run{inst: newPipelineInstruments(c), collect: c.collect, items: c.itemSpans}
	r.failures.Limit = ordered.KeptErrors
	out := &Flow[T]{run: r, ch: make(chan item[T], fromBuffer)}
	if ctx == nil || name == "" || seq == nil {
		r.ctx, r.cancel = context.WithCancelCause(context.Background())
		r.span = telemetry.NoSpan
		switch {
		case ctx == nil:
			r.fail(errors.New("pipeline: From: nil context: pass context.Background() if there is none"))
		case name == "":
			r.fail(errors.New(`pipeline: From(ctx, "", ...): a pipeline needs a name; it labels its spans and metrics`))
		default:
			r.fail(errors.New("pipeline: From: the sequence must not be nil"))
		}
		close(out.ch)
		return out
	}
	ctx, r.span = r.inst.tel.Tracer.Start(ctx, "pipeline "+name, trace.WithAttributes(r.inst.name))
	r.parent = ctx
	r.ctx, r.cancel = context.WithCancelCause(ctx)
	sc := r.span.SpanContext()
	r.start(func() {
		defer close(out.ch)
		for v := range seq {
			select {
			case out.ch <- item[T]{v: v, sc: sc}:
			case <-r.ctx.Done():
				return
			}
		}
	})
	return out
}

// Then runs stage s over the values of in and returns its results.
func Then[In, Out any](in *Flow[In], s *Stage[In, Out]) *Flow[Out] {
	r := in.run
	if s == nil {
		r.fail(errors.New("pipeline: Then(flow, nil): the stage must not be nil"))
		out := &Flow[Out]{run: r, ch: make(chan item[Out])}
		close(out.ch)
		return out
	}
	out := &Flow[Out]{run: r, ch: make(chan item[Out], s.buffer)}
	m := r.inst.stage(s.name)
	r.observe(m.observeBuffer(func() int64 { return int64(len(out.ch)) }))
	source := func(yield func(item[In]) bool) {
		for it := range in.ch {
			m.in.Add(r.ctx, 1, m.byStage...)
			if !yield(it) {
				return
			}
		}
	}
	fn := func(ctx context.Context, _ int, it item[In]) (item[Out], error) {
		if !r.items && !m.duration.Enabled(ctx) { // the untraced, unmeasured path
			var v Out
			err := errs.Try(func() (err error) {
				v, err = s.fn(ctx, it.v)
				return err
			})
			return item[Out]{v: v, sc: it.sc}, err
		}
		ctx, span := r.startItem(ctx, s.name, it.sc)
		ran := telemetry.StartStopwatch(span.IsRecording() || m.duration.Enabled(ctx))
		var v Out
		err := errs.Try(func() (err error) {
			v, err = s.fn(ctx, it.v)
			return err
		})
		sc := it.sc
		if span.IsRecording() { // the next hop links to this one
			sc = span.SpanContext()
		}
		errs.Record(span, err)
		span.End()
		if ran.Running() {
			m.duration.Record(ctx, ran.Seconds(), m.recStage...)
		}
		return item[Out]{v: v, sc: sc}, err
	}
	if s.workers == 1 {
		// One worker keeps the order by itself: it runs the stage straight
		// from channel to channel, without the engine's reordering.
		r.start(func() {
			defer close(out.ch)
			for it := range source {
				res, err := fn(r.ctx, 0, it)
				if !forward(r, out.ch, res, err, m) {
					return
				}
			}
		})
		return out
	}
	mode := ordered.FailFast
	if r.collect {
		mode = ordered.CollectAll
	}
	stream := ordered.NewStream(r.ctx, source, s.workers, 16*s.workers, mode, !s.unordered, fn)
	for range s.workers {
		r.start(func() { stream.Work(nil) })
	}
	r.start(func() {
		defer close(out.ch)
		for res, err := range stream.Results() {
			if !forward(r, out.ch, res, err, m) {
				return
			}
		}
	})
	return out
}

// forward passes a stage's result on, or handles its error: skipped,
// counted and kept with CollectAll, the end of the run otherwise. It reports
// whether the stage should go on.
func forward[T any](r *run, ch chan<- item[T], res item[T], err error, m stageMetrics) bool {
	if err != nil {
		switch {
		case r.ctx.Err() != nil:
			return false // the run is stopping; why is recorded where it began
		case r.collect:
			r.failed.Add(1)
			r.failures.Add(err)
			m.failed.Add(r.ctx, 1, m.byStage...)
			return true
		default:
			r.fail(err)
			return false
		}
	}
	select {
	case ch <- res:
		m.out.Add(r.ctx, 1, m.byStage...)
		return true
	case <-r.ctx.Done():
		return false
	}
}

// startItem starts a value's span in a stage, when the run asks for item
// spans, linked to the value's previous hop.
func (r *run) startItem(ctx context.Context, stage string, prev trace.SpanContext) (context.Context, trace.Span) {
	if !r.items || !r.span.IsRecording() {
		return ctx, telemetry.NoSpan
	}
	opts := []trace.SpanStartOption{trace.WithAttributes(r.inst.name, keyStage.String(stage))}
	if prev.IsValid() {
		opts = append(opts, trace.WithLinks(trace.Link{SpanContext: prev}))
	}
	return r.inst.tel.Tracer.Start(ctx, "stage "+stage, opts...)
}

// FanOut splits in into n flows that share its values: each value goes to
// exactly one of them, whichever is ready first. Give each its own stage
// to spread work over different functions.
func FanOut[T any](in *Flow[T], n int) []*Flow[T] {
	if n < 1 {
		in.run.fail(fmt.Errorf("pipeline: FanOut(flow, %d): at least 1 flow is needed", n))
		n = 1
	}
	outs := make([]*Flow[T], n)
	for i := range outs {
		outs[i] = &Flow[T]{run: in.run, ch: in.ch}
	}
	return outs
}

// Merge joins flows of one pipeline into one flow, which ends when they
// all have.
func Merge[T any](flows ...*Flow[T]) *Flow[T] {
	if len(flows) == 0 {
		r := &run{inst: newPipelineInstruments(&config{name: "merge"})}
		r.ctx, r.cancel = context.WithCancelCause(context.Background())
		r.span = telemetry.NoSpan
		r.fail(errors.New("pipeline: Merge(): at least one flow is needed"))
		out := &Flow[T]{run: r, ch: make(chan item[T])}
		close(out.ch)
		return out
	}
	r := flows[0].run
	out := &Flow[T]{run: r, ch: make(chan item[T])}
	var wg sync.WaitGroup
	for _, f := range flows {
		if f.run != r {
			r.fail(errors.New("pipeline: Merge: the flows come from different pipelines"))
		}
		wg.Add(1)
		r.start(func() {
			defer wg.Done()
			for it := range f.ch {
				select {
				case out.ch <- it:
				case <-r.ctx.Done():
					return
				}
			}
		})
	}
	r.start(func() {
		wg.Wait()
		close(out.ch)
	})
	return out
}

// Batch groups the values of in into slices of up to size, passing a slice
// on when it is full or when maxWait has passed since its first value (0
// waits for size). When the run is traced, each batch has a "batch
// {pipeline}" span that links to the spans of the values it holds (at most
// 128 of them, with the true count as messaging.batch.message_count).
func Batch[T any](in *Flow[T], size int, maxWait time.Duration) *Flow[[]T] {
	r := in.run
	out := &Flow[[]T]{run: r, ch: make(chan item[[]T])}
	if size < 1 || maxWait < 0 {
		r.fail(fmt.Errorf("pipeline: Batch(flow, %d, %v): the size must be at least 1 and the wait not negative", size, maxWait))
		close(out.ch)
		return out
	}
	r.start(func() {
		defer close(out.ch)
		var (
			batch []T
			scs   []trace.SpanContext
			timer *time.Timer
			due   <-chan time.Time
		)
		flush := func() bool {
			if len(batch) == 0 {
				return true
			}
			sc := r.span.SpanContext()
			if r.span.IsRecording() {
				links := telemetry.Links(scs)
				_, span := r.inst.tel.Tracer.Start(r.ctx, "batch "+r.inst.name.Value.AsString(),
					trace.WithLinks(links...), trace.WithAttributes(r.inst.name, semconv.MessagingBatchMessageCount(len(batch))))
				span.End()
				sc = span.SpanContext()
			}
			select {
			case out.ch <- item[[]T]{v: batch, sc: sc}:
			case <-r.ctx.Done():
				return false
			}
			batch, scs = nil, nil
			if timer != nil {
				timer.Stop()
			}
			due = nil
			return true
		}
		for {
			select {
			case it, ok := <-in.ch:
				if !ok {
					flush()
					return
				}
				batch = append(batch, it.v)
				scs = append(scs, it.sc)
				if len(batch) == 1 && maxWait > 0 {
					timer = time.NewTimer(maxWait)
					due = timer.C
				}
				if len(batch) >= size && !flush() {
					return
				}
			case <-due:
				if !flush() {
					return
				}
			case <-r.ctx.Done():
				return
			}
		}
	})
	return out
}

// Pipeline is the pattern's classic shape: a named chain of stages that
// keep the values' type. It is a From followed by a Then per stage.
type Pipeline[T any] struct {
	name   string
	stages []*Stage[T, T]
}

// NewPipeline returns a pipeline of stages, run in the order given. It
// fails when the name is empty, there is no stage, a stage is nil, or two
// stages share a name.
func NewPipeline[T any](name string, stages ...*Stage[T, T]) (*Pipeline[T], error) {
	if name == "" {
		return nil, errors.New(`pipeline: NewPipeline(""): a pipeline needs a name; it labels its spans and metrics`)
	}
	if len(stages) == 0 {
		return nil, fmt.Errorf("pipeline: NewPipeline(%q): at least one stage is needed", name)
	}
	seen := map[string]bool{}
	for i, s := range stages {
		if s == nil {
			return nil, fmt.Errorf("pipeline: NewPipeline(%q): stage %d is nil", name, i)
		}
		if seen[s.name] {
			return nil, fmt.Errorf("pipeline: NewPipeline(%q): two stages are named %q; names label metrics, so they must differ", name, s.name)
		}
		seen[s.name] = true
	}
	return &Pipeline[T]{name: name, stages: stages}, nil
}

// Run runs the pipeline over the values of in and returns the last
// stage's results.
func (p *Pipeline[T]) Run(ctx context.Context, in iter.Seq[T], opts ...Option) *Flow[T] {
	f := From(ctx, p.name, in, opts...)
	for _, s := range p.stages {
		f = Then(f, s)
	}
	return f
}

// All yields the flow's values. Breaking out of the loop stops the whole
// pipeline; either way, every goroutine of the pipeline has ended when All
// returns, and Err says whether the pipeline failed.
func (f *Flow[T]) All() iter.Seq[T] {
	return func(yield func(T) bool) {
		defer f.run.end()
		for it := range f.ch {
			if !yield(it.v) {
				f.run.broke.Store(true)
				f.run.cancel(nil)
				return
			}
		}
	}
}

// Err returns the pipeline's error once All has returned: the first
// failure of any stage, or the context's error, or nil. With CollectAll,
// it returns the failed values' errors joined (see CollectAll), after the
// error that stopped the run if one did (a panicking source, the end of
// ctx).
func (f *Flow[T]) Err() error { return f.run.err() }

func (r *run) err() error {
	var stopped error
	if errp := r.first.Load(); errp != nil {
		stopped = *errp
	}
	if r.failures.Len() == 0 {
		return stopped
	}
	return errors.Join(stopped, r.failures.Err())
}

// Skipped returns how many values were dropped from the flow because their
// stage failed, with CollectAll.
func (f *Flow[T]) Skipped() int64 { return f.run.failed.Load() }

// start runs fn on a goroutine of the pipeline. A panic there (in a
// source's sequence, the user's code that runs on it) fails the run with
// a *errs.PanicError instead of crashing the process.
func (r *run) start(fn func()) {
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		if err := errs.Try(func() error { fn(); return nil }); err != nil {
			r.fail(err)
		}
	}()
}

// fail stops the pipeline with err, the first time.
func (r *run) fail(err error) {
	if r.first.CompareAndSwap(nil, &err) {
		r.cancel(err)
	}
}

func (r *run) observe(unregister func()) {
	r.obsMu.Lock()
	r.observed = append(r.observed, unregister)
	r.obsMu.Unlock()
}

// end waits for the pipeline's goroutines and ends its span, once.
func (r *run) end() {
	r.endOnce.Do(func() {
		if r.parent != nil && !r.broke.Load() {
			if err := r.parent.Err(); err != nil { // the caller's ctx ended the run
				r.first.CompareAndSwap(nil, &err)
			}
		}
		r.cancel(nil)
		r.wg.Wait()
		r.obsMu.Lock()
		for _, u := range r.observed {
			u()
		}
		r.obsMu.Unlock()
		if err := r.err(); err != nil {
			errs.Record(r.span, err)
		}
		if r.span.IsRecording() && r.failed.Load() > 0 {
			r.span.SetAttributes(keySkipped.Int64(r.failed.Load()))
		}
		r.span.End()
	})
}
