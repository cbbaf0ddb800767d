package audit

import (
	"context"
	"errors"
	"sync"
)

// ErrClosed is returned by Write on a sink that has been closed.
var ErrClosed = errors.New("audit: sink closed")

// Sink receives audit events.
//
// Write records e before it returns, or returns an error; the caller must
// then fail the request (fail closed). Write must not keep e or anything it
// refers to after returning, and must be safe for concurrent use. Write on a
// closed sink returns ErrClosed. Close releases the sink; it is safe to call
// more than once.
type Sink interface {
	Write(ctx context.Context, e *Event) error
	Close() error
}

// WriteAll records events, in order, as Write does each: with one write(2)
// on a FileSink (so that a request with several events, a Secrets Manager
// read and the KMS Decrypt it made, costs the read path one write), one
// Write after another on other sinks.
func WriteAll(ctx context.Context, s Sink, events []*Event) error {
	if b, ok := s.(interface {
		writeAll(context.Context, []*Event) error
	}); ok {
		return b.writeAll(ctx, events)
	}
	for _, e := range events {
		if err := s.Write(ctx, e); err != nil {
			return err
		}
	}
	return nil
}

// Discard is a Sink that drops every event and never fails.
var Discard Sink = discard{}

type discard struct{}

func (discard) Write(context.Context, *Event) error { return nil }
func (discard) Close() error                        { return nil }

// MemorySink keeps events in memory, for tests. The zero value is ready to
// use; it is safe for concurrent use.
type MemorySink struct {
	mu     sync.Mutex
	events []Event
	err    error
	closed bool
}

// Write appends a deep copy of e, or returns the error set by SetError, or
// ErrClosed after Close.
func (m *MemorySink) Write(_ context.Context, e *Event) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return ErrClosed
	}
	if m.err != nil {
		return m.err
	}
	m.events = append(m.events, e.clone())
	return nil
}

// Close makes later Writes return ErrClosed.
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
func (m *MemorySink) Events() []Event {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]Event, len(m.events))
	for i := range m.events {
		out[i] = m.events[i].clone()
	}
	return out
}

// Reset forgets the events written so far.
func (m *MemorySink) Reset() {
	m.mu.Lock()
	m.events = nil
	m.mu.Unlock()
}
