// Package cloudtrail is Keyfort's CloudTrail service: LookupEvents over the
// audit events Keyfort keeps, as AWS's CloudTrail API reference documents
// it. Every other operation of the CloudTrail model answers
// UnsupportedOperationException (see Operations).
//
// The service reads the trail only through its Finder interface: it knows
// nothing of how or where events are stored (the app adapts the store to
// it). It imports neither net/http nor database/sql nor storage.
package cloudtrail

import (
	"context"
	"time"

	"github.com/keyfort/keyfort/internal/cloudtrail/ctapi"
)

// Lookup attribute keys: the values of the model's LookupAttributeKey, as
// Query.Attribute carries them.
const (
	AttrEventID      = string(ctapi.LookupAttributeKeyEventId)
	AttrEventName    = string(ctapi.LookupAttributeKeyEventName)
	AttrReadOnly     = string(ctapi.LookupAttributeKeyReadOnly)
	AttrUsername     = string(ctapi.LookupAttributeKeyUsername)
	AttrResourceType = string(ctapi.LookupAttributeKeyResourceType)
	AttrResourceName = string(ctapi.LookupAttributeKeyResourceName)
	AttrEventSource  = string(ctapi.LookupAttributeKeyEventSource)
	AttrAccessKeyID  = string(ctapi.LookupAttributeKeyAccessKeyId)
)

// Finder finds audit events. The app adapts the store to it.
type Finder interface {
	// Find returns the events of q.Account and q.Region whose Time is
	// within [q.From, q.To] (both inclusive) and that match q's attribute,
	// ordered newest first (Time descending, ties by ID descending),
	// starting after q.After when it is not zero (the first event returned
	// is the first one after the cursor in that order), at most q.Limit
	// of them (q.Limit > 0).
	//
	// An event matches when q.Attribute is empty, or when, compared
	// exactly (case-sensitive):
	//   - AttrEventID: its ID is q.Value;
	//   - AttrEventName: its Name is q.Value;
	//   - AttrReadOnly: its ReadOnly is q.Value == "true" (q.Value is
	//     "true" or "false"; the service sends no other);
	//   - AttrUsername: its Username is q.Value;
	//   - AttrResourceType: one of its Resources has Type q.Value;
	//   - AttrResourceName: one of its Resources has Name q.Value;
	//   - AttrEventSource: its Source is q.Value;
	//   - AttrAccessKeyID: its AccessKeyID is q.Value.
	//
	// An error is the server's fault: the client sees the internal error
	// and the cause is logged.
	Find(ctx context.Context, q Query) ([]Event, error)
}

// Query is one page's question to a Finder.
type Query struct {
	// Account and Region scope the events: the caller's.
	Account, Region string
	// From and To bound the event time, both inclusive; both are within
	// what int64 unix nanoseconds hold.
	From, To time.Time
	// Attribute is one of the Attr* keys, or "" for every event; Value is
	// what it must equal.
	Attribute, Value string
	// After is where the previous page ended; zero for the first page.
	After Cursor
	// Limit is the most events to return: MaxResults + 1 (1 to 51), the
	// one more telling the service whether to return a NextToken.
	Limit int
}

// Cursor is a position in the newest-first order of events: continue after
// the event with this Time and ID.
type Cursor struct {
	Time time.Time
	ID   string
}

// IsZero reports whether c is the zero cursor (the first page).
func (c Cursor) IsZero() bool { return c.ID == "" && c.Time.IsZero() }

// Event is one audit event as LookupEvents returns it.
type Event struct {
	// ID is the CloudTrail eventID.
	ID string
	// Time is the eventTime.
	Time time.Time
	// Name is the eventName, Source the eventSource
	// ("kms.amazonaws.com").
	Name, Source string
	// Username is the caller's name as LookupEvents shows it ("root" for
	// an account root, the IAM user's name, the role session's name).
	Username string
	// AccessKeyID is the access key that signed the request.
	AccessKeyID string
	// ReadOnly is the event's readOnly.
	ReadOnly bool
	// Resources are the event's resources.
	Resources []Resource
	// JSON is the CloudTrail event, the record the trail holds.
	JSON []byte
}

// Resource is a resource an event names.
type Resource struct {
	// Type is the CloudTrail resource type ("AWS::KMS::Key").
	Type string
	// Name is the resource's name or ARN.
	Name string
}

// NoEvents is a Finder that finds nothing: the trail of a Keyfort without
// a queryable store.
type NoEvents struct{}

// Find returns no events.
func (NoEvents) Find(context.Context, Query) ([]Event, error) { return nil, nil }

// Config configures a Service.
type Config struct {
	// Finder reads the trail. Nil means NoEvents.
	Finder Finder
	// Now is the clock. Nil means time.Now.
	Now func() time.Time
}

// Service implements ctapi.Service: LookupEvents. The other operations are
// ctapi.UnimplementedService's; Operations answers them with
// UnsupportedOperationException.
type Service struct {
	ctapi.UnimplementedService
	find Finder
	now  func() time.Time
}

var _ ctapi.Service = (*Service)(nil)

// New returns the CloudTrail service.
func New(cfg Config) *Service {
	s := &Service{find: cfg.Finder, now: cfg.Now}
	if s.find == nil {
		s.find = NoEvents{}
	}
	if s.now == nil {
		s.now = time.Now
	}
	return s
}

// InternalMessage is the message of CloudTrail's internal error
// (InternalFailure, AWS's common error: the model declares no fault).
const InternalMessage = "The request processing has failed because of an unknown error, exception or failure."
