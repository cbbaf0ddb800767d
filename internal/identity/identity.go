// Package identity carries the authenticated caller of a request through its
// context.Context: the account, the region from the SigV4 credential scope,
// the access key, the principal as policies see it (ARN, tags, identity
// policies), and where the request came from.
//
// The server's authentication (sigv4) puts a Caller in the context;
// services read it to scope resources and to authorize. A service that
// calls another on the caller's behalf (Secrets Manager calling KMS) says
// so with WithVia. This package imports only the standard library,
// internal/iam and internal/partition.
package identity

import (
	"context"
	"strconv"
	"strings"
	"time"

	"github.com/keyfort/keyfort/internal/iam"
	"github.com/keyfort/keyfort/internal/partition"
)

// CloudTrail userIdentity types.
const (
	TypeRoot        = "Root"
	TypeIAMUser     = "IAMUser"
	TypeAssumedRole = "AssumedRole"
)

// Caller is who sent a request and where it was sent.
type Caller struct {
	// Account is the 12-digit AWS account id.
	Account string
	// Region is the region from the request's credential scope.
	Region string
	// AccessKeyID is the access key that signed the request.
	AccessKeyID string
	// ARN is the principal's ARN (arn:aws:iam::<account>:root in dev mode;
	// the session ARN for an assumed role).
	ARN string
	// Type is the CloudTrail userIdentity type: "Root", "IAMUser",
	// "AssumedRole".
	Type string
	// SessionIssued is when an assumed-role session's credentials were
	// issued (CloudTrail's sessionContext.attributes.creationDate): for the
	// credentials file's role keys, when the file was loaded. Zero for
	// other principals.
	SessionIssued time.Time
	// Principal is the caller as policies see it; its ARN and Account are
	// the Caller's.
	Principal iam.Principal
	// UserName is the IAM user name (aws:username); empty for other
	// principals.
	UserName string
	// Tags are the principal's tags (aws:PrincipalTag/<key>).
	Tags map[string]string
	// Policies are the principal's identity-based policies; the account
	// root has none (its account allows it everything).
	Policies []*iam.Policy
	// SecureTransport is true when the request came over TLS
	// (aws:SecureTransport).
	SecureTransport bool
	// SourceIP is the client's address (without port).
	SourceIP string
	// UserAgent is the client's User-Agent header.
	UserAgent string
	// RequestID is the x-amzn-RequestId of the request.
	RequestID string
}

// Root returns the caller that is the root user of account, as
// development-mode authentication and background jobs use.
func Root(account, region, accessKeyID string) *Caller {
	c := new(Caller)
	SetRoot(c, account, region, accessKeyID)
	return c
}

// SetRoot sets *c to what Root returns, for a Caller the caller allocated
// (the server keeps a request's in its state).
func SetRoot(c *Caller, account, region, accessKeyID string) {
	arn := partition.ARN(region, "iam::"+account+":root")
	*c = Caller{
		Account:     account,
		Region:      region,
		AccessKeyID: accessKeyID,
		ARN:         arn,
		Type:        TypeRoot,
		Principal:   iam.Principal{ARN: arn, PrincipalARN: arn, Account: account, Root: true, UserID: account},
	}
}

type ctxKey struct{}

// With returns a copy of ctx carrying c.
func With(ctx context.Context, c *Caller) context.Context {
	return context.WithValue(ctx, ctxKey{}, c)
}

// ContextValue answers ctx.Value(key) for a context that carries c as With
// would, without a context node of its own: ok is false for the other keys.
// It lets the server carry a request's values in one context node.
func ContextValue(key any, c *Caller) (v any, ok bool) {
	if _, ok := key.(ctxKey); ok {
		return c, true
	}
	return nil, false
}

// From returns the caller carried by ctx, or nil if there is none.
func From(ctx context.Context) *Caller {
	c, _ := ctx.Value(ctxKey{}).(*Caller)
	return c
}

// Via describes a call one service makes to another on the caller's
// behalf, as Secrets Manager calls KMS to encrypt a secret's value.
type Via struct {
	// Service is the calling service's endpoint name for the region, e.g.
	// "secretsmanager.us-east-1.amazonaws.com" (kms:ViaService).
	Service string
	// Region is the region the call acts in (the secret's region), which
	// may differ from the caller's credential scope (replicas).
	Region string
	// InvokedBy is the CloudTrail invokedBy of the call, e.g.
	// "secretsmanager.amazonaws.com".
	InvokedBy string
}

type viaKey struct{}

// WithVia returns a copy of ctx in which calls are made through v.
func WithVia(ctx context.Context, v *Via) context.Context {
	return context.WithValue(ctx, viaKey{}, v)
}

// ViaContextValue answers ctx.Value(key) for a context that carries v as
// WithVia would, without a context node of its own: ok is false for the
// other keys.
func ViaContextValue(key any, v *Via) (any, bool) {
	if _, ok := key.(viaKey); ok {
		return v, true
	}
	return nil, false
}

// ViaFrom returns the service call ctx carries, or nil for a direct call.
func ViaFrom(ctx context.Context) *Via {
	v, _ := ctx.Value(viaKey{}).(*Via)
	return v
}

func one(v string) ([]string, bool) { return []string{v}, true }

// GlobalValue answers the global condition keys (aws:*) that depend only on
// the caller, the service call and the time: aws:PrincipalArn,
// aws:PrincipalAccount, aws:PrincipalTag/*, aws:PrincipalType, aws:userid,
// aws:username, aws:SourceIp, aws:CurrentTime, aws:EpochTime,
// aws:SecureTransport, aws:RequestedRegion, aws:ViaAWSService and
// aws:CalledVia. key is in lower case; present is false for a key the
// request does not have.
func GlobalValue(c *Caller, via *Via, now time.Time, key string) (values []string, present bool) {
	switch key {
	case "aws:principalarn":
		return one(c.Principal.PrincipalARN)
	case "aws:principalaccount":
		return one(c.Account)
	case "aws:principaltype":
		switch c.Type {
		case TypeRoot:
			return one("Account")
		case TypeIAMUser:
			return one("User")
		}
		return one(c.Type)
	case "aws:userid":
		return one(c.Principal.UserID)
	case "aws:username":
		if c.UserName != "" {
			return one(c.UserName)
		}
		return nil, false
	case "aws:sourceip":
		if c.SourceIP != "" {
			return one(c.SourceIP)
		}
		return nil, false
	case "aws:currenttime":
		return one(now.UTC().Format(time.RFC3339))
	case "aws:epochtime":
		return one(strconv.FormatInt(now.Unix(), 10))
	case "aws:securetransport":
		return one(strconv.FormatBool(c.SecureTransport))
	case "aws:requestedregion":
		if via != nil && via.Region != "" {
			return one(via.Region)
		}
		return one(c.Region)
	case "aws:viaawsservice":
		return one(strconv.FormatBool(via != nil))
	case "aws:calledvia", "aws:calledviafirst", "aws:calledvialast":
		if via != nil && via.InvokedBy != "" {
			return one(via.InvokedBy)
		}
		return nil, false
	}
	if name, ok := strings.CutPrefix(key, "aws:principaltag/"); ok {
		for k, v := range c.Tags {
			if strings.EqualFold(k, name) {
				return one(v)
			}
		}
	}
	return nil, false
}
