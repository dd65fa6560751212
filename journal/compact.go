package journal

import (
	"context"
	"maps"
	"slices"
	"time"

	"github.com/otelpatterns/otelpatterns/errs"
)

// snapshotBatch is the size at which compaction starts a new batch.
const snapshotBatch = 1 << 20

// newSegment creates segment index the crash-safe way: under a temporary
// name it writes the header and whatever fill writes, preallocates an
// active segment, syncs, renames the file to its name and syncs the
// directory. A segment with its name is therefore always whole.
func (l *File) newSegment(index uint64, flags uint32, fill func(*segment) error) (seg *segment, err error) {
	name := l.path(index)
	tmp := name + ".tmp"
	f, err := l.fs.Create(tmp)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			f.Close()
			_ = l.fs.Remove(tmp)
		}
	}()
	seg = &segment{f: f, index: index, off: segmentHeaderSize}
	if _, err := f.WriteAt(segmentHeader(index, flags), 0); err != nil {
		return nil, err
	}
	if fill != nil {
		if err := fill(seg); err != nil {
			return nil, err
		}
	}
	if flags&flagSnapshot == 0 {
		if err := f.Allocate(l.cfg.segmentSize); err != nil {
			return nil, err
		}
	}
	if err := f.Datasync(); err != nil {
		return nil, err
	}
	if err := l.fs.Rename(tmp, name); err != nil {
		return nil, err
	}
	if err := l.fs.SyncDir(l.dir); err != nil {
		return nil, err
	}
	return seg, nil
}

// compact writes the live transactions and the unexpired tombstones into a
// snapshot segment, which supersedes every segment before it, starts a new
// active segment after it, and deletes the old ones. Open reads a snapshot
// as the log's beginning, so a crash at any point leaves either the old
// segments or the snapshot in force, never both. A failure fails the log.
func (l *File) compact(ctx context.Context) (err error) {
	if err := l.err(); err != nil {
		return err
	}
	_, span := l.ins.start(ctx, spanCompact)
	defer func() {
		errs.Record(span, err)
		span.End()
	}()

	l.state.Lock()
	l.idx.expire(time.Now(), l.cfg.horizon)
	l.state.Unlock()

	var written int64
	snapshot, err := l.newSegment(l.active.index+1, flagSnapshot, func(s *segment) error {
		l.batch.reset()
		flush := func() error {
			if l.batch.empty() {
				return nil
			}
			buf := l.batch.finish(l.batchNo + 1)
			if _, err := s.f.WriteAt(buf, s.off); err != nil {
				return err
			}
			l.batchNo++
			s.off += int64(len(buf))
			written += int64(len(buf))
			l.batch.reset()
			return nil
		}
		add := func(r *Record) error {
			l.batch.add(r)
			if l.batch.size() < snapshotBatch {
				return nil
			}
			return flush()
		}
		for _, id := range slices.Sorted(maps.Keys(l.idx.tombs)) {
			r := tombstone(id, l.idx.tombs[id])
			if err := add(&r); err != nil {
				return err
			}
		}
		for _, id := range slices.Sorted(maps.Keys(l.idx.txs)) {
			for i := range l.idx.txs[id].records {
				if err := add(&l.idx.txs[id].records[i]); err != nil {
					return err
				}
			}
		}
		return flush()
	})
	if err != nil {
		return l.fail(err)
	}
	if err := snapshot.f.Close(); err != nil {
		return l.fail(err)
	}
	active, err := l.newSegment(snapshot.index+1, 0, nil)
	if err != nil {
		return l.fail(err)
	}
	old := l.segments
	_ = l.active.f.Close() // synced; it is about to be deleted
	l.active = active
	l.segments = []uint64{snapshot.index, active.index}
	l.logBytes = written
	for _, index := range old {
		if err := l.fs.Remove(l.path(index)); err != nil {
			return l.fail(err)
		}
	}
	if err := l.fs.SyncDir(l.dir); err != nil {
		return l.fail(err)
	}
	span.SetAttributes(keySegments.Int(len(old)), keyTransactions.Int(len(l.idx.txs)))
	return nil
}
