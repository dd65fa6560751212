// Package twophase commits a transaction across several resource managers
// atomically: every participant commits, or none does, even when the
// coordinator dies between the phases. It is two-phase commit with presumed
// abort (Mohan, Lindsay and Obermarck, as in R*), whose safety property is
// the one TLA+'s TCommit states: no participant commits while another
// aborts.
//
// # Using it
//
//	coord, err := twophase.NewCoordinator(log, // a journal.Log: journal.Open(dir) to survive crashes
//		twophase.WithParticipants(ledgerA, ledgerB), // so that Recover can find them by name
//		twophase.WithPrepareTimeout(2*time.Second))
//	...
//	decision, err := coord.Execute(ctx, "transfer-9", ledgerA, ledgerB)
//	...
//	reports, err := coord.Recover(ctx) // at start-up: finish what a crash left
//
// A participant implements Prepare, Commit and Abort, all idempotent.
// Local does the bookkeeping that asks for over a Resource of yours:
// repeated calls answer as the first did, an Abort of an unknown
// transaction leaves a tombstone so that a late Prepare votes no, and
// Resolve asks the coordinator's Status about what is in doubt. Package
// twophasehttp serves a participant over HTTP, and calls one.
//
// # The protocol
//
// Execute writes Begin, naming the participants, before the first Prepare;
// asks every participant to prepare, in parallel, within the prepare
// timeout; and commits only if every vote is yes. The commit decision is
// durable before the first Commit is sent, and never changes; the abort
// decision is written while the Aborts go out, for presumed abort reads a
// missing decision as abort anyway. Commit or Abort is repeated under the
// phase-2 retry policy until every participant acknowledges, and then End
// is written. Once a transaction has begun its membership is frozen.
//
// Every transaction runs, from Begin to End, on one goroutine that the
// coordinator owns; Execute waits for it. When the caller's ctx ends
// before the decision, Execute returns Aborted at once and the transaction
// aborts, for the decision and the caller's leaving exclude each other:
// a caller told Aborted is never contradicted by a commit. When ctx ends
// while the commit decision is being written, Execute returns Pending and
// an error matching ErrInDoubt (Status tells the outcome); after the
// decision, the decision and ErrInDoubt. Phase 2 goes on either way, even
// while a journal call hangs.
//
// When the phase-2 retry policy gives up on a participant, Execute
// returns ErrInDoubt and the resolver, which the coordinator owns, goes
// on: it re-sends the decision to the participants that have not
// acknowledged, once each per round, with exponential backoff
// (WithResolver; on by default, from one second to a minute), until all
// have, and then writes End. Close stops it, and leaves the transaction
// to Recover, which takes every unfinished transaction over with a
// higher epoch, re-drives its decision, and aborts those that have none.
//
// # Status
//
// Status answers a participant in doubt, and only ever with a decision
// that is durable: Pending while this coordinator is still deciding, or
// writing its decision. A transaction that began without a decision and
// is not live here is aborted, durably, before the answer; that record's
// higher epoch fences off the coordinator that may still be deciding it
// elsewhere, and if that coordinator's commit lands first, the abort is
// refused and Status answers the commit.
//
// An ID with no record at all is ErrUnknown, and Status writes nothing
// for it, so that no client can grow the journal by asking about made-up
// IDs, or abort an ID that a caller will use later. This keeps atomicity
// because a participant can only be prepared by a coordinator that has
// made Begin durable first: Execute forces Begin before the first
// Prepare, an acknowledged record is never lost, and a transaction's
// records are forgotten (ErrForgotten, then nothing once the tombstone's
// horizon has passed) only after End, which follows every participant's
// acknowledgement. So a participant that holds an ID prepared and is told
// ErrUnknown was not prepared by a coordinator on this journal (it asks
// the wrong one, or the call did not come from a coordinator); it stays
// in doubt, which is safe, rather than act on a guess. And an ID that no
// coordinator has begun can still be begun: if a Begin is being written
// while Status looks, the Prepares that follow it find a coordinator that
// knows the transaction.
//
// Ended transactions stay in the journal until the coordinator forgets
// them: WithRetention(d) forgets each d after its End; without it the
// journal grows with every transaction.
//
// # Replicas
//
// Coordinators in several replicas share one journal (pgjournal, on
// PostgreSQL) through leases: with WithLeases(podName, ttl) each
// transaction a coordinator begins or takes over is leased to it first,
// renewed while it is driven, and given back at Close, and its records
// carry the lease's epoch, so the journal fences a coordinator whose lease
// passed to another. Serve takes over, every half of the lease time, the
// transactions whose coordinator's lease expired, and re-drives their
// decision (presumed abort for one that had none); Status waits for the
// decision of an undecided transaction that another live coordinator
// drives, instead of aborting it; Execute of such an ID returns an error
// matching journal.ErrLeased.
//
// # Telemetry
//
// A transaction has a 2pc.transaction span, with children for the prepare
// phase and for the commit or abort phase, and a 2pc.call span for each
// call to a participant, with its name, vote and attempt. Recovery and
// Status answers have spans of their own; a recovered transaction's span
// links to the span that began it, and carries the baggage that Begin
// recorded. Each round of the resolver is a 2pc.resolve root span, linked
// to the transaction's. Metrics count transactions by decision, time the
// phases, count phase-2 retries (the resolver's included) and show the
// transactions in doubt until End. README.md's Telemetry reference lists
// every name.
//
// # Pitfalls
//
//   - A participant's prepared state must survive its own crash: Local
//     keeps it in memory, which suits tests and in-memory resources; keep
//     it with the resource's own durable state otherwise.
//   - A prepared participant holds its locks until it hears the decision:
//     run Resolve when the coordinator has been silent for a while.
//   - Name participants stably: the journal finds them by name.
package twophase
