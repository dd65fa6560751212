package journal

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// CorruptError is a journal that Open refuses: damage that a crash cannot
// explain, such as a batch whose checksum fails although every sector of
// it was written, or an invalid batch followed by a valid one. Nothing is
// dropped silently: the log is not opened, nothing on disk is changed, and
// the error names the segment file and the offset to look at. Restore the
// file from a backup, or repair it by hand, before opening the log again.
type CorruptError struct {
	File   string // the segment file
	Offset int64  // of the damaged header or batch in File
	Reason string
}

func (e *CorruptError) Error() string {
	return fmt.Sprintf("journal: %s, offset %d: %s (Open changed nothing: restore the file from a backup, or repair it by hand, before opening the log again)", e.File, e.Offset, e.Reason)
}

// Open opens the file log in dir, creating dir if need be, and recovers
// it. Only one process may have a directory open: Open fails at once with
// an error that says so when another holds it.
//
// Recovery reads every segment from the last snapshot on. A crash can
// damage only the last batch, the one not yet synced, and only by leaving
// some of its sectors unwritten: a torn last batch (one that runs past the
// end of the file, or has a sector of zeros in the preallocated file) is
// truncated and the open goes on; it was never acknowledged. Anything
// else is corruption, and Open returns a *CorruptError and changes
// nothing: a batch whose checksum fails although every sector of it was
// written, last or not, and an invalid batch with a valid one after it.
//
// Open runs on Linux and macOS; elsewhere it returns an error that says so.
func Open(dir string, opts ...Option) (*File, error) {
	cfg, err := newConfig(opts)
	if err != nil {
		return nil, err
	}
	fs := cfg.fs
	if fs == nil {
		if err := supported(); err != nil {
			return nil, err
		}
		fs = osFS{}
	}
	l := &File{
		dir: dir, cfg: cfg, fs: fs, idx: newIndex(), heads: map[string]head{},
	}
	l.ins = newInstruments(cfg.tel, "file", func() int {
		l.state.Lock()
		defer l.state.Unlock()
		return l.idx.pending
	})
	// Traced only when there is something to tell: transactions to
	// recover, a torn tail cut off, or an error.
	span := l.ins.lazy(context.Background(), spanOpen)
	l.state.Lock() // for the pending callback; nothing else runs yet
	truncated, err := l.recover()
	l.state.Unlock()
	if l.idx.pending > 0 || truncated > 0 || err != nil {
		span.Span().SetAttributes(keySegments.Int(len(l.segments)), keyTransactions.Int(l.idx.pending), keyTruncated.Int64(truncated))
	}
	span.End(err)
	if err != nil {
		l.ins.unobserve()
		if l.active != nil {
			l.active.f.Close()
		}
		if l.lock != nil {
			l.lock.Close()
		}
		return nil, err
	}
	return l, nil
}

// loaded is a segment read whole by recovery.
type loaded struct {
	index uint64
	name  string
	data  []byte
	end   int64 // of its valid batches
}

// recover locks the directory, reads its segments into the index, repairs a
// torn tail, and opens the active segment. It returns the number of bytes
// it truncated.
func (l *File) recover() (truncated int64, err error) {
	if err := l.fs.MkdirAll(l.dir); err != nil {
		return 0, fmt.Errorf("journal: open %s: %w", l.dir, err)
	}
	if l.lock, err = l.fs.Lock(filepath.Join(l.dir, "LOCK")); err != nil {
		return 0, err
	}
	segs, err := l.readSegments()
	if err != nil {
		return 0, err
	}
	for i := range segs {
		bad, err := l.replay(&segs[i], segs[i+1:])
		if err != nil {
			return 0, err
		}
		if bad {
			// An invalid last batch: cut it off, and the empty segments
			// that may follow it.
			truncated = int64(len(bytes.TrimRight(segs[i].data, "\x00"))) - segs[i].end
			for _, s := range segs[i+1:] {
				if err := l.fs.Remove(s.name); err != nil {
					return 0, err
				}
			}
			segs = segs[:i+1]
			if err := l.truncate(segs[i]); err != nil {
				return 0, err
			}
			break
		}
	}
	for _, s := range segs {
		l.segments = append(l.segments, s.index)
		l.logBytes += s.end - segmentHeaderSize
	}
	if len(segs) == 0 {
		l.active, err = l.newSegment(1, 0, nil)
		l.segments = []uint64{1}
		return truncated, err
	}
	last := segs[len(segs)-1]
	f, err := l.fs.OpenFile(last.name)
	if err != nil {
		return 0, err
	}
	l.active = &segment{f: f, index: last.index, off: last.end}
	return truncated, nil
}

// readSegments reads the segments from the last snapshot on, in order,
// deleting the temporary files of interrupted segment creations and the
// segments that a snapshot superseded.
func (l *File) readSegments() ([]loaded, error) {
	names, err := l.fs.ReadDir(l.dir)
	if err != nil {
		return nil, fmt.Errorf("journal: open %s: %w", l.dir, err)
	}
	var indexes []uint64
	changed := false
	for _, name := range names {
		if strings.HasSuffix(name, ".seg.tmp") {
			if err := l.fs.Remove(filepath.Join(l.dir, name)); err != nil {
				return nil, err
			}
			changed = true
			continue
		}
		hex, ok := strings.CutSuffix(name, ".seg")
		if !ok {
			continue
		}
		index, err := strconv.ParseUint(hex, 16, 64)
		if err != nil || segmentName(index) != name {
			continue
		}
		indexes = append(indexes, index)
	}
	slices.Sort(indexes)
	var segs []loaded
	for _, index := range indexes {
		name := l.path(index)
		data, err := l.readFile(name)
		if err != nil {
			return nil, err
		}
		got, flags, err := parseSegmentHeader(data)
		if err == nil && got != index {
			err = fmt.Errorf("the header says segment %d", got)
		}
		if err != nil {
			return nil, &CorruptError{File: name, Offset: 0, Reason: err.Error()}
		}
		if flags&flagSnapshot != 0 {
			for _, s := range segs {
				if err := l.fs.Remove(s.name); err != nil {
					return nil, err
				}
			}
			segs, changed = segs[:0], true
		}
		segs = append(segs, loaded{index: index, name: name, data: data})
	}
	if changed {
		if err := l.fs.SyncDir(l.dir); err != nil {
			return nil, err
		}
	}
	return segs, nil
}

