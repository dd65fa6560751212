package twophase

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"go.opentelemetry.io/otel/trace"

	"github.com/otelpatterns/otelpatterns/errs"
	"github.com/otelpatterns/otelpatterns/internal/owned"
	"github.com/otelpatterns/otelpatterns/internal/telemetry"
	"github.com/otelpatterns/otelpatterns/journal"
)

// Coordinator runs two-phase commits with presumed abort, writing its
// decisions ahead to a journal, and owns the goroutines that drive phase 2
// after a caller gives up.
type Coordinator struct {
	log journal.Log
	cfg *config
	ins *instruments

	live owned.Set[*tx] // the transactions driven here, and their goroutines

	mu    sync.Mutex
	known map[string]Participant // by name: WithParticipants and every Execute's
}

// NewCoordinator returns a coordinator that writes ahead to log.
func NewCoordinator(log journal.Log, opts ...Option) (*Coordinator, error) {
	if log == nil {
		return nil, errors.New("twophase: NewCoordinator: the journal is nil; pass journal.NewMemory() or journal.Open(dir)")
	}
	cfg, err := newConfig(opts)
	if err != nil {
		return nil, err
	}
	c := &Coordinator{log: log, cfg: cfg, ins: newInstruments(cfg.tel), known: cfg.participants}
	c.live.Retain(cfg.retention, log.Forget)
	return c, nil
}

// Execute runs transaction txID across participants:
//
//  1. Begin, naming the participants, is made durable.
//  2. Every participant prepares, in parallel, within the prepare timeout.
//  3. If every vote is yes, the commit decision is made durable, and only
//     then is Commit sent; otherwise the transaction aborts.
//  4. Commit (or Abort) is repeated, under the phase-2 retry policy, until
//     every participant acknowledges; then End is written.
//
// It all runs on a goroutine of the coordinator's, and Execute returns
// Committed and nil once every participant has committed; an abort
// returns Aborted and a *VoteError. When ctx ends first, Execute returns
// at once, even while a journal call hangs: before the decision with
// Aborted and an error matching ErrAborted and ctx's error (the
// transaction then aborts); while the commit decision is being written
// with Pending and an error matching ErrInDoubt (ask Status); after the
// decision with the decision and ErrInDoubt. ErrInDoubt also says that the
// phase-2 retry policy gave up on a participant; the resolver goes on
// (WithResolver), or else Recover.
//
// An ID that has ended returns its recorded decision; one that is
// unfinished is taken over and driven as Recover would, with the
// participants it began with.
func (c *Coordinator) Execute(ctx context.Context, txID string, participants ...Participant) (Decision, error) {
	if ctx == nil {
		return Pending, errNilContext
	}
	if err := checkTx(txID, participants); err != nil {
		return Pending, err
	}
	if t := c.liveTx(txID); t != nil {
		return t.wait(ctx, false)
	}
	c.learn(participants)
	recs, err := c.log.Load(ctx, txID)
	switch {
	case errors.Is(err, journal.ErrForgotten):
		return Pending, fmt.Errorf("%w: %q", ErrForgotten, txID)
	case err != nil:
		return Pending, fmt.Errorf("twophase: Execute %q: %w", txID, err)
	case len(recs) > 0:
		return c.executeLogged(ctx, txID, recs)
	}
	t := newTx(c, txID, participants, 1)
	if live, err := c.claim(t); live != nil || err != nil {
		if err != nil {
			return Pending, err
		}
		return live.wait(ctx, false)
	}
	ctx = t.open(ctx, trace.SpanContext{})
	t.encodeBegin(ctx)
	t.start(t.execute)
	d, err := t.wait(ctx, true)
	switch {
	case d != Pending || !refused(err):
		return d, err
	case !t.hasBegun():
		// Another coordinator began the same ID first: answer as for any
		// ID the journal has.
		if recs, lerr := c.log.Load(ctx, txID); lerr == nil && len(recs) > 0 {
			return c.executeLogged(ctx, txID, recs)
		}
		return d, err
	}
	// Another coordinator took it over before the decision landed here.
	return c.answerFromJournal(ctx, txID, err)
}

// refused reports a journal that refused an append because another
// coordinator wrote first.
func refused(err error) bool {
	return errors.Is(err, journal.ErrConflict) || errors.Is(err, journal.ErrFenced) || errors.Is(err, journal.ErrEnded)
}

