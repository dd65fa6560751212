package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"golang.org/x/time/rate"

	"github.com/otelpatterns/otelpatterns/examples/internal/setup"
	"github.com/otelpatterns/otelpatterns/examples/internal/web"
	"github.com/otelpatterns/otelpatterns/journal"
	"github.com/otelpatterns/otelpatterns/journal/pgjournal"
	"github.com/otelpatterns/otelpatterns/pool"
	"github.com/otelpatterns/otelpatterns/retry"
	"github.com/otelpatterns/otelpatterns/retry/breaker"
	"github.com/otelpatterns/otelpatterns/saga"
)

// Checkout is the checkout saga's state, journaled at every step.
type Checkout struct {
	Order  string `json:"order"`
	User   string `json:"user"`
	Card   string `json:"card"`
	Items  []Item `json:"items"`
	Total  int    `json:"total"`
	Charge string `json:"charge,omitempty"`
}

// gatewayConfig is what the gateway needs to run.
type gatewayConfig struct {
	urls        map[string]string // base URL of each service, by name
	journalDir  string
	journalDSN  string // a PostgreSQL journal shared by replicas, instead of journalDir
	replica     string // this gateway's name among the replicas, with journalDSN
	stepTimeout time.Duration
	crashAfter  int    // the step after whose effect the process dies; 0 for never
	crash       func() // how it dies: os.Exit in the program, a stand-in in tests
}

// gateway takes checkouts: it looks up the user and the prices by fanning
// out on a worker pool, then runs the checkout saga across inventory,
// payments and orders.
type gateway struct {
	cfg       gatewayConfig
	down      map[string]*downstream
	lookups   *pool.WorkerPool[lookup, lookupResult]
	log       journal.Log
	db        *pgxpool.Pool // with journalDSN
	stopServe context.CancelFunc
	served    chan struct{}
	runner    *saga.Runner
	checkouts *saga.Saga[Checkout]
}

type lookup struct{ user, sku string }

type lookupResult struct {
	user  User
	price int
}

func newGateway(ctx context.Context, tel *setup.Telemetry, cfg gatewayConfig) (*gateway, error) {
	hc := web.Client(tel)
	g := &gateway{cfg: cfg, down: map[string]*downstream{}}
	for _, name := range []string{"users", "catalog", "inventory", "payments", "orders"} {
		br, err := breaker.New(breaker.WithName(name), breaker.WithTripAfter(5), breaker.WithOpenFor(5*time.Second),
			breaker.WithMeterProvider(tel.MeterProvider))
		if err != nil {
			return nil, err
		}
		policy, err := retry.New(retry.WithName(name), retry.WithMaxAttempts(3),
			retry.WithExponentialBackoff(20*time.Millisecond, 200*time.Millisecond, retry.FullJitter),
			retry.WithBreaker(br), retry.WithRateLimit(rate.NewLimiter(500, 100)),
			retry.WithTracerProvider(tel.TracerProvider), retry.WithMeterProvider(tel.MeterProvider))
		if err != nil {
			return nil, err
		}
		g.down[name] = &downstream{name: name, base: cfg.urls[name], hc: hc, policy: policy}
	}
	var err error
	g.lookups, err = pool.New(g.lookup, pool.WithWorkers(4), pool.WithName("lookups"),
		pool.WithTracerProvider(tel.TracerProvider), pool.WithMeterProvider(tel.MeterProvider))
	if err != nil {
		return nil, err
	}
	if err := g.openJournal(ctx, tel); err != nil {
		return nil, err
	}
	// A compensation is retried for about a second; then the saga is stuck,
	// counted in otelpatterns.saga.stuck until a person acts.
	compensations, err := retry.New(retry.WithName("compensations"), retry.WithMaxAttempts(5),
		retry.WithExponentialBackoff(50*time.Millisecond, time.Second, retry.FullJitter),
		retry.WithTracerProvider(tel.TracerProvider), retry.WithMeterProvider(tel.MeterProvider))
	if err != nil {
		return nil, err
	}
	opts := []saga.Option{saga.WithCompensationRetry(compensations), saga.WithTracerProvider(tel.TracerProvider),
		saga.WithMeterProvider(tel.MeterProvider), saga.WithPropagators(tel.Propagators)}
	if g.db != nil {
		// Replicas share the journal: each checkout is leased to the
		// gateway that runs it, and one whose gateway died is taken over by
		// another within about the lease time and a half.
		opts = append(opts, saga.WithLeases(cfg.replica, leaseTTL))
	}
	if g.runner, err = saga.NewRunner(g.log, opts...); err != nil {
		return nil, err
	}
	def, err := saga.New("checkout", 1, g.steps())
	if err != nil {
		return nil, err
	}
	if g.checkouts, err = saga.Register(g.runner, def); err != nil {
		return nil, err
	}
	if g.db == nil {
		// A checkout that a crash interrupted goes on now.
		if _, err := g.runner.Recover(ctx); err != nil {
			return nil, err
		}
		return g, nil
	}
	// With replicas, Serve takes over, for as long as the gateway runs, the
	// checkouts of the gateways that die.
	serveCtx, stop := context.WithCancel(context.WithoutCancel(ctx))
	g.stopServe, g.served = stop, make(chan struct{})
	go func() {
		defer close(g.served)
		_ = g.runner.Serve(serveCtx)
	}()
	return g, nil
}

