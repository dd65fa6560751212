package journal

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"sync"
	"time"
)

// File is the durable Log: records in checksummed batches in segment files
// of one directory, each batch made durable with fdatasync before its
// Appends return. Concurrent Appends share one write and one fdatasync
// (group commit), so throughput grows with concurrency while every caller
// still waits for its own records. Only one process may open a directory.
//
// The log starts no goroutine: the caller at the head of the queue writes
// for everyone queued behind it, as LevelDB's writers do, so a lone
// appender pays no hand-off.
//
// A File holds every live transaction's records in memory too, so Load and
// Pending never read the disk; Forget and compaction keep both small.
type File struct {
	dir  string
	cfg  *config
	fs   fsys
	ins  *instruments
	lock io.Closer

	// mu guards the queue of requests, whether one of them is leading,
	// and closed; inflight counts the requests queued and not yet done.
	mu       sync.Mutex
	queue    []*request
	leading  bool
	closed   bool
	inflight sync.WaitGroup

	state  sync.Mutex // guards idx and failed; the writer changes them only under it
	idx    *index
	failed error
	leases leaseTable // in memory: a File is one process's, and its leases end with it

	// The leader's own (see lead).
	active   *segment
	segments []uint64 // every segment's index, the active one last
	logBytes int64    // batch bytes in all segments
	batchNo  uint64   // the last batch's number
	batch    batchWriter
	heads    map[string]head
	group    []*request
	accepted []*request
}

var _ Leaser = (*File)(nil)

// segment is an open segment file.
type segment struct {
	f     file
	index uint64
	off   int64 // where the next batch goes
}

type op uint8

const (
	opAppend op = iota
	opForget
	opCompact
)

// request is one call queued for the leader.
type request struct {
	op        op
	ctx       context.Context // a compaction's, for its span
	txID      string
	expectSeq uint64
	records   []Record
	done      chan error // the outcome, or errLead

	// Set by the leader.
	head head      // the transaction's head after the request
	size int64     // encoded size of records
	at   time.Time // when a Forget was written
}

func segmentName(index uint64) string { return fmt.Sprintf("%016x.seg", index) }

func (l *File) path(index uint64) string { return filepath.Join(l.dir, segmentName(index)) }

// Append implements Log.
func (l *File) Append(ctx context.Context, txID string, expectSeq uint64, records ...Record) (err error) {
	if ctx == nil {
		return errNilContext
	}
	sw := l.ins.startAppend(ctx)
	defer func() { l.ins.appended(ctx, sw, err) }()
	recs, err := validate(make([]Record, 0, len(records)), txID, expectSeq, records, l.cfg.maxPayload)
	if err != nil {
		return err
	}
	return l.submit(ctx, &request{op: opAppend, txID: txID, expectSeq: expectSeq, records: recs})
}

// Forget implements Log. The tombstone is durable when it returns.
func (l *File) Forget(ctx context.Context, txID string) error {
	if ctx == nil {
		return errNilContext
	}
	return l.submit(ctx, &request{op: opForget, txID: txID})
}

// Compact rewrites the log's live transactions and tombstones into a new
// segment, through a temporary file and an atomic rename, then deletes the
// segments it replaces. The file log compacts by itself when its segments
// hold more than twice the live records and a segment besides; Compact is
// for doing it now. Appends wait while it runs.
func (l *File) Compact(ctx context.Context) error {
	if ctx == nil {
		return errNilContext
	}
	return l.submit(ctx, &request{op: opCompact, ctx: ctx})
}

// submit queues r and waits for its outcome. Queueing never blocks, so ctx
// is checked only before; once queued, r is always carried out.
func (l *File) submit(ctx context.Context, r *request) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	r.done = make(chan error, 1)
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return ErrClosed
	}
	l.queue = append(l.queue, r)
	l.inflight.Add(1)
	defer l.inflight.Done()
	leader := !l.leading
	l.leading = true
	l.mu.Unlock()
	if !leader {
		if err := <-r.done; err != errLead {
			return err
		}
	}
	l.lead()
	return <-r.done
}

