package pgjournal

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/otelpatterns/otelpatterns/saga"
	"github.com/otelpatterns/otelpatterns/twophase"
)

// The fault test: saga runners and 2PC coordinators as separate processes (this test binary,
// started again with replicaVar set) on one PostgreSQL, one of them
// SIGKILLed every few hundred milliseconds under a steady load, restarted
// under a new name, as a Deployment's pod would be.
const (
	replicaVar  = "OTELPATTERNS_PG_REPLICA" // the replica's name: run as a replica
	faultVar    = "OTELPATTERNS_FAULT_SECONDS"
	untilVar    = "OTELPATTERNS_PG_LOAD_UNTIL" // Unix ns: when the replicas stop beginning sagas
	replicaTTL  = 400 * time.Millisecond
	loadPerProc = 6
)

// transfer is the state of the test's sagas.
type transfer struct{ N int }

// transferSteps debit and credit through the barrier, so that each effect
// commits with its mark: exactly once, whichever replica runs the step.
// Every fifth saga fails at credit and is compensated.
func transferSteps(pool *pgxpool.Pool, b *Barrier, effects string) []saga.Step[transfer] {
	effectStep := func(name string, fail func(transfer) bool) saga.Step[transfer] {
		apply := func(ctx context.Context, what string) error {
			info, _ := saga.StepFromContext(ctx)
			return pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
				do := b.Action
				if what == "undo" {
					do = b.Compensate
				}
				_, err := do(ctx, tx, info.ID, name, func(ctx context.Context, tx pgx.Tx) error {
					_, err := tx.Exec(ctx, "INSERT INTO "+effects+" (saga_id, what) VALUES ($1, $2)", info.ID, what+" "+name)
					return err
				})
				return err
			})
		}
		return saga.Step[transfer]{
			Name: name,
			Action: func(ctx context.Context, s transfer) (transfer, error) {
				time.Sleep(time.Duration(rand.IntN(20)) * time.Millisecond) // kills land mid-saga
				if fail(s) {
					return s, errors.New("declined")
				}
				return s, apply(ctx, "do")
			},
			Compensate: func(ctx context.Context, s transfer) error { return apply(ctx, "undo") },
		}
	}
	never := func(transfer) bool { return false }
	credit := effectStep("credit", func(s transfer) bool { return s.N%5 == 0 })
	credit.After = []string{"debit"}
	return []saga.Step[transfer]{effectStep("debit", never), credit}
}

// account is a two-phase-commit participant whose state is a table that
// every replica shares, as a service's database would be: a row per
// transaction, prepared, then committed or aborted. A commit or an abort
// that would contradict the other is refused and counted as a violation.
type account struct {
	name, table string
	pool        *pgxpool.Pool
}

func (a account) Name() string { return a.name }

func (a account) Prepare(ctx context.Context, tx string) error {
	var n int
	fmt.Sscanf(tx, "x-%d", &n)
	if a.name == "b" && n%7 == 0 { // every seventh transaction is refused at b
		_, err := a.pool.Exec(ctx, "INSERT INTO "+a.table+" (tx, p, state) VALUES ($1, $2, 'aborted') ON CONFLICT DO NOTHING", tx, a.name)
		return errors.Join(twophase.ErrVoteNo, err)
	}
	var state string
	err := a.pool.QueryRow(ctx, `INSERT INTO `+a.table+` AS t (tx, p, state) VALUES ($1, $2, 'prepared')
ON CONFLICT (tx, p) DO UPDATE SET state = t.state RETURNING state`, tx, a.name).Scan(&state)
	switch {
	case err != nil:
		return err
	case state == "aborted":
		return fmt.Errorf("%w: %s aborted already", twophase.ErrVoteNo, tx)
	}
	return nil
}

func (a account) Commit(ctx context.Context, tx string) error {
	return a.settle(ctx, tx, "committed", "aborted")
}

func (a account) Abort(ctx context.Context, tx string) error {
	if _, err := a.pool.Exec(ctx, "INSERT INTO "+a.table+" (tx, p, state) VALUES ($1, $2, 'aborted') ON CONFLICT DO NOTHING", tx, a.name); err != nil {
		return err
	}
	return a.settle(ctx, tx, "aborted", "committed")
}

