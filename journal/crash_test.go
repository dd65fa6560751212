package journal

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"testing"
)

// model is what the log should hold: the kinds of every transaction's
// records, and which transactions have ended or been forgotten.
type model struct {
	kinds     map[string][]string
	ended     map[string]bool
	forgotten map[string]bool
}

func newModel() *model {
	return &model{kinds: map[string][]string{}, ended: map[string]bool{}, forgotten: map[string]bool{}}
}

func (m *model) clone() *model {
	c := newModel()
	for id, k := range m.kinds {
		c.kinds[id] = slices.Clone(k)
	}
	maps.Copy(c.ended, m.ended)
	maps.Copy(c.forgotten, m.forgotten)
	return c
}

// step is one call of the crash workload, applied to the log and, when it
// is acknowledged, to the model.
type step struct {
	forget  bool
	compact bool
	txID    string
	records []Record
}

func (s step) apply(m *model) {
	switch {
	case s.compact:
	case s.forget:
		delete(m.kinds, s.txID)
		delete(m.ended, s.txID)
		m.forgotten[s.txID] = true
	default:
		for _, r := range s.records {
			m.kinds[s.txID] = append(m.kinds[s.txID], r.Kind)
			m.ended[s.txID] = m.ended[s.txID] || r.End
		}
	}
}

// workload is a run of appends to interleaved transactions, of one to three
// records and of payloads large enough to fill 4 KiB segments quickly; it
// ends and forgets transactions, so that the log compacts by itself, and
// compacts once on purpose.
func workload() []step {
	var steps []step
	m := newModel()
	for i := range 70 {
		tx := fmt.Sprintf("tx-%d", i/7+i%3)
		if m.forgotten[tx] || m.ended[tx] {
			tx = fmt.Sprintf("late-%d", i)
		}
		var recs []Record
		for j := range 1 + i%3 {
			recs = append(recs, Record{Epoch: 1, Kind: fmt.Sprintf("k%d.%d", i, j), Step: "s", Payload: make([]byte, 100+37*(i%11)), Carrier: map[string]string{"traceparent": "t"}})
		}
		if i%5 == 4 {
			recs[len(recs)-1].End = true
		}
		s := step{txID: tx, records: recs}
		steps = append(steps, s)
		s.apply(m)
		if i%5 == 4 && i%2 == 0 {
			f := step{forget: true, txID: tx}
			steps = append(steps, f)
			f.apply(m)
		}
		if i == 40 {
			steps = append(steps, step{compact: true})
		}
	}
	return steps
}

func crashOptions(fs *memFS) []Option {
	return []Option{withFS(fs), WithSegmentSize(minSegmentSize), WithMaxPayload(1 << 12)}
}

// run runs steps against l until one fails, and returns the model of what
// was acknowledged and the step that failed, if one did.
func run(l *File, steps []step) (acked *model, failed *step) {
	ctx := context.Background()
	acked = newModel()
	for i, s := range steps {
		var err error
		switch {
		case s.compact:
			err = l.Compact(ctx)
		case s.forget:
			err = l.Forget(ctx, s.txID)
		default:
			err = l.Append(ctx, s.txID, uint64(len(acked.kinds[s.txID])), s.records...)
		}
		if err != nil {
			return acked, &steps[i]
		}
		s.apply(acked)
	}
	return acked, nil
}

// state reads what l holds of the transactions that m knows of, as a model.
func state(t *testing.T, l *File, ids []string) *model {
	t.Helper()
	ctx := context.Background()
	got := newModel()
	for _, id := range ids {
		recs, err := l.Load(ctx, id)
		switch {
		case errors.Is(err, ErrForgotten):
			got.forgotten[id] = true
		case err != nil:
			t.Fatalf("Load(%q) = %v", id, err)
		case len(recs) > 0:
			for _, r := range recs {
				got.kinds[id] = append(got.kinds[id], r.Kind)
				got.ended[id] = got.ended[id] || r.End
			}
		}
	}
	for id := range got.ended {
		if !got.ended[id] {
			delete(got.ended, id)
		}
	}
	return got
}

func equalModels(a, b *model) bool {
	trim := func(m map[string]bool) map[string]bool {
		out := map[string]bool{}
		for k, v := range m {
			if v {
				out[k] = true
			}
		}
		return out
	}
	return maps.EqualFunc(a.kinds, b.kinds, slices.Equal[[]string]) &&
		maps.Equal(trim(a.ended), trim(b.ended)) && maps.Equal(trim(a.forgotten), trim(b.forgotten))
}

