package errs_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/otelpatterns/otelpatterns/errs"
)

var errDeclined = errors.New("card declined")

func ExampleWrap() {
	ctx := context.Background()
	charge := func() error { return errDeclined }

	err := errs.Wrap(ctx, charge(), "payment_declined", "charge order 42")
	fmt.Println(err)
	fmt.Println(errors.Is(err, errDeclined))
	fmt.Println(errs.Code(fmt.Errorf("checkout: %w", err)))
	fmt.Println(errs.Wrap(ctx, nil, "payment_declined", "charge order 42") == nil)
	// Output:
	// charge order 42: card declined
	// true
	// payment_declined
	// true
}

func ExampleNew() {
	err := errs.New(context.Background(), "stock_unavailable", "reserve 3 of sku-1")
	var te *errs.TracedError
	if errors.As(err, &te) {
		fmt.Println(te.Code, "|", te.Message, "|", te.TraceID.IsValid())
	}
	// Output: stock_unavailable | reserve 3 of sku-1 | false
}

func ExampleCode() {
	err := fmt.Errorf("handler: %w", errors.Join(
		io.EOF,
		errs.New(context.Background(), "timeout", "call inventory"),
	))
	switch errs.Code(err) {
	case "timeout":
		fmt.Println("retry later")
	default:
		fmt.Println("give up")
	}
	// Output: retry later
}

func ExampleTracedError_LogValue() {
	logger := slog.New(slog.NewTextHandler(os.Stdout, &slog.HandlerOptions{
		ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey {
				return slog.Attr{} // keep the output stable
			}
			return a
		},
	}))
	err := errs.Wrap(context.Background(), errDeclined, "payment_declined", "charge")
	logger.Error("checkout failed", "err", err)
	// Output: level=ERROR msg="checkout failed" err.msg="charge: card declined" err.code=payment_declined
}

func ExampleRecord() {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	defer func() { _ = tp.Shutdown(context.Background()) }()

	ctx, span := tp.Tracer("shop").Start(context.Background(), "checkout")
	err := errs.Wrap(ctx, errDeclined, "payment_declined", "charge")
	errs.Record(span, err) // once, where the operation gives up
	span.End()

	s := rec.Ended()[0]
	fmt.Println(s.Status().Code, s.Status().Description)
	for _, kv := range s.Attributes() {
		fmt.Printf("%s=%s\n", kv.Key, kv.Value.String())
	}
	// Output:
	// Error charge: card declined
	// error.type=payment_declined
}

func ExampleErrorType() {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	fmt.Println(errs.ErrorType(ctx.Err()).Value.AsString())
	fmt.Println(errs.ErrorType(fmt.Errorf("wait: %w", context.DeadlineExceeded)).Value.AsString())
	// Output:
	// context.Canceled
	// context.DeadlineExceeded
}

func ExampleTry() {
	process := func(item string) error {
		if item == "" {
			panic("empty item")
		}
		return nil
	}

	err := errs.Try(func() error { return process("") })
	var p *errs.PanicError
	fmt.Println(err, errors.As(err, &p), errs.Code(err))
	// Output: panic: empty item true panic
}

func ExampleCollector() {
	var c errs.Collector
	done := make(chan struct{})
	for _, sku := range []string{"a", "b", "c"} {
		go func() {
			defer func() { done <- struct{}{} }()
			if sku == "b" {
				c.Add(fmt.Errorf("reserve %s: %w", sku, io.ErrUnexpectedEOF))
			}
		}()
	}
	for range 3 {
		<-done
	}
	fmt.Println(c.Err(), errors.Is(c.Err(), io.ErrUnexpectedEOF))
	// Output: reserve b: unexpected EOF true
}
