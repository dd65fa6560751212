// Package setup wires the OpenTelemetry SDK once for every example, from
// the standard OTEL_* environment variables, through the contrib library
// made for them, go.opentelemetry.io/contrib/exporters/autoexport.
//
// OTEL_TRACES_EXPORTER picks where traces go:
//
//   - console: printed as trees (package console), the default when no
//     OTLP endpoint is set;
//   - otlp: to any collector, Jaeger or Tempo, the default when
//     OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is
//     set;
//   - none: nowhere.
//
// OTEL_METRICS_EXPORTER picks where metrics go:
//
//   - otlp: the default when OTEL_EXPORTER_OTLP_ENDPOINT or
//     OTEL_EXPORTER_OTLP_METRICS_ENDPOINT is set;
//   - prometheus: served on
//     http://$OTEL_EXPORTER_PROMETHEUS_HOST:$OTEL_EXPORTER_PROMETHEUS_PORT/metrics
//     (localhost:9464 by default) for a Prometheus to scrape;
//   - console: printed as JSON on standard output, every
//     OTEL_METRIC_EXPORT_INTERVAL milliseconds and on exit;
//   - none: nowhere, the default when no OTLP endpoint is set.
//
// OTLP goes over HTTP/protobuf, the specification's default, or over gRPC
// with OTEL_EXPORTER_OTLP_PROTOCOL=grpc; the exporters read every other
// OTEL_EXPORTER_OTLP_* variable themselves (headers, timeouts, TLS), and
// the resource reads OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES.
//
// Metrics never fail a program: an export that fails (Jaeger takes traces
// but answers 404 on /v1/metrics) is a warning on standard error, written
// once per distinct error, and so is a metrics flush that fails on exit.
// A variable set to a value that none of the above knows is an error of
// Start.
//
//	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
//	defer stop()
//	tel, err := setup.Start(ctx, "shop", os.Stdout)
//	...
//	defer tel.Shutdown(context.Background()) // flushes what is buffered
package setup

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"

	"go.opentelemetry.io/contrib/exporters/autoexport"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/propagation"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/otelpatterns/otelpatterns/examples/internal/console"
)

// The exporters' names, as OTEL_TRACES_EXPORTER and OTEL_METRICS_EXPORTER
// spell them.
const (
	Console    = "console"
	OTLP       = "otlp"
	Prometheus = "prometheus"
	None       = "none"
)

// Telemetry is what an example passes to the library: the providers and
// the propagators, and the Shutdown that flushes them.
type Telemetry struct {
	TracerProvider trace.TracerProvider
	MeterProvider  metric.MeterProvider
	Propagators    propagation.TextMapPropagator
	// Traces and Metrics name the exporters in use: console, otlp,
	// prometheus or none.
	Traces, Metrics string

	mu       sync.Mutex
	services map[string]*Telemetry
	res      *resource.Resource
	newTP    func(*resource.Resource) *sdktrace.TracerProvider
	shutdown []func(context.Context) error
	warn     *warner
}

// Option adjusts Start.
type Option func(*options)

type options struct {
	console []console.Option
	quiet   bool
	warn    io.Writer
	extra   []sdktrace.SpanProcessor
}

// WithoutConsole drops the traces instead of printing them when the
// console is only the default (no OTLP endpoint, no OTEL_TRACES_EXPORTER):
// for programs whose output is something else.
func WithoutConsole() Option { return func(o *options) { o.quiet = true } }

// WithConsoleOptions passes options to the console exporter.
func WithConsoleOptions(opts ...console.Option) Option {
	return func(o *options) { o.console = append(o.console, opts...) }
}

// WithWarnings sends the warnings (failed exports) to w instead of
// standard error.
func WithWarnings(w io.Writer) Option { return func(o *options) { o.warn = w } }

// WithSpanProcessor adds p to every tracer provider, the services' too:
// for tests, which record the spans.
func WithSpanProcessor(p sdktrace.SpanProcessor) Option {
	return func(o *options) { o.extra = append(o.extra, p) }
}

