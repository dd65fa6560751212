package twophase

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

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

	live   owned.Set[*tx]     // the transactions driven here, and their goroutines
	leases *owned.Leases[*tx] // with WithLeases

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
	if cfg.leaseOwner != "" || cfg.leaseTTL != 0 {
		c.leases, err = owned.NewLeases("twophase", log, cfg.leaseOwner, cfg.leaseTTL, &c.live, owned.LeaseHooks[*tx]{
			Lost: func(id string, t *tx) {
				c.ins.leaseLost() // first: a caller waiting on the transaction returns once it is killed
				t.kill(fmt.Errorf("%w: %q", ErrLeaseLost, id))
			},
			Claimed: c.ins.leasesClaimed,
			Renewed: c.ins.leasesRenewed,
		})
		if err != nil {
			return nil, fmt.Errorf("twophase: WithLeases: %w", err)
		}
	}
	return c, nil
}

// lease leases txID to c for an Execute or a Status (see
// owned.Leases.Lease): the epoch to write under and done, or the live
// transaction, to wait for.
func (c *Coordinator) lease(ctx context.Context, txID string) (uint64, func(live bool), *tx, error) {
	epoch, done, live, err := c.leases.Lease(ctx, txID)
	switch {
	case errors.Is(err, journal.ErrLeased):
		return 0, nil, nil, fmt.Errorf("twophase: %q is driven by another coordinator: %w", txID, err)
	case err != nil:
		return 0, nil, nil, fmt.Errorf("twophase: lease %q: %w", txID, err)
	}
	return epoch, done, live, nil
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
// participants it began with. With WithLeases, Execute leases the
// transaction first: an ID whose lease another coordinator holds returns
// Pending and an error matching journal.ErrLeased (ask Status), and a
// transaction whose lease this coordinator loses midway stops with
// ErrLeaseLost.
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
	epoch, leased, live, err := c.lease(ctx, txID)
	switch {
	case err != nil:
		return Pending, err
	case live != nil:
		return live.wait(ctx, false)
	}
	c.learn(participants)
	recs, err := c.log.Load(ctx, txID)
	switch {
	case errors.Is(err, journal.ErrForgotten):
		leased(false)
		return Pending, fmt.Errorf("%w: %q", ErrForgotten, txID)
	case err != nil:
		leased(false)
		return Pending, fmt.Errorf("twophase: Execute %q: %w", txID, err)
	case len(recs) > 0:
		return c.executeLogged(ctx, txID, recs, epoch, leased)
	case c.leases != nil && epoch == 0:
		// The lease found it ended, and its tombstone expired since.
		leased(false)
		return Pending, fmt.Errorf("twophase: Execute %q: its records were forgotten as it began; execute it again", txID)
	}
	t := newTx(c, txID, participants, max(1, epoch))
	live, err = c.claim(t)
	leased(live == nil && err == nil)
	if live != nil || err != nil {
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
	case !t.hasBegun() && c.leases != nil:
		// Another coordinator leased and began it after this one's lease
		// expired: it drives it, and its decision is the answer.
		return c.answerFromJournal(ctx, txID, err)
	case !t.hasBegun():
		// Another coordinator began the same ID first: answer as for any
		// ID the journal has.
		if recs, lerr := c.log.Load(ctx, txID); lerr == nil && len(recs) > 0 {
			return c.executeLogged(ctx, txID, recs, 0, func(bool) {})
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

// executeLogged answers Execute for an ID the journal has, leased under
// epoch (see lease).
func (c *Coordinator) executeLogged(ctx context.Context, txID string, recs []journal.Record, epoch uint64, leased func(live bool)) (Decision, error) {
	h, ok, err := readHistory(recs)
	if err != nil || !ok || h.ended {
		leased(false)
	}
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
	t, err := c.takeOver(ctx, txID, h, epoch)
	leased(err == nil)
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

// takeOver resumes a logged, unfinished transaction under a higher epoch
// (its lease's, with leases), with an abort decision if it has none, and
// drives its phase 2, all on a goroutine of the coordinator's. Its
// decision is known once that goroutine's first record is durable
// (tx.status waits for it).
func (c *Coordinator) takeOver(ctx context.Context, id string, h *history, lease uint64) (*tx, error) {
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
	t := newTx(c, id, parts, max(h.epoch+1, lease))
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
	for tries := 0; tries < 3; { // a takeover may race another coordinator's append
		t := c.liveTx(txID)
		if t == nil {
			if d, err := c.recordedDecision(ctx, txID); err != nil || d != Pending {
				return d, err
			}
			// Undecided, and not live here: take it over, which aborts it.
			t, err = c.takeOverUndecided(ctx, txID)
			switch {
			case errors.Is(err, journal.ErrLeased): // another coordinator drives it: wait for its decision
				select {
				case <-time.After(min(c.leases.TTL()/10, 50*time.Millisecond)):
				case <-ctx.Done():
					return Pending, ctx.Err()
				}
				continue
			case err != nil:
				return Pending, err
			case t == nil: // decided meanwhile: read it
				continue
			}
		}
		tries++
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

// recordedDecision is txID's decision as the journal holds it: Pending
// for a transaction begun without one, ErrUnknown for an ID with no
// record.
func (c *Coordinator) recordedDecision(ctx context.Context, txID string) (Decision, error) {
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
	}
	return h.decision, nil
}

// takeOverUndecided takes over, for Status, a transaction that the journal
// showed undecided, leasing it first (an error matching journal.ErrLeased
// when another coordinator holds it) and reading it again under the
// lease; nil if it is decided by then, or the live transaction.
func (c *Coordinator) takeOverUndecided(ctx context.Context, txID string) (*tx, error) {
	epoch, leased, live, err := c.lease(ctx, txID)
	if err != nil || live != nil {
		return live, err
	}
	recs, err := c.log.Load(ctx, txID)
	h, ok, herr := readHistory(recs)
	switch {
	case err != nil:
		leased(false)
		return nil, fmt.Errorf("twophase: Status %q: %w", txID, err)
	case herr != nil || !ok || h.decision != Pending || h.ended:
		leased(false)
		return nil, herr
	}
	t, err := c.takeOver(ctx, txID, h, epoch)
	leased(err == nil)
	return t, err
}

// Recover takes over every transaction that the journal shows unfinished
// and that is not live here: it re-drives every logged decision, and
// aborts, durably, every transaction that began without one. It returns a
// report for each, once every participant has acknowledged or ctx ends;
// phase 2 goes on in the background after that.
//
// With WithLeases, Recover takes over only the transactions that no
// coordinator holds a lease of, or whose coordinator's lease expired:
// never one whose coordinator is alive and renewing. Serve calls it in a
// loop.
func (c *Coordinator) Recover(ctx context.Context) (reports []Report, err error) {
	if ctx == nil {
		return nil, errNilContext
	}
	return c.recover(ctx, true)
}

// recover is Recover; with wait false it reports the transactions it
// took over as Pending at once.
func (c *Coordinator) recover(ctx context.Context, wait bool) (reports []Report, err error) {
	span := telemetry.Lazy(ctx, c.ins.tel.Tracer, spanRecover) // none if nothing is pending
	defer func() { span.End(err) }()
	pending := func(ctx context.Context) ([]string, error) {
		ids, err := c.log.Pending(ctx)
		if err != nil {
			return nil, fmt.Errorf("twophase: Recover: %w", err)
		}
		return ids, nil
	}
	return owned.Recover(ctx, &c.live, c.leases, pending, func(_ context.Context, id string, epoch uint64) (*tx, *Report, error) {
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
			if t, err = c.takeOver(ctx, id, h, epoch); err == nil {
				return t, nil, nil
			}
		}
		d := Pending
		if h != nil {
			d = h.decision
		}
		return nil, &Report{TxID: id, Decision: d, Err: err}, nil
	}, func(ctx context.Context, t *tx) (Report, error) {
		if !wait {
			return Report{TxID: t.id, Decision: Pending}, nil
		}
		d, err := t.wait(ctx, false)
		if ctx.Err() != nil && errors.Is(err, ctx.Err()) {
			return Report{}, ctx.Err()
		}
		return Report{TxID: t.id, Decision: d, Err: err}, nil
	})
}

// Serve recovers, every half of the lease time, the transactions whose
// coordinator died (see Recover), without waiting for their phase 2,
// until ctx ends (it returns ctx's error) or Close begins (nil). A replica
// runs one Serve beside its handlers. Errors on the way go to
// otel.Handle, and the next round tries again. Serve needs WithLeases:
// without them one coordinator's Recover takes over what another is
// driving.
func (c *Coordinator) Serve(ctx context.Context) error {
	switch {
	case ctx == nil:
		return errNilContext
	case c.leases == nil:
		return errors.New("twophase: Serve needs WithLeases, so that replicas take over only what a dead one left")
	}
	return c.leases.Serve(ctx, func(ctx context.Context) error {
		if _, err := c.recover(ctx, false); !errors.Is(err, ErrClosed) {
			return err
		}
		return nil
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
// participant or journal call each is in returns. With WithLeases, the
// leases are renewed while Close waits, and those of the transactions it
// stopped are given back, so that another replica takes them at once. It
// does not close the journal. It is idempotent: a later Close returns nil at once.
func (c *Coordinator) Close(ctx context.Context) error {
	if ctx == nil {
		return errNilContext
	}
	var stopped []string
	err := c.live.Close(ctx, func(t *tx) {
		stopped = append(stopped, t.id)
		t.kill(ErrClosed)
	})
	c.leases.Close(stopped)
	return err
}
