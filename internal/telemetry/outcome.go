package telemetry

import (
	"context"
	"errors"

	"go.opentelemetry.io/otel/attribute"

	"github.com/otelpatterns/otelpatterns/errs"
)

// KeyOutcome is the attribute that classifies how a unit of work ended, on
// the counters that count work by outcome. Its values are the Outcome
// constants, a fixed set.
const KeyOutcome = attribute.Key(Prefix + "outcome")

// The outcomes of a unit of work.
const (
	OutcomeSuccess  = "success"
	OutcomeError    = "error"
	OutcomePanic    = "panic"
	OutcomeCanceled = "canceled"
	OutcomeDropped  = "dropped"
)

// Outcome classifies err: success for nil, panic for a recovered panic
// anywhere in the chain, canceled for a context error, error otherwise.
// Dropped work never ran, so it has no error to classify; its counter uses
// [OutcomeDropped] directly.
func Outcome(err error) string {
	switch {
	case err == nil:
		return OutcomeSuccess
	case isPanic(err):
		return OutcomePanic
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return OutcomeCanceled
	default:
		return OutcomeError
	}
}

func isPanic(err error) bool {
	_, ok := errors.AsType[*errs.PanicError](err)
	return ok
}
