package journal

import (
	"context"
	"errors"
	"time"
)

// errLead is what a queued request is told when it comes to the head of
// the queue: it is now the leader, and writes for the requests queued.
var errLead = errors.New("journal: lead")

// lead is the leader's work: it takes the requests queued, up to
// WithMaxGroup of them, commits them with one write and one fdatasync, and
// then hands the lead to the request now at the head of the queue, if
// any. A compaction is carried out alone, in its turn.
func (l *File) lead() {
	l.mu.Lock()
	n := 1
	if l.queue[0].op != opCompact {
		for n < len(l.queue) && n < l.cfg.maxGroup && l.queue[n].op != opCompact {
			n++
		}
	}
	l.group = append(l.group[:0], l.queue[:n]...)
	l.queue = append(l.queue[:0], l.queue[n:]...)
	l.mu.Unlock()

	if r := l.group[0]; r.op == opCompact {
		r.done <- l.compact(r.ctx)
	} else {
		l.commit(l.group)
		if l.overgrown() {
			_ = l.compact(context.Background()) // a failure fails the log, and every later call says so
		}
	}
	clear(l.group)

	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.queue) == 0 {
		l.leading = false
		return
	}
	l.queue[0].done <- errLead
}

// commit checks each request of group against the log and the requests
// before it, writes the accepted ones as one batch, syncs it, and only then
// applies them and tells their callers.
func (l *File) commit(group []*request) {
	if err := l.err(); err != nil {
		for _, r := range group {
			r.done <- err
		}
		return
	}
	clear(l.heads)
	l.batch.reset()
	accepted := l.accepted[:0]
	for _, r := range group {
		h, ok := l.heads[r.txID]
		if !ok {
			h = l.idx.head(r.txID) // only this goroutine changes idx
			h.epoch = max(h.epoch, l.leases.fence(r.txID))
		}
		var err error
		switch r.op {
		case opForget:
			var write bool
			if write, err = h.forgettable(r.txID); err == nil && !write {
				r.done <- nil
				continue
			}
			r.at = time.Now()
			r.records = []Record{tombstone(r.txID, r.at)}
			h = head{forgotten: true}
		default:
			h, err = h.check(r.txID, r.expectSeq, r.records)
		}
		if err != nil {
			r.done <- err
			continue
		}
		l.heads[r.txID], r.head = h, h
		before := l.batch.size()
		for i := range r.records {
			l.batch.add(&r.records[i])
		}
		r.size = int64(l.batch.size() - before)
		accepted = append(accepted, r)
	}
	l.accepted = accepted
	if len(accepted) == 0 {
		return
	}
	records := l.batch.count
	buf := l.batch.finish(l.batchNo + 1)
	if err := l.write(buf); err != nil {
		err = l.fail(err)
		for _, r := range accepted {
			r.done <- err
		}
		clear(accepted)
		return
	}
	l.batchNo++
	l.state.Lock()
	for _, r := range accepted {
		if r.op == opForget {
			l.idx.forget(r.txID, r.at)
		} else {
			l.idx.apply(r.txID, r.head, r.records, r.size)
		}
		if r.head.ended {
			l.leases.ended(r.txID)
		}
	}
	l.state.Unlock()
	l.ins.synced(records, len(buf))
	for _, r := range accepted {
		r.done <- nil
	}
	clear(accepted)
}

// write writes one batch at the end of the active segment, starting a new
// segment first if the batch would not fit, and syncs it.
func (l *File) write(buf []byte) error {
	if l.active.off+int64(len(buf)) > l.cfg.segmentSize && l.active.off > segmentHeaderSize {
		if err := l.rotate(); err != nil {
			return err
		}
	}
	if _, err := l.active.f.WriteAt(buf, l.active.off); err != nil {
		return err
	}
	if err := l.active.f.Datasync(); err != nil {
		return err
	}
	l.active.off += int64(len(buf))
	l.logBytes += int64(len(buf))
	return nil
}

// rotate seals the active segment, which every batch has been synced to,
// and starts the next.
func (l *File) rotate() error {
	next, err := l.newSegment(l.active.index+1, 0, nil)
	if err != nil {
		return err
	}
	err = l.active.f.Close()
	l.active = next
	l.segments = append(l.segments, next.index)
	return err
}

// overgrown reports whether the segments hold more than twice the live
// records and one segment besides: time to compact.
func (l *File) overgrown() bool {
	return len(l.segments) > 2 && l.logBytes > 2*l.idx.bytes+l.cfg.segmentSize
}
