package storage

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
)

// EventRecord is one audit event as the store keeps it: the CloudTrail
// event's JSON and the fields LookupEvents selects on. The store keeps the
// trail so that a change and its event commit together (Tx.AppendEvent) and
// every node of a shared store sees every node's events.
type EventRecord struct {
	// ID is the event's eventID, unique in the store.
	ID string
	// Time is the eventTime in Unix nanoseconds.
	Time int64
	// Account and Region are where LookupEvents finds the event (the
	// recipient account and the event's region).
	Account string
	Region  string
	// Source, Name, ReadOnly, Username and AccessKeyID are LookupEvents'
	// attributes EventSource, EventName, ReadOnly, Username and AccessKeyId.
	Source      string
	Name        string
	ReadOnly    bool
	Username    string
	AccessKeyID string
	// Resources are the event's resources (attributes ResourceType and
	// ResourceName).
	Resources []EventResource
	// Node names the server that wrote the event (its data directory's
	// node id), so that it can finish its own incomplete events at start.
	Node string
	// Complete is false for an event written in a change's transaction
	// before the response was known; PutEvents replaces it with the
	// complete event.
	Complete bool
	// JSON is the CloudTrail event (never holds a secret: audit events
	// leave sensitive members out).
	JSON []byte
}

// EventResource is one resource of an event.
type EventResource struct {
	Type string
	Name string
}

// Lookup attributes of EventQuery.Attribute (CloudTrail's
// LookupAttributeKey values).
const (
	AttrEventID      = "EventId"
	AttrEventName    = "EventName"
	AttrReadOnly     = "ReadOnly"
	AttrUsername     = "Username"
	AttrResourceType = "ResourceType"
	AttrResourceName = "ResourceName"
	AttrEventSource  = "EventSource"
	AttrAccessKeyID  = "AccessKeyId"
)

// EventQuery selects events of one account and region, newest first.
type EventQuery struct {
	Account string
	Region  string
	// From and To bound Time, both inclusive (Unix nanoseconds).
	From, To int64
	// Attribute, if not empty, is one of the Attr constants, and only
	// events whose attribute equals Value are returned (ReadOnly: "true"
	// or "false"; ResourceType and ResourceName: any of the resources).
	Attribute string
	Value     string
	// Before, if its ID is not empty, continues a listing after the event
	// it names (events sorting before it: older, or as old with a smaller
	// ID).
	Before EventCursor
	// Limit is the maximum number of events (at least 1).
	Limit int
}

// EventCursor is the position of an event in a newest-first listing.
type EventCursor struct {
	Time int64
	ID   string
}

// Trail is implemented by stores that keep the audit trail.
type Trail interface {
	// PutEvents stores events, each in its own right: a new ID is
	// inserted, an ID already stored as incomplete is replaced, an ID
	// already complete is left as it is (PutEvents may be retried).
	PutEvents(ctx context.Context, events []*EventRecord) error
	// LookupEvents returns the events q selects, newest first (ties by ID
	// descending).
	LookupEvents(ctx context.Context, q EventQuery) ([]*EventRecord, error)
	// IncompleteEvents returns up to limit incomplete events written by
	// node, oldest first (by Time, then ID), after the event after names
	// (the zero cursor starts at the oldest).
	IncompleteEvents(ctx context.Context, node string, after EventCursor, limit int) ([]*EventRecord, error)
	// PruneEvents deletes events whose Time is before the given Unix
	// nanoseconds and returns how many it deleted.
	PruneEvents(ctx context.Context, before int64) (int, error)
}

// PendingEvent is the audit event of a request that may change the store.
// The first Store.Update made with a context carrying it (WithPendingEvent)
// that commits appends the event in the same transaction, so that a change
// is never committed without its event; Committed then reports true and
// later Updates of the request add nothing.
type PendingEvent struct {
	// Record returns the event as it stands when the change is made. It
	// is called inside the transaction (perhaps more than once, as a
	// transaction may be run again), while the request waits for Update.
	Record    func() *EventRecord
	committed atomic.Bool
}

// Committed reports whether the event was committed with a change.
func (p *PendingEvent) Committed() bool { return p.committed.Load() }

type pendingKey struct{}

// WithPendingEvent returns ctx carrying p.
func WithPendingEvent(ctx context.Context, p *PendingEvent) context.Context {
	return context.WithValue(ctx, pendingKey{}, p)
}

// PendingEventOf returns the pending event ctx carries, or nil.
func PendingEventOf(ctx context.Context) *PendingEvent {
	p, _ := ctx.Value(pendingKey{}).(*PendingEvent)
	return p
}

// WithoutPendingEvent returns ctx without its pending event: for work a
// request has another service do for it (Secrets Manager's calls to KMS,
// which may create an AWS managed key), whose Updates are not the request's
// change.
func WithoutPendingEvent(ctx context.Context) context.Context {
	if PendingEventOf(ctx) == nil {
		return ctx
	}
	return context.WithValue(ctx, pendingKey{}, (*PendingEvent)(nil))
}

// WithoutPendingEventValue answers ctx.Value(key) for a context made by
// WithoutPendingEvent, without a context node of its own: ok is false for
// the other keys. (PendingEventOf finds no event either way.)
func WithoutPendingEventValue(key any) (any, bool) {
	if _, ok := key.(pendingKey); ok {
		return (*PendingEvent)(nil), true
	}
	return nil, false
}

