package functional_test

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/otelpatterns/otelpatterns/functional"
)

func ExampleMap() {
	lengths, err := functional.Map(context.Background(), []string{"a", "bb", "ccc"}, func(s string) int { return len(s) })
	fmt.Println(lengths, err)
	// Output: [1 2 3] <nil>
}

func ExampleMapErr() {
	nums, err := functional.MapErr(context.Background(), []string{"1", "2", "three", "4"},
		func(_ context.Context, s string) (int, error) { return strconv.Atoi(s) })
	fmt.Println(nums, err)
	// Output: [1 2] strconv.Atoi: parsing "three": invalid syntax
}

func ExampleFilter() {
	evens, _ := functional.Filter(context.Background(), []int{1, 2, 3, 4, 5, 6}, func(n int) bool { return n%2 == 0 })
	fmt.Println(evens)
	// Output: [2 4 6]
}

func ExampleReduce() {
	total, _ := functional.Reduce(context.Background(), []float64{9.99, 5.01, 10}, 0.0, func(sum, price float64) float64 {
		return sum + price
	})
	fmt.Println(total)
	// Output: 25
}

func ExampleMapSeq() {
	// Lazy: only the words needed are upper-cased, and the standard library
	// collects them.
	words := strings.Fields("the quick brown fox jumps")
	long := functional.FilterSeq(slices.Values(words), func(w string) bool { return len(w) > 3 })
	upper := functional.MapSeq(long, strings.ToUpper)
	fmt.Println(slices.Collect(upper))
	// Output: [QUICK BROWN JUMPS]
}

func ExampleMapSeq2() {
	stock := map[string]int{"apple": 3, "pear": 0, "plum": 7}
	inStock := functional.FilterSeq2(maps.All(stock), func(_ string, n int) bool { return n > 0 })
	lines := functional.MapSeq2(inStock, func(name string, n int) string { return fmt.Sprintf("%s:%d", name, n) })
	fmt.Println(slices.Sorted(lines))
	// Output: [apple:3 plum:7]
}

func ExampleParallelMap() {
	prices, err := functional.ParallelMap(context.Background(), []string{"sku-1", "sku-2", "sku-3"},
		func(_ context.Context, sku string) (int, error) {
			return 100 * int(sku[len(sku)-1]-'0'), nil // a call to a pricing service, say
		}, functional.WithWorkers(2))
	fmt.Println(prices, err)
	// Output: [100 200 300] <nil>
}

func ExampleCollectAll() {
	_, err := functional.ParallelMap(context.Background(), []string{"1", "x", "3", "y"},
		func(_ context.Context, s string) (int, error) { return strconv.Atoi(s) },
		functional.CollectAll())
	fmt.Println(err)
	// Output:
	// strconv.Atoi: parsing "x": invalid syntax
	// strconv.Atoi: parsing "y": invalid syntax
}

func ExampleResult() {
	// Results carry a value or its error through a channel.
	ch := make(chan functional.Result[int], 3)
	for _, s := range []string{"4", "2", "x"} {
		ch <- functional.Of(strconv.Atoi(s))
	}
	close(ch)
	for r := range ch {
		if v, err := r.Value(); err != nil {
			fmt.Println("error:", err)
		} else {
			fmt.Println("value:", v)
		}
	}
	// Output:
	// value: 4
	// value: 2
	// error: strconv.Atoi: parsing "x": invalid syntax
}

func ExampleCollect() {
	rs := []functional.Result[int]{functional.Ok(1), functional.Ok(2), functional.Ok(3)}
	vals, err := functional.Collect(rs)
	fmt.Println(vals, err)
	// Output: [1 2 3] <nil>
}
