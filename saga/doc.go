// Package saga runs sagas: long transactions made of steps that each
// commit on their own, where a failure is undone by compensating the steps
// that ran, in reverse (Garcia-Molina and Salem, 1987). A saga either runs
// every step, or runs some and compensates each of them; this runner keeps
// that promise across crashes, timeouts, cancellations and failing
// compensations, and shows every step in a trace.
//
// # Defining a saga
//
// A saga's state is a Go value that JSON can encode. Each step's action
// gets its own copy of the state and returns the state as it leaves it;
// its compensation undoes it:
//
//	checkout, err := saga.New("checkout", 1, []saga.Step[Order]{
//		{Name: "reserve-stock", Action: reserve, Compensate: release, Timeout: 2 * time.Second},
//		{Name: "charge-payment", Action: charge, Compensate: refund, Retry: paymentsPolicy},
//		{Name: "create-order", Action: create},
//	})
//
// Steps without After run in the order given. With After, the steps form
// a graph, and those whose dependencies are done run in parallel; their
// results then join the state through the definition's WithMerge, one at a
// time in the order they were journaled. Parallel steps never share
// memory: each gets a deep copy of the state.
//
// # Running it
//
//	runner, err := saga.NewRunner(log) // a journal.Log: journal.Open(dir) to survive crashes
//	orders, err := saga.Register(runner, checkout)
//	order, outcome, err := orders.Run(ctx, "order-1042", Order{...})
//	...
//	reports, err := runner.Recover(ctx) // at start-up: finish what a crash left
//
// Every step writes ahead to the journal: Begin (with the initial state
// and the caller's trace context), StepStarted before each attempt,
// StepDone with the step's result, StepFailed and Aborting, each
// CompensationDone, and End. A crash at any point leaves a journal from
// which Recover, in the same process or another, takes each unfinished
// saga over with a higher epoch (fencing off its old runner) and drives it
// on: forward where no step failed, backward where one did. Run with an
// ID that already ended returns the recorded outcome and runs nothing.
//
// # Replicas
//
// Several replicas of a service share one journal (pgjournal, on
// PostgreSQL) through leases:
//
//	runner, err := saga.NewRunner(log, saga.WithLeases(podName, 10*time.Second))
//	go runner.Serve(ctx) // takes over what a dead replica left
//
// Every saga a runner begins, runs or takes over is leased to it first,
// renewed while it runs, and given back at Close; every record carries the
// lease's epoch, so the journal fences a runner whose lease passed to
// another. Serve claims, every half of the lease time, the sagas whose
// runner's lease expired, never one whose runner is alive and renewing,
// and resumes them with their first caller's trace linked. A Run of a saga
// that another replica drives returns an error matching journal.ErrLeased;
// a saga whose lease its runner could not keep stops with ErrLeaseLost.
//
// # Idempotency
//
// An action may run more than once: a retry, or a recovery after a crash
// between the action and its StepDone. A compensation may run for an
// action that never had an effect, and an action may arrive at its
// service after its compensation. StepFromContext gives each call its
// saga ID, step and attempt; Barrier, in the service, turns those into
// at-most-once effects, null compensations, and late actions that do
// nothing. A compensation gets the state as the saga aborted; the output
// of a step that never journaled StepDone is not in it, so a compensation
// finds its effect by the step's key.
//
// # Aborting
//
// A step whose retry policy gives up aborts the saga; so does the ctx of
// the Run that began or resumed it (a Run that joined a running saga only
// stops waiting). Run then returns as soon as the abort is durable, with
// Aborting, and waits for that at most the runner's abort wait
// (WithAbortWait): a journal that does not answer makes Run return Pending
// and ErrAbortRequested, and the runner makes the abort durable once the
// journal answers. No action starts once the abort is requested, and the
// actions in flight are called back through their ctx. Every step whose StepStarted is
// durable is compensated, the failed one included, each only after the
// compensations of the steps that depend on it, on goroutines the runner
// owns, on a context detached from the caller, under the runner's
// compensation policy (WithCompensationRetry, WithCompensationTimeout).
// When that gives up, the saga is stuck: reported, counted, and left in
// the journal until a person acts (Runner.Stuck, RetryStuck, Resolve).
// Close waits for the compensations, or stops them and leaves them to
// Recover.
//
// # Where a saga stands, and forgetting it
//
// Runner.Lookup reads a saga's outcome, current step, attempts and stuck
// reason from the journal, with no side effect: it never starts, joins or
// aborts a saga. An ended saga stays in the journal, so that Run with its
// ID returns the recorded outcome, until the runner forgets it:
// WithRetention(d) forgets each saga d after it ended (completed,
// compensated or resolved), and the journal then keeps a tombstone of its
// ID for its tombstone horizon, during which Run and Lookup return
// ErrForgotten. Without retention the journal grows with every saga.
//
// # Telemetry
//
// A saga has a span named after its definition ("saga checkout"), with a
// child for each attempt of a step ("saga.step charge-payment") and of a
// compensation ("saga.compensate charge-payment"); the saga's ID is an
// attribute of its spans, never of its metrics. A resumed saga's span
// links to the span that began it, through the trace context stored in
// Begin. Metrics count sagas by outcome, time sagas and steps, count
// compensations, and show sagas in flight and stuck. README.md's
// Telemetry reference lists every name.
//
// # Pitfalls
//
//   - Change the definition's version whenever you change its steps:
//     Recover refuses to resume a saga under code that changed since it
//     began, and marks it stuck.
//   - Actions and compensations must heed their ctx: an abort and Close
//     call them back through it.
//   - The state is journaled at every step: keep it small.
package saga
