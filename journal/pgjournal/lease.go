package pgjournal

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/otelpatterns/otelpatterns/journal"
)

var _ journal.Leaser = (*Log)(nil)

// The leases live on the head of each transaction (see the package
// documentation): its owner, the expiry on the database's clock, and its
// epoch, which is the epoch the appends fence on. Taking a lease raises
// the epoch in the statement that takes it, so an owner that lost its
// lease is fenced by the very row lock that serialises the appends.

// Acquire implements journal.Leaser. A transaction with no records yet
// gets a head row with no records, which holds its lease and its fence
// until its first Append; such a head is not pending and loads as
// unknown.
func (l *Log) Acquire(ctx context.Context, txID, owner string, ttl time.Duration) (journal.Lease, error) {
	if err := l.checkLease(ctx, owner, ttl); err != nil {
		return journal.Lease{}, err
	}
	if err := checkID(txID); err != nil {
		return journal.Lease{}, err
	}
	for range 3 {
		var lease journal.Lease
		err := l.leaseTx(ctx, l.sql.acquire, []any{txID, owner, ttl.Microseconds()}, func(br pgx.BatchResults) error {
			return br.QueryRow().Scan(&lease.Epoch, &lease.Expires)
		})
		switch {
		case err == nil:
			lease.TxID = txID
			return lease, nil
		case !errors.Is(err, pgx.ErrNoRows):
			return journal.Lease{}, fmt.Errorf("pgjournal: acquire %q: %w", txID, err)
		}
		// Refused: say why, from the head as it is now.
		var (
			ended   bool
			holder  *string
			expires *time.Time
		)
		err = l.pool.QueryRow(ctx, l.sql.holder, txID).Scan(&ended, &holder, &expires)
		switch {
		case errors.Is(err, pgx.ErrNoRows):
			continue // a tombstone that expired meanwhile: try again
		case err != nil:
			return journal.Lease{}, fmt.Errorf("pgjournal: acquire %q: read its lease: %w", txID, err)
		case ended:
			return journal.Lease{}, fmt.Errorf("%w: %q", journal.ErrEnded, txID)
		case holder != nil && expires != nil:
			return journal.Lease{}, fmt.Errorf("%w: %q until %s", journal.ErrLeased, txID, expires.Format(time.RFC3339Nano))
		}
		// Released or expired meanwhile: try again.
	}
	return journal.Lease{}, fmt.Errorf("%w: %q: its lease changed hands three times during the Acquire", journal.ErrLeased, txID)
}

// Claim implements journal.Leaser. It takes the IDs in bytewise order and
// skips the rows that another Claim, Acquire or Append
// holds locked at that moment (FOR UPDATE SKIP LOCKED), so concurrent
// claimers, in any process, neither wait for each other nor take one
// transaction twice.
func (l *Log) Claim(ctx context.Context, owner string, ttl time.Duration, max int) ([]journal.Lease, error) {
	if err := l.checkLease(ctx, owner, ttl); err != nil {
		return nil, err
	}
	if max <= 0 {
		return nil, fmt.Errorf("pgjournal: Claim: max %d must be at least 1", max)
	}
	var out []journal.Lease
	err := l.leaseTx(ctx, l.sql.claim, []any{owner, ttl.Microseconds(), max}, func(br pgx.BatchResults) error {
		rows, err := br.Query()
		if err != nil {
			return err
		}
		var lease journal.Lease
		_, err = pgx.ForEachRow(rows, []any{&lease.TxID, &lease.Epoch, &lease.Expires}, func() error {
			out = append(out, lease)
			return nil
		})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("pgjournal: claim: %w", err)
	}
	slices.SortFunc(out, func(a, b journal.Lease) int { return strings.Compare(a.TxID, b.TxID) })
	return out, nil
}

// Renew implements journal.Leaser.
func (l *Log) Renew(ctx context.Context, owner string, ttl time.Duration, txIDs []string) ([]string, error) {
	if err := l.checkLease(ctx, owner, ttl); err != nil {
		return nil, err
	}
	ids, never := storableIDs(txIDs) // an ID no text column can hold was never leased
	if len(ids) == 0 {
		return never, nil
	}
	var lost []string
	err := l.leaseTx(ctx, l.sql.renew, []any{owner, ttl.Microseconds(), ids}, func(br pgx.BatchResults) error {
		rows, err := br.Query()
		if err != nil {
			return err
		}
		lost, err = pgx.CollectRows(rows, pgx.RowTo[string])
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("pgjournal: renew: %w", err)
	}
	return append(lost, never...), nil
}

// Release implements journal.Leaser.
func (l *Log) Release(ctx context.Context, owner string, txIDs ...string) error {
	if err := l.checkLease(ctx, owner, time.Second); err != nil {
		return err
	}
	ids, _ := storableIDs(txIDs)
	if len(ids) == 0 {
		return nil
	}
	if _, err := l.pool.Exec(ctx, l.sql.release, owner, ids); err != nil {
		return fmt.Errorf("pgjournal: release: %w", err)
	}
	return nil
}

// leaseTx runs a lease statement, whose results read reads, in one round
// trip: a batch is one implicit transaction, committed at its end, and
// its first statement makes that COMMIT wait for the WAL flush, as an
// Append's does, since a lease that a crash of the server could undo
// would let two owners hold one transaction. A COMMIT whose answer is
// lost is an error here, with the lease perhaps taken: it then expires
// unused, which delays the transaction and endangers nothing.
func (l *Log) leaseTx(ctx context.Context, stmt string, args []any, read func(pgx.BatchResults) error) error {
	b := &pgx.Batch{}
	b.Queue(`SELECT set_config('synchronous_commit', 'on', true) WHERE current_setting('synchronous_commit') = 'off'`)
	b.Queue(stmt, args...)
	br := l.pool.SendBatch(ctx, b)
	if _, err := br.Exec(); err != nil {
		_ = br.Close()
		return err
	}
	if err := read(br); err != nil {
		_ = br.Close()
		return err
	}
	return br.Close()
}

// storableIDs splits ids into those a text column can hold and the rest.
func storableIDs(ids []string) (ok, not []string) {
	for _, id := range ids {
		if storable(id) {
			ok = append(ok, id)
		} else {
			not = append(not, id)
		}
	}
	return ok, not
}

// checkLease validates what every lease call shares.
func (l *Log) checkLease(ctx context.Context, owner string, ttl time.Duration) error {
	switch {
	case ctx == nil:
		return errNilContext
	case owner == "":
		return errors.New("pgjournal: lease: the owner must not be empty; name the runner (a pod name, say)")
	case !storable(owner) || len(owner) > journal.MaxIDLen:
		return fmt.Errorf("pgjournal: lease: the owner must be UTF-8 without NUL bytes, at most %d bytes", journal.MaxIDLen)
	case ttl < time.Millisecond:
		return fmt.Errorf("pgjournal: lease: ttl %v must be at least a millisecond", ttl)
	}
	return l.usable(ctx)
}
