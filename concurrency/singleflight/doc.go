// Package singleflight de-duplicates concurrent calls by key: while a call
// for a key is in flight, later callers with the same key wait for its
// result instead of making their own. It is the cache-aside pattern's
// guard against a stampede: a thousand requests that miss the cache at
// once make one call to the database.
//
//	prices, err := singleflight.New[string, Price](singleflight.WithName("prices"))
//	...
//	p, shared, err := prices.Do(ctx, sku, func(ctx context.Context) (Price, error) {
//		return db.Price(ctx, sku)
//	})
//
// The shared call runs on its own goroutine, with the first caller's
// context values but not its cancellation, so that the first caller
// leaving does not fail everyone else; it is cancelled when the last
// caller waiting for it leaves. A panic in it is returned to every caller
// as an *errs.PanicError. Forget makes the next caller start afresh.
//
// Under a recording span, the shared call has a singleflight.call span
// under the first caller's, and each later caller a singleflight.wait span
// linked to it; otelpatterns.singleflight.shared counts the later callers.
package singleflight
