package twophase_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/otelpatterns/otelpatterns/journal"
	"github.com/otelpatterns/otelpatterns/twophase"
)

// balance is a toy ledger: Prepare reserves, Commit applies, Abort releases.
type balance struct {
	name     string
	amount   int
	reserved map[string]int
	delta    int
}

func (b *balance) Prepare(_ context.Context, tx string) error {
	if b.amount+b.delta < 0 {
		return errors.New("insufficient funds")
	}
	b.reserved[tx] = b.delta
	return nil
}

func (b *balance) Commit(_ context.Context, tx string) error {
	b.amount += b.reserved[tx]
	delete(b.reserved, tx)
	return nil
}

func (b *balance) Abort(_ context.Context, tx string) error {
	delete(b.reserved, tx)
	return nil
}

func Example() {
	alice := &balance{name: "alice", amount: 100, delta: -30, reserved: map[string]int{}}
	bob := &balance{name: "bob", amount: 5, delta: +30, reserved: map[string]int{}}
	a, _ := twophase.NewLocal("ledger-alice", alice)
	b, _ := twophase.NewLocal("ledger-bob", bob)

	log, _ := journal.NewMemory() // journal.Open(dir) survives a crash
	coord, _ := twophase.NewCoordinator(log, twophase.WithParticipants(a, b))
	defer coord.Close(context.Background())

	d, err := coord.Execute(context.Background(), "transfer-1", a, b)
	fmt.Println(d, err, alice.amount, bob.amount)

	alice.delta = -500 // more than alice has: her ledger votes no
	d, err = coord.Execute(context.Background(), "transfer-2", a, b)
	fmt.Println(d, errors.Is(err, twophase.ErrVoteNo), alice.amount, bob.amount)

	s, _ := coord.Status(context.Background(), "transfer-1")
	fmt.Println(s)
	// Output:
	// committed <nil> 70 35
	// aborted true 70 35
	// committed
}
