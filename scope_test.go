package otelpatterns_test

import (
	"testing"

	"github.com/otelpatterns/otelpatterns/concurrency"
	"github.com/otelpatterns/otelpatterns/concurrency/pipeline"
	"github.com/otelpatterns/otelpatterns/concurrency/singleflight"
	"github.com/otelpatterns/otelpatterns/functional"
	"github.com/otelpatterns/otelpatterns/journal"
	"github.com/otelpatterns/otelpatterns/pool"
	"github.com/otelpatterns/otelpatterns/retry"
	"github.com/otelpatterns/otelpatterns/retry/breaker"
	"github.com/otelpatterns/otelpatterns/saga"
	"github.com/otelpatterns/otelpatterns/sampling"
	"github.com/otelpatterns/otelpatterns/twophase"
	"github.com/otelpatterns/otelpatterns/twophase/twophasehttp"
)

// Each package's instrumentation scope is its import path, as contrib's
// instrumentation rules ask (journal/pgjournal, a module of its own, is
// not imported here).
func TestScopeNames(t *testing.T) {
	for path, scope := range map[string]string{
		"concurrency": concurrency.ScopeName, "concurrency/pipeline": pipeline.ScopeName,
		"concurrency/singleflight": singleflight.ScopeName, "functional": functional.ScopeName,
		"journal": journal.ScopeName, "pool": pool.ScopeName, "retry": retry.ScopeName,
		"retry/breaker": breaker.ScopeName, "saga": saga.ScopeName, "sampling": sampling.ScopeName,
		"twophase": twophase.ScopeName, "twophase/twophasehttp": twophasehttp.ScopeName,
	} {
		if want := module + "/" + path; scope != want {
			t.Errorf("%s.ScopeName = %q, want %q", path, scope, want)
		}
	}
}
