// Package audittest gives tests an audit.Sink that keeps events in memory
// (MemorySink): to read what a request recorded, and to make the trail
// fail so that a test sees the request fail with it (fail closed).
//
// Only _test.go files import this package.
package audittest

import (
	"context"
	"encoding/json"
	"sync"

	"github.com/keyfort/keyfort/internal/audit"
)

// MemorySink keeps events in memory. The zero value is ready to use; it is
// safe for concurrent use.
type MemorySink struct {
	mu     sync.Mutex
	events []audit.Event
	err    error
	closed bool
}

// Write appends a deep copy of e (a sink must not keep e), or returns the
// error set by SetError, or audit.ErrClosed after Close.
func (m *MemorySink) Write(_ context.Context, e *audit.Event) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return audit.ErrClosed
	}
	if m.err != nil {
		return m.err
	}
	m.events = append(m.events, clone(e))
	return nil
}

// Close makes later Writes return audit.ErrClosed.
func (m *MemorySink) Close() error {
	m.mu.Lock()
	m.closed = true
	m.mu.Unlock()
	return nil
}

// SetError makes later Writes return err (nil restores normal behaviour),
// to test that a failing audit trail fails the request.
func (m *MemorySink) SetError(err error) {
	m.mu.Lock()
	m.err = err
	m.mu.Unlock()
}

// Events returns a copy of the events written so far, in order.
func (m *MemorySink) Events() []audit.Event {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]audit.Event, len(m.events))
	for i := range m.events {
		out[i] = clone(&m.events[i])
	}
	return out
}

// Reset forgets the events written so far.
func (m *MemorySink) Reset() {
	m.mu.Lock()
	m.events = nil
	m.mu.Unlock()
}

// clone returns a deep copy of e: nothing the caller changes afterwards
// reaches the copy.
func clone(e *audit.Event) audit.Event {
	c := *e
	c.RequestParameters = cloneBytes(e.RequestParameters)
	c.ResponseElements = cloneBytes(e.ResponseElements)
	c.AdditionalEventData = cloneBytes(e.AdditionalEventData)
	if e.Resources != nil {
		c.Resources = append([]audit.Resource(nil), e.Resources...)
	}
	return c
}

func cloneBytes(b json.RawMessage) json.RawMessage {
	if b == nil {
		return nil
	}
	return append(json.RawMessage{}, b...)
}
