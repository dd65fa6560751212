package breaker_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/otelpatterns/otelpatterns/retry/breaker"
)

func Example() {
	ledger, _ := breaker.New(breaker.WithName("ledger"), breaker.WithTripAfter(2), breaker.WithOpenFor(time.Minute),
		breaker.WithOnStateChange(func(name string, from, to breaker.State) { fmt.Println(name, from, "->", to) }))
	defer ledger.Close()

	down := func(context.Context) error { return errors.New("503 service unavailable") }
	for range 3 {
		err := ledger.Execute(context.Background(), down)
		fmt.Println(err)
	}
	fmt.Println(ledger.State())
	// Output:
	// 503 service unavailable
	// ledger closed -> open
	// 503 service unavailable
	// breaker: circuit open
	// open
}
