package journal

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"reflect"
	"testing"
)

func sampleRecords() []Record {
	return []Record{
		{TxID: "order-1", Seq: 1, Epoch: 1, Kind: "saga.begin", Payload: []byte(`{"sku":"a"}`),
			Carrier: map[string]string{"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", "baggage": "user=7"}},
		{TxID: "order-1", Seq: 2, Epoch: 2, Kind: "saga.step.started", Step: "reserve", Attempt: 3},
		{TxID: "order-2", Seq: 9, Epoch: 1 << 40, Kind: "x", End: true, Payload: bytes.Repeat([]byte{0xff}, 300)},
	}
}

func encodeBatch(n uint64, recs []Record) []byte {
	var w batchWriter
	w.reset()
	for i := range recs {
		w.add(&recs[i])
	}
	return append([]byte{}, w.finish(n)...)
}

func TestBatchRoundTrip(t *testing.T) {
	recs := sampleRecords()
	b := encodeBatch(42, recs)
	if len(b)%align != 0 {
		t.Fatalf("batch of %d bytes is not aligned to %d", len(b), align)
	}
	n, got, size, err := decodeBatch(append(b, make([]byte, 64)...), DefaultMaxPayload)
	if err != nil || n != 42 || size != len(b) {
		t.Fatalf("decodeBatch = %d, %d bytes, %v; want 42, %d bytes, nil", n, size, err, len(b))
	}
	if !reflect.DeepEqual(got, recs) {
		t.Fatalf("decoded %+v\nwant %+v", got, recs)
	}
}

func TestBatchDamageDetected(t *testing.T) {
	b := encodeBatch(7, sampleRecords())
	for i := range b {
		for _, flip := range []byte{0x01, 0x80} {
			bad := append([]byte{}, b...)
			bad[i] ^= flip
			if _, _, _, err := decodeBatch(bad, DefaultMaxPayload); !errors.Is(err, errBadFrame) || !errors.Is(err, errBadBatch) {
				t.Fatalf("flipping bit %#x of byte %d: decodeBatch = %v, want a length or checksum mismatch", flip, i, err)
			}
		}
	}
	for cut := range len(b) {
		if _, _, _, err := decodeBatch(b[:cut], DefaultMaxPayload); err == nil {
			t.Fatalf("a batch cut to %d of %d bytes decoded", cut, len(b))
		}
	}
}

func TestDecodeRespectsPayloadLimit(t *testing.T) {
	b := encodeBatch(1, sampleRecords()) // one payload is 300 bytes
	if _, _, _, err := decodeBatch(b, 299); err == nil {
		t.Fatal("a payload over the limit decoded")
	}
}

func TestSegmentHeader(t *testing.T) {
	h := segmentHeader(5, flagSnapshot)
	index, flags, err := parseSegmentHeader(h)
	if err != nil || index != 5 || flags != flagSnapshot {
		t.Fatalf("parseSegmentHeader = %d, %d, %v", index, flags, err)
	}
	for i := range 28 {
		bad := append([]byte{}, h...)
		bad[i] ^= 1
		if _, _, err := parseSegmentHeader(bad); err == nil {
			t.Fatalf("a flipped bit in byte %d of the header went unnoticed", i)
		}
	}
}

// FuzzDecodeBatch feeds the decoder arbitrary bytes: it must never panic,
// and whatever it accepts must encode back to a batch that decodes the
// same. The seeds run in every ordinary test run.
func FuzzDecodeBatch(f *testing.F) {
	valid := encodeBatch(3, sampleRecords())
	f.Add(valid)
	f.Add(valid[:len(valid)-9])
	f.Add(make([]byte, 64))
	f.Add([]byte{8, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0})
	f.Add(encodeBatch(1, []Record{{TxID: "t", Seq: 1, Kind: "k"}}))
	f.Fuzz(func(t *testing.T, b []byte) {
		n, recs, size, err := decodeBatch(b, 1<<12)
		if err != nil {
			return
		}
		if size > len(b) || size%align != 0 || len(recs) == 0 {
			t.Fatalf("decoded %d records of size %d from %d bytes", len(recs), size, len(b))
		}
		n2, again, _, err := decodeBatch(encodeBatch(n, recs), 1<<12)
		if err != nil || n2 != n || !reflect.DeepEqual(again, recs) {
			t.Fatalf("re-encoding changed the batch: %v", err)
		}
	})
}

// FuzzDecodeRecords fuzzes the record decoder behind a valid frame, which
// random bytes would almost never pass: it must never panic, never allocate
// past its input, and accept only what re-encodes the same.
func FuzzDecodeRecords(f *testing.F) {
	valid := encodeBatch(3, sampleRecords())
	f.Add(valid[batchHeaderSize:])
	f.Add([]byte{0x81, 0x80, 0x80, 0x80, 0x00, 1, 't', 1, 0, 1, 'k', 0, 0, 0, 0, 0, 0})
	f.Add([]byte{1, 1, 't', 1, 0, 1, 'k', 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Fuzz(func(t *testing.T, records []byte) {
		for len(records)%align != 0 {
			records = append(records, 0)
		}
		b := make([]byte, batchHeaderSize, batchHeaderSize+len(records))
		b = append(b, records...)
		binary.LittleEndian.PutUint32(b[0:], uint32(len(records)))
		binary.LittleEndian.PutUint64(b[8:], 1)
		binary.LittleEndian.PutUint32(b[4:], crc32.Checksum(b[8:], castagnoli))
		_, recs, _, err := decodeBatch(b, 1<<12)
		if err != nil {
			// The frame is sound, so the records are to blame: never
			// taken for a torn write.
			if len(records) > 0 && !errors.Is(err, errBadRecords) {
				t.Fatalf("a batch with a matching checksum: decodeBatch = %v, want errBadRecords", err)
			}
			return
		}
		_, again, _, err := decodeBatch(encodeBatch(1, recs), 1<<12)
		if err != nil || !reflect.DeepEqual(again, recs) {
			t.Fatalf("re-encoding changed the records: %v", err)
		}
	})
}
