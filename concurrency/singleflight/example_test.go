package singleflight_test

import (
	"context"
	"fmt"

	"github.com/otelpatterns/otelpatterns/concurrency/singleflight"
)

func Example() {
	g, _ := singleflight.New[string, int]()
	v, shared, err := g.Do(context.Background(), "price:sku-1", func(context.Context) (int, error) {
		return 250, nil // a cache miss: one call to the database, however many callers
	})
	fmt.Println(v, shared, err)
	// Output: 250 false <nil>
}
