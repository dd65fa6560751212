package sampling_test

import (
	"context"
	"encoding/binary"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/goleak"

	"github.com/otelpatterns/otelpatterns/sampling"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// traceID returns a trace ID whose last 7 bytes, the randomness, are r.
func traceID(rng *rand.Rand, r uint64) trace.TraceID {
	var id trace.TraceID
	binary.BigEndian.PutUint64(id[:8], rng.Uint64())
	binary.BigEndian.PutUint64(id[8:], r&(sampling.MaxRandomness-1))
	return id
}

func root(id trace.TraceID) sdktrace.SamplingParameters {
	return sdktrace.SamplingParameters{ParentContext: context.Background(), TraceID: id, Name: "op"}
}

// child is the parameters of a span under a remote parent.
func child(id trace.TraceID, sampled bool, ts string) sdktrace.SamplingParameters {
	state, err := trace.ParseTraceState(ts)
	if err != nil {
		panic(err)
	}
	flags := trace.TraceFlags(0)
	if sampled {
		flags = trace.FlagsSampled
	}
	parent := trace.NewSpanContext(trace.SpanContextConfig{TraceID: id, SpanID: trace.SpanID{1}, TraceFlags: flags, TraceState: state, Remote: true})
	return sdktrace.SamplingParameters{ParentContext: trace.ContextWithRemoteSpanContext(context.Background(), parent), TraceID: id, Name: "op"}
}

func TestThresholdEncoding(t *testing.T) {
	for p, want := range map[float64]string{1: "0", 0.5: "8", 0.25: "c", 0.75: "4", 1.0 / sampling.MaxRandomness: "ffffffffffffff"} {
		th, err := sampling.ProbabilityThreshold(p)
		if err != nil || th.String() != want || th.Probability() != p {
			t.Errorf("ProbabilityThreshold(%v) = %v (%v), probability %v; want th %s", p, th, err, th.Probability(), want)
		}
	}
	for _, p := range []float64{0, -0.5, 1.5, math.NaN(), math.Inf(1), 1.0 / (1 << 57)} {
		if _, err := sampling.ProbabilityThreshold(p); err == nil {
			t.Errorf("ProbabilityThreshold(%v) did not fail", p)
		}
	}
	// Every threshold a rule writes is read back the same by a follower.
	rng := rand.New(rand.NewPCG(1, 2))
	for range 10000 {
		p := rng.Float64()
		if p < 1e-12 {
			continue
		}
		th, _ := sampling.ProbabilityThreshold(p)
		res := sampling.Composite(sampling.ParentThreshold(sampling.AlwaysOff())).ShouldSample(child(traceID(rng, uint64(th)), true, "ot=th:"+th.String()))
		if got := res.Tracestate.Get("ot"); got != "th:"+th.String() {
			t.Fatalf("th %s came back as %q", th, got)
		}
	}
}

func TestRandomnessFromRVOrTraceID(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	id := traceID(rng, 0x12345678abcdef)
	if got := sampling.Randomness(id, trace.TraceState{}); got != 0x12345678abcdef {
		t.Fatalf("randomness from the trace ID = %x", got)
	}
	ts, _ := trace.ParseTraceState("ot=th:8;rv:00000000000001,other=x")
	if got := sampling.Randomness(id, ts); got != 1 {
		t.Fatalf("randomness with rv = %x; want the rv", got)
	}
}

// Over 1e6 random trace IDs, what a lower probability keeps is a subset
// of what a higher one keeps, exactly, and each keeps its share.
func TestConsistentSubsets(t *testing.T) {
	const n = 1_000_000
	probs := []float64{0.01, 0.1, 0.25, 0.5}
	samplers := make([]sdktrace.Sampler, len(probs))
	for i, p := range probs {
		c, err := sampling.Probability(p)
		if err != nil {
			t.Fatal(err)
		}
		samplers[i] = sampling.Composite(c)
	}
	kept := make([]int, len(probs))
	rng := rand.New(rand.NewPCG(5, 6))
	for range n {
		id := traceID(rng, rng.Uint64())
		prev := false
		for i := len(samplers) - 1; i >= 0; i-- {
			k := samplers[i].ShouldSample(root(id)).Decision == sdktrace.RecordAndSample
			if k && i < len(samplers)-1 && !prev {
				t.Fatalf("%v kept a trace that %v dropped", probs[i], probs[i+1])
			}
			prev = k
			if k {
				kept[i]++
			}
		}
	}
	for i, p := range probs {
		if got := float64(kept[i]) / n; math.Abs(got-p) > 4*math.Sqrt(p*(1-p)/n) {
			t.Errorf("Probability(%v) kept %v", p, got)
		}
	}
}

func TestTracestate(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	half, _ := sampling.Probability(0.5)
	follow := sampling.Composite(sampling.ParentThreshold(sampling.AlwaysOff()))
	for _, tc := range []struct {
		name    string
		sampler sdktrace.Sampler
		params  sdktrace.SamplingParameters
		keep    bool
		state   string
	}{
		{"a kept root carries its threshold", sampling.Composite(half), root(traceID(rng, 1<<55)), true, "ot=th:8"},
		{"a dropped root carries none", sampling.Composite(half), root(traceID(rng, 1<<55-1)), false, ""},
		{"a child follows its parent's threshold", follow, child(traceID(rng, 1<<55), true, "ot=th:8"), true, "ot=th:8"},
		{"and keeps the other values", follow, child(traceID(rng, 1<<55), true, "ot=foo:bar;th:8,vendor=x"), true, "ot=foo:bar;th:8,vendor=x"},
		{"an unsampled parent's child is dropped, th erased", follow, child(traceID(rng, 1<<55), false, "ot=th:8;foo:bar"), false, "ot=foo:bar"},
		{"a parent sampled without th: kept, probability unknown", follow, child(traceID(rng, 1), true, "vendor=x"), true, "vendor=x"},
		{"a th the randomness contradicts is erased", follow, child(traceID(rng, 1), true, "ot=th:8"), true, ""},
		{"a root under ParentThreshold is the root rule's", follow, root(traceID(rng, 1<<55)), false, ""},
		{"a new threshold replaces the parent's", sampling.Composite(sampling.AlwaysOn()), child(traceID(rng, 1<<55), true, "ot=th:8;rv:80000000000000"), true, "ot=th:0;rv:80000000000000"},
	} {
		res := tc.sampler.ShouldSample(tc.params)
		if (res.Decision == sdktrace.RecordAndSample) != tc.keep || res.Tracestate.String() != tc.state {
			t.Errorf("%s: decision %v, tracestate %q; want kept %t, %q", tc.name, res.Decision, res.Tracestate.String(), tc.keep, tc.state)
		}
	}
}

func TestRules(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 10))
	tenth, _ := sampling.Probability(0.1)
	s := sampling.Composite(sampling.RuleBased(
		sampling.Rule{When: sampling.SpanName("saga.recover", "2pc.recover"), Then: sampling.Annotating([]attribute.KeyValue{attribute.String("rule", "recovery")}, sampling.AlwaysOn())},
		sampling.Rule{When: sampling.SpanKind(trace.SpanKindServer), Then: tenth},
		sampling.Rule{When: sampling.Attribute(attribute.Bool("debug", true)), Then: sampling.AlwaysOn()},
	))
	low := traceID(rng, 1) // dropped by every probability below 1
	for _, tc := range []struct {
		name  string
		kind  trace.SpanKind
		attrs []attribute.KeyValue
		keep  bool
	}{
		{"saga.recover", trace.SpanKindInternal, nil, true},
		{"GET /", trace.SpanKindServer, nil, false},
		{"work", trace.SpanKindInternal, []attribute.KeyValue{attribute.Bool("debug", true)}, true},
		{"work", trace.SpanKindInternal, nil, false}, // no rule: dropped
	} {
		p := root(low)
		p.Name, p.Kind, p.Attributes = tc.name, tc.kind, tc.attrs
		res := s.ShouldSample(p)
		if (res.Decision == sdktrace.RecordAndSample) != tc.keep {
			t.Errorf("%s (%v): decision %v; want kept %t", tc.name, tc.kind, res.Decision, tc.keep)
		}
		if tc.name == "saga.recover" && (len(res.Attributes) != 1 || res.Attributes[0].Value.AsString() != "recovery") {
			t.Errorf("the annotating rule's attributes are %v", res.Attributes)
		}
	}
	if d := s.Description(); !strings.Contains(d, "name in saga.recover|2pc.recover") || !strings.Contains(d, "Probability{0.1}") {
		t.Errorf("Description() = %s", d)
	}
}

