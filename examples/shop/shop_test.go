package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"maps"
	"net/http"
	"regexp"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/goleak"

	"github.com/otelpatterns/otelpatterns/examples/internal/setup"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// testShop is the whole shop in this process, on ephemeral loopback
// ports, recording its spans in memory.
type testShop struct {
	*shop
	spans *tracetest.SpanRecorder
	tel   *setup.Telemetry
}

func startShop(t *testing.T, journalDir string, mod func(*shopConfig)) *testShop {
	t.Helper()
	spans := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans))
	mp := sdkmetric.NewMeterProvider()
	tel := &setup.Telemetry{TracerProvider: tp, MeterProvider: mp,
		Propagators: propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})}
	cfg := shopConfig{only: "all", addrs: map[string]string{}, journalDir: journalDir, stepTimeout: 2 * time.Second,
		crash: func() { t.Error("an unexpected crash") }}
	for _, s := range services {
		cfg.addrs[s] = "127.0.0.1:0"
	}
	if mod != nil {
		mod(&cfg)
	}
	s, err := start(context.Background(), tel, cfg)
	require.NoError(t, err)
	ts := &testShop{shop: s, spans: spans, tel: tel}
	t.Cleanup(func() {
		require.NoError(t, s.close(context.Background()))
		_ = tp.Shutdown(context.Background())
		_ = mp.Shutdown(context.Background())
		http.DefaultClient.CloseIdleConnections()
		http.DefaultTransport.(*http.Transport).CloseIdleConnections()
	})
	return ts
}

func (s *testShop) checkout(t *testing.T, order, user string, items ...Item) checkoutResponse {
	t.Helper()
	body, _ := json.Marshal(checkoutRequest{Order: order, User: user, Items: items})
	resp, err := http.Post(s.url("gateway")+"/checkout", "application/json", bytes.NewReader(body))
	require.NoError(t, err)
	defer resp.Body.Close()
	var out checkoutResponse
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&out))
	return out
}

// trace returns the ended spans of the trace whose saga handled order.
func (s *testShop) trace(t *testing.T, order string) []sdktrace.ReadOnlySpan {
	t.Helper()
	var sagaSpan sdktrace.ReadOnlySpan
	for _, sp := range s.spans.Ended() {
		for _, kv := range sp.Attributes() {
			if kv.Key == "otelpatterns.saga.id" && kv.Value.AsString() == order {
				sagaSpan = sp
			}
		}
	}
	require.NotNil(t, sagaSpan, "no saga span for %s", order)
	var out []sdktrace.ReadOnlySpan
	for _, sp := range s.spans.Ended() {
		if sp.SpanContext().TraceID() == sagaSpan.SpanContext().TraceID() {
			out = append(out, sp)
		}
	}
	return out
}

func byName(spans []sdktrace.ReadOnlySpan) map[string][]sdktrace.ReadOnlySpan {
	out := map[string][]sdktrace.ReadOnlySpan{}
	for _, sp := range spans {
		out[sp.Name()] = append(out[sp.Name()], sp)
	}
	return out
}

func TestCheckoutIsOneTraceAcrossTheServices(t *testing.T) {
	s := startShop(t, t.TempDir(), nil)
	stock := s.inventory.snapshot()
	resp := s.checkout(t, "o-1", "u-1", Item{"book", 2}, Item{"pen", 3})
	require.Equal(t, "completed", resp.Outcome, resp.Error)
	assert.Equal(t, 2*1500+3*200, resp.Total)
	assert.Equal(t, "ch-o-1", resp.Charge)

	spans := s.trace(t, "o-1")
	names := byName(spans)
	for _, want := range []string{"POST /checkout", "pool.process", "GET /users/{id}", "GET /products/{sku}",
		"saga checkout", "saga.step reserve-stock", "saga.step charge-payment", "saga.step create-order",
		"POST /reserve", "POST /charge", "POST /orders"} {
		assert.Contains(t, names, want)
	}
	// Every service's server span continues the gateway's trace: it is
	// the child of a client span of this trace.
	ids := map[string]sdktrace.ReadOnlySpan{}
	for _, sp := range spans {
		ids[sp.SpanContext().SpanID().String()] = sp
	}
	for _, name := range []string{"GET /users/{id}", "POST /reserve", "POST /charge", "POST /orders"} {
		srv := names[name][0]
		parent, ok := ids[srv.Parent().SpanID().String()]
		require.True(t, ok, "%s has no parent in the trace", name)
		assert.Equal(t, trace.SpanKindClient, parent.SpanKind(), "%s's parent is %s", name, parent.Name())
		assert.Equal(t, trace.SpanKindServer, srv.SpanKind(), name)
	}
	for _, sp := range spans {
		assert.NotEqual(t, codes.Error, sp.Status().Code, "span %s failed", sp.Name())
	}
	after := s.inventory.snapshot()
	assert.Equal(t, stock["book"]-2, after["book"])
	assert.Equal(t, map[string]int{"o-1": 3600}, s.payments.snapshot())
	assert.Contains(t, s.orders.snapshot(), "o-1")
}

