package saga

import "context"

// StepInfo says which saga, step and attempt a call belongs to. The runner
// puts it in the context of every action and compensation, so that the
// services they call can de-duplicate: an action may run again after a
// retry or a crash.
type StepInfo struct {
	Saga         string // the definition's name
	ID           string // the saga's ID
	Step         string
	Attempt      int  // from 1
	Compensating bool // true in a compensation
}

// Key is the idempotency key of the step's action (or, when compensating,
// of its compensation): the same for every attempt, so that a service can
// apply it at most once.
func (s StepInfo) Key() string {
	if s.Compensating {
		return s.ID + "/" + s.Step + "/compensate"
	}
	return s.ID + "/" + s.Step
}

type stepInfoKey struct{}

// StepFromContext returns the step that ctx was given to, if any.
func StepFromContext(ctx context.Context) (StepInfo, bool) {
	s, ok := ctx.Value(stepInfoKey{}).(StepInfo)
	return s, ok
}

// ContextWithStep returns ctx carrying s: for a service that received the
// step over the network and passes it on, as the shop example does.
func ContextWithStep(ctx context.Context, s StepInfo) context.Context {
	return &stepContext{Context: ctx, info: s}
}

// stepContext is context.WithValue for a StepInfo, in one allocation
// instead of two: the runner makes one for every attempt.
type stepContext struct {
	context.Context
	info StepInfo
}

func (c *stepContext) Value(key any) any {
	if key == (stepInfoKey{}) {
		return c.info
	}
	return c.Context.Value(key)
}
