package twophasehttp

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/otelpatterns/otelpatterns/errs"
	"github.com/otelpatterns/otelpatterns/internal/retryhook"
	"github.com/otelpatterns/otelpatterns/internal/telemetry"
	"github.com/otelpatterns/otelpatterns/retry"
	"github.com/otelpatterns/otelpatterns/twophase"
)

// Client is a Participant served by a Handler at baseURL.
type Client struct {
	name string
	endpoint
}

var _ twophase.Participant = (*Client)(nil)

// NewClient returns the participant named name, served at baseURL (such
// as "http://ledger-a:8080/2pc").
func NewClient(name, baseURL string, opts ...Option) (*Client, error) {
	if name == "" {
		return nil, errors.New("twophasehttp: NewClient: the participant needs a name")
	}
	e, err := newEndpoint(baseURL, opts)
	if err != nil {
		return nil, fmt.Errorf("twophasehttp: NewClient(%q): %w", name, err)
	}
	return &Client{name: name, endpoint: e}, nil
}

// Name implements twophase.Participant.
func (c *Client) Name() string { return c.name }

// Prepare implements twophase.Participant. A 409 is a no vote (an error
// matching twophase.ErrVoteNo); no answer at all is twophase.ErrUnreachable.
func (c *Client) Prepare(ctx context.Context, txID string) error {
	return c.call(ctx, PathPrepare, txID)
}

// Commit implements twophase.Participant.
func (c *Client) Commit(ctx context.Context, txID string) error { return c.call(ctx, PathCommit, txID) }

// Abort implements twophase.Participant.
func (c *Client) Abort(ctx context.Context, txID string) error { return c.call(ctx, PathAbort, txID) }

func (c *Client) call(ctx context.Context, path, txID string) error {
	body, _ := json.Marshal(request{Tx: txID})
	resends := -1
	err := retryhook.RunUntraced(ctx, c.cfg.retry, func(ctx context.Context) error {
		resends++
		ans, status, err := c.do(ctx, http.MethodPost, path, "", body, resends)
		switch {
		case err != nil:
			return fmt.Errorf("%w: %s%s: %w", twophase.ErrUnreachable, c.name, path, err)
		case status == http.StatusOK:
			return nil
		case status == http.StatusConflict:
			return retry.Permanent(remote(twophase.ErrVoteNo, c.name, ans.Error))
		case status == http.StatusUnprocessableEntity:
			return retry.Permanent(remote(twophase.ErrProtocol, c.name, ans.Error))
		case status >= 500:
			return fmt.Errorf("%s%s: %d %s", c.name, path, status, ans.Error)
		default:
			return retry.Permanent(fmt.Errorf("%s%s: unexpected %d %s", c.name, path, status, ans.Error))
		}
	})
	// A participant's own answer (a no vote, a refusal) is the error, as
	// it said it, without the retry's account around it.
	var re *remoteError
	if errors.As(err, &re) {
		return re
	}
	return err
}

// remoteError is an error that a server sent as text, kept as it was
// written; it matches its kind.
type remoteError struct {
	kind error
	text string
}

func (e *remoteError) Error() string        { return e.text }
func (e *remoteError) Is(target error) bool { return target == e.kind }

// remote is the error of kind that participant name answered with text:
// the text itself when it says its kind already (as Local's errors do),
// or else prefixed with the kind and the name.
func remote(kind error, name, text string) error {
	if !strings.HasPrefix(text, kind.Error()) {
		text = fmt.Sprintf("%v: %s: %s", kind, name, text)
	}
	return &remoteError{kind: kind, text: text}
}

// endpoint is what Client and StatusClient share: the server's address,
// and requests that each get a CLIENT span, whose trace context they carry
// in their headers.
type endpoint struct {
	base string
	host string
	port int
	cfg  *config
	tel  *telemetry.Telemetry
}

