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
// Status answers a participant in doubt. A transaction this coordinator is
// still deciding is Pending. One that began without a decision and is not
// live here is aborted durably first, which fences off the coordinator
// that may still be deciding it elsewhere. An ID with no record is Aborted,
// the presumption; the coordinator records it as such, so that it can
// never commit after all.
//
// When the caller's ctx ends before the decision, the transaction aborts.
// After it, Execute returns at once with the durable decision and an error
// matching ErrInDoubt, and phase 2 goes on, on goroutines the coordinator
// owns; Close waits for them, or stops them and leaves the rest to Recover.
// Recover takes every unfinished transaction over with a higher epoch,
// re-drives its decision, and aborts those that have none.
//
// # Telemetry
//
// A transaction has a 2pc.transaction span, with children for the prepare
// phase and for the commit or abort phase, and a 2pc.call span for each
// call to a participant, with its name, vote and attempt. Recovery and
// Status answers have spans of their own; a recovered transaction's span
// links to the span that began it. Metrics count transactions by
// decision, time the phases, count phase-2 retries and show the
// transactions in doubt. README.md's Telemetry reference lists every name.
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
