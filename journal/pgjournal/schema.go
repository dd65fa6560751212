package pgjournal

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/otelpatterns/otelpatterns/errs"
)

// SchemaVersion is the version of the tables that this package reads and
// writes; Migrate brings a database to it.
const SchemaVersion = 2

// ErrSchema is an Open of a database whose tables are missing or at
// another version than SchemaVersion.
var ErrSchema = errors.New("pgjournal: the journal's tables are missing or at another version")

// migrations[v-1] takes the tables from version v-1 to v. Each runs in the
// transaction of Migrate, under its advisory lock. A later version is a new
// entry here and a new block in doc.go.
var migrations = []string{
	// 1: the head of each transaction, its records, tombstones.
	`CREATE TABLE IF NOT EXISTS {transactions} (
    tx_id        text COLLATE "C" PRIMARY KEY,
    last_seq     bigint      NOT NULL CHECK (last_seq > 0),
    epoch        bigint      NOT NULL CHECK (epoch >= 0),
    ended        boolean     NOT NULL DEFAULT false,
    forgotten_at timestamptz CHECK (forgotten_at IS NULL OR ended)
);
CREATE INDEX IF NOT EXISTS {transactions}_pending ON {transactions} (tx_id) WHERE NOT ended;
CREATE INDEX IF NOT EXISTS {transactions}_forgotten ON {transactions} (forgotten_at) WHERE forgotten_at IS NOT NULL;
CREATE TABLE IF NOT EXISTS {records} (
    tx_id   text COLLATE "C" NOT NULL,
    seq     bigint  NOT NULL CHECK (seq > 0),
    epoch   bigint  NOT NULL CHECK (epoch >= 0),
    kind    text    NOT NULL,
    step    text    NOT NULL,
    attempt bigint  NOT NULL CHECK (attempt >= 0),
    is_end  boolean NOT NULL,
    payload bytea,
    carrier jsonb,
    PRIMARY KEY (tx_id, seq)
);`,
	// 2: leases on the head; a head with no records holds a lease taken
	// before the first append (last_seq 0).
	`ALTER TABLE {transactions}
    ADD COLUMN IF NOT EXISTS owner text,
    ADD COLUMN IF NOT EXISTS lease_expires timestamptz;
DO $$
DECLARE c name;
BEGIN
    FOR c IN SELECT conname FROM pg_constraint
        WHERE conrelid = '{transactions}'::regclass AND contype = 'c' AND pg_get_constraintdef(oid) = 'CHECK ((last_seq > 0))'
    LOOP
        EXECUTE format('ALTER TABLE {transactions} DROP CONSTRAINT %I', c);
    END LOOP;
END $$;
ALTER TABLE {transactions}
    ADD CHECK (last_seq >= 0),
    ADD CHECK ((owner IS NULL) = (lease_expires IS NULL));`,
}

// statements are the SQL of one log, with its table names filled in.
type statements struct {
	transactions, records, schema string

	appendNew, appendNext, forget string
	appendNew1, appendNext1       string
	begin, head, load, pending    string
	countPending, sweep, version  string

	acquire, holder, claim, renew, release string
}

