package errs_test

import (
	"context"
	"io"
	"testing"

	"go.opentelemetry.io/otel/trace"

	"github.com/otelpatterns/otelpatterns/errs"
)

// The allocation budgets of the hot paths. Counts are exact and do not depend
// on the machine's speed, so they are safe to assert in a test.
func TestAllocationBudgets(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector changes allocation counts")
	}
	notRecording := trace.SpanFromContext(context.Background())
	if n := testing.AllocsPerRun(100, func() { errs.Record(notRecording, io.EOF) }); n != 0 {
		t.Errorf("Record on a span that is not recording: %v allocs, want 0", n)
	}

	tracer, _ := recording(t)
	ctx, span := tracer.Start(context.Background(), "op")
	defer span.End()
	if n := testing.AllocsPerRun(100, func() { sink = errs.Wrap(ctx, io.EOF, "read", "read header") }); n > 2 {
		t.Errorf("Wrap under a recording span: %v allocs, want at most 2", n)
	}
}
