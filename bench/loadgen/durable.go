package main

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"
)

// groupLog is the floor's durable write: each request's body is appended to
// a file and answered only once an fsync that began after the append has
// finished. Concurrent requests share one fsync (group commit), as Keyfort's
// store shares one commit. It is the least any server must do on this disk
// to answer a write that survives power loss.
type groupLog struct {
	mu      sync.Mutex
	cond    sync.Cond
	f       *os.File
	written uint64 // appends so far
	synced  uint64 // appends covered by a finished fsync
	syncing bool
	err     error // a failed fsync: every later append fails
}

func openGroupLog(dir string) (*groupLog, error) {
	f, err := os.OpenFile(filepath.Join(dir, "floor-durable.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("floor log: %w", err)
	}
	g := &groupLog{f: f}
	g.cond.L = &g.mu
	return g, nil
}

// append writes b and returns once it is durable.
func (g *groupLog) append(b []byte) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.err != nil {
		return g.err
	}
	if _, err := g.f.Write(b); err != nil {
		return err
	}
	g.written++
	seq := g.written
	for g.synced < seq && g.err == nil {
		if g.syncing {
			g.cond.Wait()
			continue
		}
		g.syncing = true
		upTo := g.written
		g.mu.Unlock()
		err := g.f.Sync()
		g.mu.Lock()
		g.syncing = false
		if err != nil {
			g.err = fmt.Errorf("floor log: fsync: %w", err)
		} else {
			g.synced = upTo
		}
		g.cond.Broadcast()
	}
	return g.err
}
