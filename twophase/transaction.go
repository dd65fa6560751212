package twophase

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/otelpatterns/otelpatterns/errs"
	"github.com/otelpatterns/otelpatterns/internal/retryhook"
	"github.com/otelpatterns/otelpatterns/journal"
	"github.com/otelpatterns/otelpatterns/retry"
)

// tx is one transaction that this coordinator drives. All of its work, from
// Begin (or the takeover record) to End, runs on one goroutine that the
// coordinator owns (see start); callers only wait for it. That goroutine
// alone appends (the abort decision on a helper that it waits for before
// the next append), so epoch and seq need no lock, and no lock is ever
// held across a journal or participant call.
//
// Two decisions are kept apart: outcome is what this coordinator drives,
// durable is what the journal holds. They differ while a decision is being
// written (an abort is not forced); Status answers durable only, so that no
// participant acts on a decision that a crash, or another coordinator's
// record, could still undo.
type tx struct {
	c         *Coordinator
	id        string
	parts     []Participant
	recovered bool                   // taken over from the journal
	missing   []string               // logged participants this coordinator cannot find
	payload   []byte                 // a new transaction's Begin, encoded by encodeBegin
	carrier   propagation.MapCarrier // and the caller's trace context and baggage

	// ctx carries the transaction's span and the caller's values, and
	// outlives the caller; stop cancels it when the coordinator gives up
	// (Close). A recovered transaction's resolver spans link to span.
	ctx    context.Context
	stop   context.CancelCauseFunc
	opened atomic.Bool // open has set ctx and stop
	span   trace.Span
	// detached is ctx without its cancellation: the votes run under a
	// timeout of their own derived from it (a child of ctx would register
	// with it: a map and a channel per transaction), and kill ends them
	// through unprepare.
	detached context.Context
	ended    bool  // span ended; touched by run's goroutine only
	counted  bool  // in the in_doubt gauge; touched by run's goroutine only
	left     error // why phase 2 stopped short, for finish; run's goroutine only

	epoch, seq uint64 // of the journal; run's goroutine alone appends

	mu         sync.Mutex
	outcome    Decision
	durable    Decision
	committing bool               // the commit decision is being written
	begun      bool               // Begin is durable
	unprepare  context.CancelFunc // ends the prepare phase early, while it runs
	cause      error              // why it aborted
	dead       error              // no further call or record: a refusal, or Close
	ackErr     error              // why phase 2 did not finish, if it did not
	known      chan struct{}      // closed once durable is decided, or the transaction is dead
	isKnown    bool
	acked      chan struct{} // closed when phase 2 is done or given up
}

func newTx(c *Coordinator, id string, parts []Participant, epoch uint64) *tx {
	return &tx{c: c, id: id, parts: parts, epoch: epoch,
		known: make(chan struct{}), acked: make(chan struct{})}
}

// open starts the transaction's span under ctx; a recovered one links to
// the span that began it.
func (t *tx) open(ctx context.Context, begun trace.SpanContext) context.Context {
	opts := []trace.SpanStartOption{trace.WithAttributes(keyTx.String(t.id), keyParticipants.Int(len(t.parts)))}
	if t.recovered {
		opts = append(opts, trace.WithAttributes(keyRecovered.Bool(true)))
		if begun.IsValid() {
			opts = append(opts, trace.WithLinks(trace.Link{SpanContext: begun}))
		}
	}
	ctx, t.span = t.c.ins.tel.Tracer.Start(ctx, spanTransaction, opts...)
	t.detached = context.WithoutCancel(ctx)
	t.ctx, t.stop = context.WithCancelCause(t.detached)
	t.opened.Store(true)
	t.mu.Lock()
	dead := t.dead
	t.mu.Unlock()
	if dead != nil { // killed while it opened
		t.stop(dead)
	}
	return ctx
}

// start runs fn, and then the rest of the transaction, on the goroutine
// that the coordinator counted when it claimed t.
func (t *tx) start(fn func()) {
	go func() {
		defer t.c.live.Done()
		defer t.finish()
		fn()
	}()
}

// encodeBegin prepares a new transaction's Begin: it names the
// participants and carries the caller's trace context and baggage. It runs
// on the caller's goroutine, whose stack has grown already.
func (t *tx) encodeBegin(ctx context.Context) {
	names := make([]string, len(t.parts))
	for i, p := range t.parts {
		names[i] = p.Name()
	}
	t.carrier = t.c.ins.tel.Record(ctx)
	t.payload = encode(beginPayload{Participants: names})
}