// Start builds the providers for service from the environment; see the
// package documentation. Traces print to w as trees by default.
func Start(ctx context.Context, service string, w io.Writer, opts ...Option) (_ *Telemetry, err error) {
	o := &options{warn: os.Stderr}
	for _, opt := range opts {
		opt(o)
	}
	t := &Telemetry{Propagators: propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}),
		services: map[string]*Telemetry{}, warn: &warner{w: o.warn, seen: map[string]bool{}}}
	defer func() {
		if err != nil {
			_ = t.Shutdown(context.Background())
		}
	}()
	// Every export that fails in the background reaches otel.Handle: a
	// warning.
	otel.SetErrorHandler(t.warn)

	if t.Traces, err = chooseTraces(); err != nil {
		return nil, err
	}
	if t.Metrics, err = chooseMetrics(); err != nil {
		return nil, err
	}
	if t.res, err = newResource(ctx, service); err != nil {
		return nil, err
	}

	var spans sdktrace.SpanExporter
	newProcessor := sdktrace.NewSimpleSpanProcessor // the console prints each trace as its root ends
	switch {
	case t.Traces == Console && o.quiet && os.Getenv("OTEL_TRACES_EXPORTER") == "":
		t.Traces = None
	case t.Traces == Console:
		spans = console.New(w, o.console...)
	case t.Traces == OTLP:
		if spans, err = autoexport.NewSpanExporter(ctx); err != nil {
			return nil, fmt.Errorf("setup: traces over OTLP: %w", err)
		}
		newProcessor = func(e sdktrace.SpanExporter) sdktrace.SpanProcessor { return sdktrace.NewBatchSpanProcessor(e) }
	}
	if spans != nil {
		// The providers of every service share the exporter: it shuts down
		// once, after them (Shutdown runs in reverse).
		t.shutdown = append(t.shutdown, spans.Shutdown)
	}
	t.newTP = func(r *resource.Resource) *sdktrace.TracerProvider {
		tpOpts := []sdktrace.TracerProviderOption{sdktrace.WithResource(r)}
		if spans != nil {
			tpOpts = append(tpOpts, sdktrace.WithSpanProcessor(newProcessor(keepOpen{spans})))
		}
		for _, p := range o.extra {
			tpOpts = append(tpOpts, sdktrace.WithSpanProcessor(p))
		}
		return sdktrace.NewTracerProvider(tpOpts...)
	}
	tp := t.newTP(t.res)
	t.TracerProvider = tp
	t.shutdown = append(t.shutdown, tp.Shutdown)

	mpOpts := []sdkmetric.Option{sdkmetric.WithResource(t.res)}
	if t.Metrics != None {
		reader, err := autoexport.NewMetricReader(ctx)
		if err != nil {
			return nil, fmt.Errorf("setup: OTEL_METRICS_EXPORTER=%s: %w", t.Metrics, err)
		}
		mpOpts = append(mpOpts, sdkmetric.WithReader(reader))
	}
	mp := sdkmetric.NewMeterProvider(mpOpts...)
	t.MeterProvider = mp
	t.shutdown = append(t.shutdown, func(ctx context.Context) error {
		if err := mp.Shutdown(ctx); err != nil {
			t.warn.Handle(err) // in the words of the periodic exports' failures: written once
		}
		return nil // metrics that could not be sent never fail the program
	})
	return t, nil
}

// chooseTraces returns the trace exporter that the environment asks for.
func chooseTraces() (string, error) {
	switch v := os.Getenv("OTEL_TRACES_EXPORTER"); v {
	case "":
		if os.Getenv("OTEL_EXPORTER_OTLP_ENDPOINT") != "" || os.Getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") != "" {
			return OTLP, nil
		}
		return Console, nil
	case Console, OTLP, None:
		return v, nil
	default:
		return "", fmt.Errorf("setup: OTEL_TRACES_EXPORTER=%q: want otlp, console or none", v)
	}
}

