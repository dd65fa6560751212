package journal

import "os"

// allocate extends the file: macOS has no fallocate in package syscall.
func allocate(f *os.File, size int64) error { return extend(f, size) }

// datasync is os.File.Sync, which on macOS is fcntl(F_FULLFSYNC): plain
// fsync there does not reach the disk's platter.
func datasync(f *os.File) error { return f.Sync() }
