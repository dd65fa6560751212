package saga_test

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.opentelemetry.io/otel/baggage"
	"go.opentelemetry.io/otel/propagation"

	"github.com/otelpatterns/otelpatterns/journal"
	"github.com/otelpatterns/otelpatterns/retry"
	"github.com/otelpatterns/otelpatterns/saga"
)

// flaky returns a compensation that fails its first n calls.
func flaky(n int32, calls *atomic.Int32) func(context.Context, order) error {
	return func(ctx context.Context, o order) error {
		if calls.Add(1) <= n {
			return errors.New("refund service unavailable")
		}
		return nil
	}
}

func failing(context.Context, order) (order, error) { return order{}, errors.New("declined") }

func noop(_ context.Context, o order) (order, error) { return o, nil }

func TestCompensationRetriesUntilItSucceeds(t *testing.T) {
	var calls atomic.Int32
	s := register(t, newRunner(t, memLog(t)), "checkout", []saga.Step[order]{
		{Name: "charge", Action: noop, Compensate: flaky(2, &calls)},
		{Name: "ship", Action: failing},
	})
	_, o, err := s.Run(context.Background(), "o-1", order{})
	if o != saga.Compensated || calls.Load() != 3 {
		t.Fatalf("Run = %v, %v after %d compensation calls; want Compensated after 3", o, err, calls.Load())
	}
}

func TestStuckSagaIsListedRetriedAndResolved(t *testing.T) {
	log := memLog(t)
	r := newRunner(t, log) // compensation: 3 attempts
	var calls atomic.Int32
	var broken atomic.Bool
	broken.Store(true)
	s := register(t, r, "checkout", []saga.Step[order]{
		{Name: "charge", Action: noop, Compensate: func(ctx context.Context, o order) error {
			calls.Add(1)
			if broken.Load() {
				return errors.New("refund service down")
			}
			return nil
		}},
		{Name: "ship", Action: failing},
	})
	ctx := context.Background()
	for _, id := range []string{"o-1", "o-2"} {
		_, o, err := s.Run(ctx, id, order{})
		if o != saga.Stuck || !errors.Is(err, saga.ErrStuck) {
			t.Fatalf("Run(%s) = %v, %v; want Stuck", id, o, err)
		}
	}
	if calls.Load() != 6 {
		t.Fatalf("%d compensation calls, want 3 a saga", calls.Load())
	}
	stuck, err := r.Stuck(ctx)
	if err != nil || len(stuck) != 2 || stuck[0].ID != "o-1" || stuck[0].Step != "charge" {
		t.Fatalf("Stuck() = %+v, %v", stuck, err)
	}
	// Run on a stuck saga's ID says so, and runs nothing.
	if _, o, err := s.Run(ctx, "o-1", order{}); o != saga.Stuck || !errors.Is(err, saga.ErrStuck) || calls.Load() != 6 {
		t.Fatalf("Run of a stuck ID = %v, %v; want Stuck", o, err)
	}
	// Recover leaves stuck sagas alone.
	if _, err := r.Recover(ctx); err != nil || calls.Load() != 6 {
		t.Fatalf("Recover = %v, and compensated %d times; want stuck sagas left alone", err, calls.Load())
	}
	// Once the refund service is back, a person retries one ...
	broken.Store(false)
	if o, err := r.RetryStuck(ctx, "o-1"); o != saga.Compensated || !errors.Is(err, saga.ErrAborted) {
		t.Fatalf("RetryStuck = %v, %v; want Compensated", o, err)
	}
	// ... and resolves the other by hand.
	if err := r.Resolve(ctx, "o-2", "refunded by phone, ticket 812"); err != nil {
		t.Fatal(err)
	}
	if stuck, _ := r.Stuck(ctx); len(stuck) != 0 {
		t.Fatalf("Stuck() = %+v after retry and resolve", stuck)
	}
	if _, o, err := s.Run(ctx, "o-2", order{}); o != saga.Resolved || err == nil {
		t.Fatalf("Run of a resolved saga = %v, %v; want Resolved with the note", o, err)
	}
	if err := r.Resolve(ctx, "o-1", "x"); err == nil {
		t.Fatal("Resolve of a saga that is not stuck succeeded")
	}
}

