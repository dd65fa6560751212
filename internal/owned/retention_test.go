package owned

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"
)

// forgets records what a set forgot, and when.
type forgets struct {
	mu  sync.Mutex
	ids []string
	at  []time.Time
	got chan string
}

func (f *forgets) forget(_ context.Context, id string) error {
	f.mu.Lock()
	f.ids = append(f.ids, id)
	f.at = append(f.at, time.Now())
	f.mu.Unlock()
	f.got <- id
	return nil
}

func TestEndedWorkIsForgottenAfterTheRetention(t *testing.T) {
	var s Set[*work]
	f := &forgets{got: make(chan string, 10)}
	const d = 30 * time.Millisecond
	s.Retain(d, f.forget)
	start := time.Now()
	s.Ended("a")
	s.Ended("b")
	for range 2 {
		<-f.got
	}
	if got := slices.Sorted(slices.Values(f.ids)); !slices.Equal(got, []string{"a", "b"}) {
		t.Fatalf("forgot %v, want a and b", f.ids)
	}
	if early := f.at[0].Sub(start); early < d {
		t.Fatalf("forgot after %v, before the retention of %v", early, d)
	}
	// After an idle spell, the forgetting starts again.
	s.Ended("c")
	if id := <-f.got; id != "c" {
		t.Fatalf("forgot %q, want c", id)
	}
	if err := s.Close(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
}

func TestCloseStopsTheForgetting(t *testing.T) {
	var s Set[*work]
	f := &forgets{got: make(chan string, 10)}
	s.Retain(time.Hour, f.forget)
	s.Ended("a")
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.Close(context.Background(), nil)
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Close waited for the retention period")
	}
	s.Ended("b") // after Close: ignored, starts nothing
	if len(f.ids) != 0 {
		t.Fatalf("forgot %v before its time", f.ids)
	}
}

// A forget that hangs until its ctx ends gives up when Close begins.
func TestCloseCancelsAForgetInFlight(t *testing.T) {
	var s Set[*work]
	in := make(chan struct{})
	s.Retain(time.Nanosecond, func(ctx context.Context, _ string) error {
		close(in)
		<-ctx.Done()
		return ctx.Err()
	})
	s.Ended("a")
	<-in
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.Close(ctx, nil); err != nil {
		t.Fatalf("Close = %v: the forget in flight did not give up", err)
	}
}

func TestNoRetentionKeepsEverything(t *testing.T) {
	var s Set[*work]
	s.Ended("a") // no Retain: nothing to do, no goroutine (goleak checks)
	s.Retain(0, func(context.Context, string) error { t.Fatal("forgot with retention 0"); return nil })
	s.Ended("b")
}
