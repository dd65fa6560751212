// Package telemetrytest checks, in each package's tests, that the telemetry
// the code emits is exactly what the README's "Telemetry reference" lists:
// no name emitted that is not documented, no documented name never emitted.
//
// It is imported only by tests, so testing and the SDK stay out of builds.
package telemetrytest

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// The kinds of name in the reference table's "kind" column.
const (
	Span            = "span"
	SpanAttribute   = "span attribute"
	Event           = "event"
	EventAttribute  = "event attribute"
	Metric          = "metric"
	MetricAttribute = "metric attribute"
)

// Entry is one row of the reference table.
type Entry struct {
	Package, Kind, Name, Unit string
}

// Reference returns the rows of the README's "Telemetry reference" table for
// pkg (its path under the module, such as "pool"). It fails the test when
// the README or the section cannot be found.
func Reference(t testing.TB, pkg string) []Entry {
	t.Helper()
	path := readme(t)
	f, err := os.Open(path)
	if err != nil {
		t.Fatalf("open README: %v", err)
	}
	defer f.Close()
	entries, err := Parse(bufio.NewScanner(f))
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	var mine []Entry
	for _, e := range entries {
		if e.Package == pkg {
			mine = append(mine, e)
		}
	}
	return mine
}

// Parse reads the rows of the table under the "## Telemetry reference"
// heading, up to the next "## " heading. Cells may be wrapped in backticks.
func Parse(s *bufio.Scanner) ([]Entry, error) {
	var entries []Entry
	in := false
	for s.Scan() {
		line := strings.TrimSpace(s.Text())
		if strings.HasPrefix(line, "## ") {
			in = strings.EqualFold(strings.TrimPrefix(line, "## "), "Telemetry reference")
			continue
		}
		if !in || !strings.HasPrefix(line, "|") {
			continue
		}
		cells := strings.Split(strings.Trim(line, "|"), "|")
		for i, c := range cells {
			cells[i] = strings.Trim(strings.TrimSpace(c), "`")
		}
		if len(cells) < 4 || cells[0] == "package" || strings.HasPrefix(cells[0], "---") {
			continue
		}
		if !slices.Contains(Kinds, cells[1]) {
			return nil, fmt.Errorf("telemetry reference: row %q has kind %q, want one of %q", line, cells[1], Kinds)
		}
		entries = append(entries, Entry{Package: cells[0], Kind: cells[1], Name: cells[2], Unit: cells[3]})
	}
	return entries, s.Err()
}

// readme finds the module's README.md by walking up from the test's
// directory to the go.mod of the module.
func readme(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if mod, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil &&
			strings.HasPrefix(string(mod), "module github.com/otelpatterns/otelpatterns\n") {
			return filepath.Join(dir, "README.md")
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("README.md not found: no go.mod of github.com/otelpatterns/otelpatterns above the test")
		}
		dir = parent
	}
}

// Emitted gathers the names in spans and metrics by kind.
type Emitted map[string]map[string]bool

// Collect returns what the spans ended in rec and the metrics read from rd
// (which may be nil) emitted.
func Collect(t testing.TB, rec interface {
	Ended() []sdktrace.ReadOnlySpan
}, rd *sdkmetric.ManualReader) Emitted {
	t.Helper()
	e := Emitted{}
	add := func(kind, name string) {
		if e[kind] == nil {
			e[kind] = map[string]bool{}
		}
		e[kind][name] = true
	}
	addAttrs := func(kind string, kvs []attribute.KeyValue) {
		for _, kv := range kvs {
			add(kind, string(kv.Key))
		}
	}
	if rec != nil {
		for _, s := range rec.Ended() {
			add(Span, s.Name())
			addAttrs(SpanAttribute, s.Attributes())
			for _, ev := range s.Events() {
				add(Event, ev.Name)
				addAttrs(EventAttribute, ev.Attributes)
			}
		}
	}
	if rd != nil {
		var rm metricdata.ResourceMetrics
		if err := rd.Collect(context.Background(), &rm); err != nil {
			t.Fatalf("collect metrics: %v", err)
		}
		for _, sm := range rm.ScopeMetrics {
			for _, m := range sm.Metrics {
				add(Metric, m.Name+" "+m.Unit)
				for _, set := range attributeSets(m.Data) {
					addAttrs(MetricAttribute, set.ToSlice())
				}
			}
		}
	}
	return e
}

func attributeSets(data metricdata.Aggregation) []attribute.Set {
	var sets []attribute.Set
	switch d := data.(type) {
	case metricdata.Sum[int64]:
		for _, dp := range d.DataPoints {
			sets = append(sets, dp.Attributes)
		}
	case metricdata.Sum[float64]:
		for _, dp := range d.DataPoints {
			sets = append(sets, dp.Attributes)
		}
	case metricdata.Gauge[int64]:
		for _, dp := range d.DataPoints {
			sets = append(sets, dp.Attributes)
		}
	case metricdata.Gauge[float64]:
		for _, dp := range d.DataPoints {
			sets = append(sets, dp.Attributes)
		}
	case metricdata.Histogram[float64]:
		for _, dp := range d.DataPoints {
			sets = append(sets, dp.Attributes)
		}
	case metricdata.Histogram[int64]:
		for _, dp := range d.DataPoints {
			sets = append(sets, dp.Attributes)
		}
	}
	return sets
}

// Check fails the test unless what was emitted, across every kind, is
// exactly what the README lists for pkg. A listed span name may hold
// placeholders in braces ("send {channel}"), which match any text. A metric
// is listed with its unit and matched on both.
func Check(t testing.TB, pkg string, emitted Emitted) {
	t.Helper()
	listed := Reference(t, pkg)
	used := make([]bool, len(listed))
	for kind, names := range emitted {
		for name := range names {
			found := false
			for i, e := range listed {
				if e.Kind == kind && matches(e, name) {
					used[i], found = true, true
				}
			}
			if !found {
				t.Errorf("%s emits %s %q, which README.md's Telemetry reference does not list", pkg, kind, name)
			}
		}
	}
	for i, e := range listed {
		if !used[i] {
			t.Errorf("README.md lists %s %s %q, which the tests never saw emitted", pkg, e.Kind, e.Name)
		}
	}
}

func matches(e Entry, name string) bool {
	want := e.Name
	if e.Kind == Metric {
		want += " " + e.Unit
	}
	if !strings.Contains(want, "{") || e.Kind == Metric {
		return want == name
	}
	parts := placeholder.Split(want, -1)
	for i, p := range parts {
		parts[i] = regexp.QuoteMeta(p)
	}
	return regexp.MustCompile("^" + strings.Join(parts, ".+") + "$").MatchString(name)
}

var placeholder = regexp.MustCompile(`\{[^}]*\}`)

// Kinds lists the kinds in the order the table uses them.
var Kinds = []string{Span, SpanAttribute, Event, EventAttribute, Metric, MetricAttribute}
