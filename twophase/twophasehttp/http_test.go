package twophasehttp_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/goleak"

	"github.com/otelpatterns/otelpatterns/internal/telemetry/telemetrytest"
	"github.com/otelpatterns/otelpatterns/journal"
	"github.com/otelpatterns/otelpatterns/retry"
	"github.com/otelpatterns/otelpatterns/twophase"
	"github.com/otelpatterns/otelpatterns/twophase/twophasehttp"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// account is a resource that refuses transactions it is told to.
type account struct{ refuse map[string]bool }

func (a account) Prepare(_ context.Context, tx string) error {
	if a.refuse[tx] {
		return errors.New("insufficient funds")
	}
	return nil
}
func (a account) Commit(_ context.Context, tx string) error {
	if a.refuse["commit "+tx] {
		return errors.New("ledger locked")
	}
	return nil
}
func (account) Abort(context.Context, string) error { return nil }

type fixture struct {
	rec    telemetrytest.Recorders
	client *twophasehttp.Client
	local  *twophase.Local
	hc     *http.Client
	opts   []twophasehttp.Option
}

func newFixture(t *testing.T, refuse ...string) *fixture {
	t.Helper()
	f := &fixture{rec: telemetrytest.NewRecorders(t)}
	acct := account{refuse: map[string]bool{}}
	for _, tx := range refuse {
		acct.refuse[tx] = true
	}
	var err error
	if f.local, err = twophase.NewLocal("ledger-a", acct); err != nil {
		t.Fatal(err)
	}
	tr := &http.Transport{}
	f.hc = &http.Client{Transport: tr}
	t.Cleanup(tr.CloseIdleConnections)
	f.opts = []twophasehttp.Option{
		twophasehttp.WithTracerProvider(f.rec.TracerProvider), twophasehttp.WithMeterProvider(f.rec.MeterProvider),
		twophasehttp.WithPropagators(propagation.TraceContext{}), twophasehttp.WithHTTPClient(f.hc),
	}
	h, err := twophasehttp.Handler(f.local, f.opts...)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	if f.client, err = twophasehttp.NewClient("ledger-a", srv.URL, f.opts...); err != nil {
		t.Fatal(err)
	}
	return f
}

func TestVotesAndAcknowledgements(t *testing.T) {
	f := newFixture(t, "refused")
	ctx := context.Background()
	if err := f.client.Prepare(ctx, "t1"); err != nil {
		t.Fatalf("Prepare = %v", err)
	}
	if err := f.client.Commit(ctx, "t1"); err != nil {
		t.Fatalf("Commit = %v", err)
	}
	err := f.client.Prepare(ctx, "refused")
	if !errors.Is(err, twophase.ErrVoteNo) || errors.Is(err, twophase.ErrUnreachable) {
		t.Fatalf("Prepare of a refused transaction = %v, want a no vote", err)
	}
	if err := f.client.Commit(ctx, "never"); !errors.Is(err, twophase.ErrProtocol) {
		t.Fatalf("Commit without Prepare = %v, want ErrProtocol", err)
	}
}

