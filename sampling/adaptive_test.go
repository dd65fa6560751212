package sampling_test

import (
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/otelpatterns/otelpatterns/internal/telemetry/telemetrytest"
	"github.com/otelpatterns/otelpatterns/sampling"
)

// clock is a simulated clock that the test steps.
type clock struct{ now time.Time }

func (c *clock) Now() time.Time { return c.now }

// The load steps between 1,000 and 10,000 root spans a second; from the
// second interval after each step, the kept rate is the target, ±10% over
// the rest of the step (and ±30% in every single interval, where a binomial
// draw of about 100 spans is ±10% at one sigma).
func TestAdaptiveHoldsItsRate(t *testing.T) {
	const target = 100
	clk := &clock{now: time.Unix(1_800_000_000, 0)}
	a, err := sampling.NewAdaptive(target, sampling.WithClock(clk.Now))
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	s := sampling.Composite(a)
	rng := rand.New(rand.NewPCG(13, 14))
	for step, rate := range []int{1000, 10000, 1000, 10000, 3000} {
		var perInterval []int
		for range 10 { // ten one-second intervals at this rate
			kept := 0
			for range rate {
				clk.now = clk.now.Add(time.Second / time.Duration(rate))
				if s.ShouldSample(root(traceID(rng, rng.Uint64()))).Decision == sdktrace.RecordAndSample {
					kept++
				}
			}
			perInterval = append(perInterval, kept)
		}
		settled := perInterval[1:] // from the second interval after the step
		sum := 0
		for _, k := range settled {
			sum += k
			if math.Abs(float64(k)-target) > 0.3*target {
				t.Errorf("step %d (%d/s): an interval kept %d; intervals %v", step, rate, k, perInterval)
			}
		}
		if mean := float64(sum) / float64(len(settled)); math.Abs(mean-target) > 0.1*target {
			t.Errorf("step %d (%d/s): kept %.1f a second; want %d ±10%%; intervals %v", step, rate, mean, target, perInterval)
		}
		t.Logf("step %d, %5d/s: kept per interval %v", step, rate, perInterval)
	}
}

// Keys are bounded: past the limit they share "_other", and each key gets
// at least one span an interval, even when its probability is tiny.
func TestAdaptiveKeys(t *testing.T) {
	rec := telemetrytest.NewRecorders(t)
	clk := &clock{now: time.Unix(1_800_000_000, 0)}
	a, err := sampling.NewAdaptive(10, sampling.WithClock(clk.Now), sampling.WithMaxKeys(2), sampling.WithMeterProvider(rec.MeterProvider))
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	s := sampling.Composite(a)
	rng := rand.New(rand.NewPCG(15, 16))
	name := func(i int) string { // hot takes all but three spans
		if i >= 1 && i <= 3 {
			return []string{"cold", "third", "fourth"}[i-1]
		}
		return "hot"
	}
	for i := range 9999 { // one interval
		clk.now = clk.now.Add(time.Second / 10000)
		p := root(traceID(rng, rng.Uint64()))
		p.Name = name(i)
		s.ShouldSample(p)
	}
	clk.now = clk.now.Add(time.Millisecond)
	p := root(traceID(rng, rng.Uint64()))
	p.Name = "cold"
	s.ShouldSample(p) // the interval ends: hot's probability falls
	if got, want := a.Probability("hot"), 10*1.0009/9996; math.Abs(got-want) > 0.02*want {
		t.Fatalf("hot's probability = %v; want about %v", got, want)
	}
	p = root(traceID(rng, 0)) // the lowest randomness: dropped at any probability below 1
	p.Name = "hot"
	if res := s.ShouldSample(p); res.Decision != sdktrace.RecordAndSample || res.Tracestate.Get("ot") != "" {
		t.Fatalf("hot's first span of an interval: %v, tracestate %q; want kept, th erased", res.Decision, res.Tracestate.String())
	}
	if res := s.ShouldSample(p); res.Decision != sdktrace.Drop {
		t.Fatal("the second span of the interval was kept at the lowest randomness")
	}

	m := rec.Metrics(t)
	var keys []string
	for _, dp := range m["otelpatterns.sampling.probability"].Data.(metricdata.Gauge[float64]).DataPoints {
		v, _ := dp.Attributes.Value("otelpatterns.sampling.key")
		keys = append(keys, v.AsString())
	}
	slices.Sort(keys)
	if !slices.Equal(keys, []string{"_other", "cold", "hot"}) {
		t.Fatalf("probability series by key: %v; want hot, cold and _other", keys)
	}
	var kept, dropped int64
	for _, dp := range m["otelpatterns.sampling.decisions"].Data.(metricdata.Sum[int64]).DataPoints {
		d, _ := dp.Attributes.Value("otelpatterns.sampling.decision")
		if k, _ := dp.Attributes.Value("otelpatterns.sampling.key"); k.AsString() == "hot" {
			switch d.AsString() {
			case "kept":
				kept = dp.Value
			case "dropped":
				dropped = dp.Value
			}
		}
	}
	if kept != 9996+1 || dropped != 1 {
		t.Fatalf("hot's decisions: %d kept, %d dropped; want the first interval's 9,996 and the forced one kept, one dropped", kept, dropped)
	}
	emitted := telemetrytest.Collect(t, rec.Spans, rec.Reader)
	telemetrytest.Check(t, "sampling", emitted)
}