// settle moves tx to state, once, unless it is in the contradicting one.
func (a account) settle(ctx context.Context, tx, state, contradiction string) error {
	var was string
	err := a.pool.QueryRow(ctx, `UPDATE `+a.table+` SET state = $3
WHERE tx = $1 AND p = $2 AND state <> $4 RETURNING state`, tx, a.name, state, contradiction).Scan(&was)
	if errors.Is(err, pgx.ErrNoRows) {
		_, _ = a.pool.Exec(ctx, "UPDATE "+a.table+" SET violations = violations + 1 WHERE tx = $1 AND p = $2", tx, a.name)
		return fmt.Errorf("%s: %s of a transaction that is %s or unknown", a.name, state, contradiction)
	}
	return err
}

// replicaMain is a replica: it serves the journal and runs sagas, taking
// their IDs from a sequence, a few dozen a second, until the load's end;
// then it serves until it is killed.
func replicaMain(name string) {
	ctx := context.Background()
	fail := func(err error) {
		fmt.Fprintln(os.Stderr, "replica", name+":", err)
		os.Exit(2)
	}
	pool, err := pgxpool.New(ctx, os.Getenv(dsnVar))
	if err != nil {
		fail(err)
	}
	prefix := os.Getenv("OTELPATTERNS_PG_PREFIX")
	log, err := Open(ctx, pool, WithTablePrefix(prefix))
	if err != nil {
		fail(err)
	}
	b, err := NewBarrier(prefix + "_barrier")
	if err != nil {
		fail(err)
	}
	r, err := saga.NewRunner(log, saga.WithLeases(name, replicaTTL))
	if err != nil {
		fail(err)
	}
	def, err := saga.New("transfer", 1, transferSteps(pool, b, prefix+"_effects"))
	if err != nil {
		fail(err)
	}
	s, err := saga.Register(r, def)
	if err != nil {
		fail(err)
	}
	go func() { _ = r.Serve(ctx) }()
	tpLog, err := Open(ctx, pool, WithTablePrefix(prefix+"_tp")) // a journal of its own: each Serve claims all its journal holds
	if err != nil {
		fail(err)
	}
	accounts := []twophase.Participant{account{"a", prefix + "_accounts", pool}, account{"b", prefix + "_accounts", pool}}
	coord, err := twophase.NewCoordinator(tpLog, twophase.WithLeases(name, replicaTTL), twophase.WithParticipants(accounts...))
	if err != nil {
		fail(err)
	}
	go func() { _ = coord.Serve(ctx) }()
	until, _ := strconv.ParseInt(os.Getenv(untilVar), 10, 64)
	var wg sync.WaitGroup
	for range loadPerProc / 2 {
		wg.Go(func() {
			for time.Now().UnixNano() < until {
				var n int
				if err := pool.QueryRow(ctx, "SELECT nextval('"+prefix+"_tx')").Scan(&n); err != nil {
					return
				}
				_, _ = coord.Execute(ctx, fmt.Sprint("x-", n), accounts...)
				time.Sleep(time.Duration(50+rand.IntN(100)) * time.Millisecond)
			}
		})
	}
	for range loadPerProc {
		wg.Go(func() {
			for time.Now().UnixNano() < until {
				var n int
				if err := pool.QueryRow(ctx, "SELECT nextval('"+prefix+"_ids')").Scan(&n); err != nil {
					return
				}
				_, _, _ = s.Run(ctx, fmt.Sprint("t-", n), transfer{N: n})
				time.Sleep(time.Duration(50+rand.IntN(100)) * time.Millisecond)
			}
		})
	}
	wg.Wait()
	select {} // serve until killed
}