// chooseMetrics returns the metric exporter that the environment asks for.
func chooseMetrics() (string, error) {
	switch v := os.Getenv("OTEL_METRICS_EXPORTER"); v {
	case "":
		if os.Getenv("OTEL_EXPORTER_OTLP_ENDPOINT") != "" || os.Getenv("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT") != "" {
			return OTLP, nil
		}
		return None, nil
	case Console, OTLP, Prometheus, None:
		return v, nil
	default:
		return "", fmt.Errorf("setup: OTEL_METRICS_EXPORTER=%q: want otlp, prometheus, console or none", v)
	}
}

// newResource is the SDK's default resource, with service as service.name
// unless OTEL_SERVICE_NAME says otherwise, and OTEL_RESOURCE_ATTRIBUTES.
func newResource(ctx context.Context, service string) (*resource.Resource, error) {
	res, err := resource.Merge(resource.Default(), resource.NewSchemaless(semconv.ServiceName(service)))
	if err != nil {
		return nil, err
	}
	if os.Getenv("OTEL_SERVICE_NAME") != "" || os.Getenv("OTEL_RESOURCE_ATTRIBUTES") != "" {
		fromEnv, err := resource.New(ctx, resource.WithFromEnv())
		if err != nil {
			return nil, fmt.Errorf("setup: OTEL_RESOURCE_ATTRIBUTES: %w", err)
		}
		if res, err = resource.Merge(res, fromEnv); err != nil {
			return nil, err
		}
	}
	return res, nil
}

// Service returns the telemetry of one service of a program that runs
// several in one process (the shop's six, the bank's three): its traces
// carry service.name=name, so that a tracing backend shows each service
// apart, and service.namespace=the program's service.name. The meter
// provider is the program's: its metrics are the process's. Telemetry not
// made by Start (a test's) is returned as it is.
func (t *Telemetry) Service(name string) (*Telemetry, error) {
	if t.newTP == nil {
		return t, nil
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if s, ok := t.services[name]; ok {
		return s, nil
	}
	program, _ := t.res.Set().Value(semconv.ServiceNameKey)
	res, err := resource.Merge(t.res, resource.NewSchemaless(semconv.ServiceName(name),
		attribute.String(string(semconv.ServiceNamespaceKey), program.AsString())))
	if err != nil {
		return nil, err
	}
	tp := t.newTP(res)
	t.shutdown = append(t.shutdown, tp.Shutdown)
	s := &Telemetry{TracerProvider: tp, MeterProvider: t.MeterProvider, Propagators: t.Propagators,
		Traces: t.Traces, Metrics: t.Metrics}
	t.services[name] = s
	return s, nil
}

// Shutdown flushes and stops the providers; call it on exit, SIGINT
// included, with a context that bounds how long the flush may take. It
// returns an error only when traces could not be flushed: metrics that
// could not be are a warning.
func (t *Telemetry) Shutdown(ctx context.Context) error {
	t.mu.Lock()
	fns := t.shutdown
	t.shutdown = nil
	t.mu.Unlock()
	var errs []error
	for i := len(fns) - 1; i >= 0; i-- {
		errs = append(errs, fns[i](ctx))
	}
	return errors.Join(errs...)
}

// keepOpen shares an exporter between providers: a provider's Shutdown
// flushes into it and leaves it open for the others.
type keepOpen struct{ sdktrace.SpanExporter }

func (keepOpen) Shutdown(context.Context) error { return nil }

// warner is the otel error handler: it writes each distinct error once,
// so that a backend that refuses every export does not fill the log.
type warner struct {
	mu   sync.Mutex
	w    io.Writer
	seen map[string]bool
}

// maxWarnings bounds the distinct warnings remembered and written.
const maxWarnings = 32

func (w *warner) Handle(err error) {
	if err == nil {
		return
	}
	msg := err.Error()
	// An export cut short because the program is shutting down says
	// nothing about the backend: not worth a warning of its own.
	if errors.Is(err, context.Canceled) || strings.HasSuffix(msg, context.Canceled.Error()) {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.seen[msg] || len(w.seen) > maxWarnings {
		return
	}
	w.seen[msg] = true
	if len(w.seen) > maxWarnings {
		fmt.Fprintln(w.w, "telemetry warning: too many distinct export errors; no more are written")
		return
	}
	fmt.Fprintf(w.w, "telemetry warning (written once): %v\n", err)
}
