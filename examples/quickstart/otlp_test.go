package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	collectormetrics "go.opentelemetry.io/proto/otlp/collector/metrics/v1"
	collectortrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"
)

// receiver is an OTLP/HTTP endpoint on loopback that decodes what it is
// sent with the official protobuf types.
type receiver struct {
	mu      sync.Mutex
	spans   []*tracepb.Span
	service []string
	metrics []string
	// refuseMetrics answers 404 on /v1/metrics, as Jaeger does.
	refuseMetrics bool
	metricCalls   int
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil || r.Header.Get("Content-Type") != "application/x-protobuf" {
		http.Error(w, "want protobuf", http.StatusBadRequest)
		return
	}
	rc.mu.Lock()
	defer rc.mu.Unlock()
	switch r.URL.Path {
	case "/v1/traces":
		var req collectortrace.ExportTraceServiceRequest
		if err := proto.Unmarshal(body, &req); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		for _, rs := range req.ResourceSpans {
			for _, kv := range rs.Resource.GetAttributes() {
				if kv.Key == "service.name" {
					rc.service = append(rc.service, kv.Value.GetStringValue())
				}
			}
			for _, ss := range rs.ScopeSpans {
				rc.spans = append(rc.spans, ss.Spans...)
			}
		}
		out, _ := proto.Marshal(&collectortrace.ExportTraceServiceResponse{})
		w.Header().Set("Content-Type", "application/x-protobuf")
		_, _ = w.Write(out)
	case "/v1/metrics":
		rc.metricCalls++
		if rc.refuseMetrics {
			http.NotFound(w, r)
			return
		}
		var req collectormetrics.ExportMetricsServiceRequest
		if err := proto.Unmarshal(body, &req); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		for _, rm := range req.ResourceMetrics {
			for _, sm := range rm.ScopeMetrics {
				for _, m := range sm.Metrics {
					rc.metrics = append(rc.metrics, m.Name)
				}
			}
		}
		out, _ := proto.Marshal(&collectormetrics.ExportMetricsServiceResponse{})
		w.Header().Set("Content-Type", "application/x-protobuf")
		_, _ = w.Write(out)
	default:
		http.NotFound(w, r)
	}
}

// TestQuickstartExportsOverOTLP runs the quickstart with the standard
// OTEL_EXPORTER_OTLP_* variables pointing at a receiver on loopback, and
// checks the spans and metrics it decodes.
func TestQuickstartExportsOverOTLP(t *testing.T) {
	rc := &receiver{}
	srv := httptest.NewServer(rc)
	defer srv.Close()
	clearEnv(t)
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", srv.URL)
	t.Setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")

	var out bytes.Buffer
	require.NoError(t, run(context.Background(), &out))
	assert.Contains(t, out.String(), "exporting traces: otlp, metrics: otlp")
	assert.NotContains(t, out.String(), "└─ checkout", "the console exporter is off")

	rc.mu.Lock()
	defer rc.mu.Unlock()
	byName := map[string]*tracepb.Span{}
	for _, s := range rc.spans {
		byName[s.Name] = s
	}
	for _, name := range []string{"checkout", "charge", "pool.process", "retry.attempt", "saga checkout", "saga.compensate reserve-stock", "2pc.transaction", "2pc.call prepare"} {
		assert.Contains(t, byName, name)
	}
	charge, checkout := byName["charge"], byName["checkout"]
	require.NotNil(t, charge)
	require.NotNil(t, checkout)
	assert.Equal(t, checkout.SpanId, charge.ParentSpanId, "charge is a child of checkout")
	assert.Equal(t, checkout.TraceId, charge.TraceId)
	assert.Equal(t, tracepb.Status_STATUS_CODE_ERROR, charge.Status.GetCode())
	assert.Contains(t, rc.service, "quickstart")
	// Every package of the tour is given the meter provider too.
	for _, name := range []string{"otelpatterns.saga.sagas", "otelpatterns.twophase.transactions",
		"otelpatterns.pool.tasks", "otelpatterns.functional.duration", "otelpatterns.channel.sent",
		"otelpatterns.retry.attempts", "otelpatterns.journal.append.duration"} {
		assert.Contains(t, rc.metrics, name)
	}
}

// TestQuickstartAgainstJaeger runs the quickstart against an endpoint
// that takes traces and refuses metrics, as Jaeger does: it exits without
// an error, and with OTEL_METRICS_EXPORTER=none it sends no metrics.
func TestQuickstartAgainstJaeger(t *testing.T) {
	for _, metrics := range []string{"", "none"} {
		t.Run("OTEL_METRICS_EXPORTER="+metrics, func(t *testing.T) {
			rc := &receiver{refuseMetrics: true}
			srv := httptest.NewServer(rc)
			defer srv.Close()
			clearEnv(t)
			t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", srv.URL)
			t.Setenv("OTEL_METRICS_EXPORTER", metrics)

			require.NoError(t, run(context.Background(), io.Discard), "refused metrics are a warning")
			rc.mu.Lock()
			defer rc.mu.Unlock()
			assert.NotEmpty(t, rc.spans)
			if metrics == "none" {
				assert.Zero(t, rc.metricCalls)
			} else {
				assert.Positive(t, rc.metricCalls, "the metrics were offered, and refused")
			}
		})
	}
}
