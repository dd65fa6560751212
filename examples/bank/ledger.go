package main

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"sync"
	"time"

	"github.com/otelpatterns/otelpatterns/examples/internal/setup"
	"github.com/otelpatterns/otelpatterns/examples/internal/web"
	"github.com/otelpatterns/otelpatterns/twophase"
	"github.com/otelpatterns/otelpatterns/twophase/twophasehttp"
)

// intent is one ledger's part of a transfer: a change to one account,
// registered before the two-phase commit and applied only by its Commit.
type intent struct {
	Tx      string `json:"tx"`
	Account string `json:"account"`
	Delta   int    `json:"delta"`
}

// ledger is a bank ledger service: accounts and their balances. It is a
// two-phase-commit participant through twophase.Local, whose Resource it
// is: Prepare holds the intent's change (refusing an overdraft), Commit
// applies it, Abort drops it.
type ledger struct {
	name  string
	local *twophase.Local

	mu       sync.Mutex
	balances map[string]int
	intents  map[string]intent // registered, by transaction
	holds    map[string]intent // prepared, by transaction
	failNext int               // injected: the next Commits that fail
	slow     time.Duration     // how long each Prepare takes (-prepare-delay)
}

func newLedger(name string, balances map[string]int) *ledger {
	l := &ledger{name: name, balances: balances, intents: map[string]intent{}, holds: map[string]intent{}}
	l.local, _ = twophase.NewLocal(name, l) // a name and a resource: it cannot fail
	return l
}

// Prepare implements twophase.Resource.
func (l *ledger) Prepare(ctx context.Context, tx string) error {
	if l.slow > 0 {
		select {
		case <-time.After(l.slow):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	in, ok := l.intents[tx]
	if !ok {
		return fmt.Errorf("no transfer %q registered here", tx)
	}
	available := l.balances[in.Account]
	for _, h := range l.holds {
		if h.Account == in.Account && h.Delta < 0 {
			available += h.Delta
		}
	}
	if available+in.Delta < 0 {
		return fmt.Errorf("account %s: %d available, %d asked", in.Account, available, -in.Delta)
	}
	l.holds[tx] = in
	return nil
}

// Commit implements twophase.Resource.
func (l *ledger) Commit(_ context.Context, tx string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.failNext > 0 {
		l.failNext--
		return errors.New("ledger busy") // the coordinator retries
	}
	in := l.holds[tx]
	l.balances[in.Account] += in.Delta
	delete(l.holds, tx)
	delete(l.intents, tx)
	return nil
}

// Abort implements twophase.Resource.
func (l *ledger) Abort(_ context.Context, tx string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.holds, tx)
	delete(l.intents, tx)
	return nil
}

func (l *ledger) register(in intent) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.intents[in.Tx] = in
}

// state returns the balances and the number of transfers held.
func (l *ledger) state() (map[string]int, int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return maps.Clone(l.balances), len(l.holds)
}

func (l *ledger) failCommits(n int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.failNext = n
}

// ledgerState is the body of GET /balances.
type ledgerState struct {
	Balances map[string]int `json:"balances"`
	Held     int            `json:"held"`
}

// handler serves POST /intents, GET /balances and the participant under
// /2pc/.
func (l *ledger) handler(tel *setup.Telemetry) (http.Handler, error) {
	p, err := twophasehttp.Handler(l.local, twophasehttp.WithTracerProvider(tel.TracerProvider),
		twophasehttp.WithMeterProvider(tel.MeterProvider), twophasehttp.WithPropagators(tel.Propagators))
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.Handle("/2pc/", http.StripPrefix("/2pc", p))
	mux.HandleFunc("POST /intents", func(w http.ResponseWriter, r *http.Request) {
		var in intent
		if err := web.ReadJSON(r, &in); err != nil || in.Tx == "" || in.Account == "" {
			web.WriteJSON(w, http.StatusBadRequest, web.Problem{Error: `the body must be {"tx": ID, "account": ..., "delta": n}`})
			return
		}
		l.register(in)
		web.WriteJSON(w, http.StatusOK, in)
	})
	mux.HandleFunc("GET /balances", func(w http.ResponseWriter, r *http.Request) {
		b, held := l.state()
		web.WriteJSON(w, http.StatusOK, ledgerState{Balances: b, Held: held})
	})
	return mux, nil
}
