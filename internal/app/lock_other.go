//go:build !unix

package app

// lockDataDir is a no-op where flock is not available.
func lockDataDir(string) (release func(), err error) { return func() {}, nil }
