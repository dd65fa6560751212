package twophasehttp_test

import (
	"context"
	"errors"
	"fmt"
	"net/http/httptest"

	"github.com/otelpatterns/otelpatterns/journal"
	"github.com/otelpatterns/otelpatterns/twophase"
	"github.com/otelpatterns/otelpatterns/twophase/twophasehttp"
)

func Example() {
	// The ledger's side: a participant served over HTTP.
	local, _ := twophase.NewLocal("ledger-a", account{refuse: map[string]bool{"t-2": true}})
	h, _ := twophasehttp.Handler(local)
	srv := httptest.NewServer(h)
	defer srv.Close()

	// The coordinator's side: a client of it.
	ledger, _ := twophasehttp.NewClient("ledger-a", srv.URL)
	log, _ := journal.NewMemory()
	coord, _ := twophase.NewCoordinator(log, twophase.WithParticipants(ledger))
	defer coord.Close(context.Background())

	d, err := coord.Execute(context.Background(), "t-1", ledger)
	fmt.Println(d, err)
	d, err = coord.Execute(context.Background(), "t-2", ledger)
	fmt.Println(d, errors.Is(err, twophase.ErrVoteNo))
	// Output:
	// committed <nil>
	// aborted true
}