func newStatements(prefix string) *statements {
	s := &statements{
		transactions: prefix + "_transactions",
		records:      prefix + "_records",
		schema:       prefix + "_schema",
	}
	// Both appends insert the records only if the head statement accepted
	// them, and answer 1 or 0: accepted or refused. The head's conditions
	// are the fencing: the sequence number, the epoch and End, checked on
	// the row that the statement locks, so two writers on one transaction
	// are serialised by PostgreSQL, whatever process they are in. $5 to $12
	// are the records' columns: arrays, or, in the statements for one
	// record (most appends), plain values, which the server runs faster.
	records := `, ins AS (
    INSERT INTO {records} (tx_id, seq, epoch, kind, step, attempt, is_end, payload, carrier)
    SELECT head.tx_id, r.seq, r.epoch, r.kind, r.step, r.attempt, r.is_end, r.payload, r.carrier::jsonb
    FROM head, unnest($5::bigint[], $6::bigint[], $7::text[], $8::text[], $9::bigint[], $10::boolean[], $11::bytea[], $12::text[])
        AS r(seq, epoch, kind, step, attempt, is_end, payload, carrier)
)
SELECT count(*) FROM head`
	record := `, ins AS (
    INSERT INTO {records} (tx_id, seq, epoch, kind, step, attempt, is_end, payload, carrier)
    SELECT head.tx_id, $5::bigint, $6::bigint, $7::text, $8::text, $9::bigint, $10::boolean, $11::bytea, $12::text::jsonb
    FROM head
)
SELECT count(*) FROM head`
	// A new transaction's head is inserted, or is the head that a lease
	// made before the first append (last_seq 0), fenced as appendNext's.
	newHead := `WITH head AS (
    INSERT INTO {transactions} AS t (tx_id, last_seq, epoch, ended) VALUES ($1, $2, $3, $4)
    ON CONFLICT (tx_id) DO UPDATE SET last_seq = EXCLUDED.last_seq, epoch = GREATEST(t.epoch, EXCLUDED.epoch), ended = EXCLUDED.ended
    WHERE t.last_seq = 0 AND t.epoch <= $13 AND NOT t.ended
    RETURNING tx_id
)`
	nextHead := `WITH head AS (
    UPDATE {transactions} SET last_seq = $2, epoch = GREATEST(epoch, $3), ended = $4
    WHERE tx_id = $1 AND last_seq = $13 AND epoch <= $14 AND NOT ended
    RETURNING tx_id
)`
	s.appendNew, s.appendNew1 = s.fill(newHead+records), s.fill(newHead+record)
	s.appendNext, s.appendNext1 = s.fill(nextHead+records), s.fill(nextHead+record)
	s.forget = s.fill(`WITH head AS (
    UPDATE {transactions} SET forgotten_at = $2
    WHERE tx_id = $1 AND ended AND forgotten_at IS NULL
    RETURNING tx_id
), del AS (
    DELETE FROM {records} WHERE tx_id = (SELECT tx_id FROM head)
)
SELECT count(*) FROM head`)
	// begin names the transaction of a group commit, so that a COMMIT
	// whose answer was lost can be looked up, and makes its COMMIT wait
	// for the WAL flush even where synchronous_commit is off.
	s.begin = `SELECT pg_current_xact_id()::text,
    CASE WHEN current_setting('synchronous_commit') = 'off' THEN set_config('synchronous_commit', 'on', true) END`
	s.head = s.fill(`SELECT last_seq, epoch, ended, forgotten_at IS NOT NULL FROM {transactions} WHERE tx_id = $1`)
	s.load = s.fill(`SELECT t.forgotten_at IS NOT NULL, r.seq, r.epoch, r.kind, r.step, r.attempt, r.is_end, r.payload, r.carrier::text
FROM {transactions} t LEFT JOIN {records} r ON r.tx_id = t.tx_id
WHERE t.tx_id = $1
ORDER BY r.seq`)
	s.pending = s.fill(`SELECT tx_id FROM {transactions} WHERE NOT ended AND last_seq > 0 ORDER BY tx_id`)
	s.countPending = s.fill(`SELECT count(*) FROM {transactions} WHERE NOT ended AND last_seq > 0`)

	// The leases, on the database's clock (clock_timestamp, not the
	// transaction's start, which a wait for a row lock would make stale).
	// Taking one raises the epoch that the appends fence on.
	s.acquire = s.fill(`INSERT INTO {transactions} AS t (tx_id, last_seq, epoch, ended, owner, lease_expires)
VALUES ($1, 0, 1, false, $2, clock_timestamp() + $3::bigint * interval '1 microsecond')
ON CONFLICT (tx_id) DO UPDATE SET epoch = t.epoch + 1, owner = EXCLUDED.owner, lease_expires = EXCLUDED.lease_expires
WHERE NOT t.ended AND (t.owner IS NULL OR t.owner = EXCLUDED.owner OR t.lease_expires <= clock_timestamp())
RETURNING epoch, lease_expires`)
	s.holder = s.fill(`SELECT ended, CASE WHEN lease_expires > clock_timestamp() THEN owner END, lease_expires
FROM {transactions} WHERE tx_id = $1`)
	s.claim = s.fill(`UPDATE {transactions} AS t
SET epoch = t.epoch + 1, owner = $1, lease_expires = clock_timestamp() + $2::bigint * interval '1 microsecond'
FROM (
    SELECT tx_id FROM {transactions}
    WHERE NOT ended AND last_seq > 0 AND (owner IS NULL OR lease_expires <= clock_timestamp())
    ORDER BY tx_id LIMIT $3
    FOR UPDATE SKIP LOCKED
) AS free
WHERE t.tx_id = free.tx_id
RETURNING t.tx_id, t.epoch, t.lease_expires`)
	// Renew and release lock their rows in tx_id order, as the append
	// groups do, so that they never deadlock with them.
	s.renew = s.fill(`WITH mine AS (
    SELECT tx_id FROM {transactions} WHERE tx_id = ANY($3::text[]) AND owner = $1 AND NOT ended
    ORDER BY tx_id FOR UPDATE
), renewed AS (
    UPDATE {transactions} t SET lease_expires = clock_timestamp() + $2::bigint * interval '1 microsecond'
    FROM mine WHERE t.tx_id = mine.tx_id
    RETURNING t.tx_id
)
SELECT id FROM unnest($3::text[]) AS id
WHERE id NOT IN (SELECT tx_id FROM renewed)
    AND NOT EXISTS (SELECT 1 FROM {transactions} t WHERE t.tx_id = id AND t.ended)`)
	s.release = s.fill(`UPDATE {transactions} t SET owner = NULL, lease_expires = NULL
FROM (SELECT tx_id FROM {transactions} WHERE tx_id = ANY($2::text[]) AND owner = $1 ORDER BY tx_id FOR UPDATE) mine
WHERE t.tx_id = mine.tx_id`)
	s.sweep = s.fill(`DELETE FROM {transactions} WHERE tx_id IN (
    SELECT tx_id FROM {transactions} WHERE forgotten_at < $1 LIMIT $2 FOR UPDATE SKIP LOCKED
)`)
	s.version = s.fill(`SELECT current_setting('server_version_num')::int, current_setting('server_encoding'), (SELECT version FROM {schema})`)
	return s
}

