package setup

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/otelpatterns/otelpatterns/examples/internal/console"
)

// clearEnv unsets every variable that Start reads, whatever the machine's
// environment, for the test.
func clearEnv(t *testing.T) {
	for _, k := range []string{"OTEL_TRACES_EXPORTER", "OTEL_METRICS_EXPORTER", "OTEL_EXPORTER_OTLP_ENDPOINT",
		"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", "OTEL_EXPORTER_OTLP_PROTOCOL",
		"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL", "OTEL_METRICS_PRODUCERS",
		"OTEL_SERVICE_NAME", "OTEL_RESOURCE_ATTRIBUTES", "OTEL_METRIC_EXPORT_INTERVAL",
		"OTEL_EXPORTER_PROMETHEUS_HOST", "OTEL_EXPORTER_PROMETHEUS_PORT"} {
		t.Setenv(k, "")
	}
}

// jaeger is an OTLP/HTTP endpoint that takes traces and answers 404 to
// metrics, as Jaeger does.
type jaeger struct {
	mu    sync.Mutex
	paths map[string]int
}

func (j *jaeger) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	_, _ = io.Copy(io.Discard, r.Body)
	j.mu.Lock()
	j.paths[r.URL.Path]++
	j.mu.Unlock()
	if r.URL.Path != "/v1/traces" {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", "application/x-protobuf")
}

func (j *jaeger) count(path string) int {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.paths[path]
}

func startJaeger(t *testing.T) (*jaeger, string) {
	j := &jaeger{paths: map[string]int{}}
	srv := httptest.NewServer(j)
	t.Cleanup(srv.Close)
	return j, srv.URL
}

// emit makes one span and one counter increment.
func emit(t *testing.T, tel *Telemetry) {
	c, err := tel.MeterProvider.Meter("test").Int64Counter("test.requests")
	require.NoError(t, err)
	c.Add(context.Background(), 1)
	_, span := tel.TracerProvider.Tracer("test").Start(context.Background(), "work")
	span.End()
}

func TestDefaultPrintsTraceTreesAndNoMetrics(t *testing.T) {
	clearEnv(t)
	var out bytes.Buffer
	tel, err := Start(context.Background(), "svc", &out, WithConsoleOptions(console.WithoutTimings()))
	require.NoError(t, err)
	assert.Equal(t, Console, tel.Traces)
	assert.Equal(t, None, tel.Metrics)
	emit(t, tel)
	require.NoError(t, tel.Shutdown(context.Background()))
	assert.Contains(t, out.String(), "└─ work\n")
}

func TestMetricsRefusedByTheBackendOnlyWarnOnce(t *testing.T) {
	clearEnv(t)
	j, url := startJaeger(t)
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", url)
	t.Setenv("OTEL_METRIC_EXPORT_INTERVAL", "20") // milliseconds
	var warnings bytes.Buffer
	tel, err := Start(context.Background(), "svc", io.Discard, WithWarnings(&syncWriter{w: &warnings}))
	require.NoError(t, err)
	assert.Equal(t, OTLP, tel.Traces)
	assert.Equal(t, OTLP, tel.Metrics)
	emit(t, tel)
	require.Eventually(t, func() bool { return j.count("/v1/metrics") >= 3 }, 10*time.Second, 10*time.Millisecond)
	require.NoError(t, tel.Shutdown(context.Background()), "refused metrics never fail the program")

	assert.Positive(t, j.count("/v1/traces"), "the traces went out")
	got := warnings.String()
	assert.Contains(t, got, "404")
	assert.Equal(t, 1, strings.Count(got, "\n"), "one warning for one distinct error, however many exports failed:\n%s", got)
}

func TestMetricsNoneSendsNoMetrics(t *testing.T) {
	clearEnv(t)
	j, url := startJaeger(t)
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", url)
	t.Setenv("OTEL_METRICS_EXPORTER", "none")
	var warnings bytes.Buffer
	tel, err := Start(context.Background(), "svc", io.Discard, WithWarnings(&warnings))
	require.NoError(t, err)
	assert.Equal(t, None, tel.Metrics)
	emit(t, tel)
	require.NoError(t, tel.Shutdown(context.Background()))
	assert.Zero(t, j.count("/v1/metrics"))
	assert.Equal(t, 1, j.count("/v1/traces"))
	assert.Empty(t, warnings.String())
}