// execute is a new transaction's work: Begin, the votes, the decision and
// phase 2.
func (t *tx) execute() {
	if t.append(journal.Record{Kind: kindBegin, Payload: t.payload, Carrier: t.carrier}) != nil {
		return
	}
	t.mu.Lock()
	t.begun = true
	abandoned := t.outcome == Aborted
	t.mu.Unlock()
	if !abandoned {
		t.prepare()
	}
	t.complete()
}

// takeOver is a recovered transaction's work: the owner record under the
// higher epoch, with an abort decision if the journal has none, then phase 2.
func (t *tx) takeOver() {
	recs := []journal.Record{{Kind: kindOwner}}
	t.mu.Lock()
	if t.durable == Pending {
		recs = append(recs, journal.Record{Kind: kindAbort}) // presumed abort
	}
	t.mu.Unlock()
	if t.append(recs...) != nil {
		return
	}
	t.mu.Lock()
	t.outcome = t.durable
	t.mu.Unlock()
	if len(t.missing) > 0 { // its durable abort answers Status; no phase 2 here
		t.fail(fmt.Errorf("%w: %q (give the coordinator WithParticipants)", ErrUnknownParticipant, t.missing))
		return
	}
	t.complete()
}

// append writes records ahead under the transaction's epoch, and then
// makes durable what they decided. A refusal stops the transaction here
// for good.
func (t *tx) append(recs ...journal.Record) error {
	if err := t.deadErr(); err != nil {
		return err
	}
	for i := range recs {
		recs[i].Epoch = t.epoch
	}
	err := t.c.log.Append(t.ctx, t.id, t.seq, recs...)
	t.mu.Lock()
	defer t.mu.Unlock()
	if err != nil {
		if t.dead == nil {
			t.dead = fmt.Errorf("twophase %q: %w", t.id, err)
		}
		t.settle()
		return t.dead
	}
	t.seq += uint64(len(recs))
	for _, r := range recs {
		switch {
		case r.Kind == kindCommit:
			t.durable = Committed
		case r.Kind == kindAbort && t.durable == Pending:
			t.durable = Aborted
		}
	}
	if t.durable != Pending {
		t.settle()
	}
	return nil
}

// settle tells the waiters of known, once. Call it with t.mu held.
func (t *tx) settle() {
	if !t.isKnown {
		t.isKnown = true
		close(t.known)
	}
}

func (t *tx) fail(err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.dead == nil {
		t.dead = err
	}
	t.settle()
}

func (t *tx) deadErr() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.dead
}

// status is the decision as Status tells it: the durable one. A recovered
// transaction is moments from its durable decision, the takeover record,
// so status waits for it, within ctx.
func (t *tx) status(ctx context.Context) (Decision, error) {
	if t.recovered {
		select {
		case <-t.known:
		case <-ctx.Done():
			return Pending, ctx.Err()
		}
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.durable == Pending && t.recovered {
		return Pending, t.dead
	}
	return t.durable, nil
}

// prepare runs phase 1: every participant prepares in parallel within the
// prepare timeout, then the decision is made, and a commit is made durable
// before anything else happens.
func (t *tx) prepare() {
	in := t.c.ins
	pctx, span, sw := in.startPhase(t.detached, spanPrepare)
	pctx, cancel := context.WithTimeout(pctx, t.c.cfg.prepareTimeout)
	t.mu.Lock()
	t.unprepare = cancel
	t.mu.Unlock()
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
	var cause error
	for i, err := range votes {
		if err != nil {
			cause = &VoteError{TxID: t.id, Participant: t.parts[i].Name(), Err: err}
			break
		}
	}
	// Deciding and hearing that the caller gave up exclude each other:
	// a caller told Aborted is never contradicted by a commit.
	t.mu.Lock()
	t.unprepare = nil
	switch {
	case t.outcome == Aborted: // the caller gave up first
		cause = t.cause
	case cause != nil:
		t.outcome, t.cause = Aborted, cause
	default:
		t.committing = true
	}
	t.mu.Unlock()
	cancel()
	in.endPhase(t.ctx, "prepare", span, sw, cause)
	if cause != nil {
		return
	}
	err := t.append(journal.Record{Kind: kindCommit})
	t.mu.Lock()
	t.committing = false
	if err == nil {
		t.outcome = Committed
	}
	t.mu.Unlock()
	// A commit that is not durable is not decided: Recover aborts it.
}

// abandon is the caller of Execute giving up with cause: before the
// decision the transaction aborts, and the votes stop. It reports whether
// it was in time.
func (t *tx) abandon(cause error) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.outcome != Pending || t.committing || t.dead != nil {
		return false
	}
	t.outcome, t.cause = Aborted, fmt.Errorf("%w: %q: %w", ErrAborted, t.id, cause)
	if t.unprepare != nil {
		t.unprepare()
	}
	return true
}

