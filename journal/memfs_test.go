package journal

import (
	"errors"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"path"
	"slices"
	"sync"
	"time"
)

// memFS is an fsys in memory that can fail and crash on purpose. It keeps,
// for every file, what has been synced and what the process sees, page by
// page, and for the directory, which entries a SyncDir made durable. A
// crash image is then any state the disk may be left in: synced bytes
// survive; the unsynced bytes of each page (4 KiB, or the unit set in
// page) survive, are lost or are zeroed, together; and a prefix
// of the directory changes since the last SyncDir survives, in order.
type memFS struct {
	mu       sync.Mutex
	live     map[string]*memFile // what the process sees, by path
	durable  map[string]*memFile // after the last SyncDir
	dirOps   []dirOp             // since the last SyncDir
	locks    map[string]bool
	ops      int // writes and syncs so far
	crashAt  int // the op after which every op fails; 0 for never
	crashed  bool
	failSync error         // the next Datasync fails with it
	delay    time.Duration // added to every Datasync
	syncs    int
	page     int64 // the unit of a crash: a disk page, or a sector for harsher tears
}

const pageSize = 4096

var errCrashed = errors.New("memfs: crashed")

type memFile struct {
	page   int64 // its file system's
	data   []byte
	synced []byte
	dirty  map[int64]extent // by page: the bytes changed since the last sync
}

// extent is a range of bytes [lo, hi) in a file.
type extent struct{ lo, hi int64 }

type dirOp struct {
	kind     string // create, rename, remove
	from, to string
	file     *memFile
}

func newMemFS() *memFS {
	return &memFS{live: map[string]*memFile{}, durable: map[string]*memFile{}, locks: map[string]bool{}, page: pageSize}
}

// op counts a write or a sync, and fails it once the crash has happened.
func (fs *memFS) op() error {
	if fs.crashed {
		return errCrashed
	}
	fs.ops++
	if fs.crashAt > 0 && fs.ops > fs.crashAt {
		fs.crashed = true
		return errCrashed
	}
	return nil
}

// image returns the disk as a crash may leave it, drawing every choice
// from rng.
func (fs *memFS) image(rng *rand.Rand) *memFS {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	out := newMemFS()
	out.page = fs.page
	dir := maps.Clone(fs.durable)
	for _, op := range fs.dirOps[:rng.IntN(len(fs.dirOps)+1)] {
		switch op.kind {
		case "create":
			dir[op.to] = op.file
		case "rename":
			if f, ok := dir[op.from]; ok {
				dir[op.to] = f
				delete(dir, op.from)
			}
		case "remove":
			delete(dir, op.to)
		}
	}
	seen := map[*memFile]*memFile{}
	for _, name := range slices.Sorted(maps.Keys(dir)) {
		f := dir[name]
		if g, ok := seen[f]; ok {
			out.live[name] = g
			continue
		}
		g := &memFile{page: fs.page, data: slices.Clone(f.synced), dirty: map[int64]extent{}}
		for _, page := range slices.Sorted(maps.Keys(f.dirty)) {
			e := f.dirty[page]
			switch rng.IntN(3) {
			case 0: // the new bytes survive
				hi := min(e.hi, int64(len(f.data)))
				if int64(len(g.data)) < hi {
					g.data = append(g.data, make([]byte, hi-int64(len(g.data)))...)
				}
				if e.lo < hi {
					copy(g.data[e.lo:hi], f.data[e.lo:hi])
				}
			case 1: // they are zeroed
				if e.lo < int64(len(g.data)) {
					clear(g.data[e.lo:min(e.hi, int64(len(g.data)))])
				}
			default: // they are lost: the synced bytes stay
			}
		}
		g.synced = slices.Clone(g.data)
		seen[f] = g
		out.live[name] = g
	}
	out.durable = maps.Clone(out.live)
	return out
}

func (fs *memFS) MkdirAll(string) error { return nil }

func (fs *memFS) ReadDir(dir string) ([]string, error) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	var names []string
	for name := range fs.live {
		if path.Dir(name) == path.Clean(dir) {
			names = append(names, path.Base(name))
		}
	}
	slices.Sort(names)
	return names, nil
}

func (fs *memFS) Create(name string) (file, error) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if err := fs.op(); err != nil {
		return nil, err
	}
	f := &memFile{page: fs.page, dirty: map[int64]extent{}}
	fs.live[name] = f
	fs.dirOps = append(fs.dirOps, dirOp{kind: "create", to: name, file: f})
	return &memHandle{fs: fs, f: f}, nil
}

