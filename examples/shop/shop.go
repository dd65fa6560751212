package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/otelpatterns/otelpatterns/examples/internal/setup"
	"github.com/otelpatterns/otelpatterns/examples/internal/web"
)

// shopConfig says which services to start and how.
type shopConfig struct {
	only        string            // "all" or one service
	addrs       map[string]string // listen address by service; "127.0.0.1:0" for any port
	journalDir  string
	journalDSN  string
	replica     string
	decline     bool
	invDelay    time.Duration
	stepTimeout time.Duration
	crashAfter  int
	crash       func()
	noRelease   bool // inventory fails every release (compensations get stuck)
}

// shop is the services running in this process.
type shop struct {
	servers   []*web.Server
	inventory *inventory
	payments  *payments
	orders    *orders
	gateway   *gateway
}

func (s *shop) url(name string) string {
	for _, srv := range s.servers {
		if srv.Name == name {
			return srv.URL
		}
	}
	return ""
}

// start starts the services of cfg, the gateway last: at its start it
// resumes the checkouts a crash interrupted, which needs the others.
func start(ctx context.Context, tel *setup.Telemetry, cfg shopConfig) (s *shop, err error) {
	if cfg.only != "all" && !slices.Contains(services, cfg.only) {
		return nil, fmt.Errorf("-service %q: want all, or one of %q", cfg.only, services)
	}
	s = &shop{inventory: newInventory(cfg.invDelay, cfg.noRelease), payments: newPayments(cfg.decline), orders: newOrders()}
	defer func() {
		if err != nil {
			_ = s.close(context.Background())
		}
	}()
	handlers := map[string]http.Handler{
		"users": users(), "catalog": catalog(), "inventory": s.inventory.handler(),
		"payments": s.payments.handler(), "orders": s.orders.handler(),
	}
	urls := map[string]string{}
	for _, name := range services[:5] {
		urls[name] = "http://" + cfg.addrs[name]
		if cfg.only != "all" && cfg.only != name {
			continue
		}
		stel, err := tel.Service(name) // its spans carry its own service.name
		if err != nil {
			return nil, err
		}
		srv, err := web.Serve(stel, name, cfg.addrs[name], handlers[name])
		if err != nil {
			return nil, err
		}
		s.servers = append(s.servers, srv)
		urls[name] = srv.URL
	}
	if cfg.only == "all" || cfg.only == "gateway" {
		gtel, err := tel.Service("gateway")
		if err != nil {
			return nil, err
		}
		if s.gateway, err = newGateway(ctx, gtel, gatewayConfig{urls: urls, journalDir: cfg.journalDir, journalDSN: cfg.journalDSN, replica: cfg.replica,
			stepTimeout: cfg.stepTimeout, crashAfter: cfg.crashAfter, crash: cfg.crash}); err != nil {
			return nil, err
		}
		srv, err := web.Serve(gtel, "gateway", cfg.addrs["gateway"], s.gateway.handler())
		if err != nil {
			return nil, err
		}
		s.servers = append(s.servers, srv)
	}
	return s, nil
}

// close stops the servers, then the gateway's runner and journal.
func (s *shop) close(ctx context.Context) error {
	// The gateway first: its sagas may still be calling the services (a
	// compensation, a retry), and a server waits for the requests in
	// flight before it closes.
	var errs []error
	if s.gateway != nil {
		errs = append(errs, s.gateway.close(ctx))
	}
	for _, srv := range s.servers {
		errs = append(errs, srv.Close(ctx))
	}
	return errors.Join(errs...)
}