// answerFromJournal answers Execute for a transaction that another
// coordinator took over: with the journal's decision, and cause.
func (c *Coordinator) answerFromJournal(ctx context.Context, txID string, cause error) (Decision, error) {
	recs, err := c.log.Load(ctx, txID)
	h, ok, herr := readHistory(recs)
	switch {
	case err != nil || herr != nil || !ok:
		return Pending, fmt.Errorf("%w: %q: another coordinator took it over; ask Status (%w)", ErrInDoubt, txID, cause)
	case h.decision == Aborted:
		return Aborted, fmt.Errorf("%w: %q: another coordinator took it over before the decision, and aborted it (%w)", ErrAborted, txID, cause)
	case h.decision == Committed && h.ended:
		return Committed, nil
	case h.decision == Committed:
		return Committed, fmt.Errorf("%w: %q: another coordinator drives it (%w)", ErrInDoubt, txID, cause)
	}
	return Pending, fmt.Errorf("%w: %q: another coordinator took it over; ask Status (%w)", ErrInDoubt, txID, cause)
}

// executeLogged answers Execute for an ID the journal has.
func (c *Coordinator) executeLogged(ctx context.Context, txID string, recs []journal.Record) (Decision, error) {
	h, ok, err := readHistory(recs)
	switch {
	case err != nil:
		return Pending, err
	case !ok:
		return Pending, fmt.Errorf("twophase: Execute %q: the ID belongs to a journal entry that is not a two-phase commit", txID)
	case h.ended:
		if h.decision == Aborted {
			return Aborted, fmt.Errorf("%w: %q (recorded)", ErrAborted, txID)
		}
		return h.decision, nil
	}
	t, err := c.takeOver(ctx, txID, h)
	if err != nil {
		return Pending, err
	}
	return t.wait(ctx, false)
}

func checkTx(txID string, participants []Participant) error {
	switch {
	case txID == "" || len(txID) > journal.MaxIDLen:
		return fmt.Errorf("twophase: the transaction ID must be 1 to %d bytes", journal.MaxIDLen)
	case len(participants) == 0:
		return fmt.Errorf("twophase: Execute %q: no participants", txID)
	}
	seen := map[string]bool{}
	for i, p := range participants {
		if p == nil {
			return fmt.Errorf("twophase: Execute %q: participant %d is nil", txID, i)
		}
		name := p.Name()
		if name == "" {
			return fmt.Errorf("twophase: Execute %q: participant %d has no name", txID, i)
		}
		if seen[name] {
			return fmt.Errorf("twophase: Execute %q: two participants are named %q", txID, name)
		}
		seen[name] = true
	}
	return nil
}

// learn remembers participants by name, for recovery in this process.
func (c *Coordinator) learn(ps []Participant) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, p := range ps {
		if _, ok := c.known[p.Name()]; !ok {
			c.known[p.Name()] = p
		}
	}
}

// claim makes t the live transaction of its ID, counting its driver,
// unless one is live already, which it returns.
func (c *Coordinator) claim(t *tx) (*tx, error) {
	live, claimed, open := c.live.Claim(t.id, t)
	switch {
	case !open:
		return nil, ErrClosed
	case !claimed:
		return live, nil
	}
	return nil, nil
}

func (c *Coordinator) liveTx(id string) *tx {
	t, _ := c.live.Get(id)
	return t
}

// takeOver resumes a logged, unfinished transaction under a higher epoch,
// with an abort decision if it has none, and drives its phase 2, all on a
// goroutine of the coordinator's. Its decision is known once that
// goroutine's first record is durable (tx.status waits for it).
func (c *Coordinator) takeOver(ctx context.Context, id string, h *history) (*tx, error) {
	var parts []Participant
	var missing []string
	c.mu.Lock()
	for _, name := range h.participants {
		if p, ok := c.known[name]; ok {
			parts = append(parts, p)
		} else {
			missing = append(missing, name)
		}
	}
	c.mu.Unlock()
	if len(missing) > 0 && h.decision != Pending {
		// Its decision is durable, so there is nothing to write, and no
		// way to drive it without them.
		return nil, fmt.Errorf("twophase: take over %q: %w: %q (give the coordinator WithParticipants)", id, ErrUnknownParticipant, missing)
	}
	t := newTx(c, id, parts, h.epoch+1)
	t.recovered, t.missing, t.begun = true, missing, true
	t.seq, t.durable = h.seq, h.decision
	if live, err := c.claim(t); live != nil || err != nil {
		if err != nil {
			return nil, err
		}
		return live, nil
	}
	// The recovered transaction goes on in the caller's name: with its
	// trace linked, and its baggage, as Begin recorded them.
	ctx, begun := c.ins.tel.Resume(ctx, h.carrier)
	t.open(ctx, begun)
	t.start(t.takeOver)
	return t, nil
}

