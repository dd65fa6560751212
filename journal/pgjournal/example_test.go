package pgjournal_test

import (
	"context"
	"fmt"
	"os"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/otelpatterns/otelpatterns/journal"
	"github.com/otelpatterns/otelpatterns/journal/pgjournal"
)

// Open the journal on a service's database, and append the first record of
// a transaction. The example needs a server, so it is compiled but not run;
// the package's tests run the same calls against one.
func Example() {
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, os.Getenv("DATABASE_URL"))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer pool.Close()
	if err := pgjournal.Migrate(ctx, pool); err != nil { // idempotent: every replica may call it
		fmt.Println(err)
		return
	}
	log, err := pgjournal.Open(ctx, pool)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer log.Close()
	err = log.Append(ctx, "order-42", 0, journal.Record{Epoch: 1, Kind: "saga.started"})
	fmt.Println(err)
}
