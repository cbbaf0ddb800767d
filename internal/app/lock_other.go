//go:build !unix

package app

// dataDirLock is a no-op where flock is not available (errLocked is never
// returned).
type dataDirLock struct{}

// lockDataDir is a no-op where flock is not available.
func lockDataDir(string) (*dataDirLock, error) { return &dataDirLock{}, nil }

func (*dataDirLock) release() {}
func (*dataDirLock) discard() {}
