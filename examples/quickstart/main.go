// Command quickstart is a short tour of otelpatterns. It sets up the
// OpenTelemetry SDK with a console exporter that prints each trace as a
// tree, and runs the traced operations of a small shop:
//
//   - errs: a checkout that asks three warehouses at once and then fails to
//     charge the card: errs.Wrap stamps the failure with its code and trace,
//     and errs.Record marks each span whose operation failed;
//   - errs: a receipt job with a bug that panics: errs.Try turns the panic
//     into an error with its stack instead of a crash;
//   - pool: a gallery rendered on a bounded worker pool, a batch in order
//     and a single task whose span is a child of the request;
//   - functional: prices looked up in parallel, in input order;
//   - retry: a flaky inventory service that answers on the third attempt,
//     each attempt in the trace;
//   - concurrency: orders handed to a shipping goroutine through a traced
//     channel, the shipping spans linked to the request that sent them;
//   - journal and saga: a checkout saga whose payment is declined, its
//     reservation compensated, every step written ahead to a journal;
//   - twophase: a transfer between two ledgers, committed on both, and one
//     that a ledger refuses, aborted on both.
//
// Run it from the module root:
//
//	go -C examples run ./quickstart
//
// It prints each trace as a tree. With OTEL_EXPORTER_OTLP_ENDPOINT set (and
// OTEL_EXPORTER_OTLP_PROTOCOL=grpc for gRPC), it exports traces and metrics
// over OTLP instead, to a collector, Jaeger or Tempo; OTEL_TRACES_EXPORTER
// and OTEL_METRICS_EXPORTER (otlp, console, prometheus, none) choose each
// (see examples/internal/setup):
//
//	OTEL_EXPORTER_OTLP_ENDPOINT=http://localhost:4318 go -C examples run ./quickstart
//	OTEL_EXPORTER_OTLP_ENDPOINT=http://localhost:4318 OTEL_METRICS_EXPORTER=none go -C examples run ./quickstart # Jaeger
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/otelpatterns/otelpatterns/concurrency"
	"github.com/otelpatterns/otelpatterns/errs"
	"github.com/otelpatterns/otelpatterns/examples/internal/console"
	"github.com/otelpatterns/otelpatterns/examples/internal/setup"
	"github.com/otelpatterns/otelpatterns/functional"
	"github.com/otelpatterns/otelpatterns/pool"
	"github.com/otelpatterns/otelpatterns/retry"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "quickstart:", err)
		os.Exit(1)
	}
}

