package pgjournal

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Barrier is saga.Barrier in a table of the service's own database: the
// sub-transaction barrier (as in DTM), whose marks are written in the
// transaction that makes the step's effect, so that the effect and its
// mark commit together or not at all. A saga step's effects then happen
// exactly once in the database, whatever the retries, the crashes and the
// take-overs by other replicas:
//
//   - a duplicate (an action or compensation delivered again) finds its
//     mark and does nothing;
//   - a null compensation (of an action that never ran here) marks the
//     action as blocked and does nothing;
//   - a suspended action (arriving after its compensation) finds that mark
//     and does nothing.
//
// Two deliveries of one step at once are serialised by the mark's primary
// key: the second waits for the first's transaction, and does nothing if
// it committed. The table lives in the service's database, which need not
// be the journal's; NewBarrier names it and Migrate creates it.
type Barrier struct {
	table string
}

// NewBarrier returns the barrier whose marks are in table (a plain
// identifier: lower case letters, digits and underscores, at most 63
// bytes; "otelpatterns_saga_barrier" when empty).
func NewBarrier(table string) (*Barrier, error) {
	if table == "" {
		table = "otelpatterns_saga_barrier"
	}
	if !barrierTable.MatchString(table) {
		return nil, fmt.Errorf("pgjournal: NewBarrier(%q): the table must be a plain identifier, [a-z_][a-z0-9_]*, at most 63 bytes", table)
	}
	return &Barrier{table: table}, nil
}

// Migrate creates the barrier's table if it is missing:
//
//	CREATE TABLE IF NOT EXISTS otelpatterns_saga_barrier (
//	    saga_id text COLLATE "C" NOT NULL,
//	    step    text NOT NULL,
//	    op      text NOT NULL CHECK (op IN ('action', 'compensate')),
//	    PRIMARY KEY (saga_id, step, op)
//	);
func (b *Barrier) Migrate(ctx context.Context, pool *pgxpool.Pool) error {
	if ctx == nil {
		return errNilContext
	}
	if pool == nil {
		return errors.New("pgjournal: Barrier.Migrate: the pool is nil")
	}
	if _, err := pool.Exec(ctx, b.fill(barrierSchema)); err != nil {
		return fmt.Errorf("pgjournal: create the barrier table %s: %w", b.table, err)
	}
	return nil
}

const barrierSchema = `CREATE TABLE IF NOT EXISTS {barrier} (
    saga_id text COLLATE "C" NOT NULL,
    step    text NOT NULL,
    op      text NOT NULL CHECK (op IN ('action', 'compensate')),
    PRIMARY KEY (saga_id, step, op)
)`

// Action runs effect in tx for the action of step in saga id, unless it
// ran already or the step has been compensated; ran reports whether it
// ran. The mark is written in tx first: commit tx to make both durable,
// or roll it back (as you must when effect fails) to leave neither.
// Take id and step from saga.StepFromContext.
func (b *Barrier) Action(ctx context.Context, tx pgx.Tx, id, step string, effect func(context.Context, pgx.Tx) error) (ran bool, err error) {
	if err := b.check(ctx, tx, id, step, effect); err != nil {
		return false, err
	}
	first, err := b.mark(ctx, tx, id, step, "action")
	if err != nil || !first {
		return false, err
	}
	return true, effect(ctx, tx)
}

// Compensate runs effect in tx for the compensation of step in saga id,
// unless it ran already, or the action never ran here: then it only marks
// the action blocked, so that the action, should it arrive late, does
// nothing. Commit tx as for Action.
func (b *Barrier) Compensate(ctx context.Context, tx pgx.Tx, id, step string, effect func(context.Context, pgx.Tx) error) (ran bool, err error) {
	if err := b.check(ctx, tx, id, step, effect); err != nil {
		return false, err
	}
	blocked, err := b.mark(ctx, tx, id, step, "action")
	if err != nil {
		return false, err
	}
	first, err := b.mark(ctx, tx, id, step, "compensate")
	if err != nil || !first || blocked { // a duplicate, or a null compensation
		return false, err
	}
	return true, effect(ctx, tx)
}

// Forget drops the marks of saga id, once it has ended, in tx.
func (b *Barrier) Forget(ctx context.Context, tx pgx.Tx, id string) error {
	if ctx == nil {
		return errNilContext
	}
	if tx == nil {
		return errors.New("pgjournal: Barrier.Forget: the transaction is nil")
	}
	if _, err := tx.Exec(ctx, b.fill(`DELETE FROM {barrier} WHERE saga_id = $1`), id); err != nil {
		return fmt.Errorf("pgjournal: barrier: forget %q: %w", id, err)
	}
	return nil
}

// mark writes the mark (id, step, op) in tx, and reports whether it is new.
func (b *Barrier) mark(ctx context.Context, tx pgx.Tx, id, step, op string) (bool, error) {
	tag, err := tx.Exec(ctx, b.fill(`INSERT INTO {barrier} (saga_id, step, op) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING`), id, step, op)
	if err != nil {
		return false, fmt.Errorf("pgjournal: barrier: mark the %s of %q step %q: %w", op, id, step, err)
	}
	return tag.RowsAffected() == 1, nil
}

func (b *Barrier) check(ctx context.Context, tx pgx.Tx, id, step string, effect func(context.Context, pgx.Tx) error) error {
	switch {
	case ctx == nil:
		return errNilContext
	case tx == nil:
		return errors.New("pgjournal: Barrier: the transaction is nil; begin one on the service's database and commit it after")
	case id == "" || step == "":
		return errors.New("pgjournal: Barrier: empty saga ID or step; pass them from saga.StepFromContext")
	case !storable(id) || !storable(step):
		return errors.New("pgjournal: Barrier: the saga ID and step must be UTF-8 without NUL bytes")
	case effect == nil:
		return errors.New("pgjournal: Barrier: the effect must not be nil")
	}
	return nil
}

func (b *Barrier) fill(sql string) string { return strings.ReplaceAll(sql, "{barrier}", b.table) }

var barrierTable = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,62}$`)
