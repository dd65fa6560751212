package twophase_test

import (
	"context"
	"testing"

	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"

	"github.com/otelpatterns/otelpatterns/internal/telemetry/telemetrytest"
	"github.com/otelpatterns/otelpatterns/twophase"
)

func TestTelemetry(t *testing.T) {
	rec := telemetrytest.NewRecorders(t)
	w := newWorld(t)
	opts := []twophase.Option{twophase.WithTracerProvider(rec.TracerProvider), twophase.WithMeterProvider(rec.MeterProvider), twophase.WithPropagators(propagation.TraceContext{})}
	a, b := w.participant("a"), w.participant("b")
	ctx, req := rec.TracerProvider.Tracer("test").Start(context.Background(), "POST /transfer")

	// t1 commits after a retried Commit; t2 aborts on a no vote.
	c := w.coordinator(opts...)
	b.commitFails["t1"] = 1
	if d, err := c.Execute(ctx, "t1", a, b); d != twophase.Committed || err != nil {
		t.Fatalf("Execute = %v, %v", d, err)
	}
	w.resources["b"].noVote["t2"] = true
	if d, _ := c.Execute(ctx, "t2", a, b); d != twophase.Aborted {
		t.Fatalf("Execute = %v", d)
	}
	_ = c.Close(context.Background())
	// t3's coordinator dies after its commit decision; a new one recovers it.
	w.crashAt(0, 4, false, false) // prepare a, prepare b, then the first commit call
	dying := w.coordinator(opts...)
	_, _ = dying.Execute(ctx, "t3", a, b)
	_ = dying.Close(context.Background())
	req.End()
	w.crashAt(0, 0, false, false)
	r := w.coordinator(opts...)
	if reports, err := r.Recover(context.Background()); err != nil || len(reports) != 1 || reports[0].Decision != twophase.Committed {
		t.Fatalf("Recover = %+v, %v", reports, err)
	}
	w.askStatus(r, "t3")
	_ = r.Close(context.Background())

	emitted := telemetrytest.Collect(t, rec.Spans, rec.Reader)
	delete(emitted[telemetrytest.Span], "POST /transfer")
	telemetrytest.Check(t, "twophase", emitted)

	txs := rec.Ended("2pc.transaction")
	if len(txs) != 4 {
		t.Fatalf("%d transaction spans, want 4", len(txs))
	}
	begun, recovered := txs[2], txs[3]
	if begun.Parent().SpanID() != req.SpanContext().SpanID() {
		t.Fatal("the transaction's span is not a child of the caller's")
	}
	if links := recovered.Links(); len(links) != 1 || links[0].SpanContext.SpanID() != begun.SpanContext().SpanID() {
		t.Fatalf("the recovered transaction links to %v, want the span that began it", links)
	}
	if recovered.Parent().SpanID() != rec.Ended("2pc.recover")[0].SpanContext().SpanID() {
		t.Fatal("the recovered transaction is not a child of 2pc.recover")
	}
	if txs[0].Status().Code == codes.Error || txs[1].Status().Code != codes.Error {
		t.Fatal("the committed transaction is an error, or the aborted one is not")
	}
}