// A span with a parent follows it, whatever the rates.
func TestAdaptiveFollowsTheParent(t *testing.T) {
	a, _ := sampling.NewAdaptive(1)
	defer a.Close()
	s := sampling.Composite(a)
	rng := rand.New(rand.NewPCG(17, 18))
	for range 1000 {
		if s.ShouldSample(child(traceID(rng, 1<<55), true, "ot=th:8")).Decision != sdktrace.RecordAndSample {
			t.Fatal("a sampled parent's child was dropped")
		}
		if s.ShouldSample(child(traceID(rng, 1<<55), false, "")).Decision != sdktrace.Drop {
			t.Fatal("an unsampled parent's child was kept")
		}
	}
}

func TestAdaptiveBadInput(t *testing.T) {
	for _, tc := range []struct {
		target float64
		opt    sampling.AdaptiveOption
		says   string
	}{
		{0, nil, "NewAdaptive"}, {-1, nil, "NewAdaptive"}, {math.NaN(), nil, "NewAdaptive"}, {math.Inf(1), nil, "NewAdaptive"},
		{1, sampling.WithInterval(0), "WithInterval"}, {1, sampling.WithMaxKeys(0), "WithMaxKeys"},
		{1, sampling.WithClock(nil), "WithClock"}, {1, sampling.WithKey(nil), "WithKey"},
	} {
		a, err := sampling.NewAdaptive(tc.target, tc.opt)
		if err == nil || !strings.Contains(err.Error(), tc.says) {
			t.Errorf("NewAdaptive(%v, %s) = %v, %v; want an error naming %s", tc.target, tc.says, a, err, tc.says)
		}
	}
	if _, err := sampling.Probability(2); err == nil {
		t.Error("Probability(2) did not fail")
	}
}

// On the real clock, a timer ends each interval: the probability follows
// the traffic without WithClock.
func TestAdaptiveOnTheRealClock(t *testing.T) {
	a, err := sampling.NewAdaptive(10, sampling.WithInterval(20*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	s := sampling.Composite(a)
	rng := rand.New(rand.NewPCG(19, 20))
	deadline := time.Now().Add(5 * time.Second)
	for a.Probability("op") == 1 && time.Now().Before(deadline) {
		for range 1000 {
			s.ShouldSample(root(traceID(rng, rng.Uint64())))
		}
		time.Sleep(time.Millisecond)
	}
	if p := a.Probability("op"); p >= 1 {
		t.Fatalf("the probability stayed %v under %s", p, "1,000 spans a millisecond")
	}
}
