package audit

import (
	"context"
	"errors"
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