// TestCrashAtEveryPoint crashes the file log after each write and sync of a
// workload in turn, then reopens every crash image that three random
// draws give: each must hold exactly the acknowledged calls, plus perhaps
// the one in flight, whole or not at all; and must take new appends that
// survive a further reopen. It crashes by disk pages, which keep or lose a
// small batch whole, and by sectors, which tear batches apart: a torn
// batch must be repaired, never taken for corruption.
func TestCrashAtEveryPoint(t *testing.T) {
	for _, page := range []int64{pageSize, sectorSize} {
		t.Run(fmt.Sprintf("page=%d", page), func(t *testing.T) { crashAtEveryPoint(t, page) })
	}
}

func crashAtEveryPoint(t *testing.T, page int64) {
	steps := workload()
	var ids []string
	for _, s := range steps {
		if s.txID != "" && !slices.Contains(ids, s.txID) {
			ids = append(ids, s.txID)
		}
	}
	points := 0
	for crashAt := 1; ; crashAt++ {
		fs := newMemFS()
		fs.page = page
		fs.crashAt = crashAt
		acked, failed := newModel(), (*step)(nil)
		if l, err := Open("j", crashOptions(fs)...); err == nil {
			acked, failed = run(l, steps)
			_ = l.Close()
		}
		if !fs.crashed {
			if failed != nil {
				t.Fatalf("no crash, yet step %+v failed", *failed)
			}
			// The workload made the log rotate and compact: the first
			// segments are gone.
			if names := fs.names(); len(names) < 2 || names[0] == "j/"+segmentName(1) {
				t.Fatalf("after the workload the log has segments %q: it did not compact", names)
			}
			break
		}
		points++
		withFailed := acked.clone()
		if failed != nil {
			failed.apply(withFailed)
		}
		for seed := range uint64(3) {
			img := fs.image(rand.New(rand.NewPCG(uint64(crashAt), seed)))
			l, err := Open("j", crashOptions(img)...)
			if err != nil {
				t.Fatalf("crash after op %d, image %d: Open = %v", crashAt, seed, err)
			}
			got := state(t, l, ids)
			if !equalModels(got, acked) && !equalModels(got, withFailed) {
				t.Fatalf("crash after op %d, image %d: the log holds\n%v\nwant the acknowledged\n%v\nor with the call in flight\n%v", crashAt, seed, got, acked, withFailed)
			}
			// The repaired log takes appends, and keeps them.
			if err := l.Append(context.Background(), "after-crash", 0, Record{Kind: "new"}); err != nil {
				t.Fatalf("crash after op %d, image %d: Append after recovery = %v", crashAt, seed, err)
			}
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			l, err = Open("j", crashOptions(img)...)
			if err != nil {
				t.Fatalf("crash after op %d, image %d: second Open = %v", crashAt, seed, err)
			}
			if again := state(t, l, ids); !equalModels(again, got) {
				t.Fatalf("crash after op %d, image %d: a second reopen changed the log", crashAt, seed)
			}
			if recs, err := l.Load(context.Background(), "after-crash"); err != nil || len(recs) != 1 {
				t.Fatalf("crash after op %d, image %d: the append after recovery is gone: %v, %v", crashAt, seed, recs, err)
			}
			_ = l.Close()
		}
	}
	if points < 100 {
		t.Fatalf("only %d crash points: the workload no longer exercises the log", points)
	}
	t.Logf("%d crash points, 3 images each", points)
}