func (l *File) readFile(name string) ([]byte, error) {
	f, err := l.fs.OpenFile(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	size, err := f.Size()
	if err != nil {
		return nil, err
	}
	data := make([]byte, size)
	if _, err := f.ReadAt(data, 0); err != nil {
		return nil, fmt.Errorf("journal: read %s: %w", name, err)
	}
	return data, nil
}

// replay applies the batches of s to the index and sets s.end. It reports
// bad when s ends in a torn batch that nothing valid follows, in s or in
// the later segments: the tail of a crash. A batch is torn when it runs
// past the end of the file or some sector of it is all zeros, the sector
// that the crash did not let the disk write (see tornBatch). Anything else
// that is wrong is a *CorruptError: a batch whose checksum fails although
// all of it was written, wherever it is, or one whose checksum matches but
// whose records do not decode.
//
// The log's payload limit governs new appends only: a record on disk was
// acknowledged under the limit of its day, so replay decodes up to
// maxPayloadCap, the largest limit there can have been, whatever the limit
// is now.
func (l *File) replay(s *loaded, later []loaded) (bad bool, err error) {
	off := int64(segmentHeaderSize)
	for off < int64(len(s.data)) && !zeroHeader(s.data[off:]) {
		n, recs, size, derr := decodeBatch(s.data[off:], maxPayloadCap)
		if errors.Is(derr, errBadRecords) {
			return false, &CorruptError{File: s.name, Offset: off, Reason: "the batch's checksum matches, but its records are not in the journal's format: it was written so, by another program or a bug"}
		}
		if derr != nil {
			if !tornBatch(s.data, off) {
				return false, &CorruptError{File: s.name, Offset: off, Reason: "the batch's checksum does not match, yet every sector of it was written: a torn write leaves a sector of zeros, so the batch was damaged after it was written (a failing disk, or a write from outside the journal)"}
			}
			bad = true
			break
		}
		if l.batchNo != 0 && n != l.batchNo+1 {
			return false, &CorruptError{File: s.name, Offset: off, Reason: fmt.Sprintf("batch %d where batch %d was due", n, l.batchNo+1)}
		}
		for _, r := range recs {
			if err := l.replayRecord(r, int64(size/len(recs))); err != nil {
				return false, &CorruptError{File: s.name, Offset: off, Reason: err.Error()}
			}
		}
		l.batchNo = n
		off += int64(size)
	}
	s.end = off
	// Bytes after a header of zeros are what is left of a torn batch whose
	// first sector was not written: a torn tail too, to be zeroed, lest a
	// later batch, shorter than it, be followed by its remains.
	if !bad && int64(len(bytes.TrimRight(s.data, "\x00"))) > off {
		bad = true
	}
	// Nothing valid may follow the end of the data: not in this segment,
	// and, after an invalid batch, not in a later one.
	if at, ok := l.findValid(s.data, off+align); ok {
		return false, l.corruptTail(s, off, s.name, at)
	}
	for _, t := range later {
		if !bad {
			break
		}
		if at, ok := l.findValid(t.data, segmentHeaderSize); ok {
			return false, l.corruptTail(s, off, t.name, at)
		}
	}
	return bad, nil
}

func (l *File) corruptTail(s *loaded, off int64, name string, at int64) error {
	return &CorruptError{File: s.name, Offset: off,
		Reason: fmt.Sprintf("an invalid batch is followed by a valid one (%s, offset %d)", name, at)}
}

// findValid returns the offset of the first valid batch numbered after the
// last one replayed, looking at every aligned offset of data from off on.
func (l *File) findValid(data []byte, off int64) (int64, bool) {
	for off += (align - off%align) % align; off+batchHeaderSize <= int64(len(data)); off += align {
		if zeroHeader(data[off:]) {
			continue
		}
		if n, _, _, err := decodeBatch(data[off:], maxPayloadCap); err == nil && n > l.batchNo {
			return off, true
		}
	}
	return 0, false
}

// replayRecord applies one record read from disk, checking that it follows
// the transaction's records as Append would have.
func (l *File) replayRecord(r Record, size int64) error {
	if at, ok := tombstoneTime(r); ok {
		l.idx.forget(r.TxID, at)
		return nil
	}
	h, err := l.idx.head(r.TxID).check(r.TxID, r.Seq-1, []Record{r})
	if err != nil {
		return fmt.Errorf("record %d of %q cannot follow the log before it: %w", r.Seq, r.TxID, err)
	}
	l.idx.apply(r.TxID, h, []Record{r}, size)
	return nil
}

// truncate cuts segment s off after its valid batches and zeroes the rest,
// durably.
func (l *File) truncate(s loaded) error {
	f, err := l.fs.OpenFile(s.name)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := f.Truncate(s.end); err != nil {
		return err
	}
	if err := f.Allocate(l.cfg.segmentSize); err != nil {
		return err
	}
	if err := f.Datasync(); err != nil {
		return err
	}
	return l.fs.SyncDir(l.dir)
}
