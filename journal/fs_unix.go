//go:build linux || darwin

package journal

import (
	"errors"
	"fmt"
	"io"
	"os"
	"syscall"
)

// supported reports whether Open works here.
func supported() error { return nil }

// lockFile takes an exclusive flock on name, which the kernel drops when
// the process dies, so a crashed writer never leaves a stale lock.
func lockFile(name string) (io.Closer, error) {
	f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("journal: %s is held by another process: only one process may write a journal at a time", name)
		}
		return nil, fmt.Errorf("journal: lock %s: %w", name, err)
	}
	return f, nil // closing the file releases the lock
}
