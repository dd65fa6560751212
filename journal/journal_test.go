package journal_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"go.uber.org/goleak"

	"github.com/otelpatterns/otelpatterns/journal"
	"github.com/otelpatterns/otelpatterns/journal/journaltest"
)

func TestMain(m *testing.M) {
	if dir := os.Getenv("JOURNAL_HOLD_LOCK"); dir != "" {
		holdLock(dir)
		return
	}
	goleak.VerifyTestMain(m)
}

func TestMemoryConforms(t *testing.T) {
	journaltest.Run(t, journaltest.Harness{
		New: func(t *testing.T) journal.Log {
			m, err := journal.NewMemory()
			if err != nil {
				t.Fatal(err)
			}
			return m
		},
	})
}

func TestFileConforms(t *testing.T) {
	journaltest.Run(t, journaltest.Harness{
		New: func(t *testing.T) journal.Log { return mustOpen(t, t.TempDir()) },
		Reopen: func(t *testing.T, l journal.Log) journal.Log {
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			return mustOpen(t, l.(*journal.File).Dir())
		},
	})
}

func mustOpen(t *testing.T, dir string, opts ...journal.Option) *journal.File {
	t.Helper()
	l, err := journal.Open(dir, append([]journal.Option{journal.WithSegmentSize(64 << 10)}, opts...)...)
	if err != nil {
		t.Fatalf("Open(%s) = %v", dir, err)
	}
	return l
}

func mustAppend(t *testing.T, l journal.Log, tx string, seq uint64, recs ...journal.Record) {
	t.Helper()
	if err := l.Append(context.Background(), tx, seq, recs...); err != nil {
		t.Fatalf("Append(%q, %d) = %v", tx, seq, err)
	}
}

// holdLock is the other process of TestLockHeldByAnotherProcess: it opens
// the journal in dir, says so, and holds it until its stdin closes.
func holdLock(dir string) {
	l, err := journal.Open(dir)
	if err != nil {
		os.Stdout.WriteString("error: " + err.Error() + "\n")
		os.Exit(1)
	}
	os.Stdout.WriteString("locked\n")
	_, _ = os.Stdin.Read(make([]byte, 1))
	l.Close()
	os.Exit(0)
}

func TestLockHeldByAnotherProcess(t *testing.T) {
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "JOURNAL_HOLD_LOCK="+dir)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line := make([]byte, 7)
	if _, err := stdout.Read(line); err != nil || string(line) != "locked\n" {
		t.Fatalf("the other process said %q, %v", line, err)
	}
	_, err = journal.Open(dir)
	if err == nil || !strings.Contains(err.Error(), "held by another process") {
		t.Fatalf("Open of a journal another process holds = %v, want an error that says so", err)
	}
	stdin.Close()
	if err := cmd.Wait(); err != nil {
		t.Fatal(err)
	}
	l := mustOpen(t, dir) // the lock is free again
	l.Close()
}

func TestOpenRefusesSecondOpenInProcess(t *testing.T) {
	dir := t.TempDir()
	l := mustOpen(t, dir)
	defer l.Close()
	if _, err := journal.Open(dir); err == nil {
		t.Fatal("a second Open of the same directory succeeded")
	}
}

// segments returns the segment files of dir.
func segments(t *testing.T, dir string) []string {
	t.Helper()
	names, err := filepath.Glob(filepath.Join(dir, "*.seg"))
	if err != nil {
		t.Fatal(err)
	}
	return names
}