func TestStepTimeout(t *testing.T) {
	var attempts atomic.Int32
	policy, err := retry.New(retry.WithMaxAttempts(2), retry.WithConstantBackoff(0))
	if err != nil {
		t.Fatal(err)
	}
	l := newLedger()
	s := register(t, newRunner(t, memLog(t)), "checkout", []saga.Step[order]{
		l.step("reserve", nil),
		{Name: "slow", Timeout: 20 * time.Millisecond, Retry: policy, Action: func(ctx context.Context, o order) (order, error) {
			attempts.Add(1)
			<-ctx.Done()
			return o, ctx.Err()
		}},
	})
	start := time.Now()
	_, o, err := s.Run(context.Background(), "o-1", order{})
	if o != saga.Compensated || !errors.Is(err, context.DeadlineExceeded) || attempts.Load() != 2 {
		t.Fatalf("Run = %v, %v after %d attempts; want Compensated by a deadline after 2", o, err, attempts.Load())
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("two 20ms attempts took %v", d)
	}
	if ev := l.list(); !slices.Equal(ev, []string{"do reserve", "undo reserve"}) {
		t.Fatalf("effects %q", ev)
	}
}

func TestCancelReturnsPromptlyAndCompensates(t *testing.T) {
	l := newLedger()
	r := newRunner(t, memLog(t))
	inStep := make(chan struct{})
	release := make(chan struct{})
	var compensated sync.WaitGroup
	compensated.Add(1)
	s := register(t, r, "checkout", []saga.Step[order]{
		{Name: "reserve", Action: noop, Compensate: func(ctx context.Context, o order) error {
			<-release // compensation is slow: Run must not wait for it
			compensated.Done()
			return nil
		}},
		{Name: "charge", Action: func(ctx context.Context, o order) (order, error) {
			close(inStep)
			<-ctx.Done() // the action heeds its ctx, which the abort cancels
			return o, ctx.Err()
		}},
		l.step("ship", nil),
	})
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		<-inStep
		cancel()
	}()
	start := time.Now()
	_, o, err := s.Run(ctx, "o-1", order{})
	if o != saga.Aborting || !errors.Is(err, context.Canceled) {
		t.Fatalf("Run = %v, %v; want Aborting, context.Canceled", o, err)
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("Run took %v to return after its ctx was canceled", d)
	}
	close(release)
	compensated.Wait()
	// Run again with the same ID joins the saga, or reads its outcome.
	_, o, _ = s.Run(context.Background(), "o-1", order{})
	if o != saga.Compensated {
		t.Fatalf("after the compensation, Run = %v, want Compensated", o)
	}
	if ev := l.list(); len(ev) != 0 {
		t.Fatalf("ship ran after the abort: %q", ev)
	}
}

func TestSecondRunnerFencesFirst(t *testing.T) {
	log := memLog(t)
	svc := newServices()
	svc.attach(&crashLog{Log: log})
	inB := make(chan struct{})
	releaseB := make(chan struct{})
	steps := func() []saga.Step[order] {
		b := svc.step("b", false)
		action := b.Action
		b.Action = func(ctx context.Context, o order) (order, error) {
			if info, _ := saga.StepFromContext(ctx); info.Attempt == 1 {
				close(inB)
				<-releaseB // the first runner is slow here ...
			}
			return action(ctx, o)
		}
		return []saga.Step[order]{svc.step("a", false), b, svc.step("c", false)}
	}
	first := register(t, newRunner(t, log), "fenced", steps())
	second := register(t, newRunner(t, log), "fenced", steps())
	done := make(chan error, 1)
	go func() {
		_, _, err := first.Run(context.Background(), "s-1", order{})
		done <- err
	}()
	<-inB
	// ... so the second takes the saga over, and finishes it.
	_, o, err := second.Run(context.Background(), "s-1", order{})
	if o != saga.Completed || err != nil {
		t.Fatalf("second runner: %v, %v", o, err)
	}
	close(releaseB)
	// The first runner's next record is refused: fenced by the new epoch,
	// or refused because the saga has ended since.
	if err := <-done; !errors.Is(err, journal.ErrFenced) && !errors.Is(err, journal.ErrEnded) {
		t.Fatalf("first runner: %v, want the journal's refusal", err)
	}
	svc.mu.Lock()
	defer svc.mu.Unlock()
	for _, step := range []string{"a", "b", "c"} {
		if svc.did[step] != 1 {
			t.Fatalf("step %q had its effect %d times", step, svc.did[step])
		}
	}
}