func TestReplicasUnderKills(t *testing.T) {
	pool := newPool(t)
	seconds := 8
	if v, err := strconv.Atoi(os.Getenv(faultVar)); err == nil && v > 0 {
		seconds = v
	}
	ctx := context.Background()
	prefix := newTables(t, pool)
	b, err := NewBarrier(prefix + "_barrier")
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Migrate(ctx, pool); err != nil {
		t.Fatal(err)
	}
	effects, accounts := prefix+"_effects", prefix+"_accounts"
	if _, err := pool.Exec(ctx, "CREATE TABLE "+effects+" (saga_id text NOT NULL, what text NOT NULL); CREATE SEQUENCE "+prefix+"_ids; CREATE SEQUENCE "+prefix+"_tx; "+
		"CREATE TABLE "+accounts+" (tx text NOT NULL, p text NOT NULL, state text NOT NULL, violations int NOT NULL DEFAULT 0, PRIMARY KEY (tx, p))"); err != nil {
		t.Fatal(err)
	}
	if err := Migrate(ctx, pool, WithTablePrefix(prefix+"_tp")); err != nil {
		t.Fatal(err)
	}
	tp := newStatements(prefix + "_tp")
	t.Cleanup(func() {
		_, _ = pool.Exec(context.Background(), "DROP TABLE IF EXISTS "+effects+", "+accounts+", "+b.table+", "+tp.records+", "+tp.transactions+", "+tp.schema+
			"; DROP SEQUENCE IF EXISTS "+prefix+"_ids, "+prefix+"_tx")
	})

	loadEnds := time.Now().Add(time.Duration(seconds) * time.Second)
	generation := 0
	names := make([]string, 3)
	start := func(slot int) *exec.Cmd {
		generation++
		name := fmt.Sprintf("replica-%d-%d", slot, generation)
		names[slot] = name
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), replicaVar+"="+name, "OTELPATTERNS_PG_PREFIX="+prefix, untilVar+"="+fmt.Sprint(loadEnds.UnixNano()))
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		return cmd
	}
	replicas := []*exec.Cmd{start(0), start(1), start(2)}
	defer func() {
		for _, c := range replicas {
			_ = c.Process.Kill()
			_ = c.Wait()
		}
	}()

	// Kill a random replica every 200-600 ms while the load runs, and time
	// how long until the sagas it owned are owned elsewhere, or ended.
	s := newStatements(prefix)
	var takeovers []time.Duration
	var mu sync.Mutex
	var watch sync.WaitGroup
	kills := 0
	idle := 0 // kills of a replica that held no saga
	for time.Now().Before(loadEnds) {
		time.Sleep(time.Duration(200+rand.IntN(400)) * time.Millisecond)
		slot := rand.IntN(len(replicas))
		victim := replicas[slot]
		owner := names[slot]
		_ = victim.Process.Signal(syscall.SIGKILL)
		killed := time.Now()
		_ = victim.Wait()
		kills++
		replicas[slot] = start(slot)
		held := func() (int, error) {
			var n int
			err := pool.QueryRow(ctx, "SELECT (SELECT count(*) FROM "+s.transactions+" WHERE owner = $1 AND NOT ended AND last_seq > 0) + "+
				"(SELECT count(*) FROM "+tp.transactions+" WHERE owner = $1 AND NOT ended AND last_seq > 0)", owner).Scan(&n)
			return n, err
		}
		n, err := held()
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			idle++
			continue
		}
		watch.Go(func() {
			for time.Since(killed) < 20*time.Second {
				if n, err := held(); err == nil && n == 0 {
					mu.Lock()
					takeovers = append(takeovers, time.Since(killed))
					mu.Unlock()
					return
				}
				time.Sleep(5 * time.Millisecond)
			}
		})
	}

	// Then let the replicas finish the load.
	deadline := time.Now().Add(60 * time.Second)
	for {
		var pending int
		if err := pool.QueryRow(ctx, "SELECT (SELECT count(*) FROM "+s.transactions+" WHERE NOT ended AND last_seq > 0) + "+
			"(SELECT count(*) FROM "+tp.transactions+" WHERE NOT ended AND last_seq > 0)").Scan(&pending); err != nil {
			t.Fatal(err)
		}
		if pending == 0 && time.Now().After(loadEnds.Add(time.Second)) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the load did not finish: %d sagas pending", pending)
		}
		time.Sleep(50 * time.Millisecond)
	}
	watch.Wait()

	// Every saga completed or was compensated, each effect exactly once,
	// and the epochs of each saga's records never went down (no two live
	// owners wrote it).
	log := mustOpen(t, pool, prefix)
	lookup, err := saga.NewRunner(log)
	if err != nil {
		t.Fatal(err)
	}
	defer lookup.Close(ctx)
	def, err := saga.New("transfer", 1, transferSteps(pool, b, effects))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := saga.Register(lookup, def); err != nil {
		t.Fatal(err)
	}
	counts := map[string]map[string]int{}
	rows, err := pool.Query(ctx, "SELECT saga_id, what, count(*) FROM "+effects+" GROUP BY saga_id, what")
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var id, what string
		var n int
		if err := rows.Scan(&id, &what, &n); err != nil {
			t.Fatal(err)
		}
		if counts[id] == nil {
			counts[id] = map[string]int{}
		}
		counts[id][what] = n
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	var handed int
	if err := pool.QueryRow(ctx, "SELECT last_value FROM "+prefix+"_ids").Scan(&handed); err != nil {
		t.Fatal(err)
	}
	begun, completed, compensated := 0, 0, 0
	for n := 1; n <= handed; n++ {
		id := fmt.Sprint("t-", n)
		info, err := lookup.Lookup(ctx, id)
		if errors.Is(err, saga.ErrNotFound) {
			continue // its ID was handed to a replica killed before Begin
		}
		if err != nil {
			t.Fatalf("Lookup(%s) = %v", id, err)
		}
		begun++
		c := counts[id]
		switch {
		case n%5 == 0 && info.Outcome == saga.Compensated:
			compensated++
			if c["do debit"] > 1 || c["undo debit"] != c["do debit"] || c["do credit"] != 0 {
				t.Errorf("%s compensated with effects %v; want debit and its undo once each (or neither), no credit", id, c)
			}
		case n%5 != 0 && info.Outcome == saga.Completed:
			completed++
			if c["do debit"] != 1 || c["do credit"] != 1 || len(c) != 2 {
				t.Errorf("%s completed with effects %v; want debit and credit once each", id, c)
			}
		default:
			t.Errorf("%s ended %v, want %s", id, info.Outcome, map[bool]string{true: "compensated", false: "completed"}[n%5 == 0])
		}
		recs, err := log.Load(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		for i := 1; i < len(recs); i++ {
			if recs[i].Epoch < recs[i-1].Epoch {
				t.Errorf("%s: record %d has epoch %d after epoch %d: two owners wrote it", id, i+1, recs[i].Epoch, recs[i-1].Epoch)
			}
		}
	}
	// No two-phase commit committed at one participant and aborted at
	// another, and no participant asked to commit what it aborted, or the
	// reverse.
	var mixed, violations, txs, committedTx int
	if err := pool.QueryRow(ctx, `SELECT
    count(*) FILTER (WHERE c > 0 AND a > 0), coalesce(sum(v), 0), count(*), count(*) FILTER (WHERE c = 2)
FROM (SELECT tx, count(*) FILTER (WHERE state = 'committed') c, count(*) FILTER (WHERE state = 'aborted') a,
    sum(violations) v FROM `+accounts+` GROUP BY tx) per`).Scan(&mixed, &violations, &txs, &committedTx); err != nil {
		t.Fatal(err)
	}
	if mixed > 0 || violations > 0 {
		t.Errorf("two-phase commits: %d committed at one participant and aborted at another, %d contradicting calls", mixed, violations)
	}
	t.Logf("%d two-phase commits reached the participants, %d committed at both", txs, committedTx)
	if committedTx == 0 {
		t.Error("no two-phase commit committed: the load did not run")
	}

	slices.Sort(takeovers)
	t.Logf("%d kills in %d s (%d of a replica holding no saga); %d sagas begun (%d completed, %d compensated) of %d IDs handed out",
		kills, seconds, idle, begun, completed, compensated, handed)
	if len(takeovers) == 0 {
		t.Fatal("no kill left sagas to take over: the load did not overlap the kills")
	}
	worst := takeovers[len(takeovers)-1]
	t.Logf("take-over after a kill (lease %v, Serve every %v): min %v, median %v, p90 %v, max %v, over %d kills",
		replicaTTL, replicaTTL/2, takeovers[0].Round(time.Millisecond), takeovers[len(takeovers)/2].Round(time.Millisecond),
		takeovers[len(takeovers)*9/10].Round(time.Millisecond), worst.Round(time.Millisecond), len(takeovers))
	if bound := 5 * replicaTTL; worst > bound { // ttl + interval is the design; this bound leaves room for a loaded machine
		t.Errorf("a take-over took %v; want about the lease and half of it (%v), at most %v", worst, replicaTTL*3/2, bound)
	}
}