func TestUnreachableIsNotANoVote(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close() // nothing listens there now
	fast, _ := retry.New(retry.WithMaxAttempts(2), retry.WithConstantBackoff(time.Millisecond))
	c, err := twophasehttp.NewClient("gone", url, twophasehttp.WithRetry(fast), twophasehttp.WithTimeout(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	err = c.Prepare(context.Background(), "t1")
	if !errors.Is(err, twophase.ErrUnreachable) || errors.Is(err, twophase.ErrVoteNo) {
		t.Fatalf("Prepare of a participant that is down = %v, want ErrUnreachable", err)
	}
}

func TestOneTraceAcrossProcesses(t *testing.T) {
	f := newFixture(t, "commit t2")
	log, _ := journal.NewMemory()
	c, err := twophase.NewCoordinator(log, twophase.WithTracerProvider(f.rec.TracerProvider), twophase.WithPropagators(propagation.TraceContext{}))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(context.Background())
	ctx, root := f.rec.TracerProvider.Tracer("test").Start(context.Background(), "POST /transfer")
	if d, err := c.Execute(ctx, "t1", f.client); d != twophase.Committed || err != nil {
		t.Fatalf("Execute = %v, %v", d, err)
	}
	root.End()
	if err := c.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	// The participant resolves through the coordinator's Status, over HTTP.
	status, err := twophasehttp.StatusHandler(c, f.opts...)
	if err != nil {
		t.Fatal(err)
	}
	ssrv := httptest.NewServer(status)
	defer ssrv.Close()
	sc, err := twophasehttp.NewStatusClient(ssrv.URL, f.opts...)
	if err != nil {
		t.Fatal(err)
	}
	if d, err := sc.Status(ctx, "t1"); d != twophase.Committed || err != nil {
		t.Fatalf("Status over HTTP = %v, %v", d, err)
	}
	// A participant that fails: a 503, which the client retries.
	_ = f.client.Prepare(ctx, "t2")
	if err := f.client.Commit(ctx, "t2"); err == nil || errors.Is(err, twophase.ErrVoteNo) {
		t.Fatalf("Commit that fails on the server = %v", err)
	}
	byKind := func(name string, kind trace.SpanKind) []sdktrace.ReadOnlySpan {
		var out []sdktrace.ReadOnlySpan
		for _, sp := range f.rec.Ended(name) {
			if sp.SpanKind() == kind {
				out = append(out, sp)
			}
		}
		return out
	}
	served, sent := byKind("POST /prepare", trace.SpanKindServer), byKind("POST /prepare", trace.SpanKindClient)
	if len(served) != 2 || len(sent) != 2 { // the coordinator's, then the test's own for t2
		t.Fatalf("%d SERVER and %d CLIENT POST /prepare spans, want 2 of each", len(served), len(sent))
	}
	if served[0].SpanContext().TraceID() != root.SpanContext().TraceID() {
		t.Fatal("the participant's span is not in the coordinator's trace")
	}
	// 2pc.call prepare -> the CLIENT span of its request -> the SERVER span.
	calls := f.rec.Ended("2pc.call prepare")
	if len(calls) != 1 || sent[0].Parent().SpanID() != calls[0].SpanContext().SpanID() || served[0].Parent().SpanID() != sent[0].SpanContext().SpanID() {
		t.Fatal("the request's spans are not children of the coordinator's call and of its CLIENT span")
	}
	if a := telemetrytest.Attrs(served[0].Attributes()); a["url.scheme"].AsString() != "http" || a["http.route"].AsString() != "/prepare" {
		t.Fatalf("the SERVER span's attributes %v lack url.scheme or http.route", a)
	}
	if st := byKind("GET /status", trace.SpanKindServer); len(st) != 1 || st[0].SpanContext().TraceID() != root.SpanContext().TraceID() {
		t.Fatal("the Status request did not carry the caller's trace")
	}
	// The failing commit: three requests, resends counted from the second;
	// each 503 an error whose type is the status code.
	commits := byKind("POST /commit", trace.SpanKindClient)
	if len(commits) < 3 {
		t.Fatalf("%d CLIENT POST /commit spans, want the first and two resends", len(commits))
	}
	for i, sp := range commits[len(commits)-3:] {
		a := telemetrytest.Attrs(sp.Attributes())
		resend, has := a["http.request.resend_count"]
		if (i == 0) == has || (has && resend.AsInt64() != int64(i)) {
			t.Fatalf("request %d of the commit has resend_count %v (set %v); want it absent on the first, then 1, 2", i+1, resend.AsInt64(), has)
		}
	}
	for _, sp := range byKind("POST /commit", trace.SpanKindServer) {
		if a := telemetrytest.Attrs(sp.Attributes()); a["http.response.status_code"].AsInt64() == 503 && (a["error.type"].AsString() != "503" || sp.Status().Code != codes.Error) {
			t.Fatalf("a 503's SERVER span has error.type %q, status %v; want \"503\", Error", a["error.type"].AsString(), sp.Status().Code)
		}
	}
	// Behind middleware that made the SERVER span already (as otelhttp
	// does), the handler's span is an INTERNAL child of it.
	h, err := twophasehttp.Handler(f.local, f.opts...)
	if err != nil {
		t.Fatal(err)
	}
	wrapped := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := propagation.TraceContext{}.Extract(r.Context(), propagation.HeaderCarrier(r.Header))
		ctx, span := f.rec.TracerProvider.Tracer("middleware").Start(ctx, "middleware", trace.WithSpanKind(trace.SpanKindServer))
		defer span.End()
		h.ServeHTTP(w, r.WithContext(ctx))
	}))
	defer wrapped.Close()
	behind, err := twophasehttp.NewClient("ledger-a", wrapped.URL, f.opts...)
	if err != nil {
		t.Fatal(err)
	}
	if err := behind.Prepare(ctx, "t3"); err != nil {
		t.Fatal(err)
	}
	inner, outer := f.rec.Ended("2pc.serve prepare"), f.rec.Ended("middleware")
	if len(inner) != 1 || inner[0].SpanKind() != trace.SpanKindInternal || len(outer) != 1 || inner[0].Parent().SpanID() != outer[0].SpanContext().SpanID() {
		t.Fatal("behind HTTP middleware, the handler's span is not an INTERNAL child of the middleware's SERVER span")
	}
	emitted := telemetrytest.Collect(t, f.rec.Spans, nil)
	for name := range emitted[telemetrytest.Span] {
		ours := strings.HasPrefix(name, "POST /") || strings.HasPrefix(name, "GET /") || strings.HasPrefix(name, "2pc.serve ")
		if name == "POST /transfer" || !ours {
			delete(emitted[telemetrytest.Span], name)
		}
	}
	for _, k := range []string{"otelpatterns.twophase.transaction", "otelpatterns.twophase.participants", "otelpatterns.twophase.vote",
		"otelpatterns.twophase.attempt", "otelpatterns.twophase.decision"} {
		delete(emitted[telemetrytest.SpanAttribute], k) // the coordinator's, listed under twophase
	}
	telemetrytest.Check(t, "twophase/twophasehttp", emitted)
}

