package kms

// Authorization, as AWS KMS decides it: the key policy is the authority;
// identity-based policies count where the key policy allows the account
// (the default key policy's root statement); grants allow the operations
// they list; an explicit deny anywhere wins. Every request is authorized
// where its key is resolved (lookupKey, updateKey, decryptBlob), or, for
// operations on no key (CreateKey, ListKeys, ...), by authorizeAccount.

import (
	"context"
	"errors"
	"maps"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/keyfort/keyfort/internal/awserr"
	"github.com/keyfort/keyfort/internal/iam"
	"github.com/keyfort/keyfort/internal/identity"
	"github.com/keyfort/keyfort/internal/kms/kmsapi"
	"github.com/keyfort/keyfort/internal/partition"
	"github.com/keyfort/keyfort/internal/storage"
)

// Actions that are not operations: ReEncrypt needs kms:ReEncryptFrom on the
// source key and kms:ReEncryptTo on the destination key.
const (
	actionReEncryptFrom = "kms:ReEncryptFrom"
	actionReEncryptTo   = "kms:ReEncryptTo"
)

// access is one authorization question of a request: the action, and the
// condition keys the request adds to those of the caller and the key.
type access struct {
	action string
	// ec is the request's encryption context; hasEC says the operation
	// takes one (so kms:EncryptionContextKeys is present, maybe empty).
	ec    map[string]string
	hasEC bool
	// alg is kms:EncryptionAlgorithm (or another algorithm key in extra).
	alg string
	// tags answers aws:RequestTag/* and aws:TagKeys (TagResource,
	// UntagResource, CreateKey); nil for requests that name no tags.
	tags *iam.RequestTags
	// requestAlias is kms:RequestAlias: the alias the KeyId named.
	requestAlias string
	// grant holds CreateGrant's condition keys.
	grant *grantFacts
	// extra holds the rest (kms:KeySpec of CreateKey,
	// kms:BypassPolicyLockoutSafetyCheck, ...), by lower-case key.
	extra iam.MapContext
	// tokens are the request's GrantTokens, checked before the decision.
	tokens []string
	// ciphertext is set when the key comes from a ciphertext, not from
	// KeyId (Decrypt without KeyId): the denial names "the resource
	// associated with this ciphertext".
	ciphertext bool
}

// grantFacts are CreateGrant's condition keys.
type grantFacts struct {
	operations []string
	grantee    string
	retiring   string
	constraint string // kms:GrantConstraintType: EncryptionContextEquals or EncryptionContextSubset
}

// act returns the access of a request for action.
func act(action string) *access { return &access{action: action} }

var errNoCaller = errors.New("request has no caller identity")

// callerOf returns the request's caller and service call, or an internal
// error when there is no caller (requests always carry one).
func callerOf(ctx context.Context) (*identity.Caller, *identity.Via, error) {
	c := identity.From(ctx)
	if c == nil || c.Account == "" {
		return nil, nil, wrap("authorize", errNoCaller)
	}
	return c, identity.ViaFrom(ctx), nil
}

// keyPolicy returns k's key policy, parsed once per loaded key (the default
// key policy once per account).
func (s *Service) keyPolicy(k *key) (*iam.Policy, error) {
	if k.meta.Policy == "" {
		return s.defaults.get(k.rec.Scope), nil
	}
	if p := k.policy.Load(); p != nil {
		return p, nil
	}
	p, _, err := iam.Parse(k.meta.Policy, keyPolicyOptions)
	if err != nil {
		return nil, wrap("parse stored key policy of "+k.rec.ID, err)
	}
	k.policy.Store(p)
	return p, nil
}

// defaultPolicies caches the parsed default key policy of each account and
// partition (the root's ARN names both). Reads load an immutable map (no
// lock, no key to build on the heap); a new account's policy replaces it
// with a copy under mu.
type defaultPolicies struct {
	mu sync.Mutex
	m  atomic.Pointer[map[defaultPolicyKey]*iam.Policy]
}

// defaultPolicyKey is a partition and an account.
type defaultPolicyKey struct{ partition, account string }

