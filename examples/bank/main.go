// Command bank moves money between two ledger services by two-phase
// commit: a transfer debits an account of one ledger and credits one of
// the other, on both or on neither, even when the coordinator dies
// between the phases. The coordinator reaches the ledgers over HTTP
// (twophasehttp), writes its decisions ahead to a file journal, and
// records every decision in an audit log; the ledgers, prepared and cut
// off, ask its Status.
//
// By default it runs the reconciliation: N random transfers, some
// overdrawn (a no vote), some meeting a ledger that fails its first
// commits, and some whose coordinator crashes at a random point and is
// replaced by one that recovers; then it proves that the ledgers' total is
// what it was, and that nothing is left held or in doubt:
//
//	go -C examples run ./bank -transfers 200 -seed 7
//
// Or serve the three services, all in this one process, until interrupted:
//
//	go -C examples run ./bank -serve
//	curl -s localhost:8090/transfers -d '{"id":"t-1","from":{"ledger":"ledger-a","account":"alice"},"to":{"ledger":"ledger-b","account":"bob"},"amount":25}'
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/otelpatterns/otelpatterns/examples/internal/setup"
	"github.com/otelpatterns/otelpatterns/examples/internal/web"

	"github.com/otelpatterns/otelpatterns/journal"
	"github.com/otelpatterns/otelpatterns/journal/pgjournal"
	"github.com/otelpatterns/otelpatterns/twophase"
)

type config struct {
	serve      bool
	service    string // with serve: all, ledgers or coordinator
	journalDSN string // a PostgreSQL journal shared by coordinator replicas
	replica    string // this coordinator's name among the replicas, with journalDSN
	slow       time.Duration
	dir        string
	transfers  int
	seed       uint64
	crashRate  float64
	printTrace bool
	addrs      map[string]string
}

func main() {
	cfg := config{addrs: map[string]string{}}
	flag.BoolVar(&cfg.serve, "serve", false, "serve the coordinator and the two ledgers until interrupted")
	flag.StringVar(&cfg.dir, "dir", "", "where the journal and the audit log go (default: a new temporary directory)")
	flag.IntVar(&cfg.transfers, "transfers", 100, "how many random transfers the reconciliation makes")
	flag.Uint64Var(&cfg.seed, "seed", 1, "the seed of the reconciliation's random transfers and failures")
	flag.Float64Var(&cfg.crashRate, "crash-rate", 0.15, "the share of transfers whose coordinator crashes")
	flag.BoolVar(&cfg.printTrace, "traces", false, "print every transfer's trace")
	flag.StringVar(&cfg.service, "service", "all", "with -serve: all, ledgers (the two ledgers alone) or coordinator (the coordinator alone, calling the ledgers at -ledger-a and -ledger-b)")
	flag.StringVar(&cfg.journalDSN, "journal-dsn", os.Getenv("OTELPATTERNS_JOURNAL_DSN"), "a PostgreSQL database for the coordinator's journal, shared by coordinator replicas (default $OTELPATTERNS_JOURNAL_DSN; empty: a file journal in -dir)")
	flag.DurationVar(&cfg.slow, "prepare-delay", 0, "how long each ledger takes to prepare (to kill a coordinator mid-transfer)")
	host, _ := os.Hostname()
	flag.StringVar(&cfg.replica, "replica", fmt.Sprintf("coordinator-%s-%d", host, os.Getpid()), "this coordinator's name among the replicas, with -journal-dsn")
	coordAddr := flag.String("coordinator", "127.0.0.1:8090", "the coordinator's address")
	aAddr := flag.String("ledger-a", "127.0.0.1:8091", "ledger-a's address")
	bAddr := flag.String("ledger-b", "127.0.0.1:8092", "ledger-b's address")
	flag.Parse()
	cfg.addrs = map[string]string{"coordinator": *coordAddr, "ledger-a": *aAddr, "ledger-b": *bAddr}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, cfg, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "bank:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, cfg config, w io.Writer) (err error) {
	var opts []setup.Option
	if !cfg.serve && !cfg.printTrace {
		opts = append(opts, setup.WithoutConsole())
	}
	tel, err := setup.Start(ctx, "bank", w, opts...)
	if err != nil {
		return err
	}
	defer func() {
		flush, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		err = errors.Join(err, tel.Shutdown(flush))
	}()
	switch {
	case cfg.service != "all" && cfg.service != "ledgers" && cfg.service != "coordinator":
		return fmt.Errorf("-service %q: run all, ledgers or coordinator", cfg.service)
	case cfg.service != "all" && !cfg.serve:
		return fmt.Errorf("-service %s serves: add -serve (the reconciliation runs every service in one process)", cfg.service)
	}
	if cfg.dir == "" {
		if cfg.dir, err = os.MkdirTemp("", "otelpatterns-bank-"); err != nil {
			return err
		}
	} else if err := os.MkdirAll(cfg.dir, 0o755); err != nil {
		return err
	}
	if !cfg.serve {
		cfg.addrs = map[string]string{"coordinator": "127.0.0.1:0", "ledger-a": "127.0.0.1:0", "ledger-b": "127.0.0.1:0"}
	}
	env, err := startBank(ctx, tel, cfg)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, env.close()) }()
	if cfg.serve {
		for _, s := range env.servers {
			fmt.Fprintf(w, "%-11s %s\n", s.Name, s.URL)
		}
		fmt.Fprintln(w, "journal and audit log in", cfg.dir)
		<-ctx.Done()
		return nil
	}
	rep, err := reconcile(ctx, env, cfg.transfers, cfg.seed, cfg.crashRate)
	if err != nil {
		return err
	}
	fmt.Fprint(w, rep)
	if !rep.ok() {
		return errors.New("the ledgers do not reconcile")
	}
	return nil
}