// Status answers a participant in doubt with txID's durable decision, and
// never with one that is not durable yet: Pending while this coordinator
// is deciding. A transaction that began without a decision and is not live
// here is aborted, durably, before the answer, so that no later commit can
// contradict it.
//
// An ID with no record at all is ErrUnknown, and costs nothing durable: no
// coordinator on this journal began it (or it ended so long ago that even
// its tombstone is gone), and Begin is durable before any participant is
// asked to prepare, so no participant holds it prepared here and none needs
// an answer (doc.go has the argument).
func (c *Coordinator) Status(ctx context.Context, txID string) (d Decision, err error) {
	if ctx == nil {
		return Pending, errNilContext
	}
	ctx, span := c.ins.tel.Tracer.Start(ctx, spanStatus, trace.WithAttributes(keyTx.String(txID)))
	defer func() {
		span.SetAttributes(keyDecision.String(d.String()))
		errs.Record(span, err)
		span.End()
	}()
	if txID == "" || len(txID) > journal.MaxIDLen {
		return Pending, fmt.Errorf("twophase: Status: the transaction ID must be 1 to %d bytes", journal.MaxIDLen)
	}
	for range 3 { // a takeover may race another coordinator's append
		t := c.liveTx(txID)
		if t == nil {
			recs, err := c.log.Load(ctx, txID)
			switch {
			case errors.Is(err, journal.ErrForgotten):
				return Pending, fmt.Errorf("%w: %q", ErrForgotten, txID)
			case err != nil:
				return Pending, fmt.Errorf("twophase: Status %q: %w", txID, err)
			case len(recs) == 0:
				return Pending, fmt.Errorf("%w: %q", ErrUnknown, txID)
			}
			h, ok, err := readHistory(recs)
			switch {
			case err != nil:
				return Pending, err
			case !ok:
				return Pending, fmt.Errorf("twophase: Status %q: not a two-phase commit", txID)
			case h.decision != Pending:
				return h.decision, nil
			}
			if t, err = c.takeOver(ctx, txID, h); err != nil {
				return Pending, err
			}
		}
		d, err := t.status(ctx)
		if err == nil {
			return d, nil
		}
		if !errors.Is(err, journal.ErrConflict) && !errors.Is(err, journal.ErrFenced) && !errors.Is(err, journal.ErrEnded) {
			return Pending, fmt.Errorf("twophase: Status %q: %w", txID, err)
		}
		// Another coordinator wrote first: read again what it wrote.
		select {
		case <-t.ctx.Done(): // t has left, so liveTx will not return it again
		case <-ctx.Done():
			return Pending, ctx.Err()
		}
	}
	return Pending, fmt.Errorf("twophase: Status %q: the transaction keeps changing; ask again", txID)
}

// Recover takes over every transaction that the journal shows unfinished
// and that is not live here: it re-drives every logged decision, and
// aborts, durably, every transaction that began without one. It returns a
// report for each, once every participant has acknowledged or ctx ends;
// phase 2 goes on in the background after that.
func (c *Coordinator) Recover(ctx context.Context) (reports []Report, err error) {
	if ctx == nil {
		return nil, errNilContext
	}
	span := telemetry.Lazy(ctx, c.ins.tel.Tracer, spanRecover) // none if nothing is pending
	defer func() { span.End(err) }()
	ids, err := c.log.Pending(ctx)
	if err != nil {
		return nil, fmt.Errorf("twophase: Recover: %w", err)
	}
	return owned.Recover(ctx, &c.live, ids, func(_ context.Context, id string) (*tx, *Report, error) {
		ctx := span.Context()
		recs, err := c.log.Load(ctx, id)
		if err != nil {
			return nil, nil, fmt.Errorf("twophase: Recover %q: %w", id, err)
		}
		h, ok, err := readHistory(recs)
		if !ok {
			return nil, nil, nil // not a two-phase commit's
		}
		if err == nil {
			var t *tx
			if t, err = c.takeOver(ctx, id, h); err == nil {
				return t, nil, nil
			}
		}
		d := Pending
		if h != nil {
			d = h.decision
		}
		return nil, &Report{TxID: id, Decision: d, Err: err}, nil
	}, func(ctx context.Context, t *tx) (Report, error) {
		d, err := t.wait(ctx, false)
		if ctx.Err() != nil && errors.Is(err, ctx.Err()) {
			return Report{}, ctx.Err()
		}
		return Report{TxID: t.id, Decision: d, Err: err}, nil
	})
}

// Report is what Recover did with one transaction.
type Report struct {
	TxID     string
	Decision Decision
	Err      error
}

// Close stops new transactions and the resolver, and waits for the ones
// running to finish their first round of phase 2, until ctx ends; then it
// stops them, with no further call or record, leaves them to Recover, and
// returns ctx's error at once. Their goroutines return as soon as the
// participant or journal call each is in returns. It does not close the
// journal. It is idempotent: a later Close returns nil at once.
func (c *Coordinator) Close(ctx context.Context) error {
	if ctx == nil {
		return errNilContext
	}
	return c.live.Close(ctx, func(t *tx) { t.kill(ErrClosed) })
}
