// Package console is a span exporter for the examples: it prints each
// finished trace as an indented tree, one line a span, with its duration,
// its status and its attributes, so a program's trace can be read in the
// terminal without a tracing backend.
package console

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// Exporter prints traces as trees. It keeps the spans of a trace until the
// trace's root ends, then prints the trace and forgets it. A trace whose
// root is in another process (a server span continuing a remote caller's
// trace) is printed at Shutdown, or with its root if the caller is in this
// process too, as it is when an example runs all its services in one.
// It is safe for concurrent use.
type Exporter struct {
	w       io.Writer
	timings bool

	mu      sync.Mutex
	pending map[trace.TraceID][]sdktrace.ReadOnlySpan
	order   []trace.TraceID // first-seen order, for Shutdown
}

// An Option changes how an Exporter prints.
type Option func(*Exporter)

// WithoutTimings leaves durations out, so the output of a run is the same
// every time (for tests and documentation).
func WithoutTimings() Option { return func(e *Exporter) { e.timings = false } }

// New returns an Exporter that writes to w. Use it with a syncer
// (sdktrace.WithSyncer) to print each trace as soon as it ends.
func New(w io.Writer, opts ...Option) *Exporter {
	e := &Exporter{w: w, timings: true, pending: map[trace.TraceID][]sdktrace.ReadOnlySpan{}}
	for _, o := range opts {
		o(e)
	}
	return e
}

// ExportSpans implements sdktrace.SpanExporter.
func (e *Exporter) ExportSpans(_ context.Context, spans []sdktrace.ReadOnlySpan) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, s := range spans {
		id := s.SpanContext().TraceID()
		if _, seen := e.pending[id]; !seen {
			e.order = append(e.order, id)
		}
		e.pending[id] = append(e.pending[id], s)
		if !s.Parent().IsValid() {
			if err := e.flush(id); err != nil {
				return err
			}
		}
	}
	return nil
}

// Shutdown implements sdktrace.SpanExporter: it prints the traces whose
// root has not ended.
func (e *Exporter) Shutdown(context.Context) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, id := range e.order {
		if err := e.flush(id); err != nil {
			return err
		}
	}
	return nil
}

// flush prints the trace id's spans and forgets them. e.mu is held.
func (e *Exporter) flush(id trace.TraceID) error {
	spans := e.pending[id]
	if len(spans) == 0 {
		return nil
	}
	delete(e.pending, id)
	e.order = slices.DeleteFunc(e.order, func(x trace.TraceID) bool { return x == id })

	known := make(map[trace.SpanID]bool, len(spans))
	children := make(map[trace.SpanID][]sdktrace.ReadOnlySpan, len(spans))
	var roots []sdktrace.ReadOnlySpan
	for _, s := range spans {
		known[s.SpanContext().SpanID()] = true
	}
	for _, s := range spans {
		if p := s.Parent(); p.IsValid() && known[p.SpanID()] {
			children[p.SpanID()] = append(children[p.SpanID()], s)
		} else {
			roots = append(roots, s)
		}
	}

	var b strings.Builder
	fmt.Fprintf(&b, "trace %s\n", id)
	for i, r := range sortByStart(roots) {
		e.print(&b, r, children, "", i == len(roots)-1)
	}
	_, err := io.WriteString(e.w, b.String())
	return err
}

func (e *Exporter) print(b *strings.Builder, s sdktrace.ReadOnlySpan, children map[trace.SpanID][]sdktrace.ReadOnlySpan, indent string, last bool) {
	branch, next := "├─ ", "│  "
	if last {
		branch, next = "└─ ", "   "
	}
	b.WriteString(indent + branch + e.describe(s) + "\n")
	kids := sortByStart(children[s.SpanContext().SpanID()])
	for i, c := range kids {
		e.print(b, c, children, indent+next, i == len(kids)-1)
	}
}

// describe is one span's line: name, kind, duration, status, links and
// attributes.
func (e *Exporter) describe(s sdktrace.ReadOnlySpan) string {
	parts := []string{s.Name()}
	if k := s.SpanKind(); k != trace.SpanKindInternal && k != trace.SpanKindUnspecified {
		parts = append(parts, "["+k.String()+"]")
	}
	if e.timings {
		parts = append(parts, round(s.EndTime().Sub(s.StartTime())).String())
	}
	if st := s.Status(); st.Code == codes.Error {
		parts = append(parts, fmt.Sprintf("ERROR %q", st.Description))
	}
	if n := len(s.Links()); n > 0 {
		parts = append(parts, fmt.Sprintf("links=%d", n))
	}
	for _, kv := range s.Attributes() {
		parts = append(parts, fmt.Sprintf("%s=%s", kv.Key, kv.Value.String()))
	}
	return strings.Join(parts, " ")
}

func sortByStart(spans []sdktrace.ReadOnlySpan) []sdktrace.ReadOnlySpan {
	slices.SortStableFunc(spans, func(a, b sdktrace.ReadOnlySpan) int {
		if c := a.StartTime().Compare(b.StartTime()); c != 0 {
			return c
		}
		return cmp.Compare(a.Name(), b.Name())
	})
	return spans
}

// round keeps three significant digits of d, enough to read.
func round(d time.Duration) time.Duration {
	unit := time.Duration(1)
	for d/unit >= 1000 {
		unit *= 10
	}
	return d.Round(unit)
}

var _ sdktrace.SpanExporter = (*Exporter)(nil)
