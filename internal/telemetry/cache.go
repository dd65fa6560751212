package telemetry

import (
	"reflect"
	"sync"
	"sync/atomic"
)

// Cache holds what package-level generic functions emit through (a
// [Telemetry] and the instruments built on it), built once per distinct
// [Config] and shared by every call that passes the same providers. Functions
// such as functional.ParallelMap take options per call, so without it they
// would build instruments per call.
//
// Reads take no lock and do not allocate: the cache is a copy-on-write map,
// replaced whole on the rare first use of a new Config. It holds one entry
// per distinct Config for the life of the process, which is bounded by the
// providers the program creates.
//
// A Config whose provider or propagator is not comparable (a user type
// holding a slice, say) cannot key a map: Get builds a fresh value for it
// each time, which is correct but slower.
type Cache[T any] struct {
	scope string
	build func(*Telemetry) T
	mu    sync.Mutex // serialises writers
	m     atomic.Pointer[map[Config]T]
}

// NewCache returns a cache that builds its values with build, from a
// [Telemetry] for scope.
func NewCache[T any](scope string, build func(*Telemetry) T) *Cache[T] {
	return &Cache[T]{scope: scope, build: build}
}

// Get returns the value for c, building it on first use. It is safe for
// concurrent use.
func (k *Cache[T]) Get(c Config) T {
	if v, ok := k.lookup(c); ok {
		return v
	}
	if !c.comparable() {
		return k.build(New(k.scope, c))
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	old := k.m.Load()
	if old != nil {
		if v, ok := (*old)[c]; ok {
			return v
		}
	}
	v := k.build(New(k.scope, c))
	next := make(map[Config]T, 1+lenOf(old))
	if old != nil {
		for key, val := range *old {
			next[key] = val
		}
	}
	next[c] = v
	k.m.Store(&next)
	return v
}

// lookup finds c in the current map. A Config that holds an uncomparable
// value panics when hashed; lookup reports it as not found, and Get's slow
// path then checks comparability once, with reflection, before it stores.
func (k *Cache[T]) lookup(c Config) (v T, ok bool) {
	m := k.m.Load()
	if m == nil {
		return v, false
	}
	defer func() {
		if recover() != nil {
			ok = false
		}
	}()
	v, ok = (*m)[c]
	return v, ok
}

func lenOf[M ~map[K]V, K comparable, V any](m *M) int {
	if m == nil {
		return 0
	}
	return len(*m)
}

// comparable reports whether c can key a map without panicking: every
// interface it holds has a dynamic value that == can compare.
func (c Config) comparable() bool {
	for _, v := range [...]any{c.tracerProvider, c.meterProvider, c.propagators} {
		if v != nil && !reflect.ValueOf(v).Comparable() {
			return false
		}
	}
	return true
}
