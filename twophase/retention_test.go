package twophase_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/otelpatterns/otelpatterns/journal"
	"github.com/otelpatterns/otelpatterns/twophase"
)

// forgotten waits, at most 5 s, until Status says that tx was forgotten.
func forgotten(t *testing.T, c *twophase.Coordinator, tx string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, err := c.Status(context.Background(), tx)
		if errors.Is(err, twophase.ErrForgotten) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("Status(%s) = %v, still on record after the retention", tx, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestRetentionForgetsEndedTransactions(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t)
	const d = 20 * time.Millisecond
	c := w.coordinator(twophase.WithRetention(d), twophase.WithResolver(0, 0))
	defer c.Close(ctx)
	a, b := w.participant("a"), w.participant("b")
	if dec, err := c.Execute(ctx, "t1", a, b); dec != twophase.Committed || err != nil {
		t.Fatalf("Execute = %v, %v", dec, err)
	}
	w.resources["b"].noVote["t2"] = true
	if dec, _ := c.Execute(ctx, "t2", a, b); dec != twophase.Aborted {
		t.Fatalf("Execute = %v, want Aborted", dec)
	}
	forgotten(t, c, "t1")
	forgotten(t, c, "t2")
	if _, err := c.Execute(ctx, "t1", a, b); !errors.Is(err, twophase.ErrForgotten) {
		t.Fatalf("Execute of a forgotten ID = %v, want ErrForgotten", err)
	}

	// In doubt, it has not ended: kept until every participant has
	// acknowledged, then forgotten.
	b.commitFails["t3"] = 100
	if dec, err := c.Execute(ctx, "t3", a, b); dec != twophase.Committed || !errors.Is(err, twophase.ErrInDoubt) {
		t.Fatalf("Execute = %v, %v; want Committed, in doubt", dec, err)
	}
	time.Sleep(10 * d)
	if dec, err := c.Status(ctx, "t3"); dec != twophase.Committed || err != nil {
		t.Fatalf("Status of an in-doubt transaction after the retention = %v, %v; want it kept", dec, err)
	}
	b.commitFails["t3"] = 0
	if _, err := c.Recover(ctx); err != nil {
		t.Fatal(err)
	}
	forgotten(t, c, "t3")
}

func TestNegativeRetentionIsAnError(t *testing.T) {
	log, _ := journal.NewMemory()
	defer log.Close()
	if _, err := twophase.NewCoordinator(log, twophase.WithRetention(-time.Second)); err == nil {
		t.Fatal("NewCoordinator accepted a negative retention")
	}
}
