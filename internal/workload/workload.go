// Package workload holds the benchmark workloads that the packages'
// benchmarks and the benchmarks module share, so that every comparison runs
// exactly the same work. It is imported only by benchmarks.
package workload

import "testing"

// Spin burns CPU for n rounds of a xorshift and returns a bit of the
// result, so the compiler cannot drop the work. 330 rounds take about a
// microsecond on the development machine.
func Spin(x, n int) int {
	v := uint64(x) | 1
	for range n {
		v ^= v << 13
		v ^= v >> 7
		v ^= v << 17
	}
	return int(v & 1)
}

// Spin1us and Spin10us burn about 1µs and 10µs of CPU.
func Spin1us(x int) int  { return Spin(x, 330) }
func Spin10us(x int) int { return Spin(x, 3300) }

// Ints returns 0, 1, ..., n-1.
func Ints(n int) []int {
	s := make([]int, n)
	for i := range s {
		s[i] = i
	}
	return s
}

// Task is a named per-item function of a workload.
type Task struct {
	Name string
	Fn   func(int) int
}

// Tasks are the pool workloads: a no-op, and about 1µs of CPU.
var Tasks = []Task{
	{"noop", func(x int) int { return x }},
	{"cpu1us", Spin1us},
}

// The pool workloads' size: PoolTasks tasks on PoolWorkers workers.
const (
	PoolTasks   = 100_000
	PoolWorkers = 4
)

// PerItem reports the time per item of a benchmark whose every op handles
// items items, as the ns/task figure the README's tables show.
func PerItem(b *testing.B, items int) {
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(items), "ns/task")
}
