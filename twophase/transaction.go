package twophase

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"

	"go.opentelemetry.io/otel/trace"

	"github.com/otelpatterns/otelpatterns/errs"
	"github.com/otelpatterns/otelpatterns/internal/telemetry"
	"github.com/otelpatterns/otelpatterns/journal"
	"github.com/otelpatterns/otelpatterns/retry"
)

// tx is one transaction that this coordinator drives.
type tx struct {
	c     *Coordinator
	id    string
	parts []Participant

	// ctx carries the transaction's span and outlives the caller; stop
	// cancels it when the coordinator gives up (Close).
	ctx  context.Context
	stop context.CancelCauseFunc
	span trace.Span

	mu          sync.Mutex
	epoch       uint64
	seq         uint64
	decision    Decision
	abortLogged bool
	cause       error // why it aborted
	dead        error // the journal refused a record: no further call
	ackErr      error // why phase 2 did not finish, if it did not
	acked       chan struct{}
	done        chan struct{}
}

func newTx(c *Coordinator, id string, parts []Participant, epoch uint64) *tx {
	return &tx{c: c, id: id, parts: parts, epoch: epoch, acked: make(chan struct{}), done: make(chan struct{})}
}

// open starts the transaction's span under ctx; a recovered one links to
// the span that began it.
func (t *tx) open(ctx context.Context, recovered bool, begun trace.SpanContext) context.Context {
	opts := []trace.SpanStartOption{trace.WithAttributes(keyTx.String(t.id), keyParticipants.Int(len(t.parts)))}
	if recovered {
		opts = append(opts, trace.WithAttributes(keyRecovered.Bool(true)))
		if begun.IsValid() {
			opts = append(opts, trace.WithLinks(trace.Link{SpanContext: begun}))
		}
	}
	ctx, t.span = t.c.ins.tel.Tracer.Start(ctx, spanTransaction, opts...)
	t.ctx, t.stop = context.WithCancelCause(context.WithoutCancel(ctx))
	return ctx
}

// append writes records ahead under the transaction's epoch. A refusal
// stops the transaction here for good.
func (t *tx) append(recs ...journal.Record) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.dead != nil {
		return t.dead
	}
	for i := range recs {
		recs[i].Epoch = t.epoch
	}
	if err := t.c.log.Append(context.WithoutCancel(t.ctx), t.id, t.seq, recs...); err != nil {
		t.dead = fmt.Errorf("twophase %q: journal: %w", t.id, err)
		return t.dead
	}
	t.seq += uint64(len(recs))
	for _, r := range recs {
		t.abortLogged = t.abortLogged || r.Kind == kindAbort
	}
	return nil
}

func (t *tx) fail(err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.dead == nil {
		t.dead = err
	}
}

// current returns the decision as Status tells it: Pending until it is
// durable.
func (t *tx) current() Decision {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.decision
}

// prepare runs phase 1: every participant prepares in parallel within the
// prepare timeout, then the decision is made, and a commit is made durable
// before anything else happens.
func (t *tx) prepare(ctx context.Context) {
	in := t.c.ins
	pctx, span, sw := in.startPhase(ctx, spanPrepare)
	pctx, cancel := context.WithTimeout(pctx, t.c.cfg.prepareTimeout)
	votes := make([]error, len(t.parts))
	ask := func(i int) {
		p := t.parts[i]
		cctx, cspan := in.startCall(pctx, "prepare", p.Name(), 1)
		err := errs.Try(func() error { return p.Prepare(cctx, t.id) })
		if err != nil && pctx.Err() != nil && !errors.Is(err, ErrVoteNo) {
			err = fmt.Errorf("%w: no vote within the prepare timeout: %w", ErrUnreachable, err)
		}
		cspan.SetAttributes(keyVote.String(vote(err)))
		if err != nil {
			errs.Record(cspan, voteError{err})
		}
		cspan.End()
		votes[i] = err
	}
	parallel(len(t.parts), ask)
	cancel()
	var cause error
	for i, err := range votes {
		if err != nil {
			cause = &VoteError{TxID: t.id, Participant: t.parts[i].Name(), Err: err}
			break
		}
	}
	if ctx.Err() != nil { // the caller gave up before the decision
		cause = fmt.Errorf("%w: %q: %w", ErrAborted, t.id, context.Cause(ctx))
	}
	in.endPhase(ctx, "prepare", span, sw, cause)
	if cause != nil {
		t.mu.Lock()
		t.decision, t.cause = Aborted, cause
		t.mu.Unlock()
		t.decided()
		return
	}
	if err := t.append(journal.Record{Kind: kindCommit}); err != nil {
		return // not durable, so not decided: Recover aborts it
	}
	t.mu.Lock()
	t.decision = Committed
	t.mu.Unlock()
	t.decided()
}

// decided counts a transaction with a decision as in doubt, until End.
func (t *tx) decided() {
	t.c.ins.inDoubt.Add(t.ctx, 1)
}