// writeBatches appends n one-record transactions, one batch each, and
// returns the log closed.
func writeBatches(t *testing.T, dir string, n int) {
	t.Helper()
	l := mustOpen(t, dir)
	for i := range n {
		mustAppend(t, l, string(rune('a'+i)), 0, journal.Record{Kind: "begin", Payload: []byte(strings.Repeat("x", 100))})
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
}

// batchOffsets returns where the batches of a segment start, by walking
// their length fields.
func batchOffsets(t *testing.T, data []byte) []int64 {
	var offs []int64
	for off := int64(32); off+16 <= int64(len(data)); {
		n := int64(data[off]) | int64(data[off+1])<<8 | int64(data[off+2])<<16 | int64(data[off+3])<<24
		if n == 0 {
			break
		}
		offs = append(offs, off)
		off += 16 + n
	}
	return offs
}

// damage applies how to the batch-th batch of dir's first segment, given
// as its bytes and their offset in the file, and returns the offset.
func damage(t *testing.T, dir string, batch int, how func(b []byte, off int64)) int64 {
	t.Helper()
	name := segments(t, dir)[0]
	data, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	offs := batchOffsets(t, data)
	off := offs[batch]
	n := int64(data[off]) | int64(data[off+1])<<8 | int64(data[off+2])<<16 | int64(data[off+3])<<24
	how(data[off:off+16+n], off)
	if err := os.WriteFile(name, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return off
}

func TestTornLastBatchIsTruncated(t *testing.T) {
	// The last batch is c's, of some 2000 bytes over five sectors of 512,
	// the first shared with b's batch.
	sector := func(i int) func([]byte, int64) {
		return func(b []byte, off int64) {
			var chunks [][]byte
			for lo := int64(0); lo < int64(len(b)); {
				hi := min(int64(len(b)), (off+lo)/512*512+512-off)
				chunks = append(chunks, b[lo:hi])
				lo = hi
			}
			if len(chunks) < 4 {
				t.Fatalf("the last batch spans %d sectors, want 4 or more", len(chunks))
			}
			clear(chunks[(i+len(chunks))%len(chunks)])
		}
	}
	for name, how := range map[string]func([]byte, int64){
		"zeroed":         func(b []byte, _ int64) { clear(b[:20]) },
		"length":         func(b []byte, _ int64) { b[2] = 0x7f },
		"last sector":    sector(-1),
		"a middle one":   sector(1),
		"the first one":  sector(0),
		"cut in the end": func(b []byte, _ int64) { clear(b[len(b)-1000:]) },
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			writeBatches(t, dir, 2)
			l := mustOpen(t, dir)
			mustAppend(t, l, "c", 0, journal.Record{Kind: "begin", Payload: []byte(strings.Repeat("z", 2000))})
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			off := damage(t, dir, 2, how)
			l = mustOpen(t, dir)
			p, err := l.Pending(context.Background())
			if err != nil || strings.Join(p, ",") != "a,b" {
				t.Fatalf("after a torn last batch, Pending = %q, %v; want [a b]", p, err)
			}
			// The torn batch is gone from the disk, not only from memory.
			data, err := os.ReadFile(segments(t, dir)[0])
			if err != nil {
				t.Fatal(err)
			}
			if i := bytes.IndexFunc(data[off:], func(r rune) bool { return r != 0 }); i >= 0 {
				t.Fatalf("after repair, byte %d of the segment is not zero", off+int64(i))
			}
			mustAppend(t, l, "c", 0, journal.Record{Kind: "begin"})
			mustAppend(t, l, "d", 0, journal.Record{Kind: "begin"})
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			l = mustOpen(t, dir)
			defer l.Close()
			if p, _ := l.Pending(context.Background()); strings.Join(p, ",") != "a,b,c,d" {
				t.Fatalf("after repair and reopen, Pending = %q, want [a b c d]", p)
			}
		})
	}
}

// TestChecksumMismatchIsCorruption flips one bit of a batch whose every
// sector was written: no crash does that, so Open refuses the log with a
// *CorruptError at the batch, and changes nothing on disk, whether the
// batch is the last or not.
func TestChecksumMismatchIsCorruption(t *testing.T) {
	for name, c := range map[string]struct {
		batch int
		how   func([]byte, int64)
	}{
		"middle of the last batch":   {2, func(b []byte, _ int64) { b[len(b)/2] ^= 0x04 }},
		"end of the last batch":      {2, func(b []byte, _ int64) { b[len(b)-9] ^= 0x80 }},
		"checksum of the last":       {2, func(b []byte, _ int64) { b[5] ^= 0x01 }},
		"batch number of the last":   {2, func(b []byte, _ int64) { b[8] ^= 0x01 }},
		"shorter length, last":       {2, func(b []byte, _ int64) { b[0] -= 8 }},
		"middle of an earlier one":   {0, func(b []byte, _ int64) { b[len(b)/2] ^= 0x04 }},
		"checksum of an earlier one": {1, func(b []byte, _ int64) { b[4] ^= 0x10 }},
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			writeBatches(t, dir, 3)
			off := damage(t, dir, c.batch, c.how)
			name := segments(t, dir)[0]
			before, err := os.ReadFile(name)
			if err != nil {
				t.Fatal(err)
			}
			for range 2 { // nothing is repaired behind the user's back: it fails again
				l, err := journal.Open(dir)
				if err == nil {
					l.Close()
				}
				var ce *journal.CorruptError
				if !errors.As(err, &ce) {
					t.Fatalf("Open = %v, want a *CorruptError", err)
				}
				if ce.File != name || ce.Offset != off {
					t.Fatalf("CorruptError names %s at %d, want %s at %d", ce.File, ce.Offset, name, off)
				}
				after, err := os.ReadFile(name)
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(after, before) {
					t.Fatal("Open changed the corrupt segment")
				}
			}
		})
	}
}