// environment is the bank running in this process: two ledgers and the
// coordinator's service, on loopback.
type environment struct {
	tel     *setup.Telemetry
	dir     string
	ledgers map[string]*ledger
	urls    map[string]string
	log     journal.Log
	db      *pgxpool.Pool // with a PostgreSQL journal
	audit   *auditLog
	bank    *bank
	servers []*web.Server
}

func startBank(ctx context.Context, tel *setup.Telemetry, cfg config) (env *environment, err error) {
	// Each service's spans carry its own service.name, in one process too.
	coord, err := tel.Service("coordinator")
	if err != nil {
		return nil, err
	}
	env = &environment{tel: coord, dir: cfg.dir, urls: map[string]string{}, ledgers: map[string]*ledger{
		"ledger-a": newLedger("ledger-a", map[string]int{"alice": 1000, "carol": 1000}),
		"ledger-b": newLedger("ledger-b", map[string]int{"bob": 1000, "dave": 1000}),
	}}
	started := env // the returns below set env to nil
	defer func() {
		if err != nil {
			_ = started.close()
		}
	}()
	for _, name := range []string{"ledger-a", "ledger-b"} {
		if cfg.service == "coordinator" { // the ledgers run elsewhere
			env.urls[name] = "http://" + cfg.addrs[name]
			continue
		}
		ltel, err := tel.Service(name)
		if err != nil {
			return nil, err
		}
		env.ledgers[name].slow = cfg.slow
		h, err := env.ledgers[name].handler(ltel)
		if err != nil {
			return nil, err
		}
		srv, err := web.Serve(ltel, name, cfg.addrs[name], h)
		if err != nil {
			return nil, err
		}
		env.servers = append(env.servers, srv)
		env.urls[name] = srv.URL
	}
	if cfg.service == "ledgers" {
		return env, nil
	}
	if err := env.openJournal(ctx, cfg); err != nil {
		return nil, err
	}
	if env.audit, err = openAudit(filepath.Join(cfg.dir, "audit.jsonl")); err != nil {
		return nil, err
	}
	replica := "" // a file journal is this process's alone
	if env.db != nil {
		replica = cfg.replica
	}
	if env.bank, err = newBank(ctx, coord, env.log, env.urls, env.audit, nil, replica); err != nil {
		return nil, err
	}
	h, err := env.bank.handler()
	if err != nil {
		return nil, err
	}
	srv, err := web.Serve(coord, "coordinator", cfg.addrs["coordinator"], h)
	if err != nil {
		return nil, err
	}
	env.servers = append(env.servers, srv)
	return env, nil
}

func (env *environment) close() error {
	var errs []error
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, s := range env.servers {
		errs = append(errs, s.Close(ctx))
	}
	if env.bank != nil {
		errs = append(errs, env.bank.close(ctx))
	}
	if env.log != nil {
		errs = append(errs, env.log.Close())
	}
	if env.db != nil {
		env.db.Close()
	}
	if env.audit != nil {
		errs = append(errs, env.audit.close())
	}
	return errors.Join(errs...)
}

// openJournal opens the coordinator's file journal in the directory, or,
// with a DSN, the PostgreSQL journal that every coordinator replica shares.
func (env *environment) openJournal(ctx context.Context, cfg config) (err error) {
	tel := env.tel
	if cfg.journalDSN == "" {
		env.log, err = journal.Open(filepath.Join(cfg.dir, "journal"), journal.WithTracerProvider(tel.TracerProvider), journal.WithMeterProvider(tel.MeterProvider))
		return err
	}
	if env.db, err = pgxpool.New(ctx, cfg.journalDSN); err != nil {
		return fmt.Errorf("the journal's database: %w", err)
	}
	prefix := pgjournal.WithTablePrefix("bank_journal") // its own tables: a leased coordinator claims all its journal holds
	if err = pgjournal.Migrate(ctx, env.db, prefix, pgjournal.WithTracerProvider(tel.TracerProvider)); err == nil {
		env.log, err = pgjournal.Open(ctx, env.db, prefix, pgjournal.WithTracerProvider(tel.TracerProvider), pgjournal.WithMeterProvider(tel.MeterProvider))
	}
	if err != nil {
		return fmt.Errorf("the journal: %w", err)
	}
	return nil
}

