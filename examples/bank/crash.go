package main

import (
	"context"
	"errors"
	"sync"

	"github.com/otelpatterns/otelpatterns/journal"
	"github.com/otelpatterns/otelpatterns/twophase"
)

var errCrashed = errors.New("the coordinator crashed (injected)")

// crashSwitch stands for the coordinator's process dying: after a number
// of journal appends and participant calls, every later one fails, so the
// dead coordinator neither writes nor calls anything again.
type crashSwitch struct {
	mu   sync.Mutex
	left int // operations until the crash; negative for never
	dead bool
}

func newCrashSwitch(after int) *crashSwitch { return &crashSwitch{left: after} }

func (c *crashSwitch) tick() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.dead {
		return errCrashed
	}
	if c.left == 0 {
		c.dead = true
		return errCrashed
	}
	c.left--
	return nil
}

// arm makes the process die after n more operations.
func (c *crashSwitch) arm(n int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.left = n
}

func (c *crashSwitch) armed() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.left >= 0 || c.dead
}

func (c *crashSwitch) crashed() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.dead
}

func (c *crashSwitch) journal(l journal.Log) journal.Log { return crashingLog{Log: l, sw: c} }

func (c *crashSwitch) participant(p twophase.Participant) twophase.Participant {
	return crashingParticipant{Participant: p, sw: c}
}

type crashingLog struct {
	journal.Log
	sw *crashSwitch
}

func (l crashingLog) Append(ctx context.Context, tx string, seq uint64, recs ...journal.Record) error {
	if err := l.sw.tick(); err != nil {
		return err
	}
	return l.Log.Append(ctx, tx, seq, recs...)
}

type crashingParticipant struct {
	twophase.Participant
	sw *crashSwitch
}

func (p crashingParticipant) Prepare(ctx context.Context, tx string) error {
	if err := p.sw.tick(); err != nil {
		return err
	}
	return p.Participant.Prepare(ctx, tx)
}

func (p crashingParticipant) Commit(ctx context.Context, tx string) error {
	if err := p.sw.tick(); err != nil {
		return err
	}
	return p.Participant.Commit(ctx, tx)
}

func (p crashingParticipant) Abort(ctx context.Context, tx string) error {
	if err := p.sw.tick(); err != nil {
		return err
	}
	return p.Participant.Abort(ctx, tx)
}
