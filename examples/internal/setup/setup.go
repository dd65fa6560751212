// Package setup wires the OpenTelemetry SDK once for every example.
//
// By default traces go to a console exporter that prints each trace as a
// tree, and metrics nowhere. When the standard OTEL_EXPORTER_OTLP_ENDPOINT
// (or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) variable is set, traces and
// metrics are exported over OTLP instead, to any collector, Jaeger or
// Tempo, with the official exporters: over gRPC when
// OTEL_EXPORTER_OTLP_PROTOCOL is "grpc", and over HTTP/protobuf otherwise,
// which is the specification's default. The exporters read every other
// OTEL_EXPORTER_OTLP_* variable themselves (headers, timeouts, TLS), and
// the resource reads OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES.
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
	"io"
	"os"
	"strings"
	"time"

	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetricgrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetrichttp"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/propagation"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/otelpatterns/otelpatterns/examples/internal/console"
)

// Telemetry is what an example passes to the library: the providers and
// the propagators, and the Shutdown that flushes them.
type Telemetry struct {
	TracerProvider trace.TracerProvider
	MeterProvider  metric.MeterProvider
	Propagators    propagation.TextMapPropagator
	// OTLP reports whether the telemetry goes to an OTLP endpoint.
	OTLP     bool
	shutdown []func(context.Context) error
}

// Option adjusts Start.
type Option func(*options)

type options struct {
	console []console.Option
	quiet   bool
}

// WithoutConsole drops the traces instead of printing them, when there is
// no OTLP endpoint: for programs whose output is something else.
func WithoutConsole() Option { return func(o *options) { o.quiet = true } }

// WithConsoleOptions passes options to the console exporter.
func WithConsoleOptions(opts ...console.Option) Option {
	return func(o *options) { o.console = append(o.console, opts...) }
}

// Start builds the providers for service. Without an OTLP endpoint in the
// environment, traces print to console as trees.
func Start(ctx context.Context, service string, w io.Writer, opts ...Option) (*Telemetry, error) {
	o := &options{}
	for _, opt := range opts {
		opt(o)
	}
	res, err := resource.Merge(resource.Default(), resource.NewSchemaless(semconv.ServiceName(service)))
	if err != nil {
		return nil, err
	}
	if os.Getenv("OTEL_SERVICE_NAME") != "" || os.Getenv("OTEL_RESOURCE_ATTRIBUTES") != "" {
		if fromEnv, err := resource.New(ctx, resource.WithFromEnv()); err == nil {
			res, _ = resource.Merge(res, fromEnv)
		}
	}
	t := &Telemetry{Propagators: propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})}
	if os.Getenv("OTEL_EXPORTER_OTLP_ENDPOINT") == "" && os.Getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") == "" {
		var tpOpts []sdktrace.TracerProviderOption
		if !o.quiet {
			tpOpts = append(tpOpts, sdktrace.WithSyncer(console.New(w, o.console...)))
		}
		tp := sdktrace.NewTracerProvider(append(tpOpts, sdktrace.WithResource(res))...)
		t.TracerProvider, t.MeterProvider = tp, sdkmetric.NewMeterProvider(sdkmetric.WithResource(res))
		t.shutdown = append(t.shutdown, tp.Shutdown, t.MeterProvider.(*sdkmetric.MeterProvider).Shutdown)
		return t, nil
	}
	t.OTLP = true
	spans, metrics, err := otlpExporters(ctx, strings.TrimSpace(os.Getenv("OTEL_EXPORTER_OTLP_PROTOCOL")))
	if err != nil {
		return nil, err
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithResource(res), sdktrace.WithBatcher(spans))
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithResource(res),
		sdkmetric.WithReader(sdkmetric.NewPeriodicReader(metrics, sdkmetric.WithInterval(10*time.Second))))
	t.TracerProvider, t.MeterProvider = tp, mp
	t.shutdown = append(t.shutdown, tp.Shutdown, mp.Shutdown)
	return t, nil
}

// otlpExporters builds the trace and metric exporters for protocol, as
// OTEL_EXPORTER_OTLP_PROTOCOL names it.
func otlpExporters(ctx context.Context, protocol string) (sdktrace.SpanExporter, sdkmetric.Exporter, error) {
	switch protocol {
	case "grpc":
		spans, err := otlptracegrpc.New(ctx)
		if err != nil {
			return nil, nil, err
		}
		metrics, err := otlpmetricgrpc.New(ctx)
		return spans, metrics, err
	case "", "http/protobuf":
		spans, err := otlptracehttp.New(ctx)
		if err != nil {
			return nil, nil, err
		}
		metrics, err := otlpmetrichttp.New(ctx)
		return spans, metrics, err
	default:
		return nil, nil, errors.New(`setup: OTEL_EXPORTER_OTLP_PROTOCOL=` + protocol + `: use "grpc" or "http/protobuf"`)
	}
}

// Shutdown flushes and stops the providers; call it on exit, SIGINT
// included, with a context that bounds how long the flush may take.
func (t *Telemetry) Shutdown(ctx context.Context) error {
	var errs []error
	for _, fn := range t.shutdown {
		errs = append(errs, fn(ctx))
	}
	return errors.Join(errs...)
}