// run sets up telemetry, runs the tour and flushes, on SIGINT too. The
// console options are passed through, so a test can turn timings off.
func run(ctx context.Context, w io.Writer, opts ...console.Option) (err error) {
	w = &lockedWriter{w: w} // spans end on the library's goroutines too
	tel, err := setup.Start(ctx, "quickstart", w, setup.WithConsoleOptions(opts...))
	if err != nil {
		return err
	}
	defer func() {
		flush, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		err = errors.Join(err, tel.Shutdown(flush))
	}()
	tp, mp := tel.TracerProvider, tel.MeterProvider
	if tel.Traces != setup.Console || tel.Metrics != setup.None {
		fmt.Fprintf(w, "exporting traces: %s, metrics: %s\n", tel.Traces, tel.Metrics)
	}

	s := &shop{
		tracer: tp.Tracer("github.com/otelpatterns/otelpatterns/examples/quickstart"),
		log:    slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{ReplaceAttr: dropTime})),
	}

	fmt.Fprintln(w, "== 1. a checkout whose payment is declined ==")
	err = s.checkout(ctx, "order-42", []string{"sku-1", "sku-2", "sku-3"})
	fmt.Fprintf(w, "\nThe error, with %%+v:\n%+v\n", err)
	fmt.Fprintf(w, "errs.Code: %s; errors.Is(err, errDeclined): %v\n", errs.Code(err), errors.Is(err, errDeclined))

	fmt.Fprintln(w, "\n== 2. a receipt job that panics ==")
	err = s.sendReceipt(ctx, "order-41")
	var p *errs.PanicError
	if !errors.As(err, &p) {
		return fmt.Errorf("want a panic error, got %v", err)
	}
	fmt.Fprintf(w, "\nThe error: %v (error.type %q, stack of %d bytes kept)\n", err, errs.Code(err), len(p.Stack))

	fmt.Fprintln(w, "\n== 3. a gallery rendered on a worker pool ==")
	if err := s.renderGallery(ctx, tp, mp, []string{"a.jpg", "b.jpg", "c.jpg"}); err != nil {
		return err
	}

	fmt.Fprintln(w, "\n== 4. prices looked up in parallel ==")
	prices, err := s.lookUpPrices(ctx, tp, mp, []string{"sku-1", "sku-2", "sku-3", "sku-4"})
	if err != nil {
		return err
	}
	fmt.Fprintln(w, "prices:", prices)

	fmt.Fprintln(w, "\n== 5. a flaky inventory service, retried ==")
	stock, err := s.checkInventory(ctx, tp, mp, "sku-1")
	if err != nil {
		return err
	}
	fmt.Fprintln(w, "in stock:", stock)

	fmt.Fprintln(w, "\n== 6. orders handed to a shipping goroutine ==")
	if err := s.shipOrders(ctx, tp, mp, []string{"order-42", "order-43"}); err != nil {
		return err
	}

	fmt.Fprintln(w, "\n== 7. a checkout saga, compensated ==")
	if err := s.checkoutSaga(ctx, tp, mp); err != nil {
		return err
	}

	fmt.Fprintln(w, "\n== 8. transfers between two ledgers, by two-phase commit ==")
	if err := s.transfer(ctx, tp, mp); err != nil {
		return err
	}

	fmt.Fprintln(w, "\n== 9. sampling: every recovery, 100 requests a second, whole traces ==")
	return sampleTraffic(w, mp)
}

// shipOrders sends orders on a traced channel from a request, and a
// shipping goroutine consumes them: each "process orders" span is linked to
// the "send orders" span of the request that sent its order.
func (s *shop) shipOrders(ctx context.Context, tp trace.TracerProvider, mp metric.MeterProvider, orders []string) error {
	ch, err := concurrency.NewChannel[string](len(orders), concurrency.WithName("orders"),
		concurrency.WithTracerProvider(tp), concurrency.WithMeterProvider(mp))
	if err != nil {
		return err
	}
	var wg sync.WaitGroup
	var shipped []string
	wg.Go(func() {
		_ = ch.Consume(context.Background(), func(_ context.Context, order string) error {
			shipped = append(shipped, order)
			return nil
		})
	})
	rctx, span := s.tracer.Start(ctx, "place-orders")
	for _, o := range orders {
		if err := ch.Send(rctx, o); err != nil {
			span.End()
			return err
		}
	}
	span.End()
	_ = ch.Close()
	wg.Wait()
	s.log.Info("orders shipped", "orders", shipped)
	return nil
}

// renderGallery makes thumbnails on a pool of 2 workers: a batch, whose
// results come back in order, and one more image submitted on its own.
func (s *shop) renderGallery(ctx context.Context, tp trace.TracerProvider, mp metric.MeterProvider, images []string) error {
	thumbnails, err := pool.New(func(_ context.Context, image string) (string, error) {
		return "thumb-" + image, nil
	}, pool.WithWorkers(2), pool.WithName("thumbnails"),
		pool.WithTracerProvider(tp), pool.WithMeterProvider(mp))
	if err != nil {
		return err
	}
	defer thumbnails.Close()

	ctx, span := s.tracer.Start(ctx, "render-gallery")
	defer span.End()
	thumbs, err := thumbnails.Process(ctx, images) // one pool.process span
	if err != nil {
		return err
	}
	cover, err := thumbnails.Submit(ctx, "cover.jpg") // a pool.task span, child of render-gallery
	if err != nil {
		return err
	}
	c, err := cover.Wait(ctx)
	if err != nil {
		return err
	}
	s.log.Info("gallery rendered", "thumbnails", thumbs, "cover", c)
	return nil
}

