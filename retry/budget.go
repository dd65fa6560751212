package retry

import (
	"fmt"
	"sync/atomic"

	"golang.org/x/time/rate"
)

// Budget caps retries at a fraction of calls across everything that shares
// it (a whole client, say), in the manner of gRPC's retry throttling, so
// that a failing dependency is not hit with every caller's retries at once.
//
// It holds up to max tokens and starts full. Each failed attempt takes a
// token; each success gives back ratio of one. While at most half the
// tokens are left (gRPC's rule: a retry needs more than half), no retry is
// allowed (first attempts always are), unless
// the floor limiter, if any, grants one. Share one Budget between the
// Policies of one dependency; it is safe for concurrent use and costs two
// atomic operations a call.
type Budget struct {
	tokens atomic.Int64 // in thousandths of a token
	max    int64
	ratio  int64
	floor  *rate.Limiter
}

const milli = 1000

// NewBudget returns a full budget of maxTokens tokens that gives back
// tokenRatio of a token per success. floor, if not nil, grants retries
// beyond the budget at its rate, so that a low-traffic client can still
// retry at all. It fails when maxTokens is below 1 or tokenRatio is not in
// (0, 1].
func NewBudget(maxTokens int, tokenRatio float64, floor *rate.Limiter) (*Budget, error) {
	switch {
	case maxTokens < 1:
		return nil, fmt.Errorf("retry: NewBudget(%d, %v): the token count must be at least 1", maxTokens, tokenRatio)
	case !(tokenRatio > 0 && tokenRatio <= 1):
		return nil, fmt.Errorf("retry: NewBudget(%d, %v): the token ratio must be in (0, 1]", maxTokens, tokenRatio)
	}
	b := &Budget{max: int64(maxTokens) * milli, ratio: max(1, int64(tokenRatio*milli)), floor: floor}
	b.tokens.Store(b.max)
	return b, nil
}

// Tokens returns how many tokens are left.
func (b *Budget) Tokens() float64 { return float64(b.tokens.Load()) / milli }

// allowRetry reports whether one more retry is allowed.
func (b *Budget) allowRetry() bool {
	return b.tokens.Load() > b.max/2 || b.floor != nil && b.floor.Allow()
}

func (b *Budget) succeeded() { b.add(b.ratio) }
func (b *Budget) failed()    { b.add(-milli) }

func (b *Budget) add(d int64) {
	for {
		old := b.tokens.Load()
		next := min(b.max, max(0, old+d))
		if next == old || b.tokens.CompareAndSwap(old, next) {
			return
		}
	}
}
