// Package retryhook lets the library's own runners retry an operation
// without retry's spans: a saga step or a two-phase call has spans of its
// own for each attempt, so the retry and retry.attempt spans would only
// double them. Package retry sets RunUntraced when it loads; users, who
// cannot import an internal package, keep retry's one public behaviour.
package retryhook

import "context"

// RunUntraced runs op under policy, a *retry.Policy, as retry.Run does but
// with no span of retry's own: op gets the caller's ctx, span and all. Its
// metrics are recorded as usual.
var RunUntraced func(ctx context.Context, policy any, op func(context.Context) error) error
