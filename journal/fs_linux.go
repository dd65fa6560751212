package journal

import (
	"errors"
	"os"
	"syscall"
)

// allocate reserves the file's blocks with fallocate, as etcd's wal does,
// so that a write inside them changes no file size and fdatasync has no
// size to write. Where the file system cannot, the file is extended.
func allocate(f *os.File, size int64) error {
	err := syscall.Fallocate(int(f.Fd()), 0, 0, size)
	if errors.Is(err, syscall.EOPNOTSUPP) || errors.Is(err, syscall.ENOSYS) {
		return extend(f, size)
	}
	return err
}

// datasync is fdatasync(2): the data and the metadata needed to read it.
func datasync(f *os.File) error {
	for {
		err := syscall.Fdatasync(int(f.Fd()))
		if !errors.Is(err, syscall.EINTR) {
			return err
		}
	}
}