// uncount takes the transaction out of the in_doubt gauge, if it is in it:
// every participant acknowledged, or it leaves this coordinator.
func (t *tx) uncount() {
	if t.counted {
		t.counted = false
		t.c.ins.inDoubt.Add(t.ctx, -1)
	}
}

// decided counts a transaction with a decision as in doubt here, until
// every participant has acknowledged it, or it leaves this coordinator
// unacknowledged (Close, the resolver off), after which the next Recover
// counts it again.
func (t *tx) decided() {
	t.counted = true
	t.c.ins.inDoubt.Add(t.ctx, 1)
}

// complete sends the decision to every participant until each acknowledges
// or the retry policy gives up, then writes End. If the policy gave up, the
// waiters hear that the transaction is in doubt, and the resolver goes on.
func (t *tx) complete() {
	t.mu.Lock()
	d, logAbort, dead := t.outcome, t.outcome == Aborted && t.durable == Pending, t.dead
	t.mu.Unlock()
	if dead != nil || d == Pending {
		return
	}
	t.decided()
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
		inDoubt := fmt.Errorf("%w: %w", ErrInDoubt, err)
		if t.c.cfg.resolver == nil || t.deadErr() != nil {
			t.left = inDoubt // finish tells the waiters once Recover can see it
			return
		}
		t.ack(inDoubt) // the caller goes; the resolver stays
		if !t.resolve(op, acks) {
			return // stopped: left to Recover
		}
	}
	t.uncount() // acknowledged everywhere: no longer in doubt
	t.ack(nil)
	// End is not forced either: a crash before it only means Recover sends
	// the decision again, which participants take idempotently.
	if t.append(journal.Record{Kind: kindEnd, End: true, Payload: []byte(d.String())}) == nil {
		in.transactions.Add(t.ctx, 1, in.byDecision[d])
		t.c.live.Ended(t.id)
	}
}

// resolve re-drives the decision to the participants whose acks failed,
// one call each per round, with the resolver's backoff between rounds,
// until all have acknowledged. Each round is a 2pc.resolve span, a root
// linked to the transaction's, which has ended: its caller has heard that
// it is in doubt. It returns false when the coordinator stops it first.
func (t *tx) resolve(op string, acks []error) bool {
	cfg := t.c.cfg
	t.endSpan()
	var left []Participant
	for i, err := range acks {
		if err != nil {
			left = append(left, t.parts[i])
		}
	}
	in := t.c.ins
	var delay time.Duration
	for round := 1; ; round++ {
		delay = cfg.resolver.Delay(round, delay, rand.Float64)
		timer := time.NewTimer(delay)
		select {
		case <-timer.C:
		case <-t.ctx.Done():
			timer.Stop()
			return false
		case <-t.c.live.Closing():
			timer.Stop()
			return false
		}
		ctx, span := in.tel.Tracer.Start(t.ctx, spanResolve, trace.WithNewRoot(),
			trace.WithLinks(trace.LinkFromContext(t.ctx)),
			trace.WithAttributes(keyTx.String(t.id), keyAttempt.Int(round)))
		failed := make([]error, len(left))
		parallel(len(left), func(i int) {
			in.retries.Add(ctx, 1, in.byPhase[op])
			failed[i] = t.call(ctx, op, left[i], round+1)
		})
		var still []Participant
		for i, err := range failed {
			if err != nil {
				still = append(still, left[i])
			}
		}
		errs.Record(span, errors.Join(failed...))
		span.End()
		if left = still; len(left) == 0 {
			return true
		}
		if t.deadErr() != nil {
			return false
		}
	}
}

// send calls Commit or Abort on p under the phase-2 policy.
func (t *tx) send(ctx context.Context, op string, p Participant) error {
	in := t.c.ins
	attempt := 0
	return retryhook.RunUntraced(ctx, t.c.cfg.phase2, func(rctx context.Context) error {
		if err := t.deadErr(); err != nil {
			return retry.Permanent(err)
		}
		attempt++
		if attempt > 1 {
			in.retries.Add(rctx, 1, in.byPhase[op])
		}
		return t.call(rctx, op, p, attempt)
	})
}

// call makes one Commit or Abort call on p, in a span of its own.
func (t *tx) call(ctx context.Context, op string, p Participant, attempt int) error {
	cctx, cspan := t.c.ins.startCall(ctx, op, p.Name(), attempt)
	err := errs.Try(func() error {
		if op == "commit" {
			return p.Commit(cctx, t.id)
		}
		return p.Abort(cctx, t.id)
	})
	errs.Record(cspan, err)
	cspan.End()
	return err
}

