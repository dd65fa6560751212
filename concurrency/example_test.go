package concurrency_test

import (
	"context"
	"fmt"
	"slices"
	"sync"

	"github.com/otelpatterns/otelpatterns/concurrency"
)

func Example() {
	orders, err := concurrency.New[string](8, concurrency.WithName("orders"))
	if err != nil {
		panic(err)
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		// The consumer: each value runs inside a "process orders" span, linked
		// to the span of the request that sent it.
		_ = orders.Consume(context.Background(), func(ctx context.Context, id string) error {
			fmt.Println("shipping", id)
			return nil
		})
	})
	for _, id := range []string{"order-1", "order-2"} {
		_ = orders.Send(context.Background(), id) // in a request's goroutine, with its ctx
	}
	_ = orders.Close()
	wg.Wait()
	// Output:
	// shipping order-1
	// shipping order-2
}

func ExampleTracedChannel_Receive() {
	c, _ := concurrency.New[int](1)
	_ = c.Send(context.Background(), 42)
	v, sc, err := c.Receive(context.Background())
	fmt.Println(v, sc.IsValid(), err) // no span in the sender's ctx: an empty span context
	// Output: 42 false <nil>
}

func ExampleThen() {
	parse, _ := concurrency.NewStage("parse", func(_ context.Context, s string) (int, error) {
		var n int
		_, err := fmt.Sscan(s, &n)
		return n, err
	})
	price, _ := concurrency.NewStage("price", func(_ context.Context, qty int) (string, error) {
		return fmt.Sprintf("%d × 2.50 = %.2f", qty, float64(qty)*2.5), nil
	}, concurrency.Workers(3)) // three workers, results still in order

	lines := slices.Values([]string{"1", "4", "10"})
	quotes := concurrency.Then(concurrency.Then(concurrency.From(context.Background(), "quotes", lines), parse), price)
	for q := range quotes.All() {
		fmt.Println(q)
	}
	fmt.Println(quotes.Err())
	// Output:
	// 1 × 2.50 = 2.50
	// 4 × 2.50 = 10.00
	// 10 × 2.50 = 25.00
	// <nil>
}

func ExampleBatch() {
	batches := concurrency.Batch(concurrency.From(context.Background(), "rows", slices.Values([]int{1, 2, 3, 4, 5})), 2, 0)
	for b := range batches.All() {
		fmt.Println(b)
	}
	// Output:
	// [1 2]
	// [3 4]
	// [5]
}

func ExampleSingleflight() {
	g, _ := concurrency.NewSingleflight[string, int]()
	v, shared, err := g.Do(context.Background(), "price:sku-1", func(context.Context) (int, error) {
		return 250, nil // a cache miss: one call to the database, however many callers
	})
	fmt.Println(v, shared, err)
	// Output: 250 false <nil>
}