// lookUpPrices asks the pricing service for each sku at once, two at a
// time, and keeps the skus' order.
func (s *shop) lookUpPrices(ctx context.Context, tp trace.TracerProvider, mp metric.MeterProvider, skus []string) ([]int, error) {
	ctx, span := s.tracer.Start(ctx, "price-list")
	defer span.End()
	return functional.ParallelMap(ctx, skus, func(_ context.Context, sku string) (int, error) {
		return 100 * int(sku[len(sku)-1]-'0'), nil
	}, functional.WithWorkers(2),
		functional.WithTracerProvider(tp), functional.WithMeterProvider(mp))
}

// checkInventory calls an inventory service that fails twice before it
// answers; the retry policy waits a little between attempts.
func (s *shop) checkInventory(ctx context.Context, tp trace.TracerProvider, mp metric.MeterProvider, sku string) (int, error) {
	policy, err := retry.New(retry.WithName("inventory"), retry.WithMaxAttempts(4),
		retry.WithExponentialBackoff(time.Millisecond, 10*time.Millisecond, retry.FullJitter),
		retry.WithTracerProvider(tp), retry.WithMeterProvider(mp))
	if err != nil {
		return 0, err
	}
	ctx, span := s.tracer.Start(ctx, "reserve-stock", trace.WithAttributes(attribute.String("sku", sku)))
	defer span.End()
	calls := 0
	return retry.Do(ctx, policy, func(ctx context.Context) (int, error) {
		if calls++; calls < 3 {
			return 0, errs.New(ctx, "inventory_unavailable", "inventory service busy")
		}
		return 12, nil
	})
}

var errDeclined = errors.New("card declined")

type shop struct {
	tracer trace.Tracer
	log    *slog.Logger
}

// checkout checks stock, then charges the card, which is declined.
//
// The failure is recorded on the charge span, where it happened, and on the
// checkout span, whose operation it ended: each span's status says whether
// its own operation failed. Nothing records it a third time.
func (s *shop) checkout(ctx context.Context, order string, skus []string) (err error) {
	ctx, span := s.tracer.Start(ctx, "checkout", trace.WithAttributes(attribute.String("order.id", order)))
	defer func() {
		errs.Record(span, err)
		span.End()
	}()

	if err := s.checkStock(ctx, skus); err != nil {
		return err
	}
	if err := s.charge(ctx, order); err != nil {
		s.log.Error("checkout failed", "err", err) // the log line carries trace_id and span_id
		return err
	}
	return nil
}

// checkStock asks every warehouse at once and joins every failure.
func (s *shop) checkStock(ctx context.Context, skus []string) error {
	ctx, span := s.tracer.Start(ctx, "check-stock")
	defer span.End()

	var (
		failures errs.Collector
		wg       sync.WaitGroup
	)
	for _, sku := range skus {
		wg.Go(func() {
			_, span := s.tracer.Start(ctx, "warehouse.lookup", trace.WithAttributes(attribute.String("sku", sku)))
			defer span.End()
			// Every sku is in stock in this tour; a failure would be added here.
			failures.Add(nil)
		})
	}
	wg.Wait()
	err := failures.Err()
	errs.Record(span, err)
	return err
}

// charge asks the payment provider, which declines the card.
func (s *shop) charge(ctx context.Context, order string) error {
	ctx, span := s.tracer.Start(ctx, "charge", trace.WithSpanKind(trace.SpanKindClient))
	defer span.End()
	err := errs.Wrap(ctx, errDeclined, "payment_declined", "charge "+order)
	errs.Record(span, err)
	return err
}

// sendReceipt renders a receipt through buggy code, under errs.Try, as every
// goroutine of the library runs user code.
func (s *shop) sendReceipt(ctx context.Context, order string) error {
	_, span := s.tracer.Start(ctx, "send-receipt", trace.WithAttributes(attribute.String("order.id", order)))
	defer span.End()
	err := errs.Try(func() error {
		lines := strings.Split(receiptTemplate, "\n")
		_ = lines[len(lines)] // a bug: one past the end
		return nil
	})
	errs.Record(span, err)
	return err
}

const receiptTemplate = "Thank you for your order.\nIt ships soon."

func dropTime(_ []string, a slog.Attr) slog.Attr {
	if a.Key == slog.TimeKey {
		return slog.Attr{}
	}
	return a
}

// lockedWriter lets the logger and the span exporter, on different
// goroutines, share one writer.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
