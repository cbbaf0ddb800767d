package app

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// lockFileName is the file whose exclusive lock marks a data directory in
// use by one keyfort process (a server, or rootkey rotate).
const lockFileName = "keyfort.lock"

// startUndo remembers what a data directory held before New, so that a
// start that fails (in New or Start) removes what it created and nothing
// else: the directories MkdirAll made, and the entries that appeared in the
// data directory while this process held its lock.
type startUndo struct {
	dir      string
	madeDirs []string        // created by New, deepest first
	before   map[string]bool // the data directory's entries once locked
}

// missingDirs returns dir and those of its parents that do not exist,
// deepest first: what MkdirAll(dir) is about to create.
func missingDirs(dir string) ([]string, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	var missing []string
	for {
		_, err := os.Lstat(dir)
		if err == nil {
			return missing, nil
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
		missing = append(missing, dir)
		parent := filepath.Dir(dir)
		if parent == dir {
			return missing, nil
		}
		dir = parent
	}
}

// snapshot records the data directory's entries (called with the lock
// held; the lock file itself is left to dataDirLock.discard).
func (u *startUndo) snapshot() error {
	des, err := os.ReadDir(u.dir)
	if err != nil {
		return fmt.Errorf("app: read data directory: %w", err)
	}
	u.before = make(map[string]bool, len(des))
	for _, de := range des {
		u.before[de.Name()] = true
	}
	return nil
}

// removeNew removes the entries of the data directory that were not there
// at snapshot (the store and audit trail are closed by then). The lock
// file is not touched, nor the SQLite journal files of a database that
// existed before.
func (u *startUndo) removeNew() error {
	if u.before == nil {
		return nil
	}
	des, err := os.ReadDir(u.dir)
	if err != nil {
		return fmt.Errorf("app: clean up the data directory: %w", err)
	}
	var errs []error
	for _, de := range des {
		name := de.Name()
		if u.before[name] || name == lockFileName {
			continue
		}
		if db, ok := strings.CutSuffix(name, "-wal"); ok && u.before[db] {
			continue
		}
		if db, ok := strings.CutSuffix(name, "-shm"); ok && u.before[db] {
			continue
		}
		if err := os.RemoveAll(filepath.Join(u.dir, name)); err != nil {
			errs = append(errs, fmt.Errorf("app: clean up the data directory: %w", err))
		}
	}
	return errors.Join(errs...)
}

// removeDirs removes the directories New created, if they are empty (after
// the lock file is gone); it stops at the first that is not.
func (u *startUndo) removeDirs() {
	for _, d := range u.madeDirs {
		if os.Remove(d) != nil {
			return
		}
	}
}
