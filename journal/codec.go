package journal

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"slices"
)

// The on-disk format. A segment starts with a header:
//
//	magic [8]byte | version uint32 | flags uint32 | index uint64 | crc uint32 | pad [4]byte
//
// and holds batches after it, each one group commit:
//
//	length uint32 | crc uint32 | number uint64 | records [length]byte | zeros to 8-byte alignment
//
// where crc is the CRC-32C of number and records, and records is a uvarint
// count followed by that many records. Integers are little-endian. A header
// of zeros ends the segment's data: segments are preallocated with zeros, and
// a batch is never empty.
const (
	segmentHeaderSize = 32
	batchHeaderSize   = 16
	formatVersion     = 1
	flagSnapshot      = 1 // the segment supersedes every segment before it
	align             = 8
)

var (
	magic      = [8]byte{'o', 't', 'e', 'l', 'j', 'r', 'n', 'l'}
	castagnoli = crc32.MakeTable(crc32.Castagnoli)
)

// A record is encoded as:
//
//	txID str | seq uvarint | epoch uvarint | kind str | step str |
//	attempt uvarint | flags byte (1: end) | payload str |
//	carrier: count uvarint, then key str, value str for each
//
// where str is a uvarint length and the bytes.
func appendRecord(b []byte, r *Record) []byte {
	b = appendString(b, r.TxID)
	b = binary.AppendUvarint(b, r.Seq)
	b = binary.AppendUvarint(b, r.Epoch)
	b = appendString(b, r.Kind)
	b = appendString(b, r.Step)
	b = binary.AppendUvarint(b, uint64(r.Attempt))
	var flags byte
	if r.End {
		flags |= 1
	}
	b = append(b, flags)
	b = binary.AppendUvarint(b, uint64(len(r.Payload)))
	b = append(b, r.Payload...)
	b = binary.AppendUvarint(b, uint64(len(r.Carrier)))
	for k, v := range r.Carrier {
		b = appendString(b, k)
		b = appendString(b, v)
	}
	return b
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// batchWriter builds one batch in a reused buffer.
type batchWriter struct {
	buf   []byte
	count int
}

// reset starts an empty batch. The count is a fixed 5-byte uvarint slot,
// so that it can be filled in last without moving the records.
func (w *batchWriter) reset() {
	w.buf = append(w.buf[:0], make([]byte, batchHeaderSize+5)...)
	w.count = 0
}

func (w *batchWriter) add(r *Record) {
	w.buf = appendRecord(w.buf, r)
	w.count++
}

func (w *batchWriter) empty() bool { return w.count == 0 }

// size is the number of bytes the batch has so far.
func (w *batchWriter) size() int { return len(w.buf) }

// finish seals the batch as number n and returns its bytes, padded.
func (w *batchWriter) finish(n uint64) []byte {
	c := w.buf[batchHeaderSize : batchHeaderSize+5]
	v := uint32(w.count)
	for i := range 4 { // a non-minimal but valid uvarint
		c[i] = byte(v) | 0x80
		v >>= 7
	}
	c[4] = byte(v)
	for len(w.buf)%align != 0 {
		w.buf = append(w.buf, 0)
	}
	h := w.buf[:batchHeaderSize]
	binary.LittleEndian.PutUint32(h[0:], uint32(len(w.buf)-batchHeaderSize))
	binary.LittleEndian.PutUint64(h[8:], n)
	binary.LittleEndian.PutUint32(h[4:], crc32.Checksum(w.buf[8:], castagnoli))
	return w.buf
}

// The errors of decodeBatch, all of them errBadBatch: a batch that does
// not decode.
var (
	errBadBatch = errors.New("invalid batch")
	// errBadFrame is a batch whose length or checksum is wrong: torn by a
	// crash, or damaged after it was written; tornBatch tells which.
	errBadFrame = fmt.Errorf("%w: its length or checksum is wrong", errBadBatch)
	// errBadRecords is a batch whose checksum matches but whose records
	// are not in the format: it was written so, which no crash explains.
	errBadRecords = fmt.Errorf("%w: its checksum matches, but its records do not decode", errBadBatch)
)

// sectorSize is the unit a disk writes whole or not at all when the power
// fails, the smallest there is, as in etcd's wal. A torn write therefore
// leaves some sector of its batch as it was before, and in a segment,
// preallocated with zeros and zeroed past its end by repair, that is all
// zeros.
const sectorSize = 512

// tornBatch reports whether the batch at off of a segment's data, which
// decodeBatch refused for its length or checksum, can be a torn write: it
// runs past the end of data, or its bytes in some sector are all zeros.
// A batch whose every sector was written yet whose checksum fails was
// damaged after the write. The extent is the one its length gives; a
// length damaged to run into the zeros past the data passes for torn.
func tornBatch(data []byte, off int64) bool {
	if off+batchHeaderSize > int64(len(data)) {
		return true
	}
	end := off + batchHeaderSize + int64(binary.LittleEndian.Uint32(data[off:]))
	if end > int64(len(data)) {
		return true
	}
	for lo := off; lo < end; {
		hi := min(end, (lo/sectorSize+1)*sectorSize)
		if !slices.ContainsFunc(data[lo:hi], func(c byte) bool { return c != 0 }) {
			return true
		}
		lo = hi
	}
	return false
}

// zeroHeader reports whether b starts with a header of zeros: the end of a
// segment's data.
func zeroHeader(b []byte) bool {
	if len(b) < batchHeaderSize {
		return true
	}
	return binary.LittleEndian.Uint64(b) == 0 && binary.LittleEndian.Uint64(b[8:]) == 0
}

// decodeBatch decodes the batch at the start of b. It returns the batch's
// number, its records and its size in b, padding included; errBadFrame if
// the length or the checksum is wrong, errBadRecords if a record is. No
// allocation is larger than b, so a corrupt length cannot cause a huge one.
func decodeBatch(b []byte, maxPayload int) (n uint64, recs []Record, size int, err error) {
	if len(b) < batchHeaderSize {
		return 0, nil, 0, errBadFrame
	}
	length := binary.LittleEndian.Uint32(b[0:])
	if length == 0 || length%align != 0 || uint64(length) > uint64(len(b)-batchHeaderSize) {
		return 0, nil, 0, errBadFrame
	}
	size = batchHeaderSize + int(length)
	if crc32.Checksum(b[8:size], castagnoli) != binary.LittleEndian.Uint32(b[4:]) {
		return 0, nil, 0, errBadFrame
	}
	n = binary.LittleEndian.Uint64(b[8:])
	d := decoder{b: b[batchHeaderSize:size], maxPayload: maxPayload}
	count := d.uvarint()
	if count == 0 || count > uint64(len(d.b)) { // a record takes more than a byte
		return 0, nil, 0, errBadRecords
	}
	recs = make([]Record, 0, count)
	for range count {
		recs = append(recs, d.record())
	}
	for _, c := range d.b { // only padding may follow
		if c != 0 {
			d.fail()
		}
	}
	if d.failed || len(d.b) >= align {
		return 0, nil, 0, errBadRecords
	}
	return n, recs, size, nil
}

// decoder reads records from b; after the first error it only fails.
type decoder struct {
	b          []byte
	maxPayload int
	failed     bool
}

func (d *decoder) fail() { d.failed, d.b = true, nil }

func (d *decoder) uvarint() uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail()
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) bytes(limit int) []byte {
	n := d.uvarint()
	if n > uint64(len(d.b)) || n > uint64(limit) {
		d.fail()
		return nil
	}
	v := d.b[:n:n]
	d.b = d.b[n:]
	return v
}