func TestRecoverResumesAndMarksChangedDefinitionsStuck(t *testing.T) {
	log := memLog(t)
	ctx := context.Background()
	l := newLedger()
	v1 := []saga.Step[order]{l.step("a", nil), l.step("b", nil)}
	changed := []saga.Step[order]{l.step("a", nil), l.step("b", nil), l.step("c", nil)}

	// o-1 crashes after step a; o-2, begun under other code that carried
	// the same version number, crashes after Begin.
	for _, c := range []struct {
		id    string
		steps []saga.Step[order]
		at    int
	}{{"o-1", v1, 4}, {"o-2", changed, 2}} {
		r, err := saga.NewRunner(&crashLog{Log: log, atAppend: c.at})
		if err != nil {
			t.Fatal(err)
		}
		s := register(t, r, "checkout", c.steps)
		if _, o, _ := s.Run(ctx, c.id, order{}); o != saga.Pending {
			t.Fatalf("a runner whose journal died returned %v, want Pending", o)
		}
		_ = r.Close(ctx)
	}

	// o-3 is a saga of a definition that the new process does not have.
	legacy, err := saga.NewRunner(&crashLog{Log: log, atAppend: 2})
	if err != nil {
		t.Fatal(err)
	}
	_, _, _ = register(t, legacy, "legacy", v1).Run(ctx, "o-3", order{})
	_ = legacy.Close(ctx)

	r := newRunner(t, log)
	register(t, r, "checkout", v1)
	register(t, r, "unrelated", v1)
	reports, err := r.Recover(ctx)
	if err != nil || len(reports) != 3 {
		t.Fatalf("Recover = %+v, %v", reports, err)
	}
	slices.SortFunc(reports, func(a, b saga.Report) int { return strings.Compare(a.ID, b.ID) })
	if !errors.Is(reports[2].Err, saga.ErrNotRegistered) || reports[2].Outcome != saga.Pending {
		t.Fatalf("o-3 recovered as %+v, want Pending with ErrNotRegistered", reports[2])
	}
	if reports[0].Outcome != saga.Completed || reports[0].Err != nil {
		t.Fatalf("o-1 recovered as %+v, want Completed", reports[0])
	}
	if reports[1].Outcome != saga.Stuck || !errors.Is(reports[1].Err, saga.ErrDefinitionChanged) {
		t.Fatalf("o-2 recovered as %+v, want Stuck with ErrDefinitionChanged", reports[1])
	}
	if got := l.list(); !slices.Equal(got, []string{"do a", "do b"}) {
		t.Fatalf("effects %q, want a once before the crash and b once after", got)
	}
	if stuck, _ := r.Stuck(ctx); len(stuck) != 1 || stuck[0].ID != "o-2" {
		t.Fatalf("Stuck() = %+v", stuck)
	}
}

// hangingLog holds back the appends of one record kind until released: a
// disk that stopped answering.
type hangingLog struct {
	journal.Log
	kind    string
	entered chan struct{}
	release chan struct{}
	once    sync.Once
}

func (l *hangingLog) Append(ctx context.Context, tx string, seq uint64, recs ...journal.Record) error {
	if recs[0].Kind == l.kind {
		l.once.Do(func() { close(l.entered) })
		<-l.release // heeds no ctx
	}
	return l.Log.Append(ctx, tx, seq, recs...)
}