func TestDeclinedCheckoutIsCompensated(t *testing.T) {
	s := startShop(t, t.TempDir(), func(c *shopConfig) { c.decline = true })
	stock := s.inventory.snapshot()
	resp := s.checkout(t, "o-2", "u-1", Item{"lamp", 1})
	assert.Equal(t, "compensated", resp.Outcome)
	assert.Contains(t, resp.Error, "card declined")

	assert.Equal(t, stock, s.inventory.snapshot(), "the reservation was released")
	assert.Empty(t, s.payments.snapshot(), "nothing stays charged")
	assert.Empty(t, s.orders.snapshot())

	names := byName(s.trace(t, "o-2"))
	assert.Contains(t, names, "saga.compensate reserve-stock")
	assert.Contains(t, names, "POST /release")
	assert.NotContains(t, names, "saga.step create-order", "no action after the abort")
	// Error exactly where the failure was: the charge, and the saga.
	for _, name := range []string{"saga.step charge-payment", "saga checkout"} {
		assert.Equal(t, codes.Error, names[name][0].Status().Code, name)
	}
	for _, name := range []string{"saga.step reserve-stock", "saga.compensate reserve-stock", "saga.compensate charge-payment", "POST /release"} {
		assert.NotEqual(t, codes.Error, names[name][0].Status().Code, name)
	}
}

func TestInventoryTimeoutIsCompensated(t *testing.T) {
	s := startShop(t, t.TempDir(), func(c *shopConfig) {
		c.invDelay, c.stepTimeout = time.Second, 50*time.Millisecond
	})
	stock := s.inventory.snapshot()
	resp := s.checkout(t, "o-3", "u-1", Item{"book", 1})
	assert.Equal(t, "compensated", resp.Outcome)
	assert.Equal(t, stock, s.inventory.snapshot())
	assert.Empty(t, s.payments.snapshot())
	names := byName(s.trace(t, "o-3"))
	assert.Equal(t, codes.Error, names["saga.step reserve-stock"][0].Status().Code)
	assert.NotContains(t, names, "saga.step charge-payment")
}

func TestCrashAfterChargeResumesOnRestart(t *testing.T) {
	dir := t.TempDir()
	var first *testShop
	var once sync.Once
	crashed := make(chan struct{})
	first = startShop(t, dir, func(c *shopConfig) {
		c.crashAfter = 2
		// The process dies right after the charge: nothing more reaches
		// its journal. (The program itself calls os.Exit.)
		c.crash = func() {
			once.Do(func() {
				_ = first.gateway.log.Close()
				close(crashed)
			})
		}
	})
	stock := first.inventory.snapshot()
	resp := first.checkout(t, "o-4", "u-1", Item{"book", 1})
	<-crashed
	assert.Equal(t, "pending", resp.Outcome, "the gateway died mid-checkout")
	require.NoError(t, first.gateway.runner.Close(context.Background()))
	require.NoError(t, first.gateway.lookups.Close())
	first.gateway = nil // dead; its services live on

	// The services outlive the gateway; a new gateway on the same journal
	// resumes the checkout at start.
	second, err := newGateway(context.Background(), first.tel, gatewayConfig{
		urls: map[string]string{"users": first.url("users"), "catalog": first.url("catalog"), "inventory": first.url("inventory"),
			"payments": first.url("payments"), "orders": first.url("orders")},
		journalDir: dir, stepTimeout: 2 * time.Second})
	require.NoError(t, err)
	defer func() { require.NoError(t, second.close(context.Background())) }()

	assert.Contains(t, first.orders.snapshot(), "o-4", "the resumed checkout created the order")
	assert.Equal(t, map[string]int{"o-4": 1500}, first.payments.snapshot(), "charged once, though the charge step ran twice")
	after := first.inventory.snapshot()
	assert.Equal(t, stock["book"]-1, after["book"], "reserved once")
	// The resumed saga's span links to the span of the run that began it.
	var sagas []sdktrace.ReadOnlySpan
	for _, sp := range first.spans.Ended() {
		if sp.Name() == "saga checkout" {
			sagas = append(sagas, sp)
		}
	}
	require.Len(t, sagas, 2, "the interrupted run and the resumed one")
	require.Len(t, sagas[1].Links(), 1)
	assert.Equal(t, sagas[0].SpanContext().SpanID(), sagas[1].Links()[0].SpanContext.SpanID())
	// Its outcome is recorded: asking again runs nothing.
	_, outcome, err := second.checkouts.Run(context.Background(), "o-4", Checkout{})
	assert.NoError(t, err)
	assert.Equal(t, "completed", outcome.String())
}

