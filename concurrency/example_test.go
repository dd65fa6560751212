package concurrency_test

import (
	"context"
	"fmt"
	"sync"

	"github.com/otelpatterns/otelpatterns/concurrency"
)

func Example() {
	orders, err := concurrency.NewChannel[string](8, concurrency.WithName("orders"))
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
	c, _ := concurrency.NewChannel[int](1)
	_ = c.Send(context.Background(), 42)
	v, sc, err := c.Receive(context.Background())
	fmt.Println(v, sc.IsValid(), err) // no span in the sender's ctx: an empty span context
	// Output: 42 false <nil>
}
