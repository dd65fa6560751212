package workload

import (
	"context"
	"sync"
	"time"
)

// The hand-written code the library's primitives replace, written once so
// that every benchmark compares against the same baseline.

// IndexPool runs fn(i) for every i in [0, n) on workers goroutines that
// take indices from a channel: the hand-written write-to-index pool.
func IndexPool(n, workers int, fn func(i int)) {
	idx := make(chan int, 1024)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for i := range idx {
				fn(i)
			}
		})
	}
	for i := range n {
		idx <- i
	}
	close(idx)
	wg.Wait()
}

// ClosurePool runs the closures that submit hands it on workers goroutines
// reading a channel of them, and waits for them all.
func ClosurePool(workers int, submit func(run func(task func()))) {
	tasks := make(chan func(), 1024)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for t := range tasks {
				t()
			}
		})
	}
	submit(func(task func()) { tasks <- task })
	close(tasks)
	wg.Wait()
}

// FuturesPool runs work over inputs on workers goroutines, each task with a
// future of its own (a struct and a channel), and waits for every result,
// as the hand-written futures pool does. work gets the context the task was
// submitted with and when it was queued, for baselines that trace.
func FuturesPool(ctx context.Context, inputs []int, workers int, work func(ctx context.Context, queued time.Time, in int) int) {
	type future struct {
		done chan struct{}
		out  int
	}
	type task struct {
		ctx    context.Context
		in     int
		queued time.Time
		fut    *future
	}
	tasks := make(chan task, 1024)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for t := range tasks {
				t.fut.out = work(t.ctx, t.queued, t.in)
				close(t.fut.done)
			}
		})
	}
	futs := make([]*future, len(inputs))
	for i, x := range inputs {
		f := &future{done: make(chan struct{})}
		futs[i] = f
		tasks <- task{ctx: ctx, in: x, queued: time.Now(), fut: f}
	}
	for _, f := range futs {
		<-f.done
	}
	close(tasks)
	wg.Wait()
}