func TestInvalidBatchBeforeValidOneIsCorruption(t *testing.T) {
	dir := t.TempDir()
	writeBatches(t, dir, 3)
	off := damage(t, dir, 1, func(b []byte, _ int64) { b[19] ^= 0xff })
	_, err := journal.Open(dir)
	var ce *journal.CorruptError
	if !errors.As(err, &ce) {
		t.Fatalf("Open = %v, want a *CorruptError", err)
	}
	if ce.File != segments(t, dir)[0] || ce.Offset != off {
		t.Fatalf("CorruptError names %s at %d, want %s at %d", ce.File, ce.Offset, segments(t, dir)[0], off)
	}
	// Nothing was repaired behind the user's back: it fails again.
	if _, err := journal.Open(dir); !errors.As(err, &ce) {
		t.Fatalf("second Open = %v, want a *CorruptError", err)
	}
}

func TestCompactionBoundsTheLog(t *testing.T) {
	dir := t.TempDir()
	l := mustOpen(t, dir, journal.WithSegmentSize(4<<10))
	payload := []byte(strings.Repeat("p", 500))
	for i := range 200 {
		tx := "tx-" + string(rune('A'+i%26)) + string(rune('a'+i/26))
		mustAppend(t, l, tx, 0, journal.Record{Kind: "begin", Payload: payload})
		mustAppend(t, l, tx, 1, journal.Record{Kind: "end", End: true})
		if err := l.Forget(context.Background(), tx); err != nil {
			t.Fatal(err)
		}
	}
	mustAppend(t, l, "live", 0, journal.Record{Kind: "begin", Payload: payload})
	if n := len(segments(t, dir)); n > 4 {
		t.Fatalf("%d segments after 200 forgotten transactions; compaction should keep a few", n)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l = mustOpen(t, dir, journal.WithSegmentSize(4<<10))
	defer l.Close()
	if p, _ := l.Pending(context.Background()); strings.Join(p, ",") != "live" {
		t.Fatalf("after compaction and reopen, Pending = %q, want [live]", p)
	}
	if _, err := l.Load(context.Background(), "tx-Aa"); !errors.Is(err, journal.ErrForgotten) {
		t.Fatalf("a forgotten ID lost its tombstone in compaction: Load = %v", err)
	}
}

// Each log runs in a testing/synctest bubble, where the sleep of two hours
// passes at once on the log's clock.
func TestTombstonesExpire(t *testing.T) {
	end := journal.Record{Kind: "end", End: true}
	check := func(t *testing.T, l journal.Log, compact func()) {
		mustAppend(t, l, "old", 0, end)
		if err := l.Forget(context.Background(), "old"); err != nil {
			t.Fatal(err)
		}
		if err := l.Append(context.Background(), "old", 0, end); !errors.Is(err, journal.ErrEnded) {
			t.Fatalf("within the horizon, reusing a forgotten ID = %v, want ErrEnded", err)
		}
		time.Sleep(2 * time.Hour)
		compact()
		mustAppend(t, l, "old", 0, journal.Record{Kind: "begin"})
	}
	t.Run("memory", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			m, err := journal.NewMemory(journal.WithTombstoneHorizon(time.Hour))
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			check(t, m, func() { // a Forget drops the expired tombstones
				mustAppend(t, m, "other", 0, end)
				if err := m.Forget(context.Background(), "other"); err != nil {
					t.Fatal(err)
				}
			})
		})
	})
	t.Run("file", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			l := mustOpen(t, t.TempDir(), journal.WithTombstoneHorizon(time.Hour))
			defer l.Close()
			check(t, l, func() {
				if err := l.Compact(context.Background()); err != nil {
					t.Fatal(err)
				}
			})
		})
	})
}

func TestPayloadLimit(t *testing.T) {
	l := mustOpen(t, t.TempDir(), journal.WithMaxPayload(10))
	defer l.Close()
	err := l.Append(context.Background(), "tx", 0, journal.Record{Kind: "k", Payload: make([]byte, 11)})
	var ie *journal.InvalidError
	if !errors.As(err, &ie) || !strings.Contains(err.Error(), "WithMaxPayload") {
		t.Fatalf("Append over the payload limit = %v, want an *InvalidError naming WithMaxPayload", err)
	}
}

func TestInvalidOptions(t *testing.T) {
	for _, opt := range []journal.Option{
		journal.WithSegmentSize(100),
		journal.WithMaxPayload(0),
		journal.WithMaxGroup(0),
		journal.WithTombstoneHorizon(-time.Second),
	} {
		if _, err := journal.NewMemory(opt); err == nil || !strings.Contains(err.Error(), "journal: With") {
			t.Fatalf("NewMemory with a bad option = %v, want an error naming the option", err)
		}
		if _, err := journal.Open(t.TempDir(), opt); err == nil {
			t.Fatal("Open with a bad option succeeded")
		}
	}
}

