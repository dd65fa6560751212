package sampling

import (
	"context"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// Adaptive keeps a steady rate of root spans per key (the span name, by
// default) whatever the traffic: at the end of each interval it sets each
// key's probability to the target rate over the rate it saw, so that from
// the second interval after a change in traffic the kept rate is back at
// the target. Its thresholds are consistent ones, written to the
// tracestate, so downstream services follow them and adjusted counts hold.
// The first span of a key in each interval is kept whatever its
// randomness (with th erased: its probability is not known), so that no
// key goes unseen. A span with a parent follows it, as ParentThreshold
// does: only roots are sampled adaptively.
//
// The keys are bounded (WithMaxKeys); past the bound, new keys share one
// overflow key, "_other". Adaptive is a Composable: use it in RuleBased,
// or pass it to Composite alone.
type Adaptive struct {
	cfg    adaptiveConfig
	keys   atomic.Pointer[map[string]*keyState] // copied on write, under mu
	next   atomic.Int64                         // when to recompute, in the clock's Unix nanoseconds (WithClock)
	due    atomic.Bool                          // the interval has passed (the real clock's timer says so)
	timer  *time.Timer                          // sets due; nil WithClock
	mu     sync.Mutex                           // a recomputation, or a new key
	last   int64                                // the previous recomputation
	other  *keyState
	follow parentThreshold
	stop   func()
}

// keyState is one key's counts and current intent.
type keyState struct {
	name     string
	attrs    attribute.Set // the key, for the metrics
	seen     atomic.Int64  // every root span, since the start
	kept     atomic.Int64  // the kept ones
	interval atomic.Int64  // seen at the last recomputation
	intent   atomic.Pointer[Intent]
}

const overflowKey = "_other"

// NewAdaptive returns an adaptive sampler that keeps about target root
// spans a second per key.
func NewAdaptive(target float64, opts ...AdaptiveOption) (*Adaptive, error) {
	cfg := adaptiveConfig{interval: time.Second, maxKeys: 100, now: time.Now, key: func(p Params) string { return p.Name }}
	for _, o := range opts {
		if o != nil {
			o.apply(&cfg)
		}
	}
	switch {
	case !(target > 0) || math.IsInf(target, 1):
		return nil, fmt.Errorf("sampling: NewAdaptive(%v): the target must be a positive number of spans a second", target)
	case cfg.interval <= 0:
		return nil, fmt.Errorf("sampling: WithInterval(%v): the interval must be positive", cfg.interval)
	case cfg.maxKeys < 1:
		return nil, fmt.Errorf("sampling: WithMaxKeys(%d): allow at least one key", cfg.maxKeys)
	case cfg.now == nil:
		return nil, fmt.Errorf("sampling: WithClock(nil): give a clock, or leave the option out for time.Now")
	case cfg.key == nil:
		return nil, fmt.Errorf("sampling: WithKey(nil): give a key function, or leave the option out for the span name")
	}
	cfg.target = target
	a := &Adaptive{cfg: cfg, follow: parentThreshold{root: alwaysOn}}
	a.other = newKeyState(overflowKey)
	a.keys.Store(&map[string]*keyState{})
	a.last = cfg.now().UnixNano()
	a.next.Store(a.last + int64(cfg.interval))
	if !cfg.stepped {
		// A runtime timer marks the end of each interval, so that a
		// decision reads an atomic, not the clock.
		a.timer = time.AfterFunc(cfg.interval, func() { a.due.Store(true) })
	}
	a.stop = a.observe()
	return a, nil
}

func newKeyState(name string) *keyState {
	k := &keyState{name: name, attrs: attribute.NewSet(keyKey.String(name))}
	all := reliableAt(AlwaysThreshold)
	k.intent.Store(&all)
	return k
}

// Intent implements Composable.
func (a *Adaptive) Intent(p Params) Intent {
	if !p.Root() {
		return a.follow.Intent(p)
	}
	if a.isDue() {
		a.recompute()
	}
	k := a.state(a.cfg.key(p))
	n := k.seen.Add(1)
	in := *k.intent.Load()
	switch {
	case in.Threshold.Keeps(p.Randomness):
	case n == k.interval.Load()+1: // the key's first span this interval
		in = unknown
	default:
		return in
	}
	k.kept.Add(1)
	return in
}

// state returns the key's state, adding it while there is room.
func (a *Adaptive) state(key string) *keyState {
	if k, ok := (*a.keys.Load())[key]; ok {
		return k
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	keys := *a.keys.Load()
	if k, ok := keys[key]; ok {
		return k
	}
	if len(keys) >= a.cfg.maxKeys {
		return a.other
	}
	grown := make(map[string]*keyState, len(keys)+1)
	for name, k := range keys {
		grown[name] = k
	}
	k := newKeyState(key)
	grown[key] = k
	a.keys.Store(&grown)
	return k
}

// isDue reports whether the interval has ended.
func (a *Adaptive) isDue() bool {
	if a.timer != nil {
		return a.due.Load()
	}
	return a.cfg.now().UnixNano() >= a.next.Load()
}

// recompute sets every key's probability to the target over the rate it
// saw since the last time, once per interval.
func (a *Adaptive) recompute() {
	a.mu.Lock()
	defer a.mu.Unlock()
	if !a.isDue() {
		return // another goroutine did it
	}
	now := a.cfg.now().UnixNano()
	elapsed := time.Duration(now - a.last).Seconds()
	for _, k := range a.all() {
		seen := k.seen.Load()
		n := seen - k.interval.Load()
		k.interval.Store(seen)
		p := 1.0
		if n > 0 {
			p = min(1, a.cfg.target*elapsed/float64(n))
		}
		t, err := ProbabilityThreshold(max(p, 1.0/MaxRandomness))
		if err != nil {
			continue
		}
		in := reliableAt(t)
		k.intent.Store(&in)
	}
	a.last = now
	a.next.Store(now + int64(a.cfg.interval))
	if a.timer != nil {
		a.due.Store(false)
		a.timer.Reset(a.cfg.interval)
	}
}

func (a *Adaptive) all() []*keyState {
	keys := *a.keys.Load()
	all := make([]*keyState, 0, len(keys)+1)
	for _, k := range keys {
		all = append(all, k)
	}
	return append(all, a.other)
}

// Probability returns key's current probability; a key not seen yet has 1.
func (a *Adaptive) Probability(key string) float64 {
	k, ok := (*a.keys.Load())[key]
	if !ok && key == overflowKey {
		k, ok = a.other, true
	}
	if !ok {
		return 1
	}
	return k.intent.Load().Threshold.Probability()
}

// Description implements Composable.
func (a *Adaptive) Description() string {
	return fmt.Sprintf("Adaptive{target:%g/s,interval:%v}", a.cfg.target, a.cfg.interval)
}

// Close stops the sampler's interval timer and its metrics. It goes on
// sampling, at the probabilities it has.
func (a *Adaptive) Close() error {
	if a.timer != nil {
		a.timer.Stop()
	}
	a.stop()
	return nil
}

// observe registers the metrics, read from the counters when collected:
// the decisions cost nothing on the hot path but two atomic adds.
func (a *Adaptive) observe() func() {
	tel := cache.Get(a.cfg.tel)
	return tel.Observe(func(_ context.Context, o metric.Observer) error {
		for _, k := range a.all() {
			seen, kept := k.seen.Load(), k.kept.Load()
			if seen == 0 {
				continue
			}
			o.ObserveFloat64(tel.probability, k.intent.Load().Threshold.Probability(), metric.WithAttributeSet(k.attrs))
			o.ObserveInt64(tel.decisions, kept, metric.WithAttributeSet(attribute.NewSet(keyKey.String(k.name), keyDecision.String("kept"))))
			o.ObserveInt64(tel.decisions, seen-kept, metric.WithAttributeSet(attribute.NewSet(keyKey.String(k.name), keyDecision.String("dropped"))))
		}
		return nil
	}, tel.probability, tel.decisions)
}

var _ Composable = (*Adaptive)(nil)
