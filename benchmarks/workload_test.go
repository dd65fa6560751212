package benchmarks

import (
	"testing"
)

// The pool workloads, identical for every library: benchTasks tasks on
// benchWorkers workers, each a no-op or about a microsecond of CPU.
const (
	benchTasks   = 100_000
	benchWorkers = 4
)

type workload struct {
	name string
	fn   func(int) int
}

var workloads = []workload{
	{"noop", func(x int) int { return x }},
	{"cpu1us", spin},
}

// spin burns about a microsecond of CPU on the development machine.
func spin(x int) int {
	v := uint64(x) | 1
	for range 330 {
		v ^= v << 13
		v ^= v >> 7
		v ^= v << 17
	}
	return int(v & 1)
}

var inputs = func() []int {
	in := make([]int, benchTasks)
	for i := range in {
		in[i] = i
	}
	return in
}()

// perTask reports the time per task, the figure the README's table shows.
func perTask(b *testing.B) {
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/benchTasks, "ns/task")
}
