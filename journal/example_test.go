package journal_test

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/otelpatterns/otelpatterns/journal"
)

func Example() {
	dir, _ := os.MkdirTemp("", "journal-example")
	defer os.RemoveAll(dir)
	ctx := context.Background()

	log, err := journal.Open(dir)
	if err != nil {
		panic(err)
	}
	// Write ahead: the step is durable before it is done.
	err = log.Append(ctx, "transfer-7", 0,
		journal.Record{Epoch: 1, Kind: "begin", Payload: []byte(`{"amount":100}`)},
		journal.Record{Epoch: 1, Kind: "step.started", Step: "debit", Attempt: 1},
	)
	fmt.Println("appended:", err)
	log.Close() // a crash would do as well

	// A new process finds the unfinished transaction and takes it over.
	log, err = journal.Open(dir)
	if err != nil {
		panic(err)
	}
	defer log.Close()
	pending, _ := log.Pending(ctx)
	fmt.Println("pending:", pending)
	recs, _ := log.Load(ctx, "transfer-7")
	last := recs[len(recs)-1]
	fmt.Println("last step:", last.Kind, last.Step)
	err = log.Append(ctx, "transfer-7", last.Seq, journal.Record{Epoch: last.Epoch + 1, Kind: "owner"})
	fmt.Println("taken over:", err)
	// Output:
	// appended: <nil>
	// pending: [transfer-7]
	// last step: step.started debit
	// taken over: <nil>
}

func ExampleLog_fencing() {
	ctx := context.Background()
	log, _ := journal.NewMemory()
	defer log.Close()

	_ = log.Append(ctx, "tx", 0, journal.Record{Epoch: 1, Kind: "begin"})
	// A recovering runner takes the transaction over with epoch 2 ...
	_ = log.Append(ctx, "tx", 1, journal.Record{Epoch: 2, Kind: "owner"})
	// ... so the old runner, still alive, is fenced off.
	err := log.Append(ctx, "tx", 2, journal.Record{Epoch: 1, Kind: "step.started"})
	fmt.Println(errors.Is(err, journal.ErrFenced))
	// And a runner with a stale view conflicts.
	err = log.Append(ctx, "tx", 1, journal.Record{Epoch: 2, Kind: "step.started"})
	fmt.Println(errors.Is(err, journal.ErrConflict), err)
	// Output:
	// true
	// true journal: transaction "tx": expected to append after seq 1, but its last is 2
}