// Close returns when its ctx ends even while a saga's append hangs, and
// the saga makes no further effect once the disk comes back.
func TestCloseReturnsWithAHungJournal(t *testing.T) {
	log := &hangingLog{Log: memLog(t), kind: "saga.step.started", entered: make(chan struct{}), release: make(chan struct{})}
	r, err := saga.NewRunner(log)
	if err != nil {
		t.Fatal(err)
	}
	var effects atomic.Int32
	s := register(t, r, "checkout", []saga.Step[order]{
		{Name: "charge", Action: func(_ context.Context, o order) (order, error) { effects.Add(1); return o, nil }},
	})
	ran := make(chan struct{})
	go func() {
		defer close(ran)
		_, _, _ = s.Run(context.Background(), "o-1", order{})
	}()
	<-log.entered
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	closed := make(chan error, 1)
	go func() { closed <- r.Close(ctx) }()
	select {
	case err := <-closed:
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Close = %v; want its ctx's error", err)
		}
	case <-time.After(2 * time.Second):
		close(log.release)
		t.Fatal("Close had not returned 2s after its 200ms ctx ended")
	}
	close(log.release) // the disk answers: the step's record lands, its action must not run
	<-ran
	if n := effects.Load(); n != 0 {
		t.Fatalf("the stopped saga ran its action %d times after Close", n)
	}
}

