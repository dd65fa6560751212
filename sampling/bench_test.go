package sampling_test

import (
	"math/rand/v2"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/otelpatterns/otelpatterns/sampling"
)

// BenchmarkShouldSample compares a decision with the SDK's samplers, side
// by side: a root span at 10%, and a child that follows its sampled parent.
func BenchmarkShouldSample(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 2))
	const n = 1024
	roots := make([]sdktrace.SamplingParameters, n)
	children := make([]sdktrace.SamplingParameters, n)
	tenth, _ := sampling.Probability(0.1)
	th, _ := sampling.ProbabilityThreshold(0.1)
	for i := range n {
		roots[i] = root(traceID(rng, rng.Uint64()))
		// A sampled parent's randomness is at or above its threshold.
		children[i] = child(traceID(rng, uint64(th)+rng.Uint64N(sampling.MaxRandomness-uint64(th))), true, "ot=th:"+th.String())
	}
	adaptive, _ := sampling.NewAdaptive(1000)
	defer adaptive.Close()
	for _, bc := range []struct {
		name    string
		sampler sdktrace.Sampler
		params  []sdktrace.SamplingParameters
	}{
		{"root/sdk.TraceIDRatioBased", sdktrace.TraceIDRatioBased(0.1), roots},
		{"root/Probability", sampling.Composite(tenth), roots},
		{"root/Adaptive", sampling.Composite(adaptive), roots},
		{"root/RuleBased", sampling.Composite(sampling.RuleBased(
			sampling.Rule{When: sampling.SpanName("saga.recover"), Then: sampling.AlwaysOn()},
			sampling.Rule{When: sampling.Any(), Then: tenth})), roots},
		{"child/sdk.ParentBased", sdktrace.ParentBased(sdktrace.TraceIDRatioBased(0.1)), children},
		{"child/ParentThreshold", sampling.Composite(sampling.ParentThreshold(tenth)), children},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				bc.sampler.ShouldSample(bc.params[i%n])
				i++
			}
		})
	}
}