// Load implements Log.
func (l *File) Load(ctx context.Context, txID string) ([]Record, error) {
	if ctx == nil {
		return nil, errNilContext
	}
	if err := l.usable(ctx); err != nil {
		return nil, err
	}
	l.state.Lock()
	defer l.state.Unlock()
	return l.idx.load(txID)
}

// Pending implements Log.
func (l *File) Pending(ctx context.Context) ([]string, error) {
	if ctx == nil {
		return nil, errNilContext
	}
	if err := l.usable(ctx); err != nil {
		return nil, err
	}
	l.state.Lock()
	defer l.state.Unlock()
	return l.idx.pendingIDs(), nil
}

func (l *File) usable(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	l.mu.Lock()
	closed := l.closed
	l.mu.Unlock()
	if closed {
		return ErrClosed
	}
	return l.err()
}

// Close implements Log: it waits for the calls already queued, then closes
// the files and releases the directory's lock.
func (l *File) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil // Close is idempotent
	}
	l.closed = true
	l.mu.Unlock()
	l.inflight.Wait()
	l.ins.unobserve()
	err := l.active.f.Close()
	if lerr := l.lock.Close(); err == nil {
		err = lerr
	}
	return err
}

// err returns the error that failed the log, if one did.
func (l *File) err() error {
	l.state.Lock()
	defer l.state.Unlock()
	return l.failed
}

// fail makes every later call fail with ErrFailed and cause: after a failed
// write or fdatasync nothing the log holds in memory is known to be on disk.
func (l *File) fail(cause error) error {
	l.state.Lock()
	defer l.state.Unlock()
	if l.failed == nil {
		l.failed = fmt.Errorf("%w: %w", ErrFailed, cause)
	}
	return l.failed
}

// Dir returns the directory of the log.
func (l *File) Dir() string { return l.dir }

// Acquire implements Leaser. Leases live in memory: after a restart every
// unfinished transaction is unowned, since the process that held them is
// gone.
func (l *File) Acquire(ctx context.Context, txID, owner string, ttl time.Duration) (Lease, error) {
	if err := checkLease(ctx, owner, ttl); err != nil {
		return Lease{}, err
	}
	if err := l.usable(ctx); err != nil {
		return Lease{}, err
	}
	l.state.Lock()
	defer l.state.Unlock()
	return l.leases.acquire(txID, owner, ttl, l.idx.head(txID), time.Now(), true)
}

// Claim implements Leaser.
func (l *File) Claim(ctx context.Context, owner string, ttl time.Duration, max int) ([]Lease, error) {
	if err := checkLease(ctx, owner, ttl); err != nil {
		return nil, err
	}
	if err := checkClaim(max); err != nil {
		return nil, err
	}
	if err := l.usable(ctx); err != nil {
		return nil, err
	}
	l.state.Lock()
	defer l.state.Unlock()
	return l.leases.claim(owner, ttl, max, l.idx.pendingIDs(), l.idx.head, time.Now()), nil
}

// Renew implements Leaser.
func (l *File) Renew(ctx context.Context, owner string, ttl time.Duration, txIDs []string) ([]string, error) {
	if err := checkLease(ctx, owner, ttl); err != nil {
		return nil, err
	}
	if err := l.usable(ctx); err != nil {
		return nil, err
	}
	l.state.Lock()
	defer l.state.Unlock()
	return l.leases.renew(owner, ttl, txIDs, l.idx.isEnded, time.Now()), nil
}

// Release implements Leaser.
func (l *File) Release(ctx context.Context, owner string, txIDs ...string) error {
	if err := checkLease(ctx, owner, time.Second); err != nil {
		return err
	}
	if err := l.usable(ctx); err != nil {
		return err
	}
	l.leases.release(owner, txIDs)
	return nil
}
