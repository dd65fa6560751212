package twophasehttp

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/otelpatterns/otelpatterns/internal/telemetry"
	"github.com/otelpatterns/otelpatterns/twophase"
)

// The paths a Handler serves, under whatever prefix it is mounted at.
const (
	PathPrepare = "/prepare"
	PathCommit  = "/commit"
	PathAbort   = "/abort"
	PathStatus  = "/status"
)

// The names this package emits; README.md's Telemetry reference lists them.
const (
	spanServe      = "2pc.serve " // + the operation
	keyParticipant = attribute.Key(telemetry.Prefix + "twophase.participant")
)

// ScopeName is the instrumentation scope of the package's telemetry.
const ScopeName = "github.com/otelpatterns/otelpatterns/twophase/twophasehttp"

// request is the body of a participant call.
type request struct {
	Tx string `json:"tx"`
}

// answer is the body of every response.
type answer struct {
	Tx       string `json:"tx,omitempty"`
	Decision string `json:"decision,omitempty"`
	Error    string `json:"error,omitempty"`
	Vote     string `json:"vote,omitempty"` // "no" on a refused Prepare
}

// server is what Handler and StatusHandler share: the span of each request,
// under the caller's trace context from the headers.
type server struct {
	tel  *telemetry.Telemetry
	prop propagation.TextMapPropagator
}

func newServer(opts []Option) (*server, error) {
	cfg, err := newConfig(opts)
	if err != nil {
		return nil, err
	}
	tel := telemetry.New(ScopeName, cfg.tel)
	return &server{tel: tel, prop: tel.Propagators}, nil
}

// serve runs fn for one request under a span, and writes its answer with
// status. The span is the request's SERVER span, continuing the caller's
// trace from the headers and named "{method} {route}" as the HTTP
// conventions ask; or, when HTTP middleware such as otelhttp has made that
// span already, an INTERNAL child of it, named "2pc.serve {op}". A 5xx
// answer is an error, whose error.type is the status code; a 4xx is the
// caller's, and leaves the span's status unset.
func (s *server) serve(w http.ResponseWriter, r *http.Request, op, route string, attrs []attribute.KeyValue, fn func(ctx context.Context) (int, answer)) {
	ctx, kind, name := r.Context(), trace.SpanKindInternal, spanServe+op
	if sc := trace.SpanContextFromContext(ctx); !sc.IsValid() || sc.IsRemote() {
		ctx = s.prop.Extract(ctx, propagation.HeaderCarrier(r.Header))
		kind, name = trace.SpanKindServer, r.Method+" "+route
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	ctx, span := s.tel.Tracer.Start(ctx, name, trace.WithSpanKind(kind),
		trace.WithAttributes(attrs...),
		trace.WithAttributes(semconv.HTTPRequestMethodKey.String(r.Method), semconv.URLPath(r.URL.Path),
			semconv.URLScheme(scheme), semconv.HTTPRoute(route)))
	defer span.End()
	status, body := fn(ctx)
	span.SetAttributes(semconv.HTTPResponseStatusCode(status))
	if status >= 500 {
		span.SetAttributes(semconv.ErrorTypeKey.String(strconv.Itoa(status)))
		span.SetStatus(codes.Error, body.Error)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(body)
}

// Handler serves p to coordinators: POST PathPrepare, PathCommit and
// PathAbort, each with a JSON body {"tx": ID}. It answers 200 for yes and
// for an acknowledgement, 409 for a no vote, 422 for a call that
// two-phase commit never makes, and 503 for any other failure, which the
// client retries. Each request gets a SERVER span that continues the
// coordinator's trace.
func Handler(p twophase.Participant, opts ...Option) (http.Handler, error) {
	if p == nil {
		return nil, errors.New("twophasehttp: Handler: the participant is nil")
	}
	s, err := newServer(opts)
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	attrs := []attribute.KeyValue{keyParticipant.String(p.Name())}
	for path, call := range map[string]func(context.Context, string) error{
		PathPrepare: p.Prepare, PathCommit: p.Commit, PathAbort: p.Abort,
	} {
		op := path[1:]
		mux.HandleFunc("POST "+path, func(w http.ResponseWriter, r *http.Request) {
			s.serve(w, r, op, path, attrs, func(ctx context.Context) (int, answer) {
				var req request
				if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4096)).Decode(&req); err != nil || req.Tx == "" {
					return http.StatusBadRequest, answer{Error: "the body must be {\"tx\": ID}"}
				}
				err := call(ctx, req.Tx)
				switch {
				case err == nil:
					return http.StatusOK, answer{Tx: req.Tx}
				case errors.Is(err, twophase.ErrVoteNo):
					return http.StatusConflict, answer{Tx: req.Tx, Vote: "no", Error: err.Error()}
				case errors.Is(err, twophase.ErrProtocol):
					return http.StatusUnprocessableEntity, answer{Tx: req.Tx, Error: err.Error()}
				default:
					return http.StatusServiceUnavailable, answer{Tx: req.Tx, Error: err.Error()}
				}
			})
		})
	}
	return mux, nil
}

// StatusSource is what StatusHandler asks: a Coordinator.
type StatusSource interface {
	Status(ctx context.Context, txID string) (twophase.Decision, error)
}

// StatusHandler serves a coordinator's Status to participants in doubt:
// GET PathStatus?tx=ID answers {"tx": ID, "decision": "committed"} (or
// "aborted", "pending"); 404 for an ID that no coordinator on its journal
// began (twophase.ErrUnknown), 410 for one forgotten, 503 otherwise.
func StatusHandler(c StatusSource, opts ...Option) (http.Handler, error) {
	if c == nil {
		return nil, errors.New("twophasehttp: StatusHandler: the coordinator is nil")
	}
	s, err := newServer(opts)
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+PathStatus, func(w http.ResponseWriter, r *http.Request) {
		s.serve(w, r, "status", PathStatus, nil, func(ctx context.Context) (int, answer) {
			tx := r.URL.Query().Get("tx")
			if tx == "" {
				return http.StatusBadRequest, answer{Error: "missing ?tx=ID"}
			}
			d, err := c.Status(ctx, tx)
			switch {
			case errors.Is(err, twophase.ErrUnknown):
				return http.StatusNotFound, answer{Tx: tx, Error: err.Error()}
			case errors.Is(err, twophase.ErrForgotten):
				return http.StatusGone, answer{Tx: tx, Error: err.Error()}
			case err != nil:
				return http.StatusServiceUnavailable, answer{Tx: tx, Error: err.Error()}
			}
			return http.StatusOK, answer{Tx: tx, Decision: d.String()}
		})
	})
	return mux, nil
}
