// Command shop is an e-commerce shop of six services, each a net/http
// server: users, catalog, inventory, payments and orders, and a gateway
// that takes checkouts. A checkout is a saga (reserve stock, charge
// payment, create order; compensated in reverse on a failure) that the
// gateway writes ahead to a file journal, so a restart resumes a checkout
// that a crash interrupted. The services apply every step at most once
// through a saga.Barrier. The gateway fans out on a worker pool, and calls
// every service through a retry policy with a rate limit and a circuit
// breaker of its own. One checkout is one trace across all six.
//
// Start everything, run a few checkouts, print their traces, and stop:
//
//	go -C examples run ./shop
//
// Keep serving instead, waiting for checkouts (POST /checkout to the
// gateway; it prints the curl to send), or start one service alone:
//
//	go -C examples run ./shop -serve
//	go -C examples run ./shop -service payments -payments 127.0.0.1:8084
//
// Inject failures with -decline (every card declined), -inventory-delay
// (a warehouse slower than the step timeout), -release-fails (every
// stock release fails: a compensated checkout is stuck) and
// -crash-after-step N (the gateway dies right after step N's effect;
// start it again to resume). Only the gateway's journal outlives a
// process: for a resume with the right effects, run the other services
// as their own processes (-service), as README.md shows.
package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"time"

	"github.com/otelpatterns/otelpatterns/examples/internal/setup"
)

// config is the command line.
type config struct {
	service     string
	addrs       map[string]*string
	journalDir  string
	journalDSN  string
	replica     string
	serve       bool
	decline     bool
	invDelay    time.Duration
	stepTimeout time.Duration
	crashAfter  int
	noRelease   bool
}

var services = []string{"users", "catalog", "inventory", "payments", "orders", "gateway"}

func main() {
	cfg := config{addrs: map[string]*string{}}
	flag.StringVar(&cfg.service, "service", "all", "the service to run: all, or one of users, catalog, inventory, payments, orders, gateway")
	for i, name := range services {
		port := 8081 + i
		if name == "gateway" {
			port = 8080
		}
		cfg.addrs[name] = flag.String(name, fmt.Sprintf("127.0.0.1:%d", port), "the address of the "+name+" service")
	}
	flag.StringVar(&cfg.journalDir, "journal", filepath.Join(os.TempDir(), "otelpatterns-shop-journal"), "the gateway's saga journal directory")
	flag.StringVar(&cfg.journalDSN, "journal-dsn", os.Getenv("OTELPATTERNS_JOURNAL_DSN"), "a PostgreSQL database for the saga journal, shared by gateway replicas (default $OTELPATTERNS_JOURNAL_DSN; empty: the -journal directory)")
	host, _ := os.Hostname()
	flag.StringVar(&cfg.replica, "replica", fmt.Sprintf("gateway-%s-%d", host, os.Getpid()), "this gateway's name among the replicas, with -journal-dsn")
	flag.BoolVar(&cfg.serve, "serve", false, "keep serving until interrupted, instead of running demo checkouts")
	flag.BoolVar(&cfg.decline, "decline", false, "payments declines every card")
	flag.DurationVar(&cfg.invDelay, "inventory-delay", 0, "how long inventory takes to reserve (past -step-timeout, a timeout)")
	flag.DurationVar(&cfg.stepTimeout, "step-timeout", 2*time.Second, "the timeout of each saga step")
	flag.IntVar(&cfg.crashAfter, "crash-after-step", 0, "the gateway exits right after step N's effect (1-3); start it again to resume")
	flag.BoolVar(&cfg.noRelease, "release-fails", false, "inventory fails every release: a checkout that must be compensated gets stuck")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, cfg, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "shop:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, cfg config, w io.Writer) (err error) {
	program := "shop" // the process's service.name: its metrics'; each service's traces carry its own
	if cfg.service != "all" {
		program = cfg.service
	}
	tel, err := setup.Start(ctx, program, w)
	if err != nil {
		return err
	}
	defer func() {
		flush, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		err = errors.Join(err, tel.Shutdown(flush))
	}()
	addrs := map[string]string{}
	for name, a := range cfg.addrs {
		addrs[name] = *a
	}
	s, err := start(ctx, tel, shopConfig{
		only: cfg.service, addrs: addrs, journalDir: cfg.journalDir, journalDSN: cfg.journalDSN, replica: cfg.replica, decline: cfg.decline,
		invDelay: cfg.invDelay, stepTimeout: cfg.stepTimeout, crashAfter: cfg.crashAfter, noRelease: cfg.noRelease,
		crash: func() { fmt.Fprintln(os.Stderr, "shop: crashing as asked (-crash-after-step)"); os.Exit(3) },
	})
	if err != nil {
		return err
	}
	defer func() {
		closing, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		err = errors.Join(err, s.close(closing))
	}()
	for _, srv := range s.servers {
		fmt.Fprintf(w, "%-9s %s\n", srv.Name, srv.URL)
	}
	if cfg.serve || s.gateway == nil {
		if s.gateway != nil {
			fmt.Fprintf(w, "serving until interrupted (Ctrl-C); send a checkout:\n  curl -s %s/checkout -d '%s'\n",
				s.url("gateway"), `{"order":"o-1","user":"u-1","items":[{"sku":"book","qty":2}]}`)
		} else {
			fmt.Fprintln(w, "serving until interrupted (Ctrl-C)")
		}
		<-ctx.Done()
		return nil
	}
	// Each run's orders are new: the journal outlives the process, and a
	// saga ID that it knows already answers with its recorded outcome.
	run := orderID()
	for _, req := range []checkoutRequest{
		{Order: run, User: "u-1", Items: []Item{{"book", 2}, {"pen", 3}}},
		{Order: run + "-declined", User: "u-2", Items: []Item{{"lamp", 1}}},
	} {
		resp, err := postCheckout(ctx, s.url("gateway"), req)
		if err != nil {
			return err
		}
		fmt.Fprintf(w, "checkout %s: %s %s\n", resp.Order, resp.Outcome, resp.Error)
	}
	return nil
}

// orderID returns a new order ID, unique across runs and processes.
func orderID() string { return "order-" + strings.ToLower(rand.Text()[:13]) }

// postCheckout sends one checkout to the gateway.
func postCheckout(ctx context.Context, gatewayURL string, req checkoutRequest) (checkoutResponse, error) {
	body, _ := json.Marshal(req)
	r, err := http.NewRequestWithContext(ctx, http.MethodPost, gatewayURL+"/checkout", bytes.NewReader(body))
	if err != nil {
		return checkoutResponse{}, err
	}
	resp, err := http.DefaultClient.Do(r)
	if err != nil {
		return checkoutResponse{}, err
	}
	defer resp.Body.Close()
	var out checkoutResponse
	err = json.NewDecoder(resp.Body).Decode(&out)
	return out, err
}
