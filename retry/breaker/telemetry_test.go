package breaker_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/otelpatterns/otelpatterns/internal/telemetry/telemetrytest"
	"github.com/otelpatterns/otelpatterns/retry/breaker"
)

func TestMetrics(t *testing.T) {
	r := telemetrytest.NewRecorders(t)
	b, err := breaker.New(breaker.WithTripAfter(1), breaker.WithName("ledger"), breaker.WithMeterProvider(r.MeterProvider))
	require.NoError(t, err)
	_ = b.Execute(bg, fail)

	var rm metricdata.ResourceMetrics
	require.NoError(t, r.Reader.Collect(bg, &rm))
	require.Len(t, rm.ScopeMetrics, 1)
	assert.Equal(t, breaker.ScopeName, rm.ScopeMetrics[0].Scope.Name)
	states := map[string]int64{}
	var transitions int64
	for _, m := range rm.ScopeMetrics[0].Metrics {
		for _, dp := range m.Data.(metricdata.Sum[int64]).DataPoints {
			s, _ := dp.Attributes.Value("otelpatterns.breaker.state")
			name, _ := dp.Attributes.Value("otelpatterns.breaker.name")
			assert.Equal(t, "ledger", name.AsString())
			switch m.Name {
			case "otelpatterns.breaker.state":
				states[s.AsString()] = dp.Value
			case "otelpatterns.breaker.transitions":
				assert.Equal(t, "open", s.AsString())
				transitions += dp.Value
			}
		}
	}
	assert.Equal(t, map[string]int64{"closed": 0, "open": 1, "half_open": 0}, states)
	assert.EqualValues(t, 1, transitions)

	emitted := telemetrytest.Collect(t, r.Spans, r.Reader)
	telemetrytest.Check(t, "retry/breaker", emitted)

	require.NoError(t, b.Close())
	rm = metricdata.ResourceMetrics{}
	require.NoError(t, r.Reader.Collect(bg, &rm))
	for _, m := range rm.ScopeMetrics[0].Metrics {
		if m.Name == "otelpatterns.breaker.state" {
			assert.Empty(t, m.Data.(metricdata.Sum[int64]).DataPoints, "not observed after Close")
		}
	}
}

func TestClosedPathAllocatesNothing(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector changes allocation counts")
	}
	b, err := breaker.New(breaker.WithMeterProvider(metricnoop.NewMeterProvider()))
	require.NoError(t, err)
	defer b.Close()
	if n := testing.AllocsPerRun(1000, func() { _ = b.Execute(bg, succeed) }); n != 0 {
		t.Errorf("Execute on the closed path: %v allocations, want 0", n)
	}
}