func (s *statements) fill(sql string) string {
	return strings.NewReplacer("{transactions}", s.transactions, "{records}", s.records, "{schema}", s.schema).Replace(sql)
}

// Migrate creates the log's tables, or brings them to SchemaVersion, and
// does nothing when they are there already. It is safe to call from every
// replica at start-up: an advisory lock serialises concurrent calls. Teams
// that run their own migrations run the SQL in the package documentation
// instead. The role needs the right to create tables in the first schema of
// its search_path.
func Migrate(ctx context.Context, pool *pgxpool.Pool, opts ...MigrateOption) (err error) {
	if ctx == nil {
		return errNilContext
	}
	if pool == nil {
		return errors.New("pgjournal: Migrate: the pool is nil")
	}
	cfg := newConfig()
	for _, o := range opts {
		if o != nil {
			o.applyMigrate(cfg)
		}
	}
	if err := cfg.check(); err != nil {
		return err
	}
	ins := newInstruments(cfg.tel, nil)
	ctx, span := ins.start(ctx, spanMigrate)
	defer func() {
		errs.Record(span, err)
		span.End()
	}()
	s := newStatements(cfg.prefix)
	err = pgx.BeginTxFunc(ctx, pool, pgx.TxOptions{IsoLevel: pgx.ReadCommitted}, func(tx pgx.Tx) error {
		// Concurrent CREATE TABLE IF NOT EXISTS can fail on the catalog's
		// unique indexes: one Migrate at a time per prefix.
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtext('otelpatterns.journal.migrate:' || $1::text))`, cfg.prefix); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, s.fill(`CREATE TABLE IF NOT EXISTS {schema} (
    id      boolean PRIMARY KEY DEFAULT true CHECK (id),
    version integer NOT NULL
)`)); err != nil {
			return err
		}
		version := 0
		if err := tx.QueryRow(ctx, s.fill(`SELECT version FROM {schema}`)).Scan(&version); err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return err
		}
		if version > SchemaVersion {
			return fmt.Errorf("%w: %s is at version %d, newer than this package's %d: upgrade pgjournal", ErrSchema, s.schema, version, SchemaVersion)
		}
		for v := version + 1; v <= SchemaVersion; v++ {
			if _, err := tx.Exec(ctx, s.fill(migrations[v-1])); err != nil {
				return fmt.Errorf("to version %d: %w", v, err)
			}
		}
		_, err := tx.Exec(ctx, s.fill(`INSERT INTO {schema} (version) VALUES ($1) ON CONFLICT (id) DO UPDATE SET version = EXCLUDED.version`), SchemaVersion)
		return err
	})
	if err != nil && !errors.Is(err, ErrSchema) {
		err = fmt.Errorf("pgjournal: migrate the tables %s_*: %w", cfg.prefix, err)
	}
	return err
}

// checkSchema fails unless the server can run the log's SQL and its tables
// are at SchemaVersion.
func checkSchema(ctx context.Context, pool *pgxpool.Pool, s *statements) error {
	var (
		server   int
		encoding string
		version  *int
	)
	err := pool.QueryRow(ctx, s.version).Scan(&server, &encoding, &version)
	var pgErr *pgconn.PgError
	switch {
	case errors.As(err, &pgErr) && pgErr.Code == "42P01": // undefined_table
		return fmt.Errorf("%w: table %s does not exist: call Migrate, or run the SQL in the package documentation, first", ErrSchema, s.schema)
	case err != nil:
		return fmt.Errorf("pgjournal: open: check the tables: %w", err)
	case server < 130000:
		return fmt.Errorf("pgjournal: open: the server is PostgreSQL %d.%d; the journal needs 13 or later (pg_xact_status, pg_current_xact_id)", server/10000, server%10000)
	case encoding != "UTF8":
		return fmt.Errorf("pgjournal: open: the database's encoding is %s; the journal needs UTF8", encoding)
	case version == nil:
		return fmt.Errorf("%w: %s is empty: call Migrate", ErrSchema, s.schema)
	case *version != SchemaVersion:
		return fmt.Errorf("%w: %s is at version %d; this package needs %d: call Migrate", ErrSchema, s.schema, *version, SchemaVersion)
	}
	return nil
}