func (d *decoder) string(limit int) string { return string(d.bytes(limit)) }

func (d *decoder) record() Record {
	var r Record
	r.TxID = d.string(MaxIDLen)
	r.Seq = d.uvarint()
	r.Epoch = d.uvarint()
	r.Kind = d.string(MaxNameLen)
	r.Step = d.string(MaxNameLen)
	attempt := d.uvarint()
	if attempt > 1<<31-1 {
		d.fail()
	}
	r.Attempt = int(attempt)
	if len(d.b) == 0 || d.b[0] > 1 {
		d.fail()
		return r
	}
	r.End = d.b[0] == 1
	d.b = d.b[1:]
	if p := d.bytes(d.maxPayload); len(p) > 0 {
		r.Payload = append([]byte{}, p...)
	}
	pairs := d.uvarint()
	if pairs > uint64(len(d.b)/2) {
		d.fail()
		return r
	}
	if pairs > 0 {
		r.Carrier = make(map[string]string, pairs)
		for range pairs {
			k := d.string(MaxNameLen)
			r.Carrier[k] = d.string(maxCarrierValue)
		}
	}
	if r.TxID == "" || r.Kind == "" || r.Seq == 0 {
		d.fail()
	}
	return r
}

// segmentHeader encodes the header of segment index.
func segmentHeader(index uint64, flags uint32) []byte {
	h := make([]byte, segmentHeaderSize)
	copy(h, magic[:])
	binary.LittleEndian.PutUint32(h[8:], formatVersion)
	binary.LittleEndian.PutUint32(h[12:], flags)
	binary.LittleEndian.PutUint64(h[16:], index)
	binary.LittleEndian.PutUint32(h[24:], crc32.Checksum(h[:24], castagnoli))
	return h
}

// parseSegmentHeader returns the index and flags of a segment header, or
// an error that says what is wrong with it.
func parseSegmentHeader(h []byte) (index uint64, flags uint32, err error) {
	switch {
	case len(h) < segmentHeaderSize:
		return 0, 0, errors.New("shorter than a segment header")
	case [8]byte(h[:8]) != magic:
		return 0, 0, errors.New("not a journal segment (bad magic number)")
	case crc32.Checksum(h[:24], castagnoli) != binary.LittleEndian.Uint32(h[24:]):
		return 0, 0, errors.New("segment header checksum mismatch")
	case binary.LittleEndian.Uint32(h[8:]) != formatVersion:
		return 0, 0, fmt.Errorf("unsupported format version %d", binary.LittleEndian.Uint32(h[8:]))
	}
	return binary.LittleEndian.Uint64(h[16:]), binary.LittleEndian.Uint32(h[12:]), nil
}
