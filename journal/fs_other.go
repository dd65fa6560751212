//go:build !linux && !darwin

package journal

import (
	"errors"
	"io"
	"os"
	"runtime"
)

func supported() error {
	return errors.New("journal: the file log runs on Linux and macOS, not " + runtime.GOOS + "; use NewMemory or a Log of your own")
}

func lockFile(string) (io.Closer, error) { return nil, supported() }
func allocate(*os.File, int64) error     { return supported() }
func datasync(*os.File) error            { return supported() }
