package twophase_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/otelpatterns/otelpatterns/internal/telemetry/telemetrytest"
	"github.com/otelpatterns/otelpatterns/journal"
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
	// t4's Commit fails past the phase-2 policy: the resolver finishes it.
	res := w.coordinator(append(opts, twophase.WithResolver(time.Millisecond, 5*time.Millisecond))...)
	b.commitFails["t4"] = 6 // 4 attempts, then 2 failed resolver rounds and 1 that succeeds
	if d, err := res.Execute(ctx, "t4", a, b); d != twophase.Committed || !errors.Is(err, twophase.ErrInDoubt) {
		t.Fatalf("Execute = %v, %v; want Committed, in doubt", d, err)
	}
	waitEnded(t, w.mem, "t4")
	_ = res.Close(context.Background())

	emitted := telemetrytest.Collect(t, rec.Spans, rec.Reader)
	delete(emitted[telemetrytest.Span], "POST /transfer")
	for kind, names := range leaseTelemetry(t) { // recorded apart: the span checks below see none of it
		for n := range names {
			if emitted[kind] == nil {
				emitted[kind] = map[string]bool{}
			}
			emitted[kind][n] = true
		}
	}
	telemetrytest.Check(t, "twophase", emitted)

	// Spans end when phase 2 does, on the coordinator's goroutines: find
	// them by transaction, not by order.
	txs := map[string][]sdktrace.ReadOnlySpan{}
	for _, s := range rec.Ended("2pc.transaction") {
		id := telemetrytest.Attrs(s.Attributes())["otelpatterns.twophase.transaction"].AsString()
		txs[id] = append(txs[id], s)
	}
	if len(txs["t1"]) != 1 || len(txs["t2"]) != 1 || len(txs["t3"]) != 2 || len(txs["t4"]) != 1 {
		t.Fatalf("transaction spans %v; want one for t1 and t2, two for t3", txs)
	}
	begun, recovered := txs["t3"][0], txs["t3"][1]
	if telemetrytest.Attrs(recovered.Attributes())["otelpatterns.twophase.recovered"].AsBool() != true {
		begun, recovered = recovered, begun
	}
	if begun.Parent().SpanID() != req.SpanContext().SpanID() {
		t.Fatal("the transaction's span is not a child of the caller's")
	}
	if links := recovered.Links(); len(links) != 1 || links[0].SpanContext.SpanID() != begun.SpanContext().SpanID() {
		t.Fatalf("the recovered transaction links to %v, want the span that began it", links)
	}
	if recovered.Parent().SpanID() != rec.Ended("2pc.recover")[0].SpanContext().SpanID() {
		t.Fatal("the recovered transaction is not a child of 2pc.recover")
	}
	// The resolver's rounds are roots, linked to the transaction's span,
	// which ended when its caller heard it was in doubt.
	rounds := rec.Ended("2pc.resolve")
	if len(rounds) != 3 {
		t.Fatalf("%d resolver rounds; want 3", len(rounds))
	}
	for i, round := range rounds {
		attrs := telemetrytest.Attrs(round.Attributes())
		if round.Parent().IsValid() || len(round.Links()) != 1 || round.Links()[0].SpanContext.SpanID() != txs["t4"][0].SpanContext().SpanID() ||
			attrs["otelpatterns.twophase.transaction"].AsString() != "t4" || attrs["otelpatterns.twophase.attempt"].AsInt64() != int64(i+1) {
			t.Fatalf("resolver round %d: parent %v, links %v, attributes %v", i+1, round.Parent(), round.Links(), attrs)
		}
		if (round.Status().Code == codes.Error) != (i < 2) {
			t.Fatalf("resolver round %d has status %v", i+1, round.Status())
		}
	}
	if txs["t1"][0].Status().Code == codes.Error || txs["t2"][0].Status().Code != codes.Error {
		t.Fatal("the committed transaction is an error, or the aborted one is not")
	}
}

// pendingFails is a journal whose Pending fails.
type pendingFails struct{ journal.Log }

func (pendingFails) Pending(context.Context) ([]string, error) { return nil, errors.New("disk gone") }

// A Recover with nothing to recover emits no span; one that fails does.
func TestIdleRecoverIsNotTraced(t *testing.T) {
	rec := telemetrytest.NewRecorders(t)
	log, err := journal.NewMemory()
	if err != nil {
		t.Fatal(err)
	}
	defer log.Close()
	for _, l := range []journal.Log{log, pendingFails{log}} {
		c, err := twophase.NewCoordinator(l, twophase.WithTracerProvider(rec.TracerProvider))
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.Recover(context.Background())
		c.Close(context.Background())
		spans := rec.Ended("2pc.recover")
		switch {
		case err == nil && len(spans) != 0:
			t.Fatalf("%d 2pc.recover spans with nothing to recover, want none", len(spans))
		case err != nil && (len(spans) != 1 || spans[0].Status().Code != codes.Error):
			t.Fatalf("%d 2pc.recover spans for a failed Recover, want 1 with its error", len(spans))
		}
	}
}
