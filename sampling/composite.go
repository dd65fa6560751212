package sampling

import (
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// Composite returns the SDK sampler that decides by rule: a span is kept
// (recorded and sampled) when its trace's randomness is at or above the
// rule's threshold, and dropped otherwise. A kept span's tracestate carries
// the threshold (ot=th:...) when the rule says it is reliable, so that
// downstream services and collectors can follow it and count the span's
// adjusted weight; otherwise th is erased. Pass it to
// sdktrace.WithSampler. A nil rule keeps nothing, as AlwaysOff.
func Composite(rule Composable) sdktrace.Sampler { return &composite{rule: orOff(rule)} }

// orOff is rule, or AlwaysOff for a nil one: a rule left out keeps nothing,
// rather than panic in the middle of a span's start.
func orOff(rule Composable) Composable {
	if rule == nil {
		return alwaysOff
	}
	return rule
}

type composite struct{ rule Composable }

func (c *composite) ShouldSample(sp sdktrace.SamplingParameters) sdktrace.SamplingResult {
	p := Params{SamplingParameters: sp, Parent: trace.SpanContextFromContext(sp.ParentContext)}
	ts := p.Parent.TraceState()
	p.Randomness = Randomness(sp.TraceID, ts)
	in := c.rule.Intent(p)
	if !in.Threshold.Keeps(p.Randomness) {
		if ts.Get(otKey) != "" {
			ts = withTH(ts, Never)
		}
		return sdktrace.SamplingResult{Decision: sdktrace.Drop, Tracestate: ts}
	}
	th := Never // erased: the rule does not know the probability
	if in.Reliable {
		th = in.Threshold
	}
	if in.parents {
		return sdktrace.SamplingResult{Decision: sdktrace.RecordAndSample, Attributes: in.Attributes, Tracestate: ts}
	}
	raw := subValue(ts.Get(otKey), "th")
	switch cur, ok := parseTH(raw); {
	case th == Never && raw == "": // nothing to write or erase
	case ok && cur == th: // the parent's says it already
	case ts.Len() == 0 && in.rootState.Len() > 0:
		ts = in.rootState // prebuilt: no allocation
	default:
		ts = withTH(ts, th)
	}
	return sdktrace.SamplingResult{Decision: sdktrace.RecordAndSample, Attributes: in.Attributes, Tracestate: ts}
}

func (c *composite) Description() string { return "Composite{" + c.rule.Description() + "}" }