// The decisions of a root span, and of a child whose parent says its
// threshold, allocate nothing.
func TestHotPathAllocatesNothing(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	tenth, _ := sampling.Probability(0.1)
	adaptive, err := sampling.NewAdaptive(1000)
	if err != nil {
		t.Fatal(err)
	}
	defer adaptive.Close()
	kept, dropped := root(traceID(rng, sampling.MaxRandomness-1)), root(traceID(rng, 0))
	follower := child(traceID(rng, sampling.MaxRandomness-1), true, "ot=th:e666666666666")
	for name, s := range map[string]sdktrace.Sampler{
		"Probability":     sampling.Composite(tenth),
		"ParentThreshold": sampling.Composite(sampling.ParentThreshold(tenth)),
		"RuleBased":       sampling.Composite(sampling.RuleBased(sampling.Rule{When: sampling.SpanName("x"), Then: sampling.AlwaysOff()}, sampling.Rule{When: sampling.Any(), Then: tenth})),
		"Adaptive":        sampling.Composite(adaptive),
	} {
		for what, p := range map[string]sdktrace.SamplingParameters{"kept root": kept, "dropped root": dropped, "child": follower} {
			if what == "child" && (name == "Probability" || name == "RuleBased") {
				continue // a root rule on a child rewrites the parent's threshold
			}
			if n := testing.AllocsPerRun(1000, func() { s.ShouldSample(p) }); n != 0 {
				t.Errorf("%s, %s: %v allocations a decision", name, what, n)
			}
		}
	}
}

// Nil rules keep nothing, and never panic in a span's start.
func TestNilRulesKeepNothing(t *testing.T) {
	rng := rand.New(rand.NewPCG(21, 22))
	p := root(traceID(rng, sampling.MaxRandomness-1))
	for name, s := range map[string]sdktrace.Sampler{
		"Composite(nil)":       sampling.Composite(nil),
		"ParentThreshold(nil)": sampling.Composite(sampling.ParentThreshold(nil)),
		"Annotating(nil)":      sampling.Composite(sampling.Annotating(nil, nil)),
		"RuleBased(nil rule)":  sampling.Composite(sampling.RuleBased(sampling.Rule{}, sampling.Rule{When: sampling.Any()})),
	} {
		if res := s.ShouldSample(p); res.Decision != sdktrace.Drop {
			t.Errorf("%s: %v; want Drop", name, res.Decision)
		}
	}
}
