package main

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"sync"
	"time"

	"github.com/otelpatterns/otelpatterns/examples/internal/web"
	"github.com/otelpatterns/otelpatterns/saga"
)

// Item is a line of an order.
type Item struct {
	SKU string `json:"sku"`
	Qty int    `json:"qty"`
}

// User is a customer of the users service.
type User struct {
	ID   string `json:"id"`
	Name string `json:"name"`
	Card string `json:"card"`
}

// Product is an entry of the catalog service.
type Product struct {
	SKU   string `json:"sku"`
	Price int    `json:"price"` // cents
}

// users serves GET /users/{id}.
func users() http.Handler {
	known := map[string]User{
		"u-1": {ID: "u-1", Name: "Ada", Card: "4242"},
		"u-2": {ID: "u-2", Name: "Grace", Card: "4000"}, // a card the bank declines
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /users/{id}", func(w http.ResponseWriter, r *http.Request) {
		u, ok := known[r.PathValue("id")]
		if !ok {
			web.WriteJSON(w, http.StatusNotFound, web.Problem{Error: "no such user"})
			return
		}
		web.WriteJSON(w, http.StatusOK, u)
	})
	return mux
}

// catalog serves GET /products/{sku}.
func catalog() http.Handler {
	prices := map[string]int{"book": 1500, "pen": 200, "lamp": 4900}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /products/{sku}", func(w http.ResponseWriter, r *http.Request) {
		p, ok := prices[r.PathValue("sku")]
		if !ok {
			web.WriteJSON(w, http.StatusNotFound, web.Problem{Error: "no such product"})
			return
		}
		web.WriteJSON(w, http.StatusOK, Product{SKU: r.PathValue("sku"), Price: p})
	})
	return mux
}

// reservation is the body of the inventory's calls.
type reservation struct {
	Order string `json:"order"`
	Items []Item `json:"items"`
}

// inventory holds the stock: POST /reserve takes items out of it, POST
// /release puts them back, both at most once per saga step.
type inventory struct {
	mu        sync.Mutex
	stock     map[string]int
	barrier   *saga.Barrier
	delay     time.Duration // injected: how long a reservation takes
	noRelease bool          // injected: every release fails
}

func newInventory(delay time.Duration, noRelease bool) *inventory {
	return &inventory{stock: map[string]int{"book": 10, "pen": 100, "lamp": 3}, barrier: saga.NewBarrier(), delay: delay, noRelease: noRelease}
}

func (inv *inventory) snapshot() map[string]int {
	inv.mu.Lock()
	defer inv.mu.Unlock()
	return maps.Clone(inv.stock)
}

func (inv *inventory) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /reserve", func(w http.ResponseWriter, r *http.Request) {
		ctx, step := withStep(r)
		var req reservation
		if err := web.ReadJSON(r, &req); err != nil {
			web.WriteJSON(w, http.StatusBadRequest, web.Problem{Error: err.Error()})
			return
		}
		select { // a slow warehouse, when one is injected
		case <-time.After(inv.delay):
		case <-ctx.Done():
			web.WriteJSON(w, http.StatusServiceUnavailable, web.Problem{Error: "gave up"})
			return
		}
		_, err := inv.barrier.Action(ctx, step.ID, step.Step, func(context.Context) error {
			inv.mu.Lock()
			defer inv.mu.Unlock()
			for _, it := range req.Items {
				if inv.stock[it.SKU] < it.Qty {
					return fmt.Errorf("only %d %s left", inv.stock[it.SKU], it.SKU)
				}
			}
			for _, it := range req.Items {
				inv.stock[it.SKU] -= it.Qty
			}
			return nil
		})
		if err != nil {
			web.WriteJSON(w, http.StatusConflict, web.Problem{Error: err.Error()})
			return
		}
		web.WriteJSON(w, http.StatusOK, req)
	})
	mux.HandleFunc("POST /release", func(w http.ResponseWriter, r *http.Request) {
		ctx, step := withStep(r)
		var req reservation
		if err := web.ReadJSON(r, &req); err != nil {
			web.WriteJSON(w, http.StatusBadRequest, web.Problem{Error: err.Error()})
			return
		}
		if inv.noRelease {
			web.WriteJSON(w, http.StatusInternalServerError, web.Problem{Error: "the warehouse cannot release (injected)"})
			return
		}
		_, _ = inv.barrier.Compensate(ctx, step.ID, step.Step, func(context.Context) error {
			inv.mu.Lock()
			defer inv.mu.Unlock()
			for _, it := range req.Items {
				inv.stock[it.SKU] += it.Qty
			}
			return nil
		})
		web.WriteJSON(w, http.StatusOK, req)
	})
	mux.HandleFunc("GET /stock", func(w http.ResponseWriter, r *http.Request) {
		web.WriteJSON(w, http.StatusOK, inv.snapshot())
	})
	return mux
}