func (fs *memFS) OpenFile(name string) (file, error) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	f, ok := fs.live[name]
	if !ok {
		return nil, fmt.Errorf("open %s: no such file", name)
	}
	return &memHandle{fs: fs, f: f}, nil
}

func (fs *memFS) Rename(from, to string) error {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if err := fs.op(); err != nil {
		return err
	}
	f, ok := fs.live[from]
	if !ok {
		return fmt.Errorf("rename %s: no such file", from)
	}
	fs.live[to] = f
	delete(fs.live, from)
	fs.dirOps = append(fs.dirOps, dirOp{kind: "rename", from: from, to: to})
	return nil
}

func (fs *memFS) Remove(name string) error {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if err := fs.op(); err != nil {
		return err
	}
	delete(fs.live, name)
	fs.dirOps = append(fs.dirOps, dirOp{kind: "remove", to: name})
	return nil
}

func (fs *memFS) SyncDir(string) error {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if err := fs.op(); err != nil {
		return err
	}
	fs.durable = maps.Clone(fs.live)
	fs.dirOps = nil
	return nil
}

func (fs *memFS) Lock(name string) (io.Closer, error) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if fs.locks[name] {
		return nil, fmt.Errorf("journal: %s is held by another process", name)
	}
	fs.locks[name] = true
	return closerFunc(func() error {
		fs.mu.Lock()
		defer fs.mu.Unlock()
		delete(fs.locks, name)
		return nil
	}), nil
}

type closerFunc func() error

func (f closerFunc) Close() error { return f() }

// names returns the files of the file system, for assertions.
func (fs *memFS) names() []string {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	return slices.Sorted(maps.Keys(fs.live))
}

type memHandle struct {
	fs *memFS
	f  *memFile
}

func (h *memHandle) ReadAt(p []byte, off int64) (int, error) {
	h.fs.mu.Lock()
	defer h.fs.mu.Unlock()
	if off >= int64(len(h.f.data)) {
		return 0, io.EOF
	}
	n := copy(p, h.f.data[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

func (h *memHandle) WriteAt(p []byte, off int64) (int, error) {
	h.fs.mu.Lock()
	defer h.fs.mu.Unlock()
	if err := h.fs.op(); err != nil {
		return 0, err
	}
	if end := off + int64(len(p)); end > int64(len(h.f.data)) {
		h.f.data = append(h.f.data, make([]byte, end-int64(len(h.f.data)))...)
	}
	copy(h.f.data[off:], p)
	h.f.touch(off, off+int64(len(p)))
	return len(p), nil
}

// touch marks the bytes [lo, hi) changed since the last sync.
func (f *memFile) touch(lo, hi int64) {
	for page := lo / f.page; page*f.page < hi; page++ {
		e := extent{max(lo, page*f.page), min(hi, (page+1)*f.page)}
		if old, ok := f.dirty[page]; ok {
			e = extent{min(old.lo, e.lo), max(old.hi, e.hi)}
		}
		f.dirty[page] = e
	}
}

func (h *memHandle) Size() (int64, error) {
	h.fs.mu.Lock()
	defer h.fs.mu.Unlock()
	return int64(len(h.f.data)), nil
}

func (h *memHandle) Truncate(size int64) error {
	h.fs.mu.Lock()
	defer h.fs.mu.Unlock()
	if err := h.fs.op(); err != nil {
		return err
	}
	if old := int64(len(h.f.data)); size < old {
		h.f.touch(size, old)
		h.f.data = h.f.data[:size]
	} else {
		h.f.data = append(h.f.data, make([]byte, size-old)...)
		h.f.touch(old, size)
	}
	return nil
}

func (h *memHandle) Allocate(size int64) error {
	h.fs.mu.Lock()
	defer h.fs.mu.Unlock()
	if err := h.fs.op(); err != nil {
		return err
	}
	if old := int64(len(h.f.data)); size > old {
		h.f.data = append(h.f.data, make([]byte, size-old)...)
		h.f.touch(old, size)
	}
	return nil
}

func (h *memHandle) Datasync() error {
	h.fs.mu.Lock()
	delay := h.fs.delay
	h.fs.mu.Unlock()
	time.Sleep(delay)
	h.fs.mu.Lock()
	defer h.fs.mu.Unlock()
	if err := h.fs.op(); err != nil {
		return err
	}
	h.fs.syncs++
	if err := h.fs.failSync; err != nil {
		h.fs.failSync = nil
		return err
	}
	h.f.synced = slices.Clone(h.f.data)
	clear(h.f.dirty)
	return nil
}

func (h *memHandle) Close() error { return nil }

// withFS makes the log use fs instead of the operating system's.
func withFS(fs fsys) Option { return optionFunc(func(c *config) { c.fs = fs }) }
