package benchmarks

import (
	"testing"

	"github.com/otelpatterns/otelpatterns/internal/workload"
)

// The pool workloads, identical for every library and for the pool's own
// benchmarks: benchTasks tasks on benchWorkers workers, each a no-op or
// about a microsecond of CPU.
const (
	benchTasks   = workload.PoolTasks
	benchWorkers = workload.PoolWorkers
)

var (
	workloads = workload.Tasks
	inputs    = workload.Ints(benchTasks)
)

// perTask reports the time per task, the figure the README's table shows.
func perTask(b *testing.B) { workload.PerItem(b, benchTasks) }
