package journal

import (
	"io"
	"os"
	"path/filepath"
)

// fsys is what the file log needs of a file system. The operating system's
// is osFS; the crash tests put a fault-injecting one in its place.
type fsys interface {
	MkdirAll(dir string) error
	// ReadDir returns the names in dir.
	ReadDir(dir string) ([]string, error)
	// Create creates or truncates a file for reading and writing.
	Create(name string) (file, error)
	// OpenFile opens an existing file for reading and writing.
	OpenFile(name string) (file, error)
	Rename(from, to string) error
	Remove(name string) error
	// SyncDir makes the directory's entries durable: files created,
	// renamed or removed in it.
	SyncDir(dir string) error
	// Lock takes an exclusive lock on the file name, shared with other
	// processes, or fails at once if another holder has it.
	Lock(name string) (io.Closer, error)
}

// file is an open file of an fsys.
type file interface {
	io.ReaderAt
	io.WriterAt
	Size() (int64, error)
	Truncate(size int64) error
	// Allocate reserves the blocks of the file up to size, as zeros, so
	// that writing them later does not change the file's size.
	Allocate(size int64) error
	// Datasync makes the file's data durable (fdatasync).
	Datasync() error
	Close() error
}

// osFS is the operating system's file system.
type osFS struct{}

func (osFS) MkdirAll(dir string) error { return os.MkdirAll(dir, 0o755) }

func (osFS) ReadDir(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	names := make([]string, 0, len(entries))
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names, err
}

func (osFS) Create(name string) (file, error) {
	f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return nil, err
	}
	return osFile{f}, nil
}

func (osFS) OpenFile(name string) (file, error) {
	f, err := os.OpenFile(name, os.O_RDWR, 0)
	if err != nil {
		return nil, err
	}
	return osFile{f}, nil
}

func (osFS) Rename(from, to string) error { return os.Rename(from, to) }
func (osFS) Remove(name string) error     { return os.Remove(name) }

func (osFS) SyncDir(dir string) error {
	d, err := os.Open(filepath.Clean(dir))
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

func (osFS) Lock(name string) (io.Closer, error) { return lockFile(name) }

type osFile struct{ *os.File }

func (f osFile) Size() (int64, error) {
	st, err := f.Stat()
	if err != nil {
		return 0, err
	}
	return st.Size(), nil
}

func (f osFile) Allocate(size int64) error { return allocate(f.File, size) }
func (f osFile) Datasync() error           { return datasync(f.File) }

// extend grows f to size with zeros, if it is smaller.
func extend(f *os.File, size int64) error {
	st, err := f.Stat()
	if err != nil || st.Size() >= size {
		return err
	}
	return f.Truncate(size)
}
