// Command benchtable turns `go test -bench` output of the benchmarks module
// into a markdown table: a row per workload, a column per library, each
// cell the median over the -count runs, and the ratio to otelpatterns, so
// that a place where a peer is faster reads as a loss.
//
//	go test -run '^$' -bench . -count 6 . | go run ./cmd/benchtable
//
// Benchmarks name their library with a "lib=" element, as in
// BenchmarkPoolGo/lib=pond/noop; the other elements name the workload. The
// figure is ns/task where a benchmark reports it, and ns/op otherwise.
package main

import (
	"bufio"
	"cmp"
	"fmt"
	"io"
	"math"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

const us = "otelpatterns"

func main() {
	rows, libs, err := parse(os.Stdin)
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchtable:", err)
		os.Exit(1)
	}
	write(os.Stdout, rows, libs)
}

// sample is one result line's figures; allocs is -1 when the benchmark
// did not report them.
type sample struct {
	time, allocs float64
	unit         string
}

// row is one workload: its samples by library.
type row struct {
	name string
	libs map[string][]sample
}

var line = regexp.MustCompile(`^(Benchmark\S+?)(?:-\d+)?\s+\d+\s+(.*)$`)

func parse(r io.Reader) ([]*row, []string, error) {
	byName := map[string]*row{}
	var order []string
	seenLib := map[string]bool{}
	var libs []string
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		m := line.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		lib, workload := split(m[1])
		if lib == "" {
			continue
		}
		s, ok := figures(m[2])
		if !ok {
			continue
		}
		rw := byName[workload]
		if rw == nil {
			rw = &row{name: workload, libs: map[string][]sample{}}
			byName[workload] = rw
			order = append(order, workload)
		}
		rw.libs[lib] = append(rw.libs[lib], s)
		if !seenLib[lib] {
			seenLib[lib] = true
			libs = append(libs, lib)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, nil, err
	}
	if len(order) == 0 {
		return nil, nil, fmt.Errorf("no benchmark lines with a lib= element in the input")
	}
	// otelpatterns first, then the others as they first appeared.
	slices.SortStableFunc(libs, func(a, b string) int {
		return cmp.Compare(boolInt(a != us), boolInt(b != us))
	})
	rows := make([]*row, len(order))
	for i, name := range order {
		rows[i] = byName[name]
	}
	return rows, libs, nil
}

// split takes the lib= element out of a benchmark's name.
func split(name string) (lib, workload string) {
	parts := strings.Split(strings.TrimPrefix(name, "Benchmark"), "/")
	var rest []string
	for _, p := range parts {
		if v, ok := strings.CutPrefix(p, "lib="); ok {
			lib = v
			continue
		}
		rest = append(rest, p)
	}
	return lib, strings.Join(rest, "/")
}

// figures reads the value-unit pairs after the iteration count. Where a
// benchmark reports ns/task, its allocations are per task too: allocs/op
// divided by the tasks an op runs (ns/op over ns/task).
func figures(s string) (sample, bool) {
	f := strings.Fields(s)
	out := sample{allocs: -1}
	var perOp, perTask float64
	for i := 0; i+1 < len(f); i += 2 {
		v, err := strconv.ParseFloat(f[i], 64)
		if err != nil {
			continue
		}
		switch f[i+1] {
		case "ns/task":
			perTask = v
		case "ns/op":
			perOp = v
		case "allocs/op":
			out.allocs = v
		}
	}
	switch {
	case perTask > 0:
		out.time, out.unit = perTask, "ns/task"
		if out.allocs >= 0 {
			out.allocs /= perOp / perTask
		}
	case perOp > 0:
		out.time, out.unit = perOp, "ns/op"
	default:
		return out, false
	}
	return out, true
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	if n := len(s); n%2 == 1 {
		return s[n/2]
	} else {
		return (s[n/2-1] + s[n/2]) / 2
	}
}

func medians(ss []sample) (time, allocs float64, unit string) {
	ts := make([]float64, len(ss))
	as := make([]float64, len(ss))
	for i, s := range ss {
		ts[i], as[i], unit = s.time, s.allocs, s.unit
	}
	return median(ts), median(as), unit
}

// baselines are the hand-written code a library replaces, not peers: being
// slower than them is the price of what the library adds, not a loss.
var baselines = map[string]bool{"direct": true, "loop": true, "handwritten": true, "sequential": true, "bare": true}

// write prints a table per benchmark (the first element of the workload's
// name), with a column per library that ran it.
func write(w io.Writer, rows []*row, libs []string) {
	var groups []string
	byGroup := map[string][]*row{}
	for _, r := range rows {
		g, _, _ := strings.Cut(r.name, "/")
		if byGroup[g] == nil {
			groups = append(groups, g)
		}
		byGroup[g] = append(byGroup[g], r)
	}
	for gi, g := range groups {
		var cols []string
		for _, lib := range libs {
			for _, r := range byGroup[g] {
				if len(r.libs[lib]) > 0 {
					cols = append(cols, lib)
					break
				}
			}
		}
		if gi > 0 {
			fmt.Fprintln(w)
		}
		fmt.Fprintf(w, "| %s | %s |\n", g, strings.Join(cols, " | "))
		fmt.Fprintf(w, "|---|%s\n", strings.Repeat("---|", len(cols)))
		for _, r := range byGroup[g] {
			_, workload, _ := strings.Cut(r.name, "/")
			fmt.Fprintf(w, "| %s | %s |\n", cmp.Or(workload, g), strings.Join(cells(r, cols), " | "))
		}
	}
}

// cells are a row's figures, one per column, with each library's ratio to
// otelpatterns; a peer that is faster is marked as winning.
func cells(r *row, cols []string) []string {
	out := make([]string, len(cols))
	ours, _, _ := medians(r.libs[us])
	for i, lib := range cols {
		ss := r.libs[lib]
		if len(ss) == 0 {
			continue
		}
		t, allocs, unit := medians(ss)
		cell := fmt.Sprintf("%s/%s", human(t), strings.TrimPrefix(unit, "ns/"))
		if allocs >= 0 {
			cell += fmt.Sprintf(", %s allocs", trim(math.Round(allocs*100)/100))
		}
		switch {
		case lib == us:
			cell = "**" + cell + "**"
		case ours <= 0:
		case t/ours < 0.95 && !baselines[lib]:
			cell += fmt.Sprintf(" (%.2f×, **%s wins**)", t/ours, lib)
		default:
			cell += fmt.Sprintf(" (%.2f×)", t/ours)
		}
		out[i] = cell
	}
	return out
}

// human prints a time in ns with three significant digits and a fitting unit.
func human(ns float64) string {
	switch {
	case ns >= 1e6:
		return strconv.FormatFloat(ns/1e6, 'g', 3, 64) + " ms"
	case ns >= 1e3:
		return strconv.FormatFloat(ns/1e3, 'g', 3, 64) + " µs"
	default:
		return strconv.FormatFloat(ns, 'g', 3, 64) + " ns"
	}
}

// trim prints an allocation count with at most two decimals.
func trim(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
