package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/otelpatterns/otelpatterns/examples/internal/web"
	"github.com/otelpatterns/otelpatterns/retry"
	"github.com/otelpatterns/otelpatterns/saga"
)

// The headers that carry a saga step to the services, so that they can
// de-duplicate with a saga.Barrier. The W3C traceparent and baggage
// headers travel beside them.
const (
	headerSagaID = "Saga-Id"
	headerStep   = "Saga-Step"
)

// withStep puts the saga step of the request's headers into its context.
func withStep(r *http.Request) (context.Context, saga.StepInfo) {
	info := saga.StepInfo{ID: r.Header.Get(headerSagaID), Step: r.Header.Get(headerStep)}
	return saga.ContextWithStep(r.Context(), info), info
}

// httpError is a downstream's answer that was not a success.
type httpError struct {
	Service string
	Status  int
	Message string
}

func (e *httpError) Error() string {
	return fmt.Sprintf("%s: %d %s", e.Service, e.Status, e.Message)
}

// ErrorType names the failure by its status, a bounded set.
func (e *httpError) ErrorType() string { return fmt.Sprintf("http_%d", e.Status) }

// downstream is the gateway's client of one service: every call goes
// through a retry policy with that service's own circuit breaker and rate
// limit, and its HTTP transport makes CLIENT spans and injects the trace
// context.
type downstream struct {
	name   string
	base   string
	hc     *http.Client
	policy *retry.Policy
}

func (d *downstream) call(ctx context.Context, method, path string, in, out any) error {
	var body []byte
	if in != nil {
		var err error
		if body, err = json.Marshal(in); err != nil {
			return err
		}
	}
	return retry.Run(ctx, d.policy, func(ctx context.Context) error {
		req, err := http.NewRequestWithContext(ctx, method, d.base+path, bytes.NewReader(body))
		if err != nil {
			return retry.Permanent(err)
		}
		req.Header.Set("Content-Type", "application/json")
		if info, ok := saga.StepFromContext(ctx); ok {
			req.Header.Set(headerSagaID, info.ID)
			req.Header.Set(headerStep, info.Step)
		}
		resp, err := d.hc.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		data, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		if resp.StatusCode >= 300 {
			var p web.Problem
			_ = json.Unmarshal(data, &p)
			herr := &httpError{Service: d.name, Status: resp.StatusCode, Message: p.Error}
			if resp.StatusCode < 500 && resp.StatusCode != http.StatusTooManyRequests {
				return retry.Permanent(herr) // the service's answer: retrying changes nothing
			}
			return herr
		}
		if out != nil {
			return json.Unmarshal(data, out)
		}
		return nil
	})
}

// unwrapHTTP returns the downstream's answer inside a retry error, if any.
func unwrapHTTP(err error) (*httpError, bool) {
	var herr *httpError
	ok := errors.As(err, &herr)
	return herr, ok
}
