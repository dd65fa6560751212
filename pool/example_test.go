package pool_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/otelpatterns/otelpatterns/pool"
)

func Example() {
	p, err := pool.New(func(_ context.Context, word string) (int, error) {
		return len(word), nil
	}, pool.WithWorkers(4), pool.WithName("lengths"))
	if err != nil {
		panic(err)
	}
	defer p.Close()

	f, err := p.Submit(context.Background(), "telemetry")
	if err != nil {
		panic(err)
	}
	n, err := f.Wait(context.Background())
	fmt.Println(n, err)
	// Output: 9 <nil>
}

func ExampleWorkerPool_Process() {
	p, err := pool.New(func(_ context.Context, s string) (string, error) {
		return strings.ToUpper(s), nil
	}, pool.WithWorkers(3))
	if err != nil {
		panic(err)
	}
	defer p.Close()

	out, err := p.Process(context.Background(), []string{"a", "b", "c", "d"})
	fmt.Println(out, err)
	// Output: [A B C D] <nil>
}

func ExampleCollectAll() {
	p, err := pool.New(func(_ context.Context, n int) (int, error) {
		if n < 0 {
			return 0, fmt.Errorf("negative: %d", n)
		}
		return n * n, nil
	})
	if err != nil {
		panic(err)
	}
	defer p.Close()

	out, err := p.Process(context.Background(), []int{1, -2, 3, -4}, pool.CollectAll())
	fmt.Println(out)
	fmt.Println(err)
	// Output:
	// [1 0 9 0]
	// negative: -2
	// negative: -4
}

func ExampleWorkerPool_ProcessSeq() {
	p, err := pool.New(func(_ context.Context, n int) (int, error) { return n * 10, nil })
	if err != nil {
		panic(err)
	}
	defer p.Close()

	for v, err := range p.ProcessSeq(context.Background(), slices.Values([]int{1, 2, 3})) {
		fmt.Println(v, err)
	}
	// Output:
	// 10 <nil>
	// 20 <nil>
	// 30 <nil>
}

func ExampleWorkerPool_TrySubmit() {
	release := make(chan struct{})
	p, err := pool.New(func(_ context.Context, n int) (int, error) {
		<-release
		return n, nil
	}, pool.WithWorkers(1), pool.WithQueueSize(0))
	if err != nil {
		panic(err)
	}
	defer p.Close()
	defer close(release)

	first, _ := p.Submit(context.Background(), 1) // the only worker takes it
	_ = first
	for p.Stats().Running == 0 {
		time.Sleep(time.Millisecond)
	}
	_, err = p.TrySubmit(context.Background(), 2)
	fmt.Println(errors.Is(err, pool.ErrQueueFull), p.Stats().Dropped)
	// Output: true 1
}

func ExampleNewTasks() {
	p, err := pool.NewTasks(pool.WithWorkers(2))
	if err != nil {
		panic(err)
	}
	results := make([]string, 3)
	for i, name := range []string{"ann", "bob", "cy"} {
		_ = p.Go(context.Background(), func(context.Context) error {
			results[i] = "hello " + name
			return nil
		})
	}
	_ = p.Close() // runs what is queued, then stops the workers
	fmt.Println(results)
	// Output: [hello ann hello bob hello cy]
}

func ExampleTasks_Group() {
	p, err := pool.NewTasks(pool.WithWorkers(2))
	if err != nil {
		panic(err)
	}
	defer p.Close()
	sizes := make([]int, 3)
	g := p.Group(context.Background())
	for i, page := range []string{"/", "/about", "/contact"} {
		_ = g.Go(func(ctx context.Context) error {
			sizes[i] = len(page) // fetch(ctx, page), say
			return nil
		})
	}
	err = g.Wait() // the first error, if any task failed
	fmt.Println(sizes, err)
	// Output: [1 6 8] <nil>
}