// The steps of a saga resumed after a crash see the baggage of the caller
// that began it, as they see its trace (linked).
func TestRecoveryCarriesBaggage(t *testing.T) {
	mem := memLog(t)
	crashing := &crashLog{Log: mem, atAppend: 4} // Begin, charge started and done, then ship dies
	prop := saga.WithPropagators(propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}))
	var mu sync.Mutex
	var tenants []string
	steps := []saga.Step[order]{
		{Name: "charge", Action: noop},
		{Name: "ship", Action: func(ctx context.Context, o order) (order, error) {
			mu.Lock()
			tenants = append(tenants, baggage.FromContext(ctx).Member("tenant").Value())
			mu.Unlock()
			return o, nil
		}},
	}
	first := newRunner(t, crashing, prop)
	s := register(t, first, "checkout", steps)
	member, _ := baggage.NewMember("tenant", "acme")
	bag, _ := baggage.New(member)
	if _, o, _ := s.Run(baggage.ContextWithBaggage(context.Background(), bag), "o-1", order{}); o == saga.Completed {
		t.Fatal("the crash did not happen")
	}
	second := newRunner(t, mem, prop)
	register(t, second, "checkout", steps)
	reports, err := second.Recover(context.Background())
	if err != nil || len(reports) != 1 || reports[0].Outcome != saga.Completed {
		t.Fatalf("Recover = %+v, %v", reports, err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(tenants) != 1 || tenants[0] != "acme" {
		t.Fatalf("the resumed step saw tenant %q; want acme", tenants)
	}
}

type cart struct {
	Items map[string]int `json:"items"`
}

// A step that changes its state and then fails changed only its own copy:
// the compensations see the state as the journal holds it, as they would
// after a crash.
func TestAFailedStepsChangesStayInItsCopy(t *testing.T) {
	var seen map[string]int
	def, err := saga.New("cart", 1, []saga.Step[cart]{
		{Name: "reserve", Action: func(_ context.Context, c cart) (cart, error) {
			c.Items["sku-1"] = 1
			return c, nil
		}, Compensate: func(_ context.Context, c cart) error { seen = c.Items; return nil }},
		{Name: "charge", Action: func(_ context.Context, c cart) (cart, error) {
			c.Items["sku-2"] = 99 // written into its input, then it fails
			return c, errors.New("declined")
		}},
	})
	if err != nil {
		t.Fatal(err)
	}
	s, err := saga.Register(newRunner(t, memLog(t)), def)
	if err != nil {
		t.Fatal(err)
	}
	if _, o, _ := s.Run(context.Background(), "c-1", cart{Items: map[string]int{}}); o != saga.Compensated {
		t.Fatalf("outcome %v", o)
	}
	if len(seen) != 1 || seen["sku-1"] != 1 {
		t.Fatalf("the compensation saw %v; want only what the journal holds, {sku-1: 1}", seen)
	}
}

// brittle journals, but does not decode once V is above 1.
type brittle struct{ V int }

func (b *brittle) UnmarshalJSON(data []byte) error {
	var v struct{ V int }
	if err := json.Unmarshal(data, &v); err != nil {
		return err
	}
	if v.V > 1 {
		return errors.New("V above 1 does not decode")
	}
	b.V = v.V
	return nil
}

// A state that cannot be copied fails the saga before the steps that
// needed the copy, with an error that says so: no step runs on a zero
// value.
func TestAStateThatCannotBeCopiedFailsBeforeTheStep(t *testing.T) {
	var zeroRuns atomic.Int32
	parallel := func(_ context.Context, b brittle) (brittle, error) {
		if b.V == 0 {
			zeroRuns.Add(1)
		}
		return b, nil
	}
	def, err := saga.New("brittle", 1, []saga.Step[brittle]{
		{Name: "a", Action: func(context.Context, brittle) (brittle, error) { return brittle{V: 2}, nil }},
		{Name: "b", Action: parallel, After: []string{"a"}},
		{Name: "c", Action: parallel, After: []string{"a"}},
	}, saga.WithMerge(func(_ brittle, _ string, r brittle) brittle { return r }))
	if err != nil {
		t.Fatal(err)
	}
	s, err := saga.Register(newRunner(t, memLog(t)), def)
	if err != nil {
		t.Fatal(err)
	}
	_, o, err := s.Run(context.Background(), "b-1", brittle{})
	if o == saga.Completed || err == nil || !strings.Contains(err.Error(), "cannot be copied") || zeroRuns.Load() != 0 {
		t.Fatalf("Run = %v, %v, with %d steps run on a zero state; want a failure that names the copy", o, err, zeroRuns.Load())
	}
}

// Lookup reads where a saga stands and changes nothing: an unknown ID is
// not started, a running saga is not joined.
func TestLookupHasNoSideEffects(t *testing.T) {
	log := memLog(t)
	r := newRunner(t, log)
	release := make(chan struct{})
	s := register(t, r, "checkout", []saga.Step[order]{
		{Name: "charge", Action: noop, Compensate: func(context.Context, order) error { return nil }},
		{Name: "ship", Action: func(ctx context.Context, o order) (order, error) { <-release; return o, nil }},
	})
	ctx := context.Background()
	if _, err := r.Lookup(ctx, "never"); !errors.Is(err, saga.ErrNotFound) {
		t.Fatalf("Lookup of an unknown ID = %v; want ErrNotFound", err)
	}
	if recs, _ := log.Load(ctx, "never"); len(recs) != 0 {
		t.Fatal("Lookup wrote to the journal")
	}
	ran := make(chan struct{})
	go func() {
		defer close(ran)
		_, _, _ = s.Run(ctx, "o-1", order{})
	}()
	var info saga.Info
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		if info, _ = r.Lookup(ctx, "o-1"); info.Step == "ship" {
			break
		}
	}
	if info.Outcome != saga.Pending || info.Step != "ship" || info.Attempts["ship"] != 1 || !slices.Equal(info.Done, []string{"charge"}) || info.Name != "checkout" {
		t.Fatalf("Lookup of a running saga = %+v", info)
	}
	close(release)
	<-ran
	if info, err := r.Lookup(ctx, "o-1"); err != nil || info.Outcome != saga.Completed || len(info.Done) != 2 {
		t.Fatalf("Lookup of a completed saga = %+v, %v", info, err)
	}
}

