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
//	INSERT INTO otelpatterns_journal_schema (version) VALUES (1) ON CONFLICT (id) DO UPDATE SET version = EXCLUDED.version;
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
// The head is where a lease will go: an owner, a lease epoch and an expiry
// per transaction are three more columns of the transactions row (a
// migration to SchemaVersion 2, with an index on the expiry of the pending
// rows), claimed with UPDATE ... FOR UPDATE SKIP LOCKED; the lease's epoch
// is the epoch that the appends already fence on, so the fencing below
// does not change.
//
// # Fencing
//
// An Append is one statement: it updates the head only where last_seq is
// the expected sequence number, no record's epoch is below the head's,
// and the transaction has not ended (a new transaction's head is an INSERT
// ... ON CONFLICT DO NOTHING), and inserts the records only if the head
// was updated. The statement locks the head's row, so two writers of one
// transaction, in one process or in two, are serialised by PostgreSQL:
// the second waits for the first's COMMIT and then, in READ COMMITTED,
// re-checks its conditions on the row as the first left it, and is
// refused. A refused Append writes nothing; the log then reads the head to
// say why: journal.ErrEnded, journal.ErrFenced or a *journal.ConflictError.
// Forget marks the head forgotten and deletes the records in one
// statement; the head stays as the tombstone until the horizon passes.
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
//   - Behind PgBouncer, use session or transaction pooling (the log's
//     transaction is one), not statement pooling.
package pgjournal