// ack publishes the end of phase 2: err is nil when every participant
// acknowledged. Only the first call counts.
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

// wait returns the transaction's decision once phase 2 is done. When ctx
// ends first, a decided transaction returns its decision and ErrInDoubt;
// an undecided one, if owner (Execute's own caller) is waiting, aborts and
// says so, and otherwise returns Pending with ctx's error.
func (t *tx) wait(ctx context.Context, owner bool) (Decision, error) {
	select {
	case <-t.acked:
		return t.result()
	case <-ctx.Done():
	}
	select {
	case <-t.acked: // both were ready: the outcome is known
		return t.result()
	default:
	}
	cause := ctxErr(ctx)
	if owner && t.abandon(cause) {
		return t.result()
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	switch {
	case t.outcome == Aborted:
		return Aborted, fmt.Errorf("%w (%w: %w)", t.abortCause(), ErrInDoubt, cause)
	case t.outcome == Committed:
		return Committed, fmt.Errorf("%w: %w", ErrInDoubt, cause)
	case t.committing:
		return Pending, fmt.Errorf("%w: %q: the commit decision was being written; ask Status: %w", ErrInDoubt, t.id, cause)
	case t.neverCommits():
		return Aborted, fmt.Errorf("%w: %q: stopped before its decision: %w (%w)", ErrAborted, t.id, t.dead, cause)
	}
	return Pending, cause
}

// neverCommits reports an undecided transaction of Execute's that stopped
// without writing a commit decision, and will write none: by presumed
// abort it is aborted. Not so when the journal refused a record because
// another coordinator wrote first (the decision is that one's), nor for a
// recovered transaction, whose decision may be durable already. Call it
// with t.mu held.
func (t *tx) neverCommits() bool {
	return t.dead != nil && !t.committing && !t.recovered && !refused(t.dead)
}

// ctxErr is ctx's error, with its cause when that says more.
func ctxErr(ctx context.Context) error {
	err, cause := ctx.Err(), context.Cause(ctx)
	if cause == nil || cause == err {
		return err
	}
	return fmt.Errorf("%w: %w", err, cause)
}

// result is what wait returns once the outcome is known.
func (t *tx) result() (Decision, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	switch {
	case t.outcome == Pending && t.neverCommits():
		return Aborted, fmt.Errorf("%w: %q: stopped before its decision: %w", ErrAborted, t.id, t.dead)
	case t.outcome == Pending:
		if t.dead != nil {
			return Pending, t.dead
		}
		return Pending, t.ackErr
	case t.outcome == Aborted:
		cause := t.abortCause()
		if t.ackErr != nil {
			return Aborted, fmt.Errorf("%w (%w)", cause, t.ackErr)
		}
		return Aborted, cause
	default:
		return Committed, t.ackErr
	}
}

// abortCause is why the transaction aborted. Call it with t.mu held.
func (t *tx) abortCause() error {
	if t.cause != nil {
		return t.cause
	}
	return fmt.Errorf("%w: %q had no commit decision when its coordinator stopped", ErrAborted, t.id)
}

// kill stops the transaction where it is: no further call or record.
func (t *tx) kill(cause error) {
	t.fail(cause)
	if t.opened.Load() { // else open stops it
		t.stop(cause)
	}
	t.mu.Lock()
	if t.unprepare != nil {
		t.unprepare() // the votes run apart from ctx
	}
	t.mu.Unlock()
}

// endSpan ends the transaction's span with its outcome, once.
func (t *tx) endSpan() {
	if t.ended {
		return
	}
	t.ended = true
	t.mu.Lock()
	d, err := t.outcome, t.ackErr
	if err == nil && d == Aborted {
		err = t.cause
	}
	t.mu.Unlock()
	t.span.SetAttributes(keyDecision.String(d.String()))
	errs.Record(t.span, err)
	t.span.End()
}

// finish publishes what is left, ends the span and leaves the coordinator.
func (t *tx) finish() {
	// Released before anyone hears of the end, so that whoever looks again
	// (Execute after a refused Begin, Status after a refused takeover,
	// Recover) finds the journal, not this transaction.
	t.c.live.Release(t.id, t)
	t.mu.Lock()
	err := t.dead
	if err != nil && t.outcome != Pending {
		err = fmt.Errorf("%w: %w", ErrInDoubt, err) // decided, and left undone here
	}
	if err == nil {
		err = t.left
	}
	t.settle()
	t.mu.Unlock()
	t.uncount()
	t.ack(err)
	t.endSpan()
	t.stop(nil)
}

func (t *tx) hasBegun() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.begun
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
