package saga_test

import (
	"context"
	"errors"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"

	"github.com/otelpatterns/otelpatterns/internal/telemetry/telemetrytest"
	"github.com/otelpatterns/otelpatterns/journal"
	"github.com/otelpatterns/otelpatterns/saga"
)

func TestTelemetry(t *testing.T) {
	rec := telemetrytest.NewRecorders(t)
	opts := []saga.Option{saga.WithTracerProvider(rec.TracerProvider), saga.WithMeterProvider(rec.MeterProvider), saga.WithPropagators(propagation.TraceContext{})}
	log := memLog(t)
	ctx := context.Background()
	l := newLedger()
	steps := []saga.Step[order]{l.step("reserve", nil), l.step("charge", nil)}

	// A saga whose runner dies after its first step, under a request span.
	dying, err := saga.NewRunner(&crashLog{Log: log, atAppend: 4}, opts...)
	if err != nil {
		t.Fatal(err)
	}
	reqCtx, req := rec.TracerProvider.Tracer("test").Start(ctx, "POST /checkout")
	first := mustRegister(t, dying, "order", steps)
	if _, o, _ := first.Run(reqCtx, "o-1", order{}); o != saga.Pending {
		t.Fatalf("Run = %v, want Pending", o)
	}
	req.End()
	_ = dying.Close(ctx)

	// A new runner recovers it, and runs one that fails.
	r := newRunner(t, log, opts...)
	mustRegister(t, r, "order", steps)
	refund := mustRegister(t, r, "refund", []saga.Step[order]{l.step("reserve", nil), l.step("charge", errors.New("declined"))})
	if _, err := r.Recover(ctx); err != nil {
		t.Fatal(err)
	}
	if _, o, _ := refund.Run(ctx, "o-2", order{}); o != saga.Compensated {
		t.Fatalf("Run = %v, want Compensated", o)
	}
	stuck := mustRegister(t, r, "stuck", []saga.Step[order]{
		{Name: "charge", Action: noop, Compensate: func(context.Context, order) error { return errors.New("refund service down") }},
		{Name: "ship", Action: failing},
	})
	if _, o, _ := stuck.Run(ctx, "o-3", order{}); o != saga.Stuck {
		t.Fatalf("Run = %v, want Stuck", o)
	}
	emitted := telemetrytest.Collect(t, rec.Spans, rec.Reader)
	delete(emitted[telemetrytest.Span], "POST /checkout")
	telemetrytest.Check(t, "saga", emitted)

	// The recovered saga's span is a child of saga.recover and links to
	// the span that began the saga, in the request's trace.
	sagas := rec.Ended("saga order")
	if len(sagas) != 2 {
		t.Fatalf("%d saga order spans, want 2 (the first run, the recovery)", len(sagas))
	}
	began, resumed := sagas[0], sagas[1]
	if began.Parent().SpanID() != req.SpanContext().SpanID() {
		t.Fatal("the saga's span is not a child of the caller's")
	}
	recovery := rec.Ended("saga.recover")[0]
	if resumed.Parent().SpanID() != recovery.SpanContext().SpanID() {
		t.Fatal("the resumed saga's span is not a child of saga.recover")
	}
	if links := resumed.Links(); len(links) != 1 || links[0].SpanContext.SpanID() != began.SpanContext().SpanID() {
		t.Fatalf("the resumed saga's span links to %v, want the span that began it", links)
	}
	if attrs := telemetrytest.Attrs(resumed.Attributes()); attrs["otelpatterns.saga.outcome"] != attribute.StringValue("completed") {
		t.Fatalf("resumed saga attributes %v", attrs)
	}
	// Errors are where the failures were: the failed attempts, the sagas
	// that did not complete (the one whose runner died among them), and
	// the recovery and the step attempts that worked are not.
	wantError := map[string]bool{
		"saga.step charge refund": true, "saga refund refund": true,
		"saga.step ship stuck": true, "saga.compensate charge stuck": true, "saga stuck stuck": true,
	}
	for _, s := range rec.Spans.Ended() {
		name := s.Name() + " " + telemetrytest.Attrs(s.Attributes())["otelpatterns.saga.name"].AsString()
		want := wantError[name] || s.SpanContext().SpanID() == began.SpanContext().SpanID()
		if failed := s.Status().Code == codes.Error; failed != want {
			t.Errorf("span %q: status %v", name, s.Status())
		}
	}
}

func mustDef(t *testing.T, name string, steps []saga.Step[order]) *saga.Definition[order] {
	t.Helper()
	d, err := saga.New(name, 1, steps)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func mustRegister(t *testing.T, r *saga.Runner, name string, steps []saga.Step[order]) *saga.Saga[order] {
	t.Helper()
	s, err := saga.Register(r, mustDef(t, name, steps))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// pendingFails is a journal whose Pending fails.
type pendingFails struct{ journal.Log }

func (pendingFails) Pending(context.Context) ([]string, error) { return nil, errors.New("disk gone") }

// A Recover with nothing to recover emits no span; one that fails does.
func TestIdleRecoverIsNotTraced(t *testing.T) {
	rec := telemetrytest.NewRecorders(t)
	log := memLog(t)
	r := newRunner(t, log, saga.WithTracerProvider(rec.TracerProvider))
	if _, err := r.Recover(context.Background()); err != nil {
		t.Fatal(err)
	}
	if spans := rec.Ended("saga.recover"); len(spans) != 0 {
		t.Fatalf("%d saga.recover spans with nothing to recover, want none", len(spans))
	}
	failing := newRunner(t, pendingFails{log}, saga.WithTracerProvider(rec.TracerProvider))
	if _, err := failing.Recover(context.Background()); err == nil {
		t.Fatal("Recover over a failing journal succeeded")
	}
	if spans := rec.Ended("saga.recover"); len(spans) != 1 || spans[0].Status().Code != codes.Error {
		t.Fatalf("%d saga.recover spans for a failed Recover, want 1 with its error", len(spans))
	}
}
