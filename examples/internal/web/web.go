// Package web is what the examples' HTTP services share: a server on
// loopback whose every request gets a SERVER span that continues the
// caller's trace, and JSON in and out.
package web

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"

	"github.com/otelpatterns/otelpatterns/examples/internal/setup"
)

// Server is one service listening on loopback.
type Server struct {
	Name string
	URL  string // "http://127.0.0.1:port"
	srv  *http.Server
}

// Serve serves h as service name on addr ("127.0.0.1:0" for any free
// port). otelhttp makes a SERVER span named after the route for every
// request, continuing the trace context of its headers.
func Serve(tel *setup.Telemetry, name, addr string, h http.Handler) (*Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	handler := otelhttp.NewHandler(h, name,
		otelhttp.WithTracerProvider(tel.TracerProvider), otelhttp.WithMeterProvider(tel.MeterProvider),
		otelhttp.WithPropagators(tel.Propagators),
		otelhttp.WithSpanNameFormatter(func(_ string, r *http.Request) string {
			if r.Pattern == "" {
				return r.Method
			}
			return r.Pattern // "POST /checkout": the route, never the raw path
		}))
	s := &Server{Name: name, URL: "http://" + ln.Addr().String(),
		srv: &http.Server{Handler: handler, ReadHeaderTimeout: 5 * time.Second}}
	go func() { _ = s.srv.Serve(ln) }()
	return s, nil
}

// Close stops the server, letting the requests in flight finish until ctx
// ends.
func (s *Server) Close(ctx context.Context) error { return s.srv.Shutdown(ctx) }

// Client returns an HTTP client whose requests get CLIENT spans and carry
// the trace context.
func Client(tel *setup.Telemetry) *http.Client {
	return &http.Client{Transport: otelhttp.NewTransport(http.DefaultTransport,
		otelhttp.WithTracerProvider(tel.TracerProvider), otelhttp.WithMeterProvider(tel.MeterProvider),
		otelhttp.WithPropagators(tel.Propagators))}
}

// ReadJSON decodes a request's body, of at most 1 MiB.
func ReadJSON(r *http.Request, v any) error {
	return json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(v)
}

// WriteJSON answers with status and v as JSON.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// Problem is the body of every error answer.
type Problem struct {
	Error string `json:"error"`
}
