package main

import (
	"bytes"
	"context"
	"regexp"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/otelpatterns/otelpatterns/examples/internal/console"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// clearEnv unsets the variables that choose the exporters, for the test.
func clearEnv(t *testing.T) {
	for _, k := range []string{"OTEL_TRACES_EXPORTER", "OTEL_METRICS_EXPORTER", "OTEL_EXPORTER_OTLP_ENDPOINT",
		"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", "OTEL_EXPORTER_OTLP_PROTOCOL",
		"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL"} {
		t.Setenv(k, "")
	}
}

func TestQuickstartPrintsTraceTrees(t *testing.T) {
	clearEnv(t) // the console, whatever the machine's environment
	var out bytes.Buffer
	require.NoError(t, run(context.Background(), &out, console.WithoutTimings()))
	got := out.String()

	for _, want := range []string{
		"└─ checkout ERROR \"charge order-42: card declined\" order.id=order-42 error.type=payment_declined\n",
		"   ├─ check-stock\n",
		"   │  ├─ warehouse.lookup sku=",
		"   └─ charge [client] ERROR \"charge order-42: card declined\" error.type=payment_declined\n",
		"└─ send-receipt ERROR \"panic: runtime error: index out of range [2] with length 2\" order.id=order-41 error.type=panic\n",
		"    code: payment_declined\n",
		"errs.Code: payment_declined; errors.Is(err, errDeclined): true\n",
		"├─ pool.process otelpatterns.pool.name=thumbnails otelpatterns.pool.batch.size=3\n",
		"└─ pool.task otelpatterns.pool.name=thumbnails otelpatterns.pool.task.queue_wait=",
		"└─ functional.parallel_map otelpatterns.functional.items=4 otelpatterns.functional.concurrency=2 otelpatterns.outcome=success\n",
		"prices: [100 200 300 400]\n",
		"└─ retry otelpatterns.retry.policy=inventory otelpatterns.retry.attempts=3\n",
		"├─ retry.attempt ERROR \"inventory service busy\" otelpatterns.retry.attempt=1 error.type=inventory_unavailable\n",
		"├─ retry.attempt ERROR \"inventory service busy\" otelpatterns.retry.attempt=2 error.type=inventory_unavailable\n",
		"└─ retry.attempt otelpatterns.retry.attempt=3\n",
		"in stock: 12\n",
		"└─ place-orders\n",
		"   ├─ send orders [producer] messaging.operation.type=send messaging.operation.name=send messaging.system=otelpatterns messaging.destination.name=orders\n",
		"└─ process orders [consumer] links=1 messaging.operation.type=process messaging.operation.name=process messaging.system=otelpatterns messaging.destination.name=orders\n",
		"└─ saga checkout ERROR",
		"   ├─ saga.step reserve-stock otelpatterns.saga.name=checkout otelpatterns.saga.step=reserve-stock otelpatterns.saga.attempt=1\n",
		"   ├─ saga.step charge-payment ERROR \"card declined\"",
		"   └─ saga.compensate reserve-stock otelpatterns.saga.name=checkout otelpatterns.saga.step=reserve-stock otelpatterns.saga.attempt=1\n",
		"otelpatterns.saga.outcome=compensated error.type=saga_compensated\n",
		"└─ 2pc.transaction otelpatterns.twophase.transaction=transfer-1 otelpatterns.twophase.participants=2 otelpatterns.twophase.decision=committed\n",
		"   └─ 2pc.commit\n",
		"otelpatterns.twophase.decision=aborted error.type=vote_no\n",
		"   └─ 2pc.abort\n",
		"msg=balances alice=70 bob=30\n",
		"second 2:  1000 requests,   92 kept (probability now 0.1000); children kept with their parents: true; recovery kept: true\n",
		"second 5: 10000 requests,   92 kept (probability now 0.0100); children kept with their parents: true; recovery kept: true\n",
	} {
		assert.Contains(t, got, want)
	}
	assert.Equal(t, 3, bytes.Count(out.Bytes(), []byte("warehouse.lookup sku=")))
	assert.Equal(t, 6, bytes.Count(out.Bytes(), []byte("children kept with their parents: true; recovery kept: true")))

	// The log line and the error name the trace that the tree prints.
	traceID := regexp.MustCompile(`trace ([0-9a-f]{32})\n└─ checkout`).FindStringSubmatch(got)
	require.Len(t, traceID, 2)
	assert.Contains(t, got, "err.trace_id="+traceID[1])
	assert.Contains(t, got, "    trace_id: "+traceID[1]+"\n")
}
