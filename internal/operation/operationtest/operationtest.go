// Package operationtest gives tests the context values the server gives an
// operation, one at a time: a request's notes (operation.AddResource,
// AddEvent...) and its audit event id (operation.EventID). Production code
// carries them in context nodes of its own through operation.ContextValue
// (the server's callCtx, Secrets Manager's kmsCallCtx); so do these, so that
// a test sees what those give.
//
// Only _test.go files import this package.
package operationtest

import (
	"context"

	"github.com/keyfort/keyfort/internal/operation"
)

// WithNotes returns a copy of ctx carrying n (nil: none, as
// operation.WithoutNotes).
func WithNotes(ctx context.Context, n *operation.Notes) context.Context {
	return &valueCtx{Context: ctx, notes: n, hasNotes: true}
}

// WithEventID returns a copy of ctx carrying the audit event id id.
func WithEventID(ctx context.Context, id string) context.Context {
	return &valueCtx{Context: ctx, eventID: &id}
}

// valueCtx carries notes or an event id, and leaves the other to its
// parent.
type valueCtx struct {
	context.Context
	notes    *operation.Notes
	hasNotes bool
	eventID  *string // nil: the parent's
}

// Value answers the key of the one value c carries. operation.ContextValue
// answers both the notes' key and the event id's (their types are
// unexported); the type of its answer says which was asked.
func (c *valueCtx) Value(key any) any {
	if v, ok := operation.ContextValue(key, c.notes, c.eventID); ok {
		switch v.(type) {
		case *operation.Notes:
			if c.hasNotes {
				return v
			}
		case *string:
			if c.eventID != nil {
				return v
			}
		}
	}
	return c.Context.Value(key)
}
