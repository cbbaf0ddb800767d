package operation

import (
	"context"
	"iter"
	"sync"
)

// Resource is an AWS resource a request acted on: what CloudTrail lists in
// an event's resources element.
type Resource struct {
	// Type is the CloudTrail resource type, e.g. "AWS::KMS::Key".
	Type string
	// ARN is the resource's ARN.
	ARN string
	// Account is the account that owns the resource.
	Account string
}

// Event is one more audit event a request causes besides its own, as AWS
// writes a GetSecretValue event for each secret a BatchGetSecretValue call
// reads, or a KMS Decrypt event for the data key of a secret Secrets Manager
// decrypts on the caller's behalf. The server gives it the request's
// identity, time and request id.
type Event struct {
	// Source is the event source when it is not the request's own service
	// ("kms.amazonaws.com"); empty for the request's service.
	Source string
	// Service makes the event a service event (eventType
	// AwsServiceEvent): what the service records of its own work that the
	// request caused, as KMS's RotateKey for an on-demand rotation. Its
	// userIdentity is the Resources' account invoked by "AWS Internal";
	// the request's identity is not in it.
	Service bool
	// ServiceEventDetails is a service event's serviceEventDetails (a JSON
	// object), or nil.
	ServiceEventDetails []byte
	// Region is the event's awsRegion when it is not the request's (a
	// multi-Region key's event in a related key's region); empty for the
	// request's region.
	Region string
	// InvokedBy is the service that made the call on the caller's behalf
	// ("secretsmanager.amazonaws.com"): the event's userIdentity.invokedBy,
	// sourceIPAddress and userAgent, as CloudTrail records such calls.
	InvokedBy string
	// Resources are the event's resources.
	Resources []Resource
	// Always writes the event also when the request as a whole fails: the
	// call it records was made and answered whatever became of the request.
	// Without it the event is written only with a successful request.
	Always bool
	// EventID is the event's id when the service chose it (to point at the
	// event from elsewhere, as GetKeyLastUsage does); empty for a new one.
	EventID string
	// Name is the event name (an operation name).
	Name string
	// ReadOnly is CloudTrail's readOnly field.
	ReadOnly bool
	// RequestParameters is the event's requestParameters in CloudTrail's
	// form (generated shapes' AppendAuditJSON), or nil.
	RequestParameters []byte
	// ErrorCode and ErrorMessage are set when that part of the request
	// failed.
	ErrorCode, ErrorMessage string
	// AdditionalEventData is the event's additionalEventData (a JSON
	// object: the key material a KMS call used), or nil.
	AdditionalEventData []byte
}

// Notes collects what services tell the audit trail about one request: the
// resources it acted on and the further events it causes. The server puts
// one in each request's context (through ContextValue); services add to it
// from any goroutine, including the store's writer running their
// transaction.
type Notes struct {
	mu               sync.Mutex
	resources        []Resource
	events           []Event
	responseElements []byte
	additional       []byte
	first            [1]Resource // resources' first backing array: most requests act on one resource
}

type notesKey struct{}

type eventIDKey struct{}

// EventID returns the id of the audit event that will record the call of
// ctx, or "" (a background job). The server sets the request's, Secrets
// Manager the one of each KMS call it makes for the caller, both through
// ContextValue.
func EventID(ctx context.Context) string {
	if id, _ := ctx.Value(eventIDKey{}).(*string); id != nil {
		return *id
	}
	return ""
}

// ContextValue answers ctx.Value(key) for a context that carries the notes
// n (AddResource, AddEvent...; nil: none, as after WithoutNotes) and the
// audit event id *eventID (EventID; nil: none); ok is false for the other
// keys. It is the one way to put them in a context: the server carries a
// request's caller, notes and event id in one context node of its own
// rather than a node each. n and eventID must not change once the context
// is in use.
func ContextValue(key any, n *Notes, eventID *string) (v any, ok bool) {
	switch key.(type) {
	case notesKey:
		return n, true
	case eventIDKey:
		return eventID, true
	}
	return nil, false
}

// WithoutNotes returns a copy of ctx in which AddResource and AddEvent do
// nothing: for work a request causes that is not its own (Secrets Manager's
// calls to KMS).
func WithoutNotes(ctx context.Context) context.Context {
	return context.WithValue(ctx, notesKey{}, (*Notes)(nil))
}

func notesOf(ctx context.Context) *Notes {
	n, _ := ctx.Value(notesKey{}).(*Notes)
	return n
}

// AddResource records r for the request of ctx, once however often it is
// added (a transaction may run more than once). Without notes in ctx
// (background jobs) it does nothing.
func AddResource(ctx context.Context, r Resource) {
	n := notesOf(ctx)
	if n == nil {
		return
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, have := range n.resources {
		if have == r {
			return
		}
	}
	if n.resources == nil {
		n.resources = n.first[:0]
	}
	n.resources = append(n.resources, r)
}

// AddEvent records one more audit event for the request of ctx. Without
// notes in ctx it does nothing.
func AddEvent(ctx context.Context, e Event) {
	n := notesOf(ctx)
	if n == nil {
		return
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	n.events = append(n.events, e)
}

// SetResponseElements sets the responseElements of the request's own event
// when it succeeds, for operations whose event AWS fills with more than the
// response (the key ARN of EnableKey, say). b is a JSON object. Without notes
// in ctx it does nothing.
func SetResponseElements(ctx context.Context, b []byte) {
	n := notesOf(ctx)
	if n == nil {
		return
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	n.responseElements = b
}

// SetAdditionalEventData sets the additionalEventData of the request's own
// event when it succeeds (the key material a KMS cryptographic operation
// used: {"keyMaterialId": ...}). b is a JSON object that nobody modifies
// afterwards. Without notes in ctx it does nothing.
func SetAdditionalEventData(ctx context.Context, b []byte) {
	n := notesOf(ctx)
	if n == nil {
		return
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	n.additional = b
}

// AdditionalEventData returns what SetAdditionalEventData set, or nil (also
// on nil Notes).
func (n *Notes) AdditionalEventData() []byte {
	if n == nil {
		return nil
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.additional
}

// ResponseElements returns what SetResponseElements set, or nil (also on
// nil Notes).
func (n *Notes) ResponseElements() []byte {
	if n == nil {
		return nil
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.responseElements
}

// AllResources returns an iterator over the resources recorded, in the
// order first added. Each resource is read under n's lock, which is not
// held while yield runs: a resource added meanwhile is yielded too
// (resources are only ever appended). On nil Notes it yields nothing.
// AllEvents has the same body over events: one generic function for both
// (capturing the mutex and the slice) made 7 more allocations per request
// in BenchmarkDispatch, these closures none.
func (n *Notes) AllResources() iter.Seq[Resource] {
	return func(yield func(Resource) bool) {
		if n == nil {
			return
		}
		for i := 0; ; i++ {
			n.mu.Lock()
			if i >= len(n.resources) {
				n.mu.Unlock()
				return
			}
			r := n.resources[i]
			n.mu.Unlock()
			if !yield(r) {
				return
			}
		}
	}
}

// AllEvents returns an iterator over the further events recorded, in
// order. As with AllResources, each is read under n's lock, not held while
// yield runs.
func (n *Notes) AllEvents() iter.Seq[Event] {
	return func(yield func(Event) bool) {
		if n == nil {
			return
		}
		for i := 0; ; i++ {
			n.mu.Lock()
			if i >= len(n.events) {
				n.mu.Unlock()
				return
			}
			e := n.events[i]
			n.mu.Unlock()
			if !yield(e) {
				return
			}
		}
	}
}
