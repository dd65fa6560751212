package retry

import (
	"context"
	"time"
)

// sleep waits d, or until ctx ends, whichever is first, and returns ctx's
// error in the second case. Tests run the policy in a testing/synctest
// bubble, where it passes at once.
func sleep(ctx context.Context, d time.Duration) error {
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