func (d *defaultPolicies) get(scope storage.Scope) *iam.Policy {
	id := defaultPolicyKey{partition.For(scope.Region), scope.Account}
	if m := d.m.Load(); m != nil {
		if p, ok := (*m)[id]; ok {
			return p
		}
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	old := d.m.Load()
	if old != nil {
		if p, ok := (*old)[id]; ok {
			return p
		}
	}
	p := iam.MustParse(defaultKeyPolicy(scope.Account, scope.Region), keyPolicyOptions)
	m := make(map[defaultPolicyKey]*iam.Policy, 1)
	if old != nil {
		maps.Copy(m, *old)
	}
	m[id] = p
	d.m.Store(&m)
	return p
}

// authorize decides whether the caller may do a.action on k, and returns
// AccessDeniedException in AWS's words when not. g reads grants and
// aliases: the transaction k was read in, or nil outside one.
func (s *Service) authorize(ctx context.Context, g storage.Reader, k *key, a *access) error {
	c, via, err := callerOf(ctx)
	if err != nil {
		return err
	}
	if err := s.checkGrantTokens(a.tokens); err != nil {
		return err
	}
	pol, err := s.keyPolicy(k)
	if err != nil {
		return err
	}
	cond := &kmsContext{ctx: ctx, s: s, g: g, caller: c, via: via, now: s.now(), k: k, a: *a}
	req := &iam.Request{Action: a.action, Resource: k.arn, Principal: &c.Principal, Context: cond}
	az := iam.Authorization{
		Request:          req,
		Identity:         c.Policies,
		Resource:         pol,
		ResourceAccount:  k.rec.Scope.Account,
		ResourceRequired: true,
	}
	res := iam.Authorize(az)
	if res.Decision == iam.ImplicitDeny {
		ok, err := s.grantAllows(ctx, g, k, c, a)
		if err != nil {
			return err
		}
		if ok {
			az.Granted = true
			res = iam.Authorize(az)
		}
	}
	if res.Allowed() {
		return nil
	}
	return s.denied(c, k, a, res)
}

// denied is the AccessDeniedException of a refused request.
func (s *Service) denied(c *identity.Caller, k *key, a *access, res iam.Result) error {
	switch {
	case k != nil && c.Account != k.rec.Scope.Account && res.By == iam.ResourceBased:
		return errCrossAccountDenied(c.ARN, a.action)
	case a.ciphertext:
		return awserr.New(awserr.CodeAccessDenied, "User: "+c.ARN+" is not authorized to perform: "+a.action+
			" on the resource associated with this ciphertext"+res.Reason(a.action))
	case k == nil:
		return awserr.New(awserr.CodeAccessDenied, res.DeniedMessage(c.ARN, a.action, ""))
	}
	return awserr.New(awserr.CodeAccessDenied, res.DeniedMessage(c.ARN, a.action, k.arn))
}

// errCrossAccountDenied is AWS's answer for a key of another account that
// does not exist or does not let the caller in: it does not say which.
func errCrossAccountDenied(caller, action string) error {
	return awserr.New(awserr.CodeAccessDenied, "User: "+caller+" is not authorized to perform: "+action+
		" on this resource because the resource does not exist in this Region, no resource-based policies allow access, "+
		"or a resource-based policy explicitly denies access")
}

// authorizeAccount decides an action that acts on no key (CreateKey,
// ListKeys, ListAliases, GenerateRandom, ListRetirableGrants): only the
// caller's identity-based policies decide, on resource "*".
func (s *Service) authorizeAccount(ctx context.Context, a *access) error {
	c, via, err := callerOf(ctx)
	if err != nil {
		return err
	}
	cond := &kmsContext{ctx: ctx, s: s, caller: c, via: via, now: s.now(), a: *a}
	res := iam.Authorize(iam.Authorization{
		Request:  &iam.Request{Action: a.action, Resource: "*", Principal: &c.Principal, Context: cond},
		Identity: c.Policies,
	})
	if res.Allowed() {
		return nil
	}
	return s.denied(c, nil, a, res)
}

// authorizeAlias decides an alias action on the alias itself (CreateAlias,
// UpdateAlias and DeleteAlias need the action on the alias, which only
// identity-based policies govern, and on the key).
func (s *Service) authorizeAlias(ctx context.Context, scope storage.Scope, name string, a *access) error {
	c, via, err := callerOf(ctx)
	if err != nil {
		return err
	}
	arn := aliasARN(scope, name)
	cond := &kmsContext{ctx: ctx, s: s, caller: c, via: via, now: s.now(), a: *a}
	res := iam.Authorize(iam.Authorization{
		Request:         &iam.Request{Action: a.action, Resource: arn, Principal: &c.Principal, Context: cond},
		Identity:        c.Policies,
		ResourceAccount: scope.Account,
	})
	if res.Allowed() {
		return nil
	}
	return awserr.New(awserr.CodeAccessDenied, res.DeniedMessage(c.ARN, a.action, arn))
}

// list lists records through r (a transaction), or in a read-only
// transaction of its own when r is nil.
func (s *Service) list(ctx context.Context, r storage.Reader, kind storage.Kind, scope storage.Scope, opts storage.ListOptions) ([]*storage.Record, error) {
	if r != nil {
		return r.List(ctx, kind, scope, opts)
	}
	var out []*storage.Record
	err := s.store.View(ctx, func(r storage.Reader) error {
		var err error
		out, err = r.List(ctx, kind, scope, opts)
		return err
	})
	return out, err
}

// kmsContext answers the condition keys of one KMS request.
type kmsContext struct {
	ctx    context.Context
	s      *Service
	g      storage.Reader // the transaction the key was read in, or nil
	caller *identity.Caller
	via    *identity.Via
	now    time.Time
	k      *key // nil for actions on no key
	// a is a copy of the request's access, so that the caller's need not
	// escape to the heap with the context.
	a access

	aliases []string // kms:ResourceAliases, read on first use
	read    bool

	// callerAccount and viaService hold the one value of kms:CallerAccount
	// and kms:ViaService (the conditions of AWS managed keys' policies), so
	// that answering them does not allocate: each slot is only ever set to
	// its key's value, so a slice handed out earlier stays right.
	callerAccount, viaService [1]string
}

func one(v string) ([]string, bool) { return []string{v}, true }

// Value implements iam.Context.
func (c *kmsContext) Value(key string) ([]string, bool) {
	a := &c.a
	switch key {
	case "kms:calleraccount":
		c.callerAccount[0] = c.caller.Account
		return c.callerAccount[:], true
	case "kms:viaservice":
		if c.via != nil {
			c.viaService[0] = c.via.Service
			return c.viaService[:], true
		}
		return nil, false
	case "kms:keyspec", "kms:customermasterkeyspec":
		if c.k != nil {
			return one(c.k.meta.Spec)
		}
	case "kms:keyusage", "kms:customermasterkeyusage":
		if c.k != nil {
			return one(c.k.meta.Usage)
		}
	case "kms:keyorigin":
		if c.k != nil {
			return one(c.k.meta.Origin)
		}
	case "kms:multiregion":
		if c.k != nil {
			return one(strconv.FormatBool(c.k.meta.MRK != nil))
		}
	case "kms:multiregionkeytype":
		if c.k != nil && c.k.meta.MRK != nil {
			if c.k.isPrimary() {
				return one("PRIMARY")
			}
			return one("REPLICA")
		}
	case "kms:encryptioncontextkeys":
		if a.hasEC {
			keys := make([]string, 0, len(a.ec))
			for k := range a.ec {
				keys = append(keys, k)
			}
			return keys, true
		}
		return nil, false
	case "kms:encryptionalgorithm":
		if a.alg != "" {
			return one(a.alg)
		}
		return nil, false
	case "kms:requestalias":
		if a.requestAlias != "" {
			return one(a.requestAlias)
		}
		return nil, false
	case "kms:resourcealiases":
		if c.k == nil {
			return nil, false
		}
		return c.resourceAliases()
	case "aws:resourceaccount":
		if c.k != nil {
			return one(c.k.rec.Scope.Account)
		}
	}
	if v, ok := a.tags.Value(key); ok {
		return v, true
	}
	if g := a.grant; g != nil {
		switch key {
		case "kms:grantoperations":
			return g.operations, true
		case "kms:granteeprincipal":
			return one(g.grantee)
		case "kms:retiringprincipal":
			if g.retiring != "" {
				return one(g.retiring)
			}
			return nil, false
		case "kms:grantisforawsresource":
			return one(strconv.FormatBool(c.via != nil))
		case "kms:grantconstrainttype":
			if g.constraint != "" {
				return one(g.constraint)
			}
			return nil, false
		}
	}
	if v, ok := a.extra[key]; ok {
		return v, true
	}
	switch {
	case strings.HasPrefix(key, "kms:encryptioncontext:"):
		name := key[len("kms:encryptioncontext:"):]
		for k, v := range a.ec {
			if strings.EqualFold(k, name) {
				return one(v)
			}
		}
		return nil, false
	case strings.HasPrefix(key, "aws:resourcetag/"):
		if c.k == nil {
			return nil, false
		}
		name := key[len("aws:resourcetag/"):]
		for _, t := range c.k.meta.Tags {
			if strings.EqualFold(t.Key, name) {
				return one(t.Value)
			}
		}
		return nil, false
	}
	return identity.GlobalValue(c.caller, c.via, c.now, key)
}

// resourceAliases lists the aliases of the key (kms:ResourceAliases), as
// alias names.
func (c *kmsContext) resourceAliases() ([]string, bool) {
	if !c.read {
		c.read = true
		recs, err := c.s.list(c.ctx, c.g, kindAlias, c.k.rec.Scope, storage.ListOptions{Parent: c.k.rec.ID, KeysOnly: true})
		if err == nil {
			for _, r := range recs {
				c.aliases = append(c.aliases, r.ID)
			}
		}
	}
	return c.aliases, true
}

// requestTags is the RequestTags of a request that sets tags.
func requestTags(tags []kmsapi.Tag) *iam.RequestTags {
	return iam.SetTags(tags, func(t kmsapi.Tag) (string, string) { return deref(t.TagKey), deref(t.TagValue) })
}
