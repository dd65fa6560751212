package journal

import (
	"encoding/binary"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Limits on what a record may hold. The payload's limit is the log's
// (WithMaxPayload).
const (
	MaxIDLen   = 1024 // bytes of a transaction ID
	MaxNameLen = 1024 // bytes of a kind, a step name or a carrier key

	maxCarrierValue = 8192 // bytes of a carrier value: W3C caps baggage at 8192

	// reservedKind starts the kinds of the log's own records.
	reservedKind = "journal."
	// kindForget is the tombstone that Forget writes; its payload is the
	// time of forgetting, in Unix nanoseconds.
	kindForget = reservedKind + "forget"
)

// validate checks what can be checked of an Append without the log's
// state, and appends to dst copies of the records numbered from
// expectSeq+1.
func validate(dst []Record, txID string, expectSeq uint64, records []Record, maxPayload int) ([]Record, error) {
	switch {
	case txID == "":
		return nil, &InvalidError{TxID: txID, Index: -1, Reason: "the transaction ID is empty"}
	case len(txID) > MaxIDLen:
		return nil, &InvalidError{TxID: txID[:32] + "...", Index: -1, Reason: fmt.Sprintf("the transaction ID is %d bytes; the limit is %d", len(txID), MaxIDLen)}
	case len(records) == 0:
		return nil, &InvalidError{TxID: txID, Index: -1, Reason: "no records to append"}
	}
	for i, r := range records {
		reason := ""
		switch {
		case r.Kind == "":
			reason = "the kind is empty"
		case strings.HasPrefix(r.Kind, reservedKind):
			reason = fmt.Sprintf("kind %q: kinds starting with %q are the log's own", r.Kind, reservedKind)
		case len(r.Kind) > MaxNameLen || len(r.Step) > MaxNameLen:
			reason = fmt.Sprintf("the kind or step name is longer than %d bytes", MaxNameLen)
		case r.Attempt < 0:
			reason = fmt.Sprintf("attempt %d is negative", r.Attempt)
		case len(r.Payload) > maxPayload:
			reason = fmt.Sprintf("the payload is %d bytes; the log's limit is %d (WithMaxPayload)", len(r.Payload), maxPayload)
		case r.End && i < len(records)-1:
			reason = "an End record must be the last of the append"
		}
		for k, v := range r.Carrier {
			if k == "" || len(k) > MaxNameLen || len(v) > maxCarrierValue {
				reason = fmt.Sprintf("carrier entry %q is empty or too long", k)
			}
		}
		if reason != "" {
			return nil, &InvalidError{TxID: txID, Index: i, Reason: reason}
		}
		c := r.clone()
		c.TxID, c.Seq = txID, expectSeq+uint64(i)+1
		dst = append(dst, c)
	}
	return dst, nil
}

// head is what fencing checks an Append against: the state of one
// transaction's end of log.
type head struct {
	seq       uint64
	epoch     uint64
	ended     bool
	forgotten bool
}

// check returns the head after appending records (numbered by validate)
// at h, or why they may not be appended.
func (h head) check(txID string, expectSeq uint64, records []Record) (head, error) {
	if h.ended || h.forgotten {
		return h, fmt.Errorf("%w: %q", ErrEnded, txID)
	}
	for _, r := range records {
		if r.Epoch < h.epoch {
			return h, fmt.Errorf("%w: transaction %q is owned by epoch %d; this append is from epoch %d", ErrFenced, txID, h.epoch, r.Epoch)
		}
	}
	if expectSeq != h.seq {
		return h, &ConflictError{TxID: txID, Expected: expectSeq, Actual: h.seq}
	}
	for _, r := range records {
		h.epoch = max(h.epoch, r.Epoch)
		h.ended = h.ended || r.End
	}
	h.seq += uint64(len(records))
	return h, nil
}

// transaction is what the log holds of one transaction.
type transaction struct {
	records []Record
	head    head
	bytes   int64 // encoded size of the records, for the file log's compaction
}

// index is the state of a log in memory: every live transaction's records
// and the tombstones of the forgotten ones. It is not safe for concurrent
// use; each log guards its own.
type index struct {
	txs   map[string]*transaction
	tombs map[string]time.Time // forgotten ID -> when
	// pending counts the transactions without an End record; bytes sums
	// the encoded size of every record held.
	pending int
	bytes   int64
}

func newIndex() *index {
	return &index{txs: map[string]*transaction{}, tombs: map[string]time.Time{}}
}

func (x *index) head(txID string) head {
	if t, ok := x.txs[txID]; ok {
		return t.head
	}
	if _, ok := x.tombs[txID]; ok {
		return head{forgotten: true}
	}
	return head{}
}

// apply adds records that check accepted; size is their encoded size.
func (x *index) apply(txID string, h head, records []Record, size int64) {
	t, ok := x.txs[txID]
	if !ok {
		t = &transaction{}
		x.txs[txID] = t
		x.pending++
	}
	if h.ended && !t.head.ended {
		x.pending--
	}
	if t.records == nil {
		t.records = make([]Record, 0, max(8, len(records))) // most transactions hold a handful
	}
	t.records = append(t.records, records...)
	t.head = h
	t.bytes += size
	x.bytes += size
}

// forget drops an ended transaction and leaves its tombstone.
func (x *index) forget(txID string, at time.Time) {
	if t, ok := x.txs[txID]; ok {
		x.bytes -= t.bytes
		if !t.head.ended {
			x.pending--
		}
		delete(x.txs, txID)
	}
	x.tombs[txID] = at
}

// expire drops the tombstones older than horizon; a zero horizon keeps them
// for ever.
func (x *index) expire(now time.Time, horizon time.Duration) {
	if horizon <= 0 {
		return
	}
	for id, at := range x.tombs {
		if now.Sub(at) > horizon {
			delete(x.tombs, id)
		}
	}
}

// isEnded reports whether txID has ended, or ended and was forgotten.
func (x *index) isEnded(txID string) bool {
	h := x.head(txID)
	return h.ended || h.forgotten
}

// load returns copies of txID's records.
func (x *index) load(txID string) ([]Record, error) {
	t, ok := x.txs[txID]
	if !ok {
		if _, gone := x.tombs[txID]; gone {
			return nil, fmt.Errorf("%w: %q", ErrForgotten, txID)
		}
		return nil, nil
	}
	out := make([]Record, len(t.records))
	for i, r := range t.records {
		out[i] = r.clone()
	}
	return out, nil
}

// pendingIDs returns the IDs of the transactions without an End record,
// sorted.
func (x *index) pendingIDs() []string {
	ids := make([]string, 0, x.pending)
	for id, t := range x.txs {
		if !t.head.ended {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids
}

// tombstone is the record Forget writes for txID.
func tombstone(txID string, at time.Time) Record {
	return Record{TxID: txID, Seq: 1, Kind: kindForget, Payload: binary.LittleEndian.AppendUint64(nil, uint64(at.UnixNano()))}
}

// tombstoneTime reads the time a tombstone record was written.
func tombstoneTime(r Record) (time.Time, bool) {
	if r.Kind != kindForget || len(r.Payload) != 8 {
		return time.Time{}, false
	}
	return time.Unix(0, int64(binary.LittleEndian.Uint64(r.Payload))), true
}

// forgettable reports whether Forget of the transaction at h writes a
// tombstone: only when it has ended. Forgetting an unknown or a forgotten
// transaction does nothing; one that has not ended is refused.
func (h head) forgettable(txID string) (write bool, err error) {
	switch {
	case h.ended:
		return true, nil
	case h.forgotten || h.seq == 0:
		return false, nil
	default:
		return false, fmt.Errorf("%w: %q is still pending; only an ended transaction can be forgotten", ErrNotEnded, txID)
	}
}