// leaseTTL is how long a gateway's lease of a checkout lasts between
// renewals: a dead gateway's checkouts resume elsewhere about 1.5 s after
// it died.
const leaseTTL = time.Second

// openJournal opens the file journal in journalDir, or, with journalDSN,
// the PostgreSQL journal that every replica shares.
func (g *gateway) openJournal(ctx context.Context, tel *setup.Telemetry) (err error) {
	if g.cfg.journalDSN == "" {
		g.log, err = journal.Open(g.cfg.journalDir, journal.WithTracerProvider(tel.TracerProvider), journal.WithMeterProvider(tel.MeterProvider))
		return err
	}
	if g.cfg.replica == "" {
		return errors.New("gateway: a PostgreSQL journal needs a -replica name, unique to this gateway")
	}
	if g.db, err = pgxpool.New(ctx, g.cfg.journalDSN); err != nil {
		return fmt.Errorf("gateway: the journal's database: %w", err)
	}
	if err = pgjournal.Migrate(ctx, g.db, pgjournal.WithTracerProvider(tel.TracerProvider)); err == nil {
		g.log, err = pgjournal.Open(ctx, g.db, pgjournal.WithTracerProvider(tel.TracerProvider), pgjournal.WithMeterProvider(tel.MeterProvider))
	}
	if err != nil {
		g.db.Close()
		return fmt.Errorf("gateway: the journal: %w", err)
	}
	return nil
}

// steps are the checkout saga: reserve stock, charge payment, create order.
func (g *gateway) steps() []saga.Step[Checkout] {
	inv, pay, ord := g.down["inventory"], g.down["payments"], g.down["orders"]
	steps := []saga.Step[Checkout]{
		{
			Name: "reserve-stock", Timeout: g.cfg.stepTimeout,
			Action: func(ctx context.Context, c Checkout) (Checkout, error) {
				return c, inv.call(ctx, http.MethodPost, "/reserve", reservation{Order: c.Order, Items: c.Items}, nil)
			},
			Compensate: func(ctx context.Context, c Checkout) error {
				return inv.call(ctx, http.MethodPost, "/release", reservation{Order: c.Order, Items: c.Items}, nil)
			},
		},
		{
			Name: "charge-payment", Timeout: g.cfg.stepTimeout,
			Action: func(ctx context.Context, c Checkout) (Checkout, error) {
				var got charge
				err := pay.call(ctx, http.MethodPost, "/charge", charge{Order: c.Order, Card: c.Card, Amount: c.Total}, &got)
				c.Charge = got.ID
				return c, err
			},
			Compensate: func(ctx context.Context, c Checkout) error {
				return pay.call(ctx, http.MethodPost, "/refund", charge{Order: c.Order}, nil)
			},
		},
		{
			Name: "create-order", Timeout: g.cfg.stepTimeout,
			Action: func(ctx context.Context, c Checkout) (Checkout, error) {
				return c, ord.call(ctx, http.MethodPost, "/orders", Order{ID: c.Order, User: c.User, Items: c.Items, Total: c.Total}, nil)
			},
			Compensate: func(ctx context.Context, c Checkout) error {
				return ord.call(ctx, http.MethodPost, "/orders/cancel", Order{ID: c.Order}, nil)
			},
		},
	}
	for i := range steps { // the injected crash: after the effect of step N
		if i+1 == g.cfg.crashAfter {
			action := steps[i].Action
			steps[i].Action = func(ctx context.Context, c Checkout) (Checkout, error) {
				c, err := action(ctx, c)
				if err == nil {
					g.cfg.crash()
				}
				return c, err
			}
		}
	}
	return steps
}

