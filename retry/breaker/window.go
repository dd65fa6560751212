package breaker

import "time"

// window counts outcomes over a sliding span of time, in ten buckets.
type window struct {
	span    time.Duration
	buckets [10]bucket
}

type bucket struct {
	start           time.Time
	total, failures int64
}

// add counts one outcome at now and returns the totals over the span.
func (w *window) add(now time.Time, failed bool) (total, failures int64) {
	width := max(w.span/time.Duration(len(w.buckets)), 1)
	slot := now.Truncate(width)
	bk := &w.buckets[(slot.UnixNano()/int64(width))%int64(len(w.buckets))]
	if !bk.start.Equal(slot) {
		*bk = bucket{start: slot}
	}
	bk.total++
	if failed {
		bk.failures++
	}
	return w.totals(now)
}

// totals returns the counts over the span up to now.
func (w *window) totals(now time.Time) (total, failures int64) {
	for _, b := range w.buckets {
		if !b.start.IsZero() && now.Sub(b.start) < w.span {
			total += b.total
			failures += b.failures
		}
	}
	return total, failures
}

func (w *window) reset() { w.buckets = [10]bucket{} }
