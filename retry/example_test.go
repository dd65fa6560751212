package retry_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/otelpatterns/otelpatterns/retry"
)

var errUnavailable = errors.New("503 service unavailable")

func ExampleDo() {
	policy, err := retry.New(retry.WithMaxAttempts(4), retry.WithConstantBackoff(time.Millisecond))
	if err != nil {
		panic(err)
	}
	calls := 0
	price, err := retry.Do(context.Background(), policy, func(context.Context) (int, error) {
		if calls++; calls < 3 {
			return 0, errUnavailable
		}
		return 42, nil
	})
	fmt.Println(price, err, calls)
	// Output: 42 <nil> 3
}

func ExampleError() {
	policy, _ := retry.New(retry.WithMaxAttempts(2), retry.WithConstantBackoff(0))
	err := retry.Run(context.Background(), policy, func(context.Context) error { return errUnavailable })

	var re *retry.Error
	fmt.Println(errors.Is(err, errUnavailable), errors.Is(err, retry.ErrExhausted))
	if errors.As(err, &re) {
		fmt.Println(re.Attempts)
	}
	fmt.Println(err)
	// Output:
	// true true
	// 2
	// retry: attempts exhausted after 2 attempt(s): 503 service unavailable
}

func ExamplePermanent() {
	policy, _ := retry.New(retry.WithMaxAttempts(5))
	calls := 0
	err := retry.Run(context.Background(), policy, func(context.Context) error {
		calls++
		return retry.Permanent(errors.New("400 bad request")) // retrying cannot help
	})
	fmt.Println(calls, errors.Is(err, retry.ErrPermanent))
	// Output: 1 true
}

func ExampleWithRetry() {
	calls := 0
	v, err := retry.WithRetry(context.Background(), func(context.Context) (string, error) {
		if calls++; calls == 1 {
			return "", errUnavailable
		}
		return "ok", nil
	}, retry.WithConstantBackoff(0))
	fmt.Println(v, err)
	// Output: ok <nil>
}