// TestTornOrCorruptLastBatch damages the last batch, of several sectors,
// in one way at a time. Zeroing any one of its sectors is what a crash
// does to it: Open repairs the log, and zeroes the batch on disk. Flipping
// a bit of any of its bytes, which a crash cannot do, is a *CorruptError
// at the batch that leaves the disk as it was. The length field is left
// out: a length damaged to run into the zeros past the data passes for a
// torn write, as it does in etcd's wal.
func TestTornOrCorruptLastBatch(t *testing.T) {
	ctx := context.Background()
	fs := newMemFS()
	opts := []Option{withFS(fs), WithSegmentSize(8 << 10)}
	l, err := Open("j", opts...)
	if err != nil {
		t.Fatal(err)
	}
	payload := make([]byte, 1500)
	for i := range payload {
		payload[i] = byte(1 + i%251)
	}
	if err := l.Append(ctx, "a", 0, Record{Kind: "k"}); err != nil {
		t.Fatal(err)
	}
	if err := l.Append(ctx, "b", 0, Record{Kind: "k", Payload: payload, Carrier: map[string]string{"traceparent": "t"}}); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	f := fs.live["j/"+segmentName(1)]
	intact := slices.Clone(f.data)
	_, _, first, err := decodeBatch(intact[segmentHeaderSize:], maxPayloadCap)
	if err != nil {
		t.Fatal(err)
	}
	off := int64(segmentHeaderSize + first)
	_, _, size, err := decodeBatch(intact[off:], maxPayloadCap)
	if err != nil {
		t.Fatal(err)
	}
	end := off + int64(size)
	var sectors [][2]int64 // the last batch's bytes in each sector
	for lo := off; lo < end; {
		hi := min(end, (lo/sectorSize+1)*sectorSize)
		sectors = append(sectors, [2]int64{lo, hi})
		lo = hi
	}
	if len(sectors) < 3 || tornBatch(intact, off) {
		t.Fatalf("the last batch spans %d sectors, torn: %v; want 3 or more, not torn", len(sectors), tornBatch(intact, off))
	}

	for _, s := range sectors {
		f.data = slices.Clone(intact)
		clear(f.data[s[0]:s[1]])
		l, err := Open("j", opts...)
		if err != nil {
			t.Fatalf("the last batch's bytes %d-%d zeroed: Open = %v, want the torn tail repaired", s[0], s[1], err)
		}
		if p, _ := l.Pending(ctx); !slices.Equal(p, []string{"a"}) {
			t.Fatalf("the last batch's bytes %d-%d zeroed: Pending = %q, want [a]", s[0], s[1], p)
		}
		if slices.ContainsFunc(f.data[off:], func(c byte) bool { return c != 0 }) {
			t.Fatalf("the last batch's bytes %d-%d zeroed: the rest of the batch is still on disk", s[0], s[1])
		}
		l.Close()
	}

	for i := off + 4; i < end; i++ {
		f.data = slices.Clone(intact)
		f.data[i] ^= 1 << (i % 8)
		damaged := slices.Clone(f.data)
		l, err := Open("j", opts...)
		if err == nil {
			l.Close()
		}
		var ce *CorruptError
		if !errors.As(err, &ce) || ce.Offset != off {
			t.Fatalf("a bit of byte %d of the last batch (%d-%d) flipped: Open = %v, want a *CorruptError at %d", i, off, end, err, off)
		}
		if !slices.Equal(f.data, damaged) {
			t.Fatalf("a bit of byte %d of the last batch flipped: Open changed the segment", i)
		}
	}
}

// TestCorruptBatchBeforeEmptySegment flips a bit in the last batch of a
// full segment whose successor, just started, holds no batch yet: the
// batch is the log's last, but it was written whole, so Open must refuse
// the log rather than cut the batch off and delete the new segment.
func TestCorruptBatchBeforeEmptySegment(t *testing.T) {
	ctx := context.Background()
	fs := newMemFS()
	opts := []Option{withFS(fs), WithSegmentSize(minSegmentSize)}
	l, err := Open("j", opts...)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; len(fs.names()) < 2; i++ { // until the log rotates
		if err := l.Append(ctx, fmt.Sprint(i), 0, Record{Kind: "k", Payload: make([]byte, 300)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	first, second := fs.live["j/"+segmentName(1)], fs.live["j/"+segmentName(2)]
	clear(second.data[segmentHeaderSize:]) // as if the crash came before its first batch
	var last int64
	for off := int64(segmentHeaderSize); !zeroHeader(first.data[off:]); {
		_, _, size, err := decodeBatch(first.data[off:], maxPayloadCap)
		if err != nil {
			t.Fatal(err)
		}
		last, off = off, off+int64(size)
	}
	first.data[last+batchHeaderSize+3] ^= 0x20
	before := slices.Clone(first.data)
	l, err = Open("j", opts...)
	if err == nil {
		l.Close()
	}
	var ce *CorruptError
	if !errors.As(err, &ce) || ce.File != "j/"+segmentName(1) || ce.Offset != last {
		t.Fatalf("Open = %v, want a *CorruptError at %s, offset %d", err, segmentName(1), last)
	}
	if !slices.Equal(first.data, before) || !slices.Contains(fs.names(), "j/"+segmentName(2)) {
		t.Fatal("Open changed the log it refused")
	}
}
