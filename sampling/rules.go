package sampling

import (
	"slices"
	"strings"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
)

// Predicate tells whether a rule applies to a span.
type Predicate interface {
	Matches(p Params) bool
	Description() string
}

// A Rule of RuleBased: when When matches, Then decides.
type Rule struct {
	When Predicate
	Then Composable
}

// RuleBased decides each span by the first rule whose predicate matches it,
// and drops a span that no rule matches (end with When: Any() to choose
// otherwise). A rule with a nil When never matches; a nil Then keeps
// nothing. For example, keep every recovery, hold server spans to 100 a
// second, and follow the parent for the rest:
//
//	sampling.RuleBased(
//		sampling.Rule{When: sampling.SpanName("saga.recover", "2pc.recover"), Then: sampling.AlwaysOn()},
//		sampling.Rule{When: sampling.SpanKind(trace.SpanKindServer), Then: adaptive},
//		sampling.Rule{When: sampling.Any(), Then: sampling.ParentThreshold(ratio)})
func RuleBased(rules ...Rule) Composable {
	kept := make([]Rule, 0, len(rules))
	for _, r := range rules {
		if r.When != nil {
			kept = append(kept, Rule{When: r.When, Then: orOff(r.Then)})
		}
	}
	return &ruleBased{rules: kept}
}

type ruleBased struct{ rules []Rule }

func (r *ruleBased) Intent(p Params) Intent {
	for _, rule := range r.rules {
		if rule.When.Matches(p) {
			return rule.Then.Intent(p)
		}
	}
	return alwaysOff.intent
}

func (r *ruleBased) Description() string {
	var b strings.Builder
	b.WriteString("RuleBased{")
	for i, rule := range r.rules {
		if i > 0 {
			b.WriteString(",")
		}
		b.WriteString("(" + rule.When.Description() + "," + rule.Then.Description() + ")")
	}
	return b.String() + "}"
}

type predicate struct {
	match func(p Params) bool
	desc  string
}

func (f predicate) Matches(p Params) bool { return f.match(p) }
func (f predicate) Description() string   { return f.desc }

// Any matches every span.
func Any() Predicate { return predicate{func(Params) bool { return true }, "true"} }

// SpanName matches spans with one of names.
func SpanName(names ...string) Predicate {
	names = slices.Clone(names)
	return predicate{func(p Params) bool { return slices.Contains(names, p.Name) }, "name in " + strings.Join(names, "|")}
}

// SpanKind matches spans of one of kinds.
func SpanKind(kinds ...trace.SpanKind) Predicate {
	kinds = slices.Clone(kinds)
	desc := make([]string, len(kinds))
	for i, k := range kinds {
		desc[i] = k.String()
	}
	return predicate{func(p Params) bool { return slices.Contains(kinds, p.Kind) }, "kind in " + strings.Join(desc, "|")}
}

// Attribute matches spans started with attribute kv (as the SDK passes
// the attributes given to Start).
func Attribute(kv attribute.KeyValue) Predicate {
	return predicate{func(p Params) bool {
		for _, a := range p.Attributes {
			if a.Key == kv.Key && a.Value == kv.Value {
				return true
			}
		}
		return false
	}, string(kv.Key) + "=" + kv.Value.String()}
}

// Root matches spans without a parent.
func Root() Predicate { return predicate{Params.Root, "root"} }
