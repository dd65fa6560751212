package pool

import (
	"sync/atomic"

	"github.com/otelpatterns/otelpatterns/internal/telemetry"
)

// Stats is a snapshot of a pool's state and counts, for programs that do
// not export OpenTelemetry metrics. Workers keep their own counts and add
// them to the pool's just before they sleep for want of work, and at least
// every few hundred tasks, so that a task costs no write that other workers
// share. The counts are exact after Close or Shutdown; while the pool runs
// they may trail by the tasks each worker finished since it last did so.
type Stats struct {
	Workers int // workers wanted: the last Resize, or WithWorkers
	Running int // workers running a task (a batch counts once per runner)
	Queued  int // tasks waiting in the queue

	Submitted uint64 // tasks accepted, and batch items that ran
	Completed uint64 // tasks that returned nil
	Failed    uint64 // tasks that returned an error other than a context error
	Panicked  uint64 // tasks that panicked
	Canceled  uint64 // tasks that ended with a context error, or never ran because of Shutdown
	Dropped   uint64 // tasks TrySubmit refused
}

// Stats returns a snapshot of the pool's state and counts.
func (p *WorkerPool[In, Out]) Stats() Stats {
	return Stats{
		Workers:   int(p.target.Load()),
		Running:   int(p.busy()),
		Queued:    len(p.queue),
		Submitted: p.submitted.Load(),
		Completed: p.stats.completed.Load(),
		Failed:    p.stats.failed.Load(),
		Panicked:  p.stats.panicked.Load(),
		Canceled:  p.stats.canceled.Load(),
		Dropped:   p.dropped.Load(),
	}
}

// tally is counts not yet added to the pool's: a worker's own, or a batch's.
type tally struct {
	tasks, completed, failed, panicked, canceled uint64
}

// count counts a task that ran, by its outcome.
func (t *tally) count(err error) {
	t.tasks++
	switch telemetry.Outcome(err) {
	case telemetry.OutcomeSuccess:
		t.completed++
	case telemetry.OutcomePanic:
		t.panicked++
	case telemetry.OutcomeCanceled:
		t.canceled++
	default:
		t.failed++
	}
}

// counts is the pool's counts of tasks that ended.
type counts struct {
	completed, failed, panicked, canceled atomic.Uint64
}

// add moves t into c and zeroes t.
func (c *counts) add(t *tally) {
	for _, f := range [...]struct {
		n   uint64
		dst *atomic.Uint64
	}{{t.completed, &c.completed}, {t.failed, &c.failed}, {t.panicked, &c.panicked}, {t.canceled, &c.canceled}} {
		if f.n > 0 {
			f.dst.Add(f.n)
		}
	}
	*t = tally{}
}
