//go:build unix

package app

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// dataDirLock is a held lock on a data directory.
type dataDirLock struct {
	f       *os.File
	path    string
	created bool // this process created the lock file
}

// lockDataDir takes the data directory's exclusive lock; the kernel drops it
// when the process dies, so kill -9 never leaves a stale lock.
func lockDataDir(dir string) (*dataDirLock, error) {
	path := filepath.Join(dir, lockFileName)
	for attempt := 0; ; attempt++ {
		_, statErr := os.Lstat(path)
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
		// A failed start removes the lock file it created (see discard):
		// the lock is ours only if the path still names the file we hold.
		if same, err := sameFile(f, path); err != nil || !same {
			f.Close()
			if attempt < 3 {
				continue
			}
			return nil, fmt.Errorf("app: %s: %w", dir, errLocked)
		}
		return &dataDirLock{f: f, path: path, created: errors.Is(statErr, os.ErrNotExist)}, nil
	}
}

func sameFile(f *os.File, path string) (bool, error) {
	fi, err := f.Stat()
	if err != nil {
		return false, err
	}
	pi, err := os.Lstat(path)
	if err != nil {
		return false, err
	}
	return os.SameFile(fi, pi), nil
}

// release releases the lock (closing the file releases it).
func (l *dataDirLock) release() { l.f.Close() }

// discard removes the lock file if this process created it, then releases
// the lock: what a failed start does, so that it leaves no lock file.
func (l *dataDirLock) discard() {
	if l.created {
		_ = os.Remove(l.path)
	}
	l.release()
}