// TestSmallerPayloadLimitKeepsOldRecords reopens a log with a payload limit
// below the size of records already in it: the limit governs new appends
// only, and every path that reads old records reads them whole.
func TestSmallerPayloadLimitKeepsOldRecords(t *testing.T) {
	ctx := context.Background()
	big := journal.Record{Kind: "big", Payload: []byte(strings.Repeat("x", 6000))}
	small := journal.Record{Kind: "small", Payload: []byte("y")}
	wide, narrow := journal.WithMaxPayload(8192), journal.WithMaxPayload(4096)
	// holds checks that l has every transaction of ids, whole.
	holds := func(t *testing.T, l *journal.File, ids ...string) {
		t.Helper()
		for _, id := range ids {
			recs, err := l.Load(ctx, id)
			if err != nil || len(recs) != 1 {
				t.Fatalf("Load(%q) = %d records, %v; want 1", id, len(recs), err)
			}
			if want := map[string]int{"big": 6000}[id]; want > 0 && len(recs[0].Payload) != want {
				t.Fatalf("Load(%q): a payload of %d bytes, want %d", id, len(recs[0].Payload), want)
			}
		}
	}
	write := func(t *testing.T, dir string, recs map[string]journal.Record, order ...string) {
		t.Helper()
		l := mustOpen(t, dir, wide)
		for _, id := range order {
			mustAppend(t, l, id, 0, recs[id])
		}
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
	}
	recs := map[string]journal.Record{"big": big, "small": small, "a": small, "b": small}

	t.Run("last batch", func(t *testing.T) {
		dir := t.TempDir()
		write(t, dir, recs, "big")
		l := mustOpen(t, dir, narrow)
		holds(t, l, "big")
		err := l.Append(ctx, "too-big", 0, big)
		var ie *journal.InvalidError
		if !errors.As(err, &ie) {
			t.Fatalf("a new append over the smaller limit = %v, want an *InvalidError", err)
		}
		mustAppend(t, l, "next", 0, small) // must not overwrite the big one
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		l = mustOpen(t, dir, narrow)
		defer l.Close()
		holds(t, l, "big", "next")
	})

	t.Run("earlier batch", func(t *testing.T) {
		dir := t.TempDir()
		write(t, dir, recs, "big", "small")
		l := mustOpen(t, dir, narrow)
		defer l.Close()
		holds(t, l, "big", "small")
	})

	t.Run("compaction", func(t *testing.T) {
		dir := t.TempDir()
		write(t, dir, recs, "small", "big")
		l := mustOpen(t, dir, narrow)
		if err := l.Compact(ctx); err != nil {
			t.Fatal(err)
		}
		holds(t, l, "big", "small")
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		l = mustOpen(t, dir, narrow) // reads the snapshot
		defer l.Close()
		holds(t, l, "big", "small")
	})

	// An invalid batch followed by a valid one is corruption, however large
	// the valid one's payload: it must not pass for a torn tail.
	t.Run("after an invalid batch", func(t *testing.T) {
		dir := t.TempDir()
		write(t, dir, recs, "a", "b", "big")
		damage(t, dir, 1, func(b []byte, _ int64) { clear(b[:16]) })
		l, err := journal.Open(dir, journal.WithSegmentSize(64<<10), narrow)
		if err == nil {
			l.Close()
		}
		var ce *journal.CorruptError
		if !errors.As(err, &ce) {
			t.Fatalf("Open = %v, want a *CorruptError", err)
		}
	})
}

// A nil context is an error from every call that takes one, never a panic.
func TestNilContextIsAnError(t *testing.T) {
	mem, err := journal.NewMemory()
	if err != nil {
		t.Fatal(err)
	}
	file, err := journal.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer file.Close()
	var nilCtx context.Context
	for name, log := range map[string]journal.Log{"Memory": mem, "File": file} {
		for call, err := range map[string]error{
			"Append":  log.Append(nilCtx, "x", 0, journal.Record{Kind: "k"}),
			"Load":    second(log.Load(nilCtx, "x")),
			"Pending": second(log.Pending(nilCtx)),
			"Forget":  log.Forget(nilCtx, "x"),
		} {
			if err == nil || !strings.Contains(err.Error(), "nil context") {
				t.Errorf("%s.%s(nil) = %v", name, call, err)
			}
		}
	}
	if err := file.Compact(nilCtx); err == nil {
		t.Error("File.Compact(nil) did not fail")
	}
}

func second[T any](_ T, err error) error { return err }