// charge is the body of the payments' calls.
type charge struct {
	Order  string `json:"order"`
	Card   string `json:"card,omitempty"`
	Amount int    `json:"amount,omitempty"`
	ID     string `json:"id,omitempty"`
}

// payments charges cards: POST /charge and POST /refund, at most once per
// saga step. Card "4000", or every card with decline set, is declined.
type payments struct {
	mu      sync.Mutex
	charged map[string]int // order -> amount, while charged
	barrier *saga.Barrier
	decline bool
}

func newPayments(decline bool) *payments {
	return &payments{charged: map[string]int{}, barrier: saga.NewBarrier(), decline: decline}
}

func (p *payments) snapshot() map[string]int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return maps.Clone(p.charged)
}

func (p *payments) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /charge", func(w http.ResponseWriter, r *http.Request) {
		ctx, step := withStep(r)
		var req charge
		if err := web.ReadJSON(r, &req); err != nil {
			web.WriteJSON(w, http.StatusBadRequest, web.Problem{Error: err.Error()})
			return
		}
		if p.decline || req.Card == "4000" {
			web.WriteJSON(w, http.StatusPaymentRequired, web.Problem{Error: "card declined"})
			return
		}
		_, err := p.barrier.Action(ctx, step.ID, step.Step, func(context.Context) error {
			p.mu.Lock()
			defer p.mu.Unlock()
			p.charged[req.Order] = req.Amount
			return nil
		})
		if err != nil {
			web.WriteJSON(w, http.StatusInternalServerError, web.Problem{Error: err.Error()})
			return
		}
		req.ID = "ch-" + req.Order
		web.WriteJSON(w, http.StatusOK, req)
	})
	mux.HandleFunc("POST /refund", func(w http.ResponseWriter, r *http.Request) {
		ctx, step := withStep(r)
		var req charge
		if err := web.ReadJSON(r, &req); err != nil {
			web.WriteJSON(w, http.StatusBadRequest, web.Problem{Error: err.Error()})
			return
		}
		_, _ = p.barrier.Compensate(ctx, step.ID, step.Step, func(context.Context) error {
			p.mu.Lock()
			defer p.mu.Unlock()
			delete(p.charged, req.Order)
			return nil
		})
		web.WriteJSON(w, http.StatusOK, req)
	})
	mux.HandleFunc("GET /charges", func(w http.ResponseWriter, r *http.Request) {
		web.WriteJSON(w, http.StatusOK, p.snapshot())
	})
	return mux
}

// Order is what the orders service keeps.
type Order struct {
	ID    string `json:"id"`
	User  string `json:"user"`
	Items []Item `json:"items"`
	Total int    `json:"total"`
}

// orders records orders: POST /orders and POST /orders/cancel, at most
// once per saga step.
type orders struct {
	mu      sync.Mutex
	all     map[string]Order
	barrier *saga.Barrier
}

func newOrders() *orders { return &orders{all: map[string]Order{}, barrier: saga.NewBarrier()} }

func (o *orders) snapshot() map[string]Order {
	o.mu.Lock()
	defer o.mu.Unlock()
	return maps.Clone(o.all)
}

func (o *orders) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /orders", func(w http.ResponseWriter, r *http.Request) {
		ctx, step := withStep(r)
		var req Order
		if err := web.ReadJSON(r, &req); err != nil {
			web.WriteJSON(w, http.StatusBadRequest, web.Problem{Error: err.Error()})
			return
		}
		_, _ = o.barrier.Action(ctx, step.ID, step.Step, func(context.Context) error {
			o.mu.Lock()
			defer o.mu.Unlock()
			o.all[req.ID] = req
			return nil
		})
		web.WriteJSON(w, http.StatusCreated, req)
	})
	mux.HandleFunc("POST /orders/cancel", func(w http.ResponseWriter, r *http.Request) {
		ctx, step := withStep(r)
		var req Order
		if err := web.ReadJSON(r, &req); err != nil {
			web.WriteJSON(w, http.StatusBadRequest, web.Problem{Error: err.Error()})
			return
		}
		_, _ = o.barrier.Compensate(ctx, step.ID, step.Step, func(context.Context) error {
			o.mu.Lock()
			defer o.mu.Unlock()
			delete(o.all, req.ID)
			return nil
		})
		web.WriteJSON(w, http.StatusOK, req)
	})
	mux.HandleFunc("GET /orders/{id}", func(w http.ResponseWriter, r *http.Request) {
		o.mu.Lock()
		order, ok := o.all[r.PathValue("id")]
		o.mu.Unlock()
		if !ok {
			web.WriteJSON(w, http.StatusNotFound, web.Problem{Error: "no such order"})
			return
		}
		web.WriteJSON(w, http.StatusOK, order)
	})
	return mux
}
