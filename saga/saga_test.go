package saga_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/otelpatterns/otelpatterns/journal"
	"github.com/otelpatterns/otelpatterns/retry"
	"github.com/otelpatterns/otelpatterns/saga"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// order is the state of the test sagas.
type order struct {
	Items   int      `json:"items"`
	Reserve string   `json:"reserve,omitempty"`
	Charge  string   `json:"charge,omitempty"`
	Ship    string   `json:"ship,omitempty"`
	Trail   []string `json:"trail,omitempty"`
}

// ledger records what the steps did, in order, through a barrier.
type ledger struct {
	mu      sync.Mutex
	events  []string
	barrier *saga.Barrier
}

func newLedger() *ledger { return &ledger{barrier: saga.NewBarrier()} }

func (l *ledger) log(e string) {
	l.mu.Lock()
	l.events = append(l.events, e)
	l.mu.Unlock()
}

func (l *ledger) list() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.events)
}

// step returns a step whose action and compensation log their effects
// through the barrier; fail makes the action fail.
func (l *ledger) step(name string, fail error, after ...string) saga.Step[order] {
	return saga.Step[order]{
		Name:  name,
		After: after,
		Action: func(ctx context.Context, o order) (order, error) {
			info, _ := saga.StepFromContext(ctx)
			if fail != nil {
				return o, fail
			}
			_, err := l.barrier.Action(ctx, info.ID, name, func(context.Context) error {
				l.log("do " + name)
				return nil
			})
			o.Trail = append(o.Trail, name)
			return o, err
		},
		Compensate: func(ctx context.Context, o order) error {
			info, _ := saga.StepFromContext(ctx)
			_, err := l.barrier.Compensate(ctx, info.ID, name, func(context.Context) error {
				l.log("undo " + name)
				return nil
			})
			return err
		},
	}
}