// total is the sum of every balance of every ledger, and how many
// transfers the ledgers still hold.
func (env *environment) total() (sum, held int) {
	for _, l := range env.ledgers {
		balances, h := l.state()
		for _, v := range balances {
			sum += v
		}
		held += h
	}
	return sum, held
}

// report is what the reconciliation found.
type report struct {
	transfers, committed, aborted, other, crashes int
	before, after, held, pending                  int
	auditDecisions                                int
}

func (r report) ok() bool { return r.before == r.after && r.held == 0 && r.pending == 0 }

func (r report) String() string {
	verdict := "reconciled: the total is unchanged, and nothing is held or in doubt"
	if !r.ok() {
		verdict = "NOT RECONCILED"
	}
	return fmt.Sprintf("%d transfers: %d committed, %d aborted, %d cut short by a coordinator crash, %d still in doubt when answered; recovery finished them\n"+
		"total before %d, after %d; transfers still held %d; journal entries pending %d; transfers in the audit log %d\n%s\n",
		r.transfers, r.committed, r.aborted, r.crashes, r.other, r.before, r.after, r.held, r.pending, r.auditDecisions, verdict)
}

// reconcile runs n random transfers with injected failures and coordinator
// crashes, recovers, lets the ledgers resolve what they hold, and compares
// the totals.
func reconcile(ctx context.Context, env *environment, n int, seed uint64, crashRate float64) (report, error) {
	rng := rand.New(rand.NewPCG(seed, 0x0ba7c))
	rep := report{transfers: n}
	rep.before, _ = env.total()
	accounts := map[string][]string{"ledger-a": {"alice", "carol"}, "ledger-b": {"bob", "dave"}}
	var current *bank // the coordinator in charge; nil after a crash
	var sw *crashSwitch
	defer func() {
		if current != nil {
			_ = current.close(context.Background())
		}
	}()
	for i := range n {
		if current == nil { // a new coordinator process, which recovers first
			var err error
			sw = newCrashSwitch(-1)
			if current, err = newBank(ctx, env.tel, env.log, env.urls, env.audit, sw, ""); err != nil {
				return rep, err
			}
		}
		if rng.Float64() < crashRate {
			sw.arm(rng.IntN(8)) // it dies during this transfer, at a random point
		}
		from, to := "ledger-a", "ledger-b"
		if rng.IntN(2) == 0 {
			from, to = to, from
		}
		if rng.Float64() < 0.1 {
			env.ledgers[to].failCommits(1 + rng.IntN(3))
		}
		req := transferRequest{ID: fmt.Sprintf("t-%d-%d", seed, i), Amount: 1 + rng.IntN(400),
			From: accountRef{from, accounts[from][rng.IntN(2)]}, To: accountRef{to, accounts[to][rng.IntN(2)]}}
		// A dead coordinator never answers: its caller gives up.
		tctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		if sw.armed() {
			tctx, cancel = context.WithTimeout(ctx, 200*time.Millisecond)
		}
		d, err := current.transfer(tctx, req)
		cancel()
		switch {
		case sw.crashed():
			rep.crashes++
			stopping, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
			_ = current.close(stopping) // it is dead: stop what it left running
			cancel()
			current = nil
		case d == twophase.Committed && err == nil:
			rep.committed++
		case d == twophase.Aborted:
			rep.aborted++
		default:
			rep.other++
		}
	}
	if current != nil {
		_ = current.close(ctx)
		current = nil
	}
	// A coordinator that does not crash recovers what is left, and the
	// ledgers ask it about anything they still hold.
	final, err := newBank(ctx, env.tel, env.log, env.urls, env.audit, nil, "")
	if err != nil {
		return rep, err
	}
	for _, l := range env.ledgers {
		if err := l.local.Resolve(ctx, final.coord.Status); err != nil {
			return rep, err
		}
	}
	if err := final.close(ctx); err != nil {
		return rep, err
	}
	rep.after, rep.held = env.total()
	pending, err := env.log.Pending(ctx)
	if err != nil {
		return rep, err
	}
	rep.pending = len(pending)
	seen := map[string]bool{}
	for _, e := range env.audit.entries() {
		seen[e.Tx] = true
	}
	rep.auditDecisions = len(seen)
	return rep, nil
}

func keys[V any](m map[string]V) []string { return slices.Sorted(maps.Keys(m)) }
