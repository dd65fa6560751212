package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
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

func startTestBank(t *testing.T) (*environment, *tracetest.SpanRecorder) {
	t.Helper()
	spans := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans))
	mp := sdkmetric.NewMeterProvider()
	tel := &setup.Telemetry{TracerProvider: tp, MeterProvider: mp,
		Propagators: propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})}
	env, err := startBank(context.Background(), tel, config{dir: t.TempDir(),
		addrs: map[string]string{"coordinator": "127.0.0.1:0", "ledger-a": "127.0.0.1:0", "ledger-b": "127.0.0.1:0"}})
	require.NoError(t, err)
	t.Cleanup(func() {
		require.NoError(t, env.close())
		_ = tp.Shutdown(context.Background())
		_ = mp.Shutdown(context.Background())
		http.DefaultClient.CloseIdleConnections()
		http.DefaultTransport.(*http.Transport).CloseIdleConnections()
	})
	return env, spans
}

func TestReconciliationHoldsUnderFailuresAndCrashes(t *testing.T) {
	env, _ := startTestBank(t)
	rep, err := reconcile(context.Background(), env, 150, 42, 0.25)
	require.NoError(t, err)
	t.Log(rep)
	assert.True(t, rep.ok(), "%v", rep)
	assert.Equal(t, 4000, rep.after)
	assert.Positive(t, rep.crashes, "the run must crash some coordinators")
	assert.Positive(t, rep.aborted, "the run must abort some transfers")
	assert.Positive(t, rep.committed)
	// Every transfer that began has its decision in the audit log.
	assert.GreaterOrEqual(t, rep.auditDecisions, rep.committed+rep.aborted)
}

func TestTransferIsOneTraceAcrossTheThreeServices(t *testing.T) {
	env, spans := startTestBank(t)
	post := func(req transferRequest) transferResponse {
		body, _ := json.Marshal(req)
		resp, err := http.Post(env.servers[2].URL+"/transfers", "application/json", bytes.NewReader(body))
		require.NoError(t, err)
		defer resp.Body.Close()
		var out transferResponse
		require.NoError(t, json.NewDecoder(resp.Body).Decode(&out))
		return out
	}
	ok := post(transferRequest{ID: "t-1", From: accountRef{"ledger-a", "alice"}, To: accountRef{"ledger-b", "bob"}, Amount: 25})
	require.Equal(t, "committed", ok.Decision, ok.Error)
	balances, _ := env.ledgers["ledger-a"].state()
	assert.Equal(t, 975, balances["alice"])

	// The server's span ends after the answer is written: wait for it.
	var root sdktrace.ReadOnlySpan
	require.Eventually(t, func() bool {
		for _, s := range spans.Ended() {
			if s.Name() == "POST /transfers" {
				root = s
			}
		}
		return root != nil
	}, 5*time.Second, 10*time.Millisecond, "no POST /transfers span")
	count := map[string]int{}
	// The transaction's span may end just after the answer: wait for it.
	require.Eventually(t, func() bool {
		clear(count)
		for _, s := range spans.Ended() {
			if s.SpanContext().TraceID() == root.SpanContext().TraceID() {
				count[s.Name()]++
			}
		}
		return count["2pc.transaction"] == 1
	}, 5*time.Second, 10*time.Millisecond, "no 2pc.transaction in the trace: %v", count)
	// The coordinator's spans and both ledgers' are one trace.
	assert.Equal(t, 1, count["2pc.transaction"])
	assert.Equal(t, 2, count["2pc.call prepare"])
	assert.Equal(t, 2, count["2pc.serve prepare"], "each ledger's prepare continues the trace")
	assert.Equal(t, 2, count["2pc.serve commit"])
	assert.Equal(t, 2, count["POST /intents"])

	// An overdraft is a no vote: aborted on both ledgers, and an error
	// exactly on the refusing ledger's call and the transaction.
	no := post(transferRequest{ID: "t-2", From: accountRef{"ledger-b", "dave"}, To: accountRef{"ledger-a", "carol"}, Amount: 5000})
	assert.Equal(t, "aborted", no.Decision)
	a, heldA := env.ledgers["ledger-a"].state()
	b, heldB := env.ledgers["ledger-b"].state()
	assert.Equal(t, 1000, a["carol"])
	assert.Equal(t, 1000, b["dave"])
	assert.Zero(t, heldA+heldB)
	attr := func(s sdktrace.ReadOnlySpan, key string) string {
		for _, kv := range s.Attributes() {
			if string(kv.Key) == key {
				return kv.Value.AsString()
			}
		}
		return ""
	}
	var aborted sdktrace.ReadOnlySpan
	require.Eventually(t, func() bool { // it may end just after the answer
		for _, s := range spans.Ended() {
			if s.Name() == "2pc.transaction" && attr(s, "otelpatterns.twophase.transaction") == "t-2" {
				aborted = s
			}
		}
		return aborted != nil
	}, 5*time.Second, 10*time.Millisecond, "no 2pc.transaction span for t-2")
	assert.Equal(t, codes.Error, aborted.Status().Code)
	for _, s := range spans.Ended() {
		if s.Name() == "2pc.call prepare" && s.SpanContext().TraceID() == aborted.SpanContext().TraceID() {
			refused := attr(s, "otelpatterns.twophase.participant") == "ledger-b"
			assert.Equal(t, refused, s.Status().Code == codes.Error, "the prepare of %s", attr(s, "otelpatterns.twophase.participant"))
		}
	}
	// The audit log holds both decisions.
	entries := env.audit.entries()
	require.Len(t, entries, 2)
	assert.Equal(t, "committed", entries[0].Decision)
	assert.Equal(t, "aborted", entries[1].Decision)
}

// TestReconciliationMakesOneTracePerTransfer runs transfers without the
// HTTP front door, as the reconciliation does: each is still one trace,
// its parts' registrations (POST /intents) and its two-phase commit under
// one root "transfer" span.
func TestReconciliationMakesOneTracePerTransfer(t *testing.T) {
	env, spans := startTestBank(t)
	rep, err := reconcile(context.Background(), env, 10, 3, 0)
	require.NoError(t, err)
	require.True(t, rep.ok(), "%v", rep)

	roots := map[trace.TraceID]string{}
	perTrace := map[trace.TraceID]map[string]int{}
	for _, s := range spans.Ended() {
		id := s.SpanContext().TraceID()
		if !s.Parent().IsValid() {
			roots[id] = s.Name()
		}
		if perTrace[id] == nil {
			perTrace[id] = map[string]int{}
		}
		perTrace[id][s.Name()]++
	}
	transfers := 0
	for id, root := range roots {
		if root == "journal.open" || root == "2pc.recover" {
			continue
		}
		assert.Equal(t, "transfer", root, "a root span that is not a transfer's")
		transfers++
		assert.Equal(t, 2, perTrace[id]["POST /intents"], "both parts, in the transfer's trace")
		assert.Equal(t, 1, perTrace[id]["2pc.transaction"])
	}
	assert.Equal(t, 10, transfers)
}
