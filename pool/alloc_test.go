package pool_test

import (
	"context"
	"testing"

	metricnoop "go.opentelemetry.io/otel/metric/noop"
	tracenoop "go.opentelemetry.io/otel/trace/noop"

	"github.com/otelpatterns/otelpatterns/pool"
)

// The allocation budgets of Submit plus Wait with telemetry off. Counts are
// exact and independent of the machine's speed, so a test can hold them.
func TestSubmitWaitAllocations(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector changes allocation counts")
	}
	p := mustNew(t, double, pool.WithWorkers(2),
		pool.WithTracerProvider(tracenoop.NewTracerProvider()),
		pool.WithMeterProvider(metricnoop.NewMeterProvider()))
	submitWait := func(ctx context.Context) func() {
		return func() {
			f, err := p.Submit(ctx, 1)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := f.Wait(ctx); err != nil {
				t.Fatal(err)
			}
		}
	}
	// Wait may find the task unfinished and make the Done channel, which is
	// one allocation more; the average over many runs shows the budget.
	if n := testing.AllocsPerRun(2000, submitWait(context.Background())); n > 2 {
		t.Errorf("Submit+Wait with a context that cannot be cancelled: %v allocations, want 1 (2 when Wait must block)", n)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if n := testing.AllocsPerRun(2000, submitWait(ctx)); n > 3 {
		t.Errorf("Submit+Wait with a cancellable context: %v allocations, want at most 3", n)
	}
}
