package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/otelpatterns/otelpatterns/errs"
	"github.com/otelpatterns/otelpatterns/examples/internal/setup"
	"github.com/otelpatterns/otelpatterns/examples/internal/web"
	"github.com/otelpatterns/otelpatterns/journal"
	"github.com/otelpatterns/otelpatterns/retry"
	"github.com/otelpatterns/otelpatterns/twophase"
	"github.com/otelpatterns/otelpatterns/twophase/twophasehttp"
)

// accountRef names an account of a ledger.
type accountRef struct {
	Ledger  string `json:"ledger"`
	Account string `json:"account"`
}

// transferRequest is the body of POST /transfers.
type transferRequest struct {
	ID     string     `json:"id"`
	From   accountRef `json:"from"`
	To     accountRef `json:"to"`
	Amount int        `json:"amount"`
}

// transferResponse is its answer.
type transferResponse struct {
	ID       string `json:"id"`
	Decision string `json:"decision"`
	Error    string `json:"error,omitempty"`
}

// bank is the transfer service: it registers each ledger's part of a
// transfer, then commits the transfer on both ledgers, or on neither, with
// a two-phase-commit coordinator that writes ahead to a journal and
// reaches the ledgers over HTTP. Every decision goes to the audit log.
type bank struct {
	tel     *setup.Telemetry
	hc      *http.Client
	urls    map[string]string // ledger base URL, by name
	parts   map[string]twophase.Participant
	journal journal.Log
	coord   *twophase.Coordinator
	audit   *auditLog
	served  chan struct{} // with leases: closed when Serve has returned
	stop    context.CancelFunc
}

// newBank builds the transfer service over log. wrap, when not nil, wraps
// the journal and the participants (the reconciliation injects crashes
// there). With a replica name, the coordinator shares log with other
// replicas through leases (log must be a journal.Leaser: pgjournal), and
// serves the take-over of a dead one's transfers.
func newBank(ctx context.Context, tel *setup.Telemetry, log journal.Log, urls map[string]string, audit *auditLog, wrap *crashSwitch, replica string) (*bank, error) {
	b := &bank{tel: tel, hc: web.Client(tel), urls: urls, parts: map[string]twophase.Participant{}, journal: log, audit: audit}
	var coordLog journal.Log = log
	if wrap != nil {
		coordLog = wrap.journal(log)
	}
	var all []twophase.Participant
	for name, url := range urls {
		// twophasehttp makes each request's CLIENT span itself, so its
		// client is a plain one: otelhttp's transport would make a second.
		c, err := twophasehttp.NewClient(name, url+"/2pc", twophasehttp.WithTimeout(2*time.Second),
			twophasehttp.WithTracerProvider(tel.TracerProvider), twophasehttp.WithMeterProvider(tel.MeterProvider),
			twophasehttp.WithPropagators(tel.Propagators))
		if err != nil {
			return nil, err
		}
		var p twophase.Participant = c
		if wrap != nil {
			p = wrap.participant(c)
		}
		b.parts[name] = p
		all = append(all, p)
	}
	var err error
	phase2, err := retry.New(retry.WithName("bank.phase2"), retry.WithMaxAttempts(8),
		retry.WithExponentialBackoff(10*time.Millisecond, 500*time.Millisecond, retry.FullJitter),
		retry.WithTracerProvider(tel.TracerProvider), retry.WithMeterProvider(tel.MeterProvider))
	if err != nil {
		return nil, err
	}
	opts := []twophase.Option{twophase.WithParticipants(all...), twophase.WithPrepareTimeout(2 * time.Second),
		twophase.WithPhase2Retry(phase2),
		twophase.WithTracerProvider(tel.TracerProvider), twophase.WithMeterProvider(tel.MeterProvider), twophase.WithPropagators(tel.Propagators)}
	if replica != "" {
		// Each transfer is leased to the coordinator that runs it, and one
		// whose coordinator died is taken over by another within about 1.5 s.
		opts = append(opts, twophase.WithLeases(replica, time.Second))
	}
	if b.coord, err = twophase.NewCoordinator(coordLog, opts...); err != nil {
		return nil, err
	}
	if replica != "" { // Serve, for as long as the bank runs, takes over what dead replicas left
		serveCtx, stop := context.WithCancel(context.WithoutCancel(ctx))
		b.stop, b.served = stop, make(chan struct{})
		go func() {
			defer close(b.served)
			_ = b.coord.Serve(serveCtx)
		}()
		return b, nil
	}
	// What a crash left undecided or unacknowledged is finished now.
	reports, err := b.coord.Recover(ctx)
	for _, r := range reports {
		b.audit.record(r.TxID, r.Decision, r.Err, true)
	}
	return b, err
}