func TestBadInput(t *testing.T) {
	if _, err := twophasehttp.Handler(nil); err == nil {
		t.Error("Handler(nil) succeeded")
	}
	if _, err := twophasehttp.NewClient("a", "not a url"); err == nil {
		t.Error("NewClient with a bad URL succeeded")
	}
	if _, err := twophasehttp.NewClient("", "http://x"); err == nil {
		t.Error("NewClient without a name succeeded")
	}
	if _, err := twophasehttp.NewClient("a", "http://x", twophasehttp.WithTimeout(0)); err == nil {
		t.Error("a zero timeout was accepted")
	}
}

// Status of an ID that no coordinator began is a 404, which the client
// reads as twophase.ErrUnknown at once, without retrying.
func TestStatusOfAnUnknownID(t *testing.T) {
	f := newFixture(t)
	log, _ := journal.NewMemory()
	c, err := twophase.NewCoordinator(log)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(context.Background())
	status, err := twophasehttp.StatusHandler(c, f.opts...)
	if err != nil {
		t.Fatal(err)
	}
	var requests atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		status.ServeHTTP(w, r)
	}))
	defer srv.Close()
	sc, err := twophasehttp.NewStatusClient(srv.URL, f.opts...)
	if err != nil {
		t.Fatal(err)
	}
	d, err := sc.Status(context.Background(), "never-begun")
	if d != twophase.Pending || !errors.Is(err, twophase.ErrUnknown) || requests.Load() != 1 {
		t.Fatalf("Status = %v, %v after %d requests; want Pending, ErrUnknown, 1", d, err, requests.Load())
	}
	if p, _ := log.Pending(context.Background()); len(p) != 0 {
		t.Fatalf("Status wrote to the journal: %q", p)
	}
}
