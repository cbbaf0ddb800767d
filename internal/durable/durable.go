// Package durable holds the file-system steps that make a change survive
// power loss, shared by the packages that write files beside the data (the
// root key, the audit trail). It imports only the standard library.
package durable

import (
	"os"
	"runtime"
)

// SyncDir fsyncs a directory, so that files created, renamed or removed in
// it are durable. It is a no-op on Windows, where directories cannot be
// opened for syncing.
func SyncDir(dir string) error {
	if runtime.GOOS == "windows" {
		return nil
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
