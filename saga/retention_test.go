package saga_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/otelpatterns/otelpatterns/journal"
	"github.com/otelpatterns/otelpatterns/saga"
)

// forgotten waits, at most 5 s, until Lookup says that id was forgotten.
func forgotten(t *testing.T, r *saga.Runner, id string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, err := r.Lookup(context.Background(), id)
		if errors.Is(err, saga.ErrForgotten) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("Lookup(%s) = %v, still on record after the retention", id, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestRetentionForgetsEndedSagas(t *testing.T) {
	ctx := context.Background()
	log := memLog(t)
	const d = 20 * time.Millisecond
	r := newRunner(t, log, saga.WithRetention(d))
	l := newLedger()
	s := register(t, r, "checkout", []saga.Step[order]{l.step("reserve", nil), l.step("charge", nil), l.step("ship", nil)})
	fail := register(t, r, "declined", []saga.Step[order]{l.step("reserve", nil), l.step("charge", errors.New("declined"))})

	if _, o, err := s.Run(ctx, "done", order{}); o != saga.Completed {
		t.Fatalf("Run = %v, %v", o, err)
	}
	if _, o, _ := fail.Run(ctx, "undone", order{}); o != saga.Compensated {
		t.Fatalf("Run = %v, want Compensated", o)
	}
	forgotten(t, r, "done")
	forgotten(t, r, "undone")
	// Its ID is kept by the tombstone: it cannot begin again by mistake.
	if _, _, err := s.Run(ctx, "done", order{}); !errors.Is(err, saga.ErrForgotten) {
		t.Fatalf("Run of a forgotten ID = %v, want ErrForgotten", err)
	}

	// A stuck saga has not ended: it is kept until it is resolved.
	stuckFlow := register(t, r, "stuck", []saga.Step[order]{
		{Name: "charge", Action: noop, Compensate: func(context.Context, order) error { return errors.New("refund service down") }},
		{Name: "ship", Action: failing},
	})
	if _, o, _ := stuckFlow.Run(ctx, "stuck-1", order{}); o != saga.Stuck {
		t.Fatalf("Run = %v, want Stuck", o)
	}
	time.Sleep(10 * d)
	if info, err := r.Lookup(ctx, "stuck-1"); err != nil || info.Outcome != saga.Stuck {
		t.Fatalf("Lookup of a stuck saga after the retention = %+v, %v; want it kept", info, err)
	}
	if err := r.Resolve(ctx, "stuck-1", "refunded by hand"); err != nil {
		t.Fatal(err)
	}
	forgotten(t, r, "stuck-1")
}

func TestNoRetentionKeepsEndedSagas(t *testing.T) {
	ctx := context.Background()
	r := newRunner(t, memLog(t))
	l := newLedger()
	s := register(t, r, "checkout", []saga.Step[order]{l.step("reserve", nil)})
	if _, o, err := s.Run(ctx, "done", order{}); o != saga.Completed {
		t.Fatalf("Run = %v, %v", o, err)
	}
	time.Sleep(50 * time.Millisecond)
	if info, err := r.Lookup(ctx, "done"); err != nil || info.Outcome != saga.Completed {
		t.Fatalf("Lookup = %+v, %v; want Completed, kept", info, err)
	}
}

func TestNegativeRetentionIsAnError(t *testing.T) {
	log, _ := journal.NewMemory()
	defer log.Close()
	if _, err := saga.NewRunner(log, saga.WithRetention(-time.Second)); err == nil {
		t.Fatal("NewRunner accepted a negative retention")
	}
}
