package saga_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/otelpatterns/otelpatterns/journal"
	"github.com/otelpatterns/otelpatterns/saga"
)

// Checkout is the state of the example saga.
type Checkout struct {
	Order       string `json:"order"`
	Reservation string `json:"reservation,omitempty"`
	Payment     string `json:"payment,omitempty"`
}

func Example() {
	log, _ := journal.NewMemory() // journal.Open(dir) survives a crash
	runner, _ := saga.NewRunner(log)
	defer runner.Close(context.Background())

	declined := errors.New("card declined")
	def, err := saga.New("checkout", 1, []saga.Step[Checkout]{
		{
			Name: "reserve-stock",
			Action: func(ctx context.Context, c Checkout) (Checkout, error) {
				c.Reservation = "R-" + c.Order
				fmt.Println("reserved", c.Reservation)
				return c, nil
			},
			Compensate: func(ctx context.Context, c Checkout) error {
				fmt.Println("released", c.Reservation)
				return nil
			},
		},
		{
			Name: "charge-payment",
			Action: func(ctx context.Context, c Checkout) (Checkout, error) {
				return c, declined
			},
			Compensate: func(ctx context.Context, c Checkout) error {
				info, _ := saga.StepFromContext(ctx)
				fmt.Println("refund, if any, for", info.Key())
				return nil
			},
		},
	})
	if err != nil {
		panic(err)
	}
	checkout, _ := saga.Register(runner, def)

	_, outcome, err := checkout.Run(context.Background(), "order-7", Checkout{Order: "7"})
	fmt.Println(outcome, errors.Is(err, declined))
	// Output:
	// reserved R-7
	// refund, if any, for order-7/charge-payment/compensate
	// released R-7
	// compensated true
}

func ExampleBarrier() {
	b := saga.NewBarrier()
	ctx := context.Background()
	charge := func(context.Context) error { fmt.Println("charged"); return nil }
	refund := func(context.Context) error { fmt.Println("refunded"); return nil }

	// A compensation that overtakes its action does nothing, and blocks
	// the action when it arrives late.
	ran, _ := b.Compensate(ctx, "order-8", "charge", refund)
	fmt.Println("compensation ran:", ran)
	ran, _ = b.Action(ctx, "order-8", "charge", charge)
	fmt.Println("late action ran:", ran)

	// A duplicate action does nothing.
	_, _ = b.Action(ctx, "order-9", "charge", charge)
	ran, _ = b.Action(ctx, "order-9", "charge", charge)
	fmt.Println("duplicate ran:", ran)
	// Output:
	// compensation ran: false
	// late action ran: false
	// charged
	// duplicate ran: false
}
