package pgjournal

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/otelpatterns/otelpatterns/journal"
	"github.com/otelpatterns/otelpatterns/saga"
)

// ctlVar is the pg_ctl command line of the test server (scripts/postgres.sh
// exports it), with which a test restarts the server.
const ctlVar = "OTELPATTERNS_PG_CTL"

// The PostgreSQL server restarted under a load of appends and sagas:
// appends fail meanwhile with errors that say so, every acknowledged
// append is in the log afterwards, and the runner finishes every saga once
// the server is back.
func TestServerRestart(t *testing.T) {
	pool := newPool(t)
	ctl := needEnv(t, ctlVar, "the server's pg_ctl command line (scripts/postgres.sh does) to restart it mid-load")
	ctx := context.Background()
	prefix := newTables(t, pool)
	l := mustOpen(t, pool, prefix, WithWriteTimeout(10*time.Second))
	// The sagas get a journal of their own: a runner with leases claims
	// whatever its journal holds unowned, and would fence the writers.
	sl := mustOpen(t, pool, newTables(t, pool), WithWriteTimeout(10*time.Second))
	runner, err := saga.NewRunner(sl, saga.WithLeases("restarted", time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer runner.Close(ctx)
	noop := func(_ context.Context, s struct{}) (struct{}, error) { return s, nil }
	def, err := saga.New("restart", 1, []saga.Step[struct{}]{{Name: "a", Action: noop}, {Name: "b", Action: noop}})
	if err != nil {
		t.Fatal(err)
	}
	sagas, err := saga.Register(runner, def)
	if err != nil {
		t.Fatal(err)
	}
	serveCtx, stopServe := context.WithCancel(ctx)
	defer stopServe()
	go func() { _ = runner.Serve(serveCtx) }()

	const writers = 6
	stop := make(chan struct{})
	var (
		wg      sync.WaitGroup
		acked   [writers]int // records acknowledged, per writer's transaction
		mu      sync.Mutex
		failed  []error
		begun   atomic.Int64
		doubted atomic.Int64
	)
	for w := range writers {
		wg.Go(func() {
			tx := fmt.Sprint("w-", w)
			for seq := 0; ; {
				select {
				case <-stop:
					return
				default:
				}
				err := l.Append(ctx, tx, uint64(seq), journal.Record{Epoch: 1, Kind: fmt.Sprint("r-", seq)})
				switch {
				case err == nil:
					seq++
					acked[w] = seq
				case errors.Is(err, ErrInDoubt): // it may have landed: read where the transaction is
					doubted.Add(1)
					recs, lerr := l.Load(ctx, tx)
					if lerr == nil {
						seq = len(recs)
						acked[w] = seq
					}
				default:
					var ce *journal.ConflictError
					if errors.As(err, &ce) { // a COMMIT whose answer was lost and that landed
						seq = int(ce.Actual)
						acked[w] = seq
						continue
					}
					mu.Lock()
					failed = append(failed, err)
					mu.Unlock()
					time.Sleep(20 * time.Millisecond)
				}
			}
		})
	}
	for range 3 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				_, _, _ = sagas.Run(ctx, fmt.Sprint("s-", begun.Add(1)), struct{}{})
			}
		})
	}
	time.Sleep(500 * time.Millisecond)
	restart := exec.Command("sh", "-c", ctl+" -m fast -w -t 60 restart")
	if out, err := restart.CombinedOutput(); err != nil {
		t.Fatalf("%s restart: %v\n%s", ctl, err, out)
	}
	time.Sleep(1500 * time.Millisecond) // and the load goes on
	close(stop)
	wg.Wait()

	if len(failed) == 0 {
		t.Fatal("no append failed across the restart: was the server restarted?")
	}
	for _, err := range failed {
		if !strings.HasPrefix(err.Error(), "pgjournal: ") {
			t.Fatalf("an append failed during the restart with %q, which does not say where it comes from", err)
		}
	}
	for w := range writers {
		recs, err := l.Load(ctx, fmt.Sprint("w-", w))
		if err != nil {
			t.Fatal(err)
		}
		if len(recs) < acked[w] {
			t.Fatalf("w-%d: %d records in the log, %d acknowledged: an acknowledged append was lost", w, len(recs), acked[w])
		}
		for i, r := range recs {
			if r.Kind != fmt.Sprint("r-", i) {
				t.Fatalf("w-%d: record %d is %q, want r-%d", w, i+1, r.Kind, i)
			}
		}
	}
	// The sagas the restart interrupted resume once their lease expires.
	deadline := time.Now().Add(20 * time.Second)
	for {
		pending, err := sl.Pending(ctx)
		if err == nil && len(pending) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("sagas still pending 20 s after the restart: %v, %v", pending, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("%d appends failed during the restart (%d in doubt), %d sagas run", len(failed), doubted.Load(), begun.Load())
}
