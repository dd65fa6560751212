package owned

import (
	"context"
	"errors"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type work struct{ stop chan struct{} }

func TestOneLiveWorkPerID(t *testing.T) {
	var s Set[*work]
	a, b := &work{}, &work{}
	if _, claimed, open := s.Claim("x", a); !claimed || !open {
		t.Fatal("the first claim failed")
	}
	if live, claimed, _ := s.Claim("x", b); claimed || live != a {
		t.Fatal("a second claim of a live ID did not return the live work")
	}
	s.Release("x", b) // not x's: nothing happens
	if got, ok := s.Get("x"); !ok || got != a {
		t.Fatal("releasing another work forgot the live one")
	}
	if ids, live := s.Live(); len(ids) != 1 || ids[0] != "x" || live[0] != a {
		t.Fatalf("Live = %q, %v; want x's work", ids, live)
	}
	s.Release("x", a)
	s.Done()
	if ids, _ := s.Live(); len(ids) != 0 {
		t.Fatalf("Live after the release = %q, want none", ids)
	}
	if _, ok := s.Get("x"); ok {
		t.Fatal("a released work is still live")
	}
	if err := s.Close(context.Background(), nil); err != nil {
		t.Fatalf("Close = %v", err)
	}
	if _, _, open := s.Claim("y", b); open {
		t.Fatal("a claim after Close succeeded")
	}
	if err := s.Close(context.Background(), nil); err != nil {
		t.Fatalf("a second Close = %v, want nil: Close is idempotent", err)
	}
}

func TestCloseStopsWhatOutlivesItsContext(t *testing.T) {
	var s Set[*work]
	w := &work{stop: make(chan struct{})}
	s.Claim("x", w)
	go func() {
		defer s.Done()
		<-w.stop // runs until stopped
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	stopped := 0
	err := s.Close(ctx, func(w *work) { stopped++; close(w.stop) })
	if !errors.Is(err, context.DeadlineExceeded) || stopped != 1 {
		t.Fatalf("Close = %v after stopping %d", err, stopped)
	}
}

// A goroutine stuck in a call that heeds no ctx (a hung disk) does not
// hang Close: it returns when its ctx ends, after stopping the work.
func TestCloseReturnsBesideAStuckGoroutine(t *testing.T) {
	var s Set[*work]
	w := &work{stop: make(chan struct{})}
	s.Claim("x", w)
	stuck := make(chan struct{})
	go func() {
		defer s.Done()
		<-stuck // heeds nothing
	}()
	defer close(stuck)
	closing := s.Closing()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	returned := make(chan error, 1)
	go func() {
		err := s.Close(ctx, func(w *work) { close(w.stop) })
		returned <- err
	}()
	select {
	case err := <-returned:
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Close = %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close waited for a goroutine that cannot return")
	}
	select {
	case <-closing:
	default:
		t.Fatal("Closing was not closed by Close")
	}
	select {
	case <-w.stop:
	default:
		t.Fatal("Close did not stop the live work")
	}
}
