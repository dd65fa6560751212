// Package pgjournal is a journal.Log in PostgreSQL (13 or later; tested on
// 15), for services that run as several replicas: every replica opens the
// same tables, so a transaction's records outlive the pod that wrote them,
// and the fencing that keeps two runners off one transaction is checked by
// the database, not only in one process's memory.
//
//	pool, err := pgxpool.New(ctx, os.Getenv("DATABASE_URL"))
//	...
//	if err := pgjournal.Migrate(ctx, pool); err != nil { // idempotent; or run the SQL below
//		return err
//	}
//	log, err := pgjournal.Open(ctx, pool, pgjournal.WithMeterProvider(mp))
//	...
//	runner, err := saga.NewRunner(log, ...)
//
// # Why PostgreSQL
//
// The file log keeps a transaction on one machine's disk; a pod that dies
// takes its sagas' only record with it. A SQL store is what dtm and
// Temporal put under their servers; here it is embedded: no server to run
// besides the database the service has already. PostgreSQL gives the three
// things a journal needs: a durable COMMIT (one WAL flush), row locks that
// serialise two writers of one transaction, and pg_xact_status, which
// tells after a lost connection whether a COMMIT happened.
//
// # Tables
//
// Migrate creates them; teams that run their own migrations run this SQL
// (with the default prefix; see WithTablePrefix) and keep the version row:
//
//	CREATE TABLE IF NOT EXISTS otelpatterns_journal_schema (
//	    id      boolean PRIMARY KEY DEFAULT true CHECK (id),
//	    version integer NOT NULL
//	);
//	CREATE TABLE IF NOT EXISTS otelpatterns_journal_transactions (
//	    tx_id        text COLLATE "C" PRIMARY KEY,
//	    last_seq     bigint      NOT NULL CHECK (last_seq > 0),
//	    epoch        bigint      NOT NULL CHECK (epoch >= 0),
//	    ended        boolean     NOT NULL DEFAULT false,
//	    forgotten_at timestamptz CHECK (forgotten_at IS NULL OR ended)
//	);
//	CREATE INDEX IF NOT EXISTS otelpatterns_journal_transactions_pending ON otelpatterns_journal_transactions (tx_id) WHERE NOT ended;
//	CREATE INDEX IF NOT EXISTS otelpatterns_journal_transactions_forgotten ON otelpatterns_journal_transactions (forgotten_at) WHERE forgotten_at IS NOT NULL;
//	CREATE TABLE IF NOT EXISTS otelpatterns_journal_records (
//	    tx_id   text COLLATE "C" NOT NULL,
//	    seq     bigint  NOT NULL CHECK (seq > 0),
//	    epoch   bigint  NOT NULL CHECK (epoch >= 0),
//	    kind    text    NOT NULL,
//	    step    text    NOT NULL,
//	    attempt bigint  NOT NULL CHECK (attempt >= 0),
//	    is_end  boolean NOT NULL,
//	    payload bytea,
//	    carrier jsonb,
//	    PRIMARY KEY (tx_id, seq)
//	);
//	ALTER TABLE otelpatterns_journal_transactions
//	    ADD COLUMN IF NOT EXISTS owner text,
//	    ADD COLUMN IF NOT EXISTS lease_expires timestamptz;
//	DO $$
//	DECLARE c name;
//	BEGIN
//	    FOR c IN SELECT conname FROM pg_constraint
//	        WHERE conrelid = 'otelpatterns_journal_transactions'::regclass AND contype = 'c' AND pg_get_constraintdef(oid) = 'CHECK ((last_seq > 0))'
//	    LOOP
//	        EXECUTE format('ALTER TABLE otelpatterns_journal_transactions DROP CONSTRAINT %I', c);
//	    END LOOP;
//	END $$;
//	ALTER TABLE otelpatterns_journal_transactions
//	    ADD CHECK (last_seq >= 0),
//	    ADD CHECK ((owner IS NULL) = (lease_expires IS NULL));
//	INSERT INTO otelpatterns_journal_schema (version) VALUES (2) ON CONFLICT (id) DO UPDATE SET version = EXCLUDED.version;
//
// The ALTER statements are version 2 (the leases); a database at version
// 1 runs only them, and a new one runs everything. Migrate does the same.
//
// A transactions row is the head of one transaction: its last sequence
// number, its owner's epoch, whether it has ended, and, for a tombstone,
// when it was forgotten. The records rows are keyed by (transaction, seq).
// The ID columns sort bytewise (collation "C"), as Go sorts strings, and
// hold UTF-8 text: an ID, kind, step or carrier entry that is not UTF-8 or
// holds a NUL byte is an *journal.InvalidError, for PostgreSQL cannot
// store it. Payloads are bytea, carriers jsonb objects; an empty payload or
// carrier is NULL and loads as nil, as in the file log.
//
// The head also holds the transaction's lease: its owner and its expiry
// (see Leases). A head with last_seq 0 has no records yet: it holds a
// lease taken before the first append, is not pending, and loads as an
// unknown transaction.
//
// # Fencing
//
// An Append is one statement: it updates the head only where last_seq is
// the expected sequence number, no record's epoch is below the head's,
// and the transaction has not ended (a new transaction's head is an INSERT
// ... ON CONFLICT DO UPDATE that takes over only a head without records, a
// lease's), and inserts the records only if the head was updated. The
// statement locks the head's row, so two writers of one transaction, in
// one process or in two, are serialised by PostgreSQL:
// the second waits for the first's COMMIT and then, in READ COMMITTED,
// re-checks its conditions on the row as the first left it, and is
// refused. A refused Append writes nothing; the log then reads the head to
// say why: journal.ErrEnded, journal.ErrFenced or a *journal.ConflictError.
//
// # Leases
//
// Log is a journal.Leaser, so that the runners of several replicas share
// one log: each transaction is driven by the replica that holds its lease,
// and one whose replica died is taken over once its lease expires. The
// lease is on the head row, and its epoch is the head's epoch, the very
// one the appends fence on: Acquire and Claim raise it in the statement
// that takes the lease, under the row lock that serialises the appends. So
// the argument for two owners is the argument for two writers above. Once
// B's lease is committed at epoch e, every append of A's (epoch below e)
// that had not committed waits for the row and then fails its condition:
// journal.ErrFenced, however long A paused and whatever A's clock says.
// An append of A's that committed first is simply before the take-over, and
// B reads it when it loads the transaction. Expiry is decided on the
// database's clock (clock_timestamp()), the one clock every replica
// shares, so replicas' clocks may drift; Lease.Expires is on that clock too.
//
// Claim takes the unowned and expired pending transactions with UPDATE ...
// FROM (SELECT ... FOR UPDATE SKIP LOCKED), so concurrent claimers, in any
// process, never wait for one another and never take one transaction
// twice: a row that another claimer took meanwhile is re-checked after its
// lock and dropped. Renew extends the owner's own leases (expired ones too,
// as long as nobody took them) and reports the rest as lost; Release
// clears the owner, so that the next Claim takes the transaction at once.
// Lease statements commit with synchronous_commit on, as appends do: a
// lease that a crash of the server undid could leave two owners.
// Forget marks the head forgotten and deletes the records in one
// statement; the head stays as the tombstone until the horizon passes.
//
// # Barrier
//
// Barrier is saga.Barrier in the service's own database: its marks are
// written in the pgx.Tx of the step's effect, so that the effect and its
// mark commit together, and an effect happens exactly once however often a
// step is delivered, across retries, crashes and take-overs:
//
//	_, err := barrier.Action(ctx, tx, info.ID, info.Step, func(ctx context.Context, tx pgx.Tx) error {
//		_, err := tx.Exec(ctx, "UPDATE accounts SET balance = balance - $1 WHERE id = $2", amount, from)
//		return err
//	})
//	... tx.Commit(ctx)
//
// TestReplicasUnderKills runs three replicas, each a saga runner and a
// 2PC coordinator, as separate processes on one database, SIGKILLs one
// every few hundred milliseconds under load, and checks that every saga
// completed or was compensated, that every effect written through the
// barrier happened exactly once, that no saga's records went back in
// epoch (two owners at once), and that no two-phase commit committed at
// one participant and aborted at another; README.md gives its take-over
// times. TestServerRestart restarts the server itself under a load of
// appends and sagas: appends fail meanwhile with errors that say so,
// every acknowledged append is there afterwards, and the runner finishes
// every saga the restart interrupted once its lease expires.
//
// # Group commit
//
// Concurrent Appends and Forgets of one Log share one database
// transaction: BEGIN, the transaction's ID and every request's statement in
// one round trip, then one COMMIT, that is one WAL flush, as the file log
// shares one fdatasync. There is no goroutine: the caller at the head of
// the queue commits for the others queued behind it, so a lone appender
// pays no hand-off. The statements run in the order of the transaction
// IDs, so concurrent groups lock rows in one order and cannot deadlock.
//
// One request cannot fail another: a refused Append is refused by its
// statement's conditions, not by an SQL error, and the group goes on
// without it. If the transaction fails all the same with a server error
// that one request's data may cause (a constraint or trigger of your own,
// a statement timeout), each request of the group is retried alone, in a
// transaction of its own, and only the one at fault fails, with the
// server's error. An error of the connection or of the server as a whole
// fails every request of the group with that error: nothing was written.
//
// # Durability and lost answers
//
// A nil error from Append means that its COMMIT returned, with
// synchronous_commit at least local (a session that has it off gets it on
// for the journal's transactions). If the connection breaks after the
// COMMIT was sent, the log looks the transaction up with pg_xact_status
// on another connection, polling while the server is unreachable or the
// transaction still in progress, for at most WithWriteTimeout: committed
// is success, aborted is an error (not appended). Only if the server stays
// unreachable for all that time is the outcome unknown: ErrInDoubt, and
// the caller must Load to see.
//
// That is why the COMMIT has a round trip of its own: the transaction's
// ID is read before it is sent, and an append whose connection breaks
// before it is sent is known not written, by construction. That round
// trip is the largest part of what a lone appender pays beyond a bare
// INSERT (README.md's Performance has the breakdown); settling a lost
// answer without the ID would rest on a bound on time instead.
//
// # Telemetry
//
// The metrics are the journal's (append latency, otelpatterns.journal.syncs
// counting COMMITs, records per COMMIT, bytes of record data, pending
// transactions), with otelpatterns.journal.log "postgres". The pending
// count is read from the tables at each collection: every replica reports
// the whole table, so take the maximum across replicas, not the sum.
// Migrate has a journal.migrate span. README.md's Telemetry reference
// lists every name.
//
// # Pitfalls
//
//   - The pool is yours: Close does not close it. Size it for the log's
//     needs: a group commit holds one connection, Load and Pending one each.
//   - Append's ctx bounds only the wait to be queued; the database work is
//     bounded by WithWriteTimeout (30 s by default).
//   - Tombstones are dated by this process's clock, and dropped by Forget
//     a few times a horizon, at most 10,000 a time.
//   - Give saga runners and 2PC coordinators that use leases journals of
//     their own (WithTablePrefix): each one's Serve claims whatever its
//     journal holds unowned, and gives back only afterwards what is not
//     its kind.
//   - Behind PgBouncer, use session or transaction pooling (the log's
//     transaction is one), not statement pooling.
package pgjournal