func TestPrometheusServesTheMetrics(t *testing.T) {
	clearEnv(t)
	port := freePort(t)
	t.Setenv("OTEL_METRICS_EXPORTER", "prometheus")
	t.Setenv("OTEL_TRACES_EXPORTER", "none")
	t.Setenv("OTEL_EXPORTER_PROMETHEUS_HOST", "127.0.0.1")
	t.Setenv("OTEL_EXPORTER_PROMETHEUS_PORT", strconv.Itoa(port))
	tel, err := Start(context.Background(), "svc", io.Discard)
	require.NoError(t, err)
	assert.Equal(t, Prometheus, tel.Metrics)
	emit(t, tel)
	resp, err := http.Get("http://127.0.0.1:" + strconv.Itoa(port) + "/metrics")
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	assert.Contains(t, string(body), "test_requests_total{")
	assert.Contains(t, string(body), `service_name="svc"`)

	// A second program on the same port is a clear error.
	_, err = Start(context.Background(), "svc", io.Discard)
	assert.ErrorContains(t, err, "OTEL_METRICS_EXPORTER=prometheus")
	require.NoError(t, tel.Shutdown(context.Background()))
}

func TestUnknownValuesAreErrors(t *testing.T) {
	for env, want := range map[[2]string]string{
		{"OTEL_TRACES_EXPORTER", "zipkin"}:        `OTEL_TRACES_EXPORTER="zipkin": want otlp, console or none`,
		{"OTEL_METRICS_EXPORTER", "statsd"}:       `OTEL_METRICS_EXPORTER="statsd": want otlp, prometheus, console or none`,
		{"OTEL_METRICS_EXPORTER", "otlp,none"}:    `OTEL_METRICS_EXPORTER="otlp,none"`,
		{"OTEL_EXPORTER_OTLP_PROTOCOL", "thrift"}: "invalid OTLP protocol",
	} {
		t.Run(env[0]+"="+env[1], func(t *testing.T) {
			clearEnv(t)
			t.Setenv("OTEL_TRACES_EXPORTER", "otlp")
			t.Setenv(env[0], env[1])
			_, err := Start(context.Background(), "svc", io.Discard)
			assert.ErrorContains(t, err, want)
		})
	}
}

func TestEachServiceHasItsOwnName(t *testing.T) {
	clearEnv(t)
	var out bytes.Buffer
	tel, err := Start(context.Background(), "shop", &out)
	require.NoError(t, err)
	defer func() { require.NoError(t, tel.Shutdown(context.Background())) }()
	pay, err := tel.Service("payments")
	require.NoError(t, err)
	again, err := tel.Service("payments")
	require.NoError(t, err)
	assert.Same(t, pay, again)
	assert.Same(t, tel.MeterProvider, pay.MeterProvider, "metrics are the process's")

	attrs := func(tel *Telemetry) map[string]string {
		_, span := tel.TracerProvider.Tracer("test").Start(context.Background(), "work")
		defer span.End()
		out := map[string]string{}
		for _, kv := range span.(sdktrace.ReadOnlySpan).Resource().Attributes() {
			out[string(kv.Key)] = kv.Value.String()
		}
		return out
	}
	assert.Equal(t, "payments", attrs(pay)["service.name"])
	assert.Equal(t, "shop", attrs(pay)["service.namespace"])
	assert.Equal(t, "shop", attrs(tel)["service.name"])

	// A test's own Telemetry is its own service.
	own := &Telemetry{}
	same, err := own.Service("x")
	require.NoError(t, err)
	assert.Same(t, own, same)
}

func freePort(t *testing.T) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// syncWriter is a writer that the SDK's goroutines may share.
type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}
