package pipeline_test

import (
	"context"
	"fmt"
	"slices"

	"github.com/otelpatterns/otelpatterns/concurrency/pipeline"
)

func ExampleThen() {
	parse, _ := pipeline.NewStage("parse", func(_ context.Context, s string) (int, error) {
		var n int
		_, err := fmt.Sscan(s, &n)
		return n, err
	})
	price, _ := pipeline.NewStage("price", func(_ context.Context, qty int) (string, error) {
		return fmt.Sprintf("%d × 2.50 = %.2f", qty, float64(qty)*2.5), nil
	}, pipeline.WithWorkers(3)) // three workers, results still in order

	lines := slices.Values([]string{"1", "4", "10"})
	quotes := pipeline.Then(pipeline.Then(pipeline.From(context.Background(), "quotes", lines), parse), price)
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
	batches := pipeline.Batch(pipeline.From(context.Background(), "rows", slices.Values([]int{1, 2, 3, 4, 5})), 2, 0)
	for b := range batches.All() {
		fmt.Println(b)
	}
	// Output:
	// [1 2]
	// [3 4]
	// [5]
}
