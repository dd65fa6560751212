package console_test

import (
	"bytes"
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/goleak"

	"github.com/otelpatterns/otelpatterns/examples/internal/console"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestPrintsTreeWhenRootEnds(t *testing.T) {
	var out bytes.Buffer
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(console.New(&out, console.WithoutTimings())))
	defer func() { _ = tp.Shutdown(context.Background()) }()
	tracer := tp.Tracer("test")

	ctx, root := tracer.Start(context.Background(), "checkout")
	cctx, reserve := tracer.Start(ctx, "reserve", trace.WithAttributes(attribute.String("sku", "a")))
	_, inner := tracer.Start(cctx, "lock")
	inner.End()
	reserve.End()
	_, charge := tracer.Start(ctx, "charge", trace.WithSpanKind(trace.SpanKindClient))
	charge.SetStatus(codes.Error, "declined")
	charge.End()
	assert.Empty(t, out.String(), "nothing printed before the root ends")
	root.End()

	want := "trace " + root.SpanContext().TraceID().String() + "\n" +
		"└─ checkout\n" +
		"   ├─ reserve sku=a\n" +
		"   │  └─ lock\n" +
		"   └─ charge [client] ERROR \"declined\"\n"
	assert.Equal(t, want, out.String())
}

func TestShutdownPrintsUnfinishedTraces(t *testing.T) {
	var out bytes.Buffer
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(console.New(&out, console.WithoutTimings())))
	tracer := tp.Tracer("test")
	ctx, root := tracer.Start(context.Background(), "root")
	_, child := tracer.Start(ctx, "orphan")
	child.End()
	require.Empty(t, out.String())

	require.NoError(t, tp.Shutdown(context.Background()))
	assert.Contains(t, out.String(), "└─ orphan\n", "a span whose parent never ended is printed as a root")
	root.End()
}

func TestTimingsShown(t *testing.T) {
	var out bytes.Buffer
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(console.New(&out)))
	defer func() { _ = tp.Shutdown(context.Background()) }()
	_, span := tp.Tracer("test").Start(context.Background(), "op")
	span.End()
	assert.Regexp(t, `└─ op [0-9.]+(ns|µs|ms|s)\n`, out.String())
}