func TestDuplicateDeliveryHasNoEffect(t *testing.T) {
	s := startShop(t, t.TempDir(), nil)
	stock := maps.Clone(s.inventory.snapshot())
	send := func() {
		body, _ := json.Marshal(reservation{Order: "o-5", Items: []Item{{"pen", 5}}})
		req, _ := http.NewRequest(http.MethodPost, s.url("inventory")+"/reserve", bytes.NewReader(body))
		req.Header.Set(headerSagaID, "o-5")
		req.Header.Set(headerStep, "reserve-stock")
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		assert.Equal(t, http.StatusOK, resp.StatusCode)
	}
	send()
	send()
	assert.Equal(t, stock["pen"]-5, s.inventory.snapshot()["pen"])
}

// quietEnv sends the telemetry nowhere, whatever the machine's environment.
func quietEnv(t *testing.T) {
	for k, v := range map[string]string{"OTEL_TRACES_EXPORTER": "none", "OTEL_METRICS_EXPORTER": "none",
		"OTEL_SERVICE_NAME": "", "OTEL_RESOURCE_ATTRIBUTES": ""} {
		t.Setenv(k, v)
	}
	t.Cleanup(func() {
		http.DefaultClient.CloseIdleConnections()
		http.DefaultTransport.(*http.Transport).CloseIdleConnections()
	})
}

func TestEachServiceHasItsOwnServiceName(t *testing.T) {
	quietEnv(t)
	spans := tracetest.NewSpanRecorder()
	tel, err := setup.Start(context.Background(), "shop", io.Discard, setup.WithSpanProcessor(spans))
	require.NoError(t, err)
	defer func() { require.NoError(t, tel.Shutdown(context.Background())) }()
	cfg := shopConfig{only: "all", addrs: map[string]string{}, journalDir: t.TempDir(), stepTimeout: 2 * time.Second,
		crash: func() { t.Error("an unexpected crash") }}
	for _, s := range services {
		cfg.addrs[s] = "127.0.0.1:0"
	}
	s, err := start(context.Background(), tel, cfg)
	require.NoError(t, err)
	defer func() { require.NoError(t, s.close(context.Background())) }()
	ts := &testShop{shop: s, spans: spans}
	resp := ts.checkout(t, "o-6", "u-1", Item{"pen", 1})
	require.Equal(t, "completed", resp.Outcome, resp.Error)

	service := func(sp sdktrace.ReadOnlySpan, key string) string {
		v, _ := sp.Resource().Set().Value(attribute.Key(key))
		return v.AsString()
	}
	names := byName(ts.trace(t, "o-6"))
	for span, want := range map[string]string{
		"POST /checkout": "gateway", "saga checkout": "gateway", "pool.process": "gateway",
		"GET /users/{id}": "users", "GET /products/{sku}": "catalog", "POST /reserve": "inventory",
		"POST /charge": "payments", "POST /orders": "orders",
	} {
		require.NotEmpty(t, names[span], span)
		assert.Equal(t, want, service(names[span][0], "service.name"), span)
		assert.Equal(t, "shop", service(names[span][0], "service.namespace"), span)
	}
}

func TestEveryRunHasItsOwnOrders(t *testing.T) {
	quietEnv(t)
	dir := t.TempDir()
	runOnce := func(decline bool) string {
		cfg := config{service: "all", addrs: map[string]*string{}, journalDir: dir, decline: decline, stepTimeout: 2 * time.Second}
		for _, s := range services {
			addr := "127.0.0.1:0"
			cfg.addrs[s] = &addr
		}
		var out bytes.Buffer
		require.NoError(t, run(context.Background(), cfg, &out))
		return out.String()
	}
	outcome := regexp.MustCompile(`(?m)^checkout (order-[a-z0-9-]+): (\w+)`)
	first := outcome.FindAllStringSubmatch(runOnce(false), -1)
	second := outcome.FindAllStringSubmatch(runOnce(true), -1) // the same journal, at once
	require.Len(t, first, 2)
	require.Len(t, second, 2)
	assert.Equal(t, "completed", first[0][2])
	assert.Equal(t, "compensated", second[0][2], "the second run's checkout is its own, declined")
	assert.NotEqual(t, first[0][1], second[0][1])
	assert.NotEqual(t, orderID(), orderID())
}
