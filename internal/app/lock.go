//go:build unix

package app

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// lockFileName is the file whose exclusive lock marks a data directory in
// use by one keyfort process (a server, or rootkey rotate).
const lockFileName = "keyfort.lock"

// errLocked means another keyfort process holds the data directory.
var errLocked = errors.New("the data directory is in use by another keyfort process")

// lockDataDir takes the data directory's exclusive lock; the kernel drops it
// when the process dies, so kill -9 never leaves a stale lock.
func lockDataDir(dir string) (release func(), err error) {
	path := filepath.Join(dir, lockFileName)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("app: open %s: %w", path, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("app: %s: %w", dir, errLocked)
		}
		return nil, fmt.Errorf("app: lock %s: %w", path, err)
	}
	return func() { f.Close() }, nil // closing the file releases the lock
}
