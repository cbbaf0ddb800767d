// Package identity carries the authenticated caller of a request through its
// context.Context: the account, the region from the SigV4 credential scope,
// the access key and the principal ARN.
//
// The server's authentication middleware (sigv4) puts a Caller in the
// context; services read it to scope resources and to authorize. This
// package imports only the standard library.
package identity

import "context"

// Caller is who sent a request and where it was sent.
type Caller struct {
	// Account is the 12-digit AWS account id.
	Account string
	// Region is the region from the request's credential scope.
	Region string
	// AccessKeyID is the access key that signed the request.
	AccessKeyID string
	// ARN is the principal's ARN (arn:aws:iam::<account>:root in dev mode).
	ARN string
	// Type is the CloudTrail userIdentity type: "Root", "IAMUser", ...
	Type string
	// SourceIP is the client's address (without port).
	SourceIP string
	// UserAgent is the client's User-Agent header.
	UserAgent string
	// RequestID is the x-amzn-RequestId of the request.
	RequestID string
}

type ctxKey struct{}

// With returns a copy of ctx carrying c.
func With(ctx context.Context, c *Caller) context.Context {
	return context.WithValue(ctx, ctxKey{}, c)
}

// From returns the caller carried by ctx, or nil if there is none.
func From(ctx context.Context) *Caller {
	c, _ := ctx.Value(ctxKey{}).(*Caller)
	return c
}