// lookup asks the users or the catalog service, one pool task each.
func (g *gateway) lookup(ctx context.Context, l lookup) (lookupResult, error) {
	var r lookupResult
	if l.user != "" {
		return r, g.down["users"].call(ctx, http.MethodGet, "/users/"+l.user, nil, &r.user)
	}
	var p Product
	err := g.down["catalog"].call(ctx, http.MethodGet, "/products/"+l.sku, nil, &p)
	r.price = p.Price
	return r, err
}

// checkoutRequest is the body of POST /checkout.
type checkoutRequest struct {
	Order string `json:"order"`
	User  string `json:"user"`
	Items []Item `json:"items"`
}

// checkoutResponse is its answer.
type checkoutResponse struct {
	Order   string `json:"order"`
	Outcome string `json:"outcome"`
	Total   int    `json:"total,omitempty"`
	Charge  string `json:"charge,omitempty"`
	Error   string `json:"error,omitempty"`
}

func (g *gateway) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /checkout", func(w http.ResponseWriter, r *http.Request) {
		var req checkoutRequest
		if err := web.ReadJSON(r, &req); err != nil || req.Order == "" || req.User == "" || len(req.Items) == 0 {
			web.WriteJSON(w, http.StatusBadRequest, web.Problem{Error: `the body must be {"order": ID, "user": ID, "items": [{"sku": ..., "qty": n}]}`})
			return
		}
		c, err := g.quote(r.Context(), req)
		if err != nil {
			status := http.StatusBadGateway
			if herr, ok := unwrapHTTP(err); ok && herr.Status == http.StatusNotFound {
				status = http.StatusNotFound
			}
			web.WriteJSON(w, status, web.Problem{Error: err.Error()})
			return
		}
		final, outcome, err := g.checkouts.Run(r.Context(), req.Order, c)
		resp := checkoutResponse{Order: req.Order, Outcome: outcome.String(), Total: final.Total, Charge: final.Charge}
		status := http.StatusOK
		switch {
		case outcome == saga.Completed:
		case outcome == saga.Compensated:
			status, resp.Error = http.StatusUnprocessableEntity, err.Error()
		default:
			status, resp.Error = http.StatusServiceUnavailable, fmt.Sprint(err)
		}
		web.WriteJSON(w, status, resp)
	})
	return mux
}

// quote looks up the user and every price at once, on the pool, and
// returns the saga's initial state.
func (g *gateway) quote(ctx context.Context, req checkoutRequest) (Checkout, error) {
	tasks := []lookup{{user: req.User}}
	for _, it := range req.Items {
		tasks = append(tasks, lookup{sku: it.SKU})
	}
	results, err := g.lookups.Process(ctx, tasks)
	if err != nil {
		return Checkout{}, err
	}
	c := Checkout{Order: req.Order, User: req.User, Card: results[0].user.Card, Items: req.Items}
	for i, it := range req.Items {
		c.Total += it.Qty * results[i+1].price
	}
	return c, nil
}

// close waits for the checkouts in flight until ctx ends, then leaves the
// rest to the next start's Recover.
func (g *gateway) close(ctx context.Context) error {
	err := errors.Join(g.runner.Close(ctx), g.lookups.Close(), g.log.Close())
	if g.db != nil {
		g.stopServe()
		<-g.served
		g.db.Close()
	}
	return err
}
