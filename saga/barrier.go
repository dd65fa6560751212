package saga

import (
	"context"
	"errors"
	"hash/maphash"
	"sync"
)

// Barrier applies a saga step's effects at most once, in a service that a
// step calls: the sub-transaction barrier technique (as in DTM). Keyed by
// saga ID and step, it prevents the three anomalies that retries and
// crashes cause:
//
//   - a duplicate: an action or compensation delivered again does nothing;
//   - a null compensation: compensating an action that never ran here does
//     nothing, yet counts as done;
//   - a suspended action: an action that arrives after its compensation
//     (a slow request overtaken by the abort) does nothing.
//
// The effect runs under the key's lock, and the barrier records it only
// when it succeeds, so a failed effect can be tried again. This Barrier
// keeps its marks in memory, which suits a service whose effects are in
// memory too; a service that keeps its state in a database keeps the
// marks in a table of its own, written in the same transaction as the
// effect, by the same rules.
type Barrier struct {
	seed  maphash.Seed
	locks [64]sync.Mutex
	mu    sync.Mutex
	marks map[barrierKey]mark
}

type barrierKey struct{ id, step string }

type mark uint8

const (
	markAction     mark = 1 << iota // the action ran, or was blocked by a compensation
	markCompensate                  // the compensation ran
)

// NewBarrier returns an empty barrier.
func NewBarrier() *Barrier {
	return &Barrier{seed: maphash.MakeSeed(), marks: map[barrierKey]mark{}}
}

var errNoKey = errors.New("saga: Barrier: empty saga ID or step; pass them from StepFromContext")

// Action runs effect for the action of step in saga id, unless it has run
// already or the step has been compensated. ran reports whether effect
// ran; an error is effect's, and leaves no mark.
func (b *Barrier) Action(ctx context.Context, id, step string, effect func(context.Context) error) (ran bool, err error) {
	if ctx == nil {
		return false, errNilContext
	}
	return b.do(ctx, barrierKey{id, step}, false, effect)
}

// Compensate runs effect for the compensation of step in saga id, unless
// it has run already, or the action never ran here: then it only marks the
// step, so that the action, should it arrive late, does nothing.
func (b *Barrier) Compensate(ctx context.Context, id, step string, effect func(context.Context) error) (ran bool, err error) {
	if ctx == nil {
		return false, errNilContext
	}
	return b.do(ctx, barrierKey{id, step}, true, effect)
}

func (b *Barrier) do(ctx context.Context, k barrierKey, compensate bool, effect func(context.Context) error) (bool, error) {
	if k.id == "" || k.step == "" {
		return false, errNoKey
	}
	if err := ctx.Err(); err != nil {
		return false, err
	}
	lock := &b.locks[maphash.String(b.seed, k.id+"\x00"+k.step)%uint64(len(b.locks))]
	lock.Lock()
	defer lock.Unlock()
	b.mu.Lock()
	m := b.marks[k]
	b.mu.Unlock()
	want := markAction
	if compensate {
		want = markCompensate
		if m&markAction == 0 { // the action never ran: block it, and do nothing
			b.set(k, m|markAction|markCompensate)
			return false, nil
		}
	}
	if m&want != 0 {
		return false, nil
	}
	if err := effect(ctx); err != nil {
		return true, err
	}
	b.set(k, m|want)
	return true, nil
}

func (b *Barrier) set(k barrierKey, m mark) {
	b.mu.Lock()
	b.marks[k] = m
	b.mu.Unlock()
}

// Forget drops the marks of saga id, once it has ended.
func (b *Barrier) Forget(id string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for k := range b.marks {
		if k.id == id {
			delete(b.marks, k)
		}
	}
}
