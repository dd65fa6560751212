package saga_test

import (
	"context"
	"errors"
	"testing"
	"time"

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
	for kind, names := range leaseTelemetry(t) {
		for n := range names {
			if emitted[kind] == nil {
				emitted[kind] = map[string]bool{}
			}
			emitted[kind][n] = true
		}
	}
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

// leaseTelemetry makes a runner with leases claim an orphan, renew a live
// saga's lease, and lose one, and returns what it emitted (recorded apart,
// so that the checks of TestTelemetry's spans see none of it).
func leaseTelemetry(t *testing.T) telemetrytest.Emitted {
	t.Helper()
	rec := telemetrytest.NewRecorders(t)
	opts := []saga.Option{saga.WithTracerProvider(rec.TracerProvider), saga.WithMeterProvider(rec.MeterProvider)}
	const ttl = 30 * time.Millisecond
	ctx := context.Background()
	log := memLog(t)
	orphaned, err := saga.NewRunner(&crashLog{Log: log, atAppend: 2}, opts...)
	if err != nil {
		t.Fatal(err)
	}
	mustRegister(t, orphaned, "leased", []saga.Step[order]{{Name: "reserve", Action: noop}}).Run(ctx, "orphan", order{})
	_ = orphaned.Close(ctx)

	r := newRunner(t, log, append(opts, saga.WithLeases("replica", ttl))...)
	mustRegister(t, r, "leased", []saga.Step[order]{{Name: "reserve", Action: noop}})
	if reps, err := r.Recover(ctx); err != nil || len(reps) != 1 || reps[0].Outcome != saga.Completed {
		t.Fatalf("Recover of the orphan = %+v, %v; want it completed", reps, err)
	}
	slow := mustRegister(t, r, "slow", []saga.Step[order]{{Name: "nap", Action: func(ctx context.Context, o order) (order, error) {
		time.Sleep(3 * ttl) // across renewals
		return o, nil
	}}})
	if _, o, err := slow.Run(ctx, "renewed", order{}); o != saga.Completed {
		t.Fatalf("a saga across renewals = %v, %v", o, err)
	}

	losing := newRunner(t, lossy{log}, append(opts, saga.WithLeases("replica-2", ttl))...)
	hold := newGate()
	lost := mustRegister(t, losing, "leased", []saga.Step[order]{hold.step("hold")})
	if _, _, err := lost.Run(ctx, "lost", order{}); !errors.Is(err, saga.ErrLeaseLost) {
		t.Fatalf("Run of a saga whose lease is lost = %v, want ErrLeaseLost", err)
	}
	return telemetrytest.Collect(t, rec.Spans, rec.Reader)
}

// lossy is a journal that reports every lease lost at its renewal, as if
// another runner had taken them all.
type lossy struct{ *journal.Memory }

func (l lossy) Renew(_ context.Context, _ string, _ time.Duration, ids []string) ([]string, error) {
	return ids, nil
}