// Only the caller that started a saga aborts it by giving up; one that
// joined it only stops waiting.
func TestAJoinerThatGivesUpDoesNotAbort(t *testing.T) {
	r := newRunner(t, memLog(t))
	release := make(chan struct{})
	s := register(t, r, "checkout", []saga.Step[order]{
		{Name: "ship", Action: func(ctx context.Context, o order) (order, error) {
			select {
			case <-release:
				return o, nil
			case <-ctx.Done():
				return o, ctx.Err()
			}
		}},
	})
	type result struct {
		o   saga.Outcome
		err error
	}
	owner := make(chan result, 1)
	go func() {
		_, o, err := s.Run(context.Background(), "o-1", order{})
		owner <- result{o, err}
	}()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		if info, _ := r.Lookup(context.Background(), "o-1"); info.Step == "ship" {
			break
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, o, err := s.Run(ctx, "o-1", order{}); !errors.Is(err, context.DeadlineExceeded) || o != saga.Pending {
		t.Fatalf("the joiner's Run = %v, %v; want Pending and its ctx's error", o, err)
	}
	close(release)
	if res := <-owner; res.o != saga.Completed || res.err != nil {
		t.Fatalf("the owner's Run = %v, %v; want Completed: a joiner that gave up aborted it", res.o, res.err)
	}
}

// A nil context is an error from every call that takes one, never a panic.
func TestNilContextIsAnError(t *testing.T) {
	r := newRunner(t, memLog(t))
	s := register(t, r, "checkout", []saga.Step[order]{{Name: "charge", Action: noop}})
	var nilCtx context.Context
	b := saga.NewBarrier()
	effect := func(context.Context) error { return nil }
	for call, err := range map[string]error{
		"Run":        third(s.Run(nilCtx, "o-1", order{})),
		"Recover":    second(r.Recover(nilCtx)),
		"Lookup":     second(r.Lookup(nilCtx, "o-1")),
		"Stuck":      second(r.Stuck(nilCtx)),
		"RetryStuck": second(r.RetryStuck(nilCtx, "o-1")),
		"Resolve":    r.Resolve(nilCtx, "o-1", "by hand"),
		"Action":     second(b.Action(nilCtx, "o-1", "charge", effect)),
		"Compensate": second(b.Compensate(nilCtx, "o-1", "charge", effect)),
		"Close":      r.Close(nilCtx),
	} {
		if err == nil || !strings.Contains(err.Error(), "nil context") {
			t.Errorf("%s(nil) = %v", call, err)
		}
	}
}

func second[T any](_ T, err error) error        { return err }
func third[T, U any](_ T, _ U, err error) error { return err }

// Run returns promptly when its ctx ends, even while the journal hangs on
// a step's record: with Pending and ErrAbortRequested, for the abort cannot
// be durable yet. Once the disk answers, the abort lands and the saga is
// compensated, with no step after the one in flight.
func TestRunReturnsWithAHungJournal(t *testing.T) {
	for _, kind := range []string{"saga.step.started", "saga.step.done"} {
		t.Run(kind, func(t *testing.T) {
			log := &hangingLog{Log: memLog(t), kind: kind, entered: make(chan struct{}), release: make(chan struct{})}
			r := newRunner(t, log)
			l := newLedger()
			s := register(t, r, "checkout", []saga.Step[order]{l.step("charge", nil), l.step("ship", nil)})
			ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
			defer cancel()
			type result struct {
				o   saga.Outcome
				err error
			}
			ran := make(chan result, 1)
			go func() {
				_, o, err := s.Run(ctx, "o-1", order{})
				ran <- result{o, err}
			}()
			<-log.entered
			select {
			case res := <-ran:
				if res.o != saga.Pending || !errors.Is(res.err, saga.ErrAbortRequested) || !errors.Is(res.err, context.DeadlineExceeded) {
					t.Fatalf("Run = %v, %v; want Pending, ErrAbortRequested and the ctx's error", res.o, res.err)
				}
			case <-time.After(2 * time.Second):
				close(log.release)
				t.Fatal("Run had not returned 2s after its 200ms ctx ended")
			}
			close(log.release)
			deadline := time.Now().Add(5 * time.Second)
			for {
				info, err := r.Lookup(context.Background(), "o-1")
				if err == nil && info.Outcome == saga.Compensated {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("after the disk answered, Lookup = %+v, %v; want Compensated", info, err)
				}
				time.Sleep(5 * time.Millisecond)
			}
			ev := l.list()
			if slices.Contains(ev, "do ship") || (kind == "saga.step.started" && len(ev) > 0) {
				t.Fatalf("an action ran after the caller gave up: %q", ev)
			}
		})
	}
}
