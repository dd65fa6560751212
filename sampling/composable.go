package sampling

import (
	"fmt"
	"slices"

	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// Composable is a sampling rule as the specification's composable samplers
// have it: it says at which threshold a span would be kept, and Composite
// turns that into the SDK's decision, the same way for every rule. Rules
// nest: RuleBased picks one by the span, ParentThreshold follows the
// parent, Annotating adds attributes.
type Composable interface {
	// Intent returns the threshold at which the span described by p is
	// kept. It is called for every span: it must be fast and safe for
	// concurrent use.
	Intent(p Params) Intent
	// Description names the rule, for Sampler.Description.
	Description() string
}

// Params is what a rule decides on: the SDK's parameters, with the parent
// span context read out of them and the trace's randomness.
type Params struct {
	sdktrace.SamplingParameters
	// Parent is the parent span context; not valid for a root span.
	Parent trace.SpanContext
	// Randomness is the trace's 56 random bits (see [Randomness]).
	Randomness uint64
}

// Root reports whether the span has no parent.
func (p Params) Root() bool { return !p.Parent.IsValid() }

// Intent is a rule's answer: keep the span if its randomness is at least
// Threshold.
type Intent struct {
	Threshold Threshold
	// Reliable says that Threshold is the probability the span was
	// really sampled with, so that its adjusted count holds: Composite
	// then writes it to the tracestate (th), and erases th otherwise.
	Reliable bool
	// Attributes are added to a kept span.
	Attributes []attribute.KeyValue

	// rootState is the tracestate of a root span kept at Threshold,
	// built once by the rule so that the decision allocates nothing.
	rootState trace.TraceState
	// parents says that the parent's tracestate carries Threshold already.
	parents bool
}

// reliableAt is an intent at t, with its root tracestate built now.
func reliableAt(t Threshold) Intent {
	return Intent{Threshold: t, Reliable: t != Never, rootState: withTH(trace.TraceState{}, t)}
}

type fixed struct {
	intent Intent
	name   string
}

func (f *fixed) Intent(Params) Intent { return f.intent }
func (f *fixed) Description() string  { return f.name }

var (
	alwaysOn  = &fixed{intent: reliableAt(AlwaysThreshold), name: "AlwaysOn"}
	alwaysOff = &fixed{intent: Intent{Threshold: Never}, name: "AlwaysOff"}
)

// AlwaysOn keeps every span, at threshold 0.
func AlwaysOn() Composable { return alwaysOn }

// AlwaysOff keeps no span.
func AlwaysOff() Composable { return alwaysOff }

// Probability keeps a share p of traces, consistently: a trace kept at p is
// kept at every higher probability too, here and in every service that
// samples by the same rules. p must be in [2^-56, 1] (AlwaysOff is 0).
func Probability(p float64) (Composable, error) {
	t, err := ProbabilityThreshold(p)
	if err != nil {
		return nil, err
	}
	return &fixed{intent: reliableAt(t), name: fmt.Sprintf("Probability{%g}", p)}, nil
}

// ParentThreshold decides a root span by root, and follows the parent
// otherwise: a sampled parent's threshold (th) when it has one that agrees
// with the trace's randomness, else keeps the span with an unknown
// probability; an unsampled parent's span is dropped. It is the
// consistent ParentBased. A nil root keeps no root span.
func ParentThreshold(root Composable) Composable {
	return &parentThreshold{root: orOff(root)}
}

type parentThreshold struct{ root Composable }

var unknown = Intent{Threshold: AlwaysThreshold}

func (s *parentThreshold) Intent(p Params) Intent {
	switch {
	case p.Root():
		return s.root.Intent(p)
	case !p.Parent.IsSampled():
		return alwaysOff.intent
	}
	if th, ok := parseTH(subValue(p.Parent.TraceState().Get(otKey), "th")); ok && th.Keeps(p.Randomness) {
		return Intent{Threshold: th, Reliable: true, parents: true}
	}
	return unknown // sampled without a threshold, or one the randomness contradicts
}

func (s *parentThreshold) Description() string {
	return "ParentThreshold{root:" + s.root.Description() + "}"
}

// Annotating adds attrs to the spans that rule keeps (none, for a nil rule).
func Annotating(attrs []attribute.KeyValue, rule Composable) Composable {
	return &annotating{attrs: slices.Clone(attrs), rule: orOff(rule)}
}

type annotating struct {
	attrs []attribute.KeyValue
	rule  Composable
}

func (a *annotating) Intent(p Params) Intent {
	in := a.rule.Intent(p)
	if len(in.Attributes) == 0 {
		in.Attributes = a.attrs
	} else {
		in.Attributes = append(append([]attribute.KeyValue(nil), in.Attributes...), a.attrs...)
	}
	return in
}

func (a *annotating) Description() string { return "Annotating{" + a.rule.Description() + "}" }