// phase2 sends the decision to every participant until each acknowledges
// or the retry policy gives up, then writes End. It runs on a goroutine of
// the coordinator's, so it goes on when the caller leaves.
func (t *tx) phase2() {
	defer t.finish()
	t.mu.Lock()
	d, logAbort, dead := t.decision, t.decision == Aborted && !t.abortLogged, t.dead
	t.mu.Unlock()
	if dead != nil || d == Pending {
		t.ack(dead)
		return
	}
	in := t.c.ins
	op, phase := "commit", spanCommit
	if d == Aborted {
		op, phase = "abort", spanAbort
	}
	ctx, span, sw := in.startPhase(t.ctx, phase)
	// The abort decision is not forced: presumed abort reads a missing
	// one the same way, so it is written while the aborts go out.
	var logged chan error
	if logAbort {
		logged = make(chan error, 1)
		go func() { logged <- t.append(journal.Record{Kind: kindAbort}) }()
	}
	acks := make([]error, len(t.parts))
	parallel(len(t.parts), func(i int) { acks[i] = t.send(ctx, op, t.parts[i]) })
	err := errors.Join(acks...)
	if logged != nil {
		if lerr := <-logged; err == nil {
			err = lerr
		}
	}
	in.endPhase(ctx, op, span, sw, err)
	if err != nil {
		t.ack(fmt.Errorf("%w: %w", ErrInDoubt, err))
		return
	}
	t.ack(nil)
	// End is not forced either: a crash before it only means Recover sends
	// the decision again, which participants take idempotently.
	if t.append(journal.Record{Kind: kindEnd, End: true, Payload: []byte(d.String())}) == nil {
		in.transactions.Add(t.ctx, 1, in.byDecision[d])
		in.inDoubt.Add(t.ctx, -1)
	}
}

// send calls Commit or Abort on p under the phase-2 policy.
func (t *tx) send(ctx context.Context, op string, p Participant) error {
	in := t.c.ins
	attempt := 0
	return retry.Run(trace.ContextWithSpan(ctx, telemetry.NoSpan), t.c.cfg.phase2, func(rctx context.Context) error {
		if err := t.deadErr(); err != nil {
			return retry.Permanent(err)
		}
		attempt++
		if attempt > 1 {
			in.retries.Add(rctx, 1, in.byPhase[op])
		}
		cctx, cspan := in.startCall(trace.ContextWithSpan(rctx, trace.SpanFromContext(ctx)), op, p.Name(), attempt)
		err := errs.Try(func() error {
			if op == "commit" {
				return p.Commit(cctx, t.id)
			}
			return p.Abort(cctx, t.id)
		})
		errs.Record(cspan, err)
		cspan.End()
		return err
	})
}

func (t *tx) deadErr() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.dead
}

// ack publishes the end of phase 2: err is nil when every participant
// acknowledged.
func (t *tx) ack(err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	select {
	case <-t.acked:
	default:
		t.ackErr = err
		close(t.acked)
	}
}

// wait returns the transaction's decision once phase 2 is done, or, when
// ctx ends first, the durable decision with ErrInDoubt.
func (t *tx) wait(ctx context.Context) (Decision, error) {
	select {
	case <-t.acked:
	case <-ctx.Done():
		t.mu.Lock()
		defer t.mu.Unlock()
		if t.decision == Pending {
			return Pending, ctx.Err()
		}
		return t.decision, fmt.Errorf("%w: %w", ErrInDoubt, ctx.Err())
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	switch {
	case t.decision == Pending:
		return Pending, t.dead
	case t.decision == Aborted:
		cause := t.cause
		if cause == nil {
			cause = fmt.Errorf("%w: %q had no commit decision when its coordinator stopped", ErrAborted, t.id)
		}
		if t.ackErr != nil {
			return Aborted, fmt.Errorf("%w (%w)", cause, t.ackErr)
		}
		return Aborted, cause
	default:
		return Committed, t.ackErr
	}
}

// kill stops the transaction where it is: no further call or record.
func (t *tx) kill(cause error) {
	t.fail(cause)
	t.stop(cause)
}

// finish ends the transaction's span and leaves the coordinator.
func (t *tx) finish() {
	t.ack(t.deadErr())
	t.mu.Lock()
	d, err := t.decision, t.ackErr
	if err == nil && d == Aborted {
		err = t.cause
	}
	t.mu.Unlock()
	if t.span != nil {
		t.span.SetAttributes(keyDecision.String(d.String()))
		errs.Record(t.span, err)
		t.span.End()
		t.stop(nil)
	}
	t.c.live.Release(t.id, t)
	close(t.done)
}

// encode encodes one of the package's own payloads, which always encode.
func encode(v any) []byte {
	b, _ := json.Marshal(v)
	return b
}

// parallel calls fn(0) ... fn(n-1) at once, the last on the calling
// goroutine, and returns when all have.
func parallel(n int, fn func(i int)) {
	var wg sync.WaitGroup
	for i := range n - 1 {
		wg.Go(func() { fn(i) })
	}
	if n > 0 {
		fn(n - 1)
	}
	wg.Wait()
}
