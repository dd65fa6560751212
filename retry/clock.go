package retry

import (
	"context"
	"time"
)

// Clock is the time a Policy reads and sleeps on. The default
// is the real one; tests inject their own to be deterministic.
type Clock interface {
	Now() time.Time
	// Sleep waits d, or until ctx ends, whichever is first, and returns
	// ctx's error in the second case.
	Sleep(ctx context.Context, d time.Duration) error
}

type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }

func (realClock) Sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
