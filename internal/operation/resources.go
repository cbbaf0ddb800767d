package operation

import (
	"context"
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

// Resources collects the resources one request acts on. The server puts one
// in each request's context (WithResources); services name what they
// resolved with AddResource, from any goroutine, including the store's
// writer running their transaction.
type Resources struct {
	mu   sync.Mutex
	list []Resource
}

type resourcesKey struct{}

// WithResources returns a copy of ctx carrying rs.
func WithResources(ctx context.Context, rs *Resources) context.Context {
	return context.WithValue(ctx, resourcesKey{}, rs)
}

// WithoutResources returns a copy of ctx in which AddResource does nothing:
// for work a request causes that is not its own (another service's calls).
func WithoutResources(ctx context.Context) context.Context {
	return context.WithValue(ctx, resourcesKey{}, (*Resources)(nil))
}

// AddResource records r for the request of ctx, once however often it is
// added (a transaction may run more than once). Without a collector in ctx
// (background jobs) it does nothing.
func AddResource(ctx context.Context, r Resource) {
	rs, _ := ctx.Value(resourcesKey{}).(*Resources)
	if rs == nil {
		return
	}
	rs.mu.Lock()
	defer rs.mu.Unlock()
	for _, have := range rs.list {
		if have == r {
			return
		}
	}
	rs.list = append(rs.list, r)
}

// List returns the resources recorded so far, in the order first added.
func (rs *Resources) List() []Resource {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	return append([]Resource(nil), rs.list...)
}