func newRunner(t *testing.T, log journal.Log, opts ...saga.Option) *saga.Runner {
	t.Helper()
	fast, err := retry.New(retry.WithMaxAttempts(3), retry.WithConstantBackoff(time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	r, err := saga.NewRunner(log, append([]saga.Option{saga.WithCompensationRetry(fast)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := r.Close(context.Background()); err != nil && !errors.Is(err, saga.ErrClosed) {
			t.Error(err)
		}
	})
	return r
}

func memLog(t *testing.T) *journal.Memory {
	t.Helper()
	m, err := journal.NewMemory()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

func register[S any](t *testing.T, r *saga.Runner, name string, steps []saga.Step[S], opts ...saga.DefinitionOption[S]) *saga.Saga[S] {
	t.Helper()
	def, err := saga.New(name, 1, steps, opts...)
	if err != nil {
		t.Fatal(err)
	}
	s, err := saga.Register(r, def)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestCompletes(t *testing.T) {
	l := newLedger()
	s := register(t, newRunner(t, memLog(t)), "checkout", []saga.Step[order]{l.step("reserve", nil), l.step("charge", nil), l.step("ship", nil)})
	got, o, err := s.Run(context.Background(), "order-1", order{Items: 2})
	if err != nil || o != saga.Completed {
		t.Fatalf("Run = %v, %v; want Completed, nil", o, err)
	}
	if !slices.Equal(got.Trail, []string{"reserve", "charge", "ship"}) || got.Items != 2 {
		t.Fatalf("final state %+v", got)
	}
	if ev := l.list(); !slices.Equal(ev, []string{"do reserve", "do charge", "do ship"}) {
		t.Fatalf("effects %q", ev)
	}
}

func TestFailureCompensatesInReverse(t *testing.T) {
	l := newLedger()
	declined := errors.New("card declined")
	s := register(t, newRunner(t, memLog(t)), "checkout", []saga.Step[order]{l.step("reserve", nil), l.step("charge", nil), l.step("ship", declined)})
	_, o, err := s.Run(context.Background(), "order-1", order{})
	if o != saga.Compensated || !errors.Is(err, declined) || !errors.Is(err, saga.ErrAborted) {
		t.Fatalf("Run = %v, %v; want Compensated with the step's error", o, err)
	}
	var se *saga.Error
	if !errors.As(err, &se) || se.Step != "ship" {
		t.Fatalf("error %v does not name the failed step", err)
	}
	want := []string{"do reserve", "do charge", "undo charge", "undo reserve"}
	if ev := l.list(); !slices.Equal(ev, want) {
		t.Fatalf("effects %q, want %q (ship's action never ran, so its compensation had no effect)", ev, want)
	}
}

func TestEndedIDReturnsRecordedOutcome(t *testing.T) {
	l := newLedger()
	log := memLog(t)
	boom := errors.New("boom")
	s := register(t, newRunner(t, log), "checkout", []saga.Step[order]{l.step("reserve", nil), l.step("charge", boom)})
	_, o1, err1 := s.Run(context.Background(), "order-1", order{Items: 1})
	_, o2, err2 := s.Run(context.Background(), "order-1", order{Items: 99})
	if o1 != saga.Compensated || o2 != saga.Compensated || err2 == nil || err1.Error() != err2.Error() {
		t.Fatalf("runs: %v %v, then %v %v; want the same compensated outcome", o1, err1, o2, err2)
	}
	if n := len(l.list()); n != 2 {
		t.Fatalf("the second Run had effects: %q", l.list())
	}
	ok := register(t, newRunner(t, log), "other", []saga.Step[order]{l.step("a", nil)})
	if _, _, err := ok.Run(context.Background(), "order-1", order{}); err == nil || !strings.Contains(err.Error(), "checkout") {
		t.Fatalf("Run of another saga's ID = %v, want an error naming the saga", err)
	}
}

func TestParallelStepsMerge(t *testing.T) {
	// reserve and charge run in parallel on their own copies of the
	// state; ship needs both.
	r := newRunner(t, memLog(t))
	started := make(chan string, 2)
	both := make(chan struct{})
	var once sync.Once
	parallel := func(name string, set func(*order)) saga.Step[order] {
		return saga.Step[order]{Name: name, Action: func(ctx context.Context, o order) (order, error) {
			started <- name
			if len(started) == 2 {
				once.Do(func() { close(both) })
			}
			select { // each waits until both run at once
			case <-both:
			case <-time.After(5 * time.Second):
				return o, errors.New("the steps did not run in parallel")
			}
			set(&o)
			o.Trail = append(o.Trail, name) // a slice of its own copy: no race
			return o, nil
		}}
	}
	steps := []saga.Step[order]{
		parallel("reserve", func(o *order) { o.Reserve = "R1" }),
		parallel("charge", func(o *order) { o.Charge = "C1" }),
		{Name: "ship", After: []string{"reserve", "charge"}, Action: func(ctx context.Context, o order) (order, error) {
			if o.Reserve == "" || o.Charge == "" {
				return o, fmt.Errorf("ship saw %+v", o)
			}
			o.Ship = "S1"
			return o, nil
		}},
	}
	merge := saga.WithMerge(func(cur order, step string, res order) order {
		switch step {
		case "reserve":
			cur.Reserve = res.Reserve
		case "charge":
			cur.Charge = res.Charge
		default:
			cur.Ship = res.Ship
		}
		return cur
	})
	s := register(t, r, "parallel", steps, merge)
	got, o, err := s.Run(context.Background(), "p-1", order{Trail: []string{"start"}})
	if err != nil || o != saga.Completed || got.Ship != "S1" {
		t.Fatalf("Run = %+v, %v, %v", got, o, err)
	}
}

func TestInvalidDefinitions(t *testing.T) {
	act := func(ctx context.Context, o order) (order, error) { return o, nil }
	cases := map[string]struct {
		steps []saga.Step[order]
		want  string
	}{
		"no steps":          {nil, "no steps"},
		"unnamed":           {[]saga.Step[order]{{Action: act}}, "no name"},
		"no action":         {[]saga.Step[order]{{Name: "a"}}, "no Action"},
		"duplicate":         {[]saga.Step[order]{{Name: "a", Action: act}, {Name: "a", Action: act}}, `two steps are named "a"`},
		"unknown":           {[]saga.Step[order]{{Name: "a", Action: act, After: []string{"zz"}}}, `"zz", which is not a step`},
		"cycle":             {[]saga.Step[order]{{Name: "a", Action: act, After: []string{"b"}}, {Name: "b", Action: act, After: []string{"a"}}}, "cycle"},
		"parallel no merge": {[]saga.Step[order]{{Name: "a", Action: act}, {Name: "b", Action: act, After: []string{"a"}}, {Name: "c", Action: act, After: []string{"a"}}}, "WithMerge"},
	}
	for name, c := range cases {
		if _, err := saga.New("x", 1, c.steps); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: New = %v, want an error containing %q", name, err, c.want)
		}
	}
	if _, err := saga.New[order]("", 1, []saga.Step[order]{{Name: "a", Action: act}}); err == nil {
		t.Error("New with an empty name succeeded")
	}
	if _, err := saga.New[order]("x", 0, []saga.Step[order]{{Name: "a", Action: act}}); err == nil {
		t.Error("New with version 0 succeeded")
	}
	type bad struct{ C chan int }
	if _, err := saga.New("x", 1, []saga.Step[bad]{{Name: "a", Action: func(ctx context.Context, b bad) (bad, error) { return b, nil }}}); err == nil || !strings.Contains(err.Error(), "JSON") {
		t.Errorf("New with a state JSON cannot encode = %v", err)
	}
	if _, err := saga.NewRunner(nil); err == nil {
		t.Error("NewRunner(nil) succeeded")
	}
}
