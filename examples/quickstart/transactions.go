package main

import (
	"context"
	"errors"
	"fmt"

	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/otelpatterns/otelpatterns/journal"
	"github.com/otelpatterns/otelpatterns/saga"
	"github.com/otelpatterns/otelpatterns/twophase"
)

// order is the checkout saga's state: JSON, because every step writes it
// ahead to the journal.
type order struct {
	ID          string `json:"id"`
	Reservation string `json:"reservation,omitempty"`
}

// checkoutSaga runs a saga of three steps whose second, the payment, is
// declined: the reservation is compensated, and the trace shows each step
// and compensation under the saga.
func (s *shop) checkoutSaga(ctx context.Context, tp trace.TracerProvider, mp metric.MeterProvider) error {
	log, err := journal.NewMemory(journal.WithTracerProvider(tp), journal.WithMeterProvider(mp)) // journal.Open(dir) survives a crash
	if err != nil {
		return err
	}
	defer log.Close()
	runner, err := saga.NewRunner(log, saga.WithTracerProvider(tp), saga.WithMeterProvider(mp))
	if err != nil {
		return err
	}
	defer runner.Close(context.Background())
	def, err := saga.New("checkout", 1, []saga.Step[order]{
		{
			Name: "reserve-stock",
			Action: func(ctx context.Context, o order) (order, error) {
				o.Reservation = "R-" + o.ID
				return o, nil
			},
			Compensate: func(ctx context.Context, o order) error {
				s.log.InfoContext(ctx, "reservation released", "reservation", o.Reservation)
				return nil
			},
		},
		{
			Name:   "charge-payment",
			Action: func(ctx context.Context, o order) (order, error) { return o, errDeclined },
		},
		{
			Name:   "create-order",
			Action: func(ctx context.Context, o order) (order, error) { return o, nil },
		},
	})
	if err != nil {
		return err
	}
	checkout, err := saga.Register(runner, def)
	if err != nil {
		return err
	}
	_, outcome, err := checkout.Run(ctx, "order-44", order{ID: "44"})
	if outcome != saga.Compensated {
		return fmt.Errorf("want a compensated saga, got %v: %v", outcome, err)
	}
	s.log.Info("checkout saga ended", "outcome", outcome, "err", err)
	return nil
}

// ledger is a toy bank ledger for the two-phase commit.
type ledger struct {
	balance int
	hold    map[string]int
	next    int // the change the next Prepare holds
}

func (l *ledger) Prepare(_ context.Context, tx string) error {
	if l.balance+l.next < 0 {
		return errors.New("insufficient funds")
	}
	l.hold[tx] = l.next
	return nil
}

func (l *ledger) Commit(_ context.Context, tx string) error {
	l.balance += l.hold[tx]
	delete(l.hold, tx)
	return nil
}

func (l *ledger) Abort(_ context.Context, tx string) error {
	delete(l.hold, tx)
	return nil
}

// transfer moves money between two ledgers by two-phase commit: once
// committed on both, and once refused by one and aborted on both.
func (s *shop) transfer(ctx context.Context, tp trace.TracerProvider, mp metric.MeterProvider) error {
	alice := &ledger{balance: 100, hold: map[string]int{}}
	bob := &ledger{balance: 0, hold: map[string]int{}}
	a, err := twophase.NewLocal("ledger-alice", alice)
	if err != nil {
		return err
	}
	b, err := twophase.NewLocal("ledger-bob", bob)
	if err != nil {
		return err
	}
	log, err := journal.NewMemory(journal.WithTracerProvider(tp), journal.WithMeterProvider(mp))
	if err != nil {
		return err
	}
	defer log.Close()
	coord, err := twophase.NewCoordinator(log, twophase.WithParticipants(a, b),
		twophase.WithTracerProvider(tp), twophase.WithMeterProvider(mp))
	if err != nil {
		return err
	}
	defer coord.Close(context.Background())
	for i, amount := range []int{30, 500} {
		alice.next, bob.next = -amount, amount
		d, err := coord.Execute(ctx, fmt.Sprintf("transfer-%d", i+1), a, b)
		s.log.Info("transfer", "amount", amount, "decision", d, "err", err)
	}
	if alice.balance != 70 || bob.balance != 30 {
		return fmt.Errorf("balances %d and %d, want 70 and 30", alice.balance, bob.balance)
	}
	s.log.Info("balances", "alice", alice.balance, "bob", bob.balance)
	return nil
}