// BindPendingEvent is for Store implementations: it returns fn, extended to
// append the pending event of ctx (if any, and not yet committed) after fn
// succeeds having written a record (an Update that changes nothing is not
// the request's change), and a function the Store calls once the
// transaction committed.
func BindPendingEvent(ctx context.Context, fn func(tx Tx) error) (func(tx Tx) error, func()) {
	p := PendingEventOf(ctx)
	if p == nil || p.committed.Load() {
		return fn, func() {}
	}
	appended := false
	bound := func(tx Tx) error {
		appended = false // fn may run again
		w := &writeWatch{Tx: tx}
		if err := fn(w); err != nil {
			return err
		}
		if !w.wrote {
			return nil
		}
		if err := tx.AppendEvent(ctx, p.Record()); err != nil {
			return err
		}
		appended = true
		return nil
	}
	return bound, func() {
		if appended {
			p.committed.Store(true)
		}
	}
}

// writeWatch is a Tx that notes whether a record was written through it.
type writeWatch struct {
	Tx
	wrote bool
}

func (w *writeWatch) Insert(ctx context.Context, r *Record) error {
	err := w.Tx.Insert(ctx, r)
	w.wrote = w.wrote || err == nil
	return err
}

func (w *writeWatch) Update(ctx context.Context, r *Record) error {
	err := w.Tx.Update(ctx, r)
	w.wrote = w.wrote || err == nil
	return err
}

func (w *writeWatch) Delete(ctx context.Context, kind Kind, scope Scope, id string) error {
	err := w.Tx.Delete(ctx, kind, scope, id)
	w.wrote = w.wrote || err == nil
	return err
}

// Separators of the resources column: each resource is written as
// RS type US name, the list ends with RS. Types and names never hold either
// (EncodeResources drops them), so a condition on "RS type US" or
// "US name RS" matches exactly one whole field.
const (
	resourceSep = "\x1e"
	fieldSep    = "\x1f"
)

// EncodeResources is for Store implementations: the text of the resources
// column that EventWhere's ResourceType and ResourceName conditions search.
func EncodeResources(rs []EventResource) string {
	if len(rs) == 0 {
		return ""
	}
	clean := func(s string) string {
		if !strings.ContainsAny(s, resourceSep+fieldSep) {
			return s
		}
		return strings.NewReplacer(resourceSep, "", fieldSep, "").Replace(s)
	}
	var b strings.Builder
	n := 1
	for _, r := range rs {
		n += 2 + len(r.Type) + len(r.Name)
	}
	b.Grow(n)
	for _, r := range rs {
		b.WriteString(resourceSep)
		b.WriteString(clean(r.Type))
		b.WriteString(fieldSep)
		b.WriteString(clean(r.Name))
	}
	b.WriteString(resourceSep)
	return b.String()
}

// DecodeResources reverses EncodeResources.
func DecodeResources(s string) []EventResource {
	var out []EventResource
	for _, part := range strings.Split(s, resourceSep) {
		if part == "" {
			continue
		}
		t, n, _ := strings.Cut(part, fieldSep)
		out = append(out, EventResource{Type: t, Name: n})
	}
	return out
}

// EventWhere is for Store implementations: the WHERE clause of q over the
// audit table's columns (id, time, account, region, source, name, read_only,
// username, access_key_id, resources), with placeholders made by ph from
// their 1-based position, and its arguments. position names the backend's
// function that returns where a text is found in another, 0 for nowhere
// (SQLite's instr, PostgreSQL's strpos).
func EventWhere(q EventQuery, ph func(n int) string, position string) (string, []any, error) {
	var b strings.Builder
	args := make([]any, 0, 8)
	arg := func(v any) string {
		args = append(args, v)
		return ph(len(args))
	}
	b.WriteString("account = " + arg(q.Account) + " AND region = " + arg(q.Region) +
		" AND time >= " + arg(q.From) + " AND time <= " + arg(q.To))
	switch q.Attribute {
	case "":
	case AttrEventID:
		b.WriteString(" AND id = " + arg(q.Value))
	case AttrEventName:
		b.WriteString(" AND name = " + arg(q.Value))
	case AttrReadOnly:
		var v int64
		switch q.Value {
		case "true":
			v = 1
		case "false":
		default:
			return "", nil, fmt.Errorf("storage: ReadOnly value %q is neither true nor false", q.Value)
		}
		b.WriteString(" AND read_only = " + arg(v))
	case AttrUsername:
		b.WriteString(" AND username = " + arg(q.Value))
	case AttrEventSource:
		b.WriteString(" AND source = " + arg(q.Value))
	case AttrAccessKeyID:
		b.WriteString(" AND access_key_id = " + arg(q.Value))
	case AttrResourceType, AttrResourceName:
		if strings.ContainsAny(q.Value, resourceSep+fieldSep) {
			b.WriteString(" AND 1 = 0") // no stored type or name holds a separator
			break
		}
		needle := resourceSep + q.Value + fieldSep
		if q.Attribute == AttrResourceName {
			needle = fieldSep + q.Value + resourceSep
		}
		b.WriteString(" AND " + position + "(resources, " + arg(needle) + ") > 0")
	default:
		return "", nil, fmt.Errorf("storage: unknown lookup attribute %q", q.Attribute)
	}
	if q.Before.ID != "" {
		t1 := arg(q.Before.Time)
		t2 := arg(q.Before.Time)
		b.WriteString(" AND (time < " + t1 + " OR (time = " + t2 + " AND id < " + arg(q.Before.ID) + "))")
	}
	return b.String(), args, nil
}
