package breaker

import (
	"context"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/otelpatterns/otelpatterns/internal/telemetry"
)

// ScopeName is the instrumentation scope of the breaker's telemetry.
const ScopeName = "github.com/otelpatterns/otelpatterns/retry/breaker"

// The names this package emits; README.md's Telemetry reference lists them.
const (
	keyBreaker = attribute.Key(telemetry.Prefix + "breaker.name")
	keyState   = attribute.Key(telemetry.Prefix + "breaker.state")

	metricState       = telemetry.Prefix + "breaker.state"
	metricTransitions = telemetry.Prefix + "breaker.transitions"
)

// instruments is a Breaker's telemetry.
type instruments struct {
	cfg         telemetry.Config
	tel         *telemetry.Telemetry
	state       metric.Int64ObservableUpDownCounter
	transitions metric.Int64Counter
	byState     map[State][]metric.AddOption
	observed    map[State]metric.ObserveOption
}

func (in *instruments) build(name string) {
	in.tel = telemetry.New(ScopeName, in.cfg)
	in.state = in.tel.ObservableUpDownCounter(metricState, "{state}", "1 for the state the circuit breaker is in, 0 for the others.")
	in.transitions = in.tel.Counter(metricTransitions, "{transition}", "Circuit breaker state changes, by the state entered.")
	in.byState = map[State][]metric.AddOption{}
	in.observed = map[State]metric.ObserveOption{}
	for _, s := range []State{Closed, Open, HalfOpen} {
		set := attribute.NewSet(keyBreaker.String(name), keyState.String(s.String()))
		in.byState[s] = []metric.AddOption{metric.WithAttributeSet(set)}
		in.observed[s] = metric.WithAttributeSet(set)
	}
}

func (in *instruments) observe(state func() State) func() {
	return in.tel.Observe(func(_ context.Context, o metric.Observer) error {
		now := state()
		for s, opt := range in.observed {
			v := int64(0)
			if s == now {
				v = 1
			}
			o.ObserveInt64(in.state, v, opt)
		}
		return nil
	}, in.state)
}

func (in *instruments) transitioned(to State) {
	in.transitions.Add(context.Background(), 1, in.byState[to]...)
}
