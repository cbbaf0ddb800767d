//go:build unix

package audit

import (
	"fmt"
	"os"
	"syscall"
)

// mapJournal maps the file at path, size bytes long, shared and writable.
// A new file's blocks are written out first, so that the mapping never
// needs the file system to find space later.
func mapJournal(path string, size int) ([]byte, func() error, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, nil, fmt.Errorf("audit: open journal: %w", err)
	}
	defer f.Close() // the mapping stays valid
	fi, err := f.Stat()
	if err != nil {
		return nil, nil, fmt.Errorf("audit: stat journal: %w", err)
	}
	if fi.Size() != int64(size) {
		if fi.Size() != 0 {
			return nil, nil, fmt.Errorf("audit: journal %s is %d bytes, not %d", path, fi.Size(), size)
		}
		if _, err := f.WriteAt(make([]byte, size), 0); err != nil {
			os.Remove(path)
			return nil, nil, fmt.Errorf("audit: make journal: %w", err)
		}
	}
	m, err := syscall.Mmap(int(f.Fd()), 0, size, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_SHARED)
	if err != nil {
		return nil, nil, fmt.Errorf("audit: map journal: %w", err)
	}
	return m, func() error { return syscall.Munmap(m) }, nil
}