// transfer moves amount between two accounts of different ledgers, in a
// span of its own: the registrations of the parts and the two-phase
// commit are its children, one trace per transfer, whether the caller is
// the POST /transfers handler (whose SERVER span is the parent) or the
// reconciliation (where it is the root).
func (b *bank) transfer(ctx context.Context, req transferRequest) (d twophase.Decision, err error) {
	ctx, span := b.tel.TracerProvider.Tracer("github.com/otelpatterns/otelpatterns/examples/bank").Start(ctx, "transfer",
		trace.WithAttributes(attribute.String("bank.transfer.id", req.ID), attribute.Int("bank.transfer.amount", req.Amount)))
	defer func() {
		errs.Record(span, err)
		span.End()
	}()
	from, to := b.parts[req.From.Ledger], b.parts[req.To.Ledger]
	switch {
	case req.ID == "":
		return twophase.Pending, errors.New("a transfer needs an id")
	case from == nil || to == nil || req.From.Ledger == req.To.Ledger:
		return twophase.Pending, fmt.Errorf("a transfer goes between two of the ledgers %q", keys(b.urls))
	case req.Amount <= 0:
		return twophase.Pending, errors.New("the amount must be positive")
	}
	// Each ledger's part, registered before the vote; a ledger that missed
	// its part votes no, and the transfer aborts.
	_ = b.post(ctx, b.urls[req.From.Ledger]+"/intents", intent{Tx: req.ID, Account: req.From.Account, Delta: -req.Amount})
	_ = b.post(ctx, b.urls[req.To.Ledger]+"/intents", intent{Tx: req.ID, Account: req.To.Account, Delta: req.Amount})
	d, err = b.coord.Execute(ctx, req.ID, from, to)
	if d != twophase.Pending {
		b.audit.record(req.ID, d, err, false)
	}
	return d, err
}

func (b *bank) post(ctx context.Context, url string, v any) error {
	body, _ := json.Marshal(v)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	resp, err := b.hc.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	return nil
}

func (b *bank) handler() (http.Handler, error) {
	status, err := twophasehttp.StatusHandler(b.coord, twophasehttp.WithTracerProvider(b.tel.TracerProvider),
		twophasehttp.WithMeterProvider(b.tel.MeterProvider), twophasehttp.WithPropagators(b.tel.Propagators))
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.Handle("/2pc/", http.StripPrefix("/2pc", status))
	mux.HandleFunc("POST /transfers", func(w http.ResponseWriter, r *http.Request) {
		var req transferRequest
		if err := web.ReadJSON(r, &req); err != nil {
			web.WriteJSON(w, http.StatusBadRequest, web.Problem{Error: err.Error()})
			return
		}
		d, err := b.transfer(r.Context(), req)
		resp := transferResponse{ID: req.ID, Decision: d.String()}
		status := http.StatusOK
		switch {
		case err == nil:
		case d == twophase.Pending && !errors.Is(err, twophase.ErrAborted):
			status, resp.Error = http.StatusBadRequest, err.Error()
		default:
			status, resp.Error = http.StatusConflict, err.Error()
		}
		web.WriteJSON(w, status, resp)
	})
	mux.HandleFunc("GET /audit", func(w http.ResponseWriter, r *http.Request) {
		web.WriteJSON(w, http.StatusOK, b.audit.entries())
	})
	return mux, nil
}

func (b *bank) close(ctx context.Context) error {
	err := b.coord.Close(ctx)
	if b.stop != nil {
		b.stop()
		<-b.served
	}
	return err
}

// auditLog records every decision, one JSON line each, synced to disk.
type auditLog struct {
	mu   sync.Mutex
	f    *os.File
	list []auditEntry
}

type auditEntry struct {
	Tx        string `json:"tx"`
	Decision  string `json:"decision"`
	Error     string `json:"error,omitempty"`
	Recovered bool   `json:"recovered,omitempty"`
	At        string `json:"at"`
}

func openAudit(path string) (*auditLog, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return nil, err
	}
	return &auditLog{f: f}, nil
}

func (a *auditLog) record(tx string, d twophase.Decision, err error, recovered bool) {
	e := auditEntry{Tx: tx, Decision: d.String(), Recovered: recovered, At: time.Now().UTC().Format(time.RFC3339Nano)}
	if err != nil {
		e.Error = err.Error()
	}
	line, _ := json.Marshal(e)
	a.mu.Lock()
	defer a.mu.Unlock()
	a.list = append(a.list, e)
	_, _ = a.f.Write(append(line, '\n'))
	_ = a.f.Sync()
}

func (a *auditLog) entries() []auditEntry {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]auditEntry{}, a.list...)
}

func (a *auditLog) close() error { return a.f.Close() }