func newEndpoint(baseURL string, opts []Option) (endpoint, error) {
	u, err := url.Parse(baseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return endpoint{}, fmt.Errorf("%q is not an http(s) URL", baseURL)
	}
	cfg, err := newConfig(opts)
	if err != nil {
		return endpoint{}, err
	}
	port := 80
	if u.Scheme == "https" {
		port = 443
	}
	if p, err := strconv.Atoi(u.Port()); err == nil {
		port = p
	}
	return endpoint{
		base: strings.TrimSuffix(baseURL, "/"), host: u.Hostname(), port: port,
		cfg: cfg, tel: telemetry.New(ScopeName, cfg.tel),
	}, nil
}

// do sends one request to path, with query, within the client's timeout,
// and decodes the answer. Its CLIENT span follows the HTTP conventions:
// named "{method} {path}", with http.request.resend_count on every request
// after the first of a call.
func (e *endpoint) do(ctx context.Context, method, path, query string, body []byte, resends int) (ans answer, status int, err error) {
	target := e.base + path + query
	ctx, span := e.tel.Tracer.Start(ctx, method+" "+path, trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(semconv.HTTPRequestMethodKey.String(method), semconv.URLFull(target), semconv.URLTemplate(path),
			semconv.ServerAddress(e.host), semconv.ServerPort(e.port)))
	if resends > 0 {
		span.SetAttributes(semconv.HTTPRequestResendCount(resends))
	}
	defer func() {
		if status != 0 {
			span.SetAttributes(semconv.HTTPResponseStatusCode(status))
		}
		switch {
		case err != nil:
			errs.Record(span, err)
		case status >= 400:
			span.SetAttributes(semconv.ErrorTypeKey.String(strconv.Itoa(status)))
			span.SetStatus(codes.Error, ans.Error)
		}
		span.End()
	}()
	ctx, cancel := context.WithTimeout(ctx, e.cfg.timeout)
	defer cancel()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, target, rd)
	if err != nil {
		return answer{}, 0, retry.Permanent(err)
	}
	req.Header.Set("Content-Type", "application/json")
	e.tel.Propagators.Inject(ctx, propagation.HeaderCarrier(req.Header))
	resp, err := e.cfg.client.Do(req)
	if err != nil {
		return answer{}, 0, err
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(&ans); err != nil && resp.StatusCode == http.StatusOK {
		return answer{}, resp.StatusCode, fmt.Errorf("unreadable answer: %w", err)
	}
	return ans, resp.StatusCode, nil
}

// StatusClient asks a coordinator served by StatusHandler for decisions:
// its Status is a twophase.StatusFunc, for Local.Resolve.
type StatusClient struct{ endpoint }

// NewStatusClient returns a client of the StatusHandler at baseURL.
func NewStatusClient(baseURL string, opts ...Option) (*StatusClient, error) {
	e, err := newEndpoint(baseURL, opts)
	if err != nil {
		return nil, fmt.Errorf("twophasehttp: NewStatusClient: %w", err)
	}
	return &StatusClient{e}, nil
}

// Status asks the coordinator for txID's decision. An ID that the
// coordinator's journal never held matches twophase.ErrUnknown, and a
// forgotten one twophase.ErrForgotten; neither is retried.
func (s *StatusClient) Status(ctx context.Context, txID string) (twophase.Decision, error) {
	var d twophase.Decision
	resends := -1
	err := retryhook.RunUntraced(ctx, s.cfg.retry, func(ctx context.Context) error {
		resends++
		ans, status, err := s.do(ctx, http.MethodGet, PathStatus, "?tx="+url.QueryEscape(txID), nil, resends)
		switch {
		case err != nil:
			return fmt.Errorf("%w: coordinator: %w", twophase.ErrUnreachable, err)
		case status == http.StatusNotFound && ans.Tx != "": // StatusHandler's, not a proxy's
			return retry.Permanent(remote(twophase.ErrUnknown, "coordinator", ans.Error))
		case status == http.StatusGone:
			return retry.Permanent(remote(twophase.ErrForgotten, "coordinator", ans.Error))
		case status != http.StatusOK:
			return fmt.Errorf("coordinator: %d %s", status, ans.Error)
		}
		d, err = twophase.ParseDecision(ans.Decision)
		return retry.Permanent(err)
	})
	var re *remoteError
	if errors.As(err, &re) {
		return twophase.Pending, re
	}
	return d, err
}
