package iam

import "strings"

// Principal is the caller as policies see it.
type Principal struct {
	// ARN is the caller's ARN: the root or user ARN, or for an assumed
	// role the session ARN (arn:aws:sts::<account>:assumed-role/<role>/<session>).
	ARN string
	// PrincipalARN is what a Principal element names the caller by: the
	// root or user ARN, or the role ARN of an assumed-role session
	// (aws:PrincipalArn).
	PrincipalARN string
	// Account is the caller's 12-digit account.
	Account string
	// Root is true for the account root user: its own account's IAM allows
	// it everything, so only resource policies and explicit denies limit it.
	Root bool
	// UserID is the caller's unique id (aws:userid), which Principal
	// elements may name.
	UserID string
	// Service is set instead of the rest for an AWS service principal, e.g.
	// "secretsmanager.amazonaws.com".
	Service string
}

// Request is one authorization question: may Principal do Action on
// Resource, with the condition keys of Context?
type Request struct {
	// Action is the IAM action, e.g. "kms:Encrypt".
	Action string
	// Resource is the resource ARN, or "*" for an action without one
	// (kms:CreateKey, secretsmanager:ListSecrets).
	Resource string
	// Principal is the caller.
	Principal *Principal
	// Context answers condition keys and policy variables; nil has none.
	Context Context
}

// principalMatch says how a Principal element names the caller.
type principalMatch uint8

const (
	noMatch principalMatch = iota
	// matchAccount: the element names the caller's account (its id or its
	// root ARN), which delegates the decision to the account's IAM
	// policies.
	matchAccount
	// matchDirect: the element names the caller itself, or everyone.
	matchDirect
)

// Match is what one policy says about a request.
type Match struct {
	// Deny is the first statement that denies the request, or nil.
	Deny *Statement
	// Allow is the first statement that allows the caller itself (for an
	// identity policy, any matching Allow), or nil.
	Allow *Statement
	// AllowAccount is the first statement of a resource policy that allows
	// the caller's account (and so its principals whose identity policies
	// allow), or nil.
	AllowAccount *Statement
}

// Evaluate matches the policy's statements against r. Principal elements
// are matched only in a resource policy (kind); an identity policy applies
// to its principal.
func (p *Policy) Evaluate(r *Request, kind Kind) Match {
	var m Match
	if p == nil {
		return m
	}
	vars := p.Version == Version2012
	action := r.Action
	for i := range p.Statements {
		st := &p.Statements[i]
		pm := matchDirect
		if kind == ResourcePolicy {
			pm = st.matchPrincipal(r.Principal)
			if pm == noMatch {
				continue
			}
		}
		if !st.matchAction(action) || !st.matchResource(r, vars) || !st.matchConditions(r.Context, vars) {
			continue
		}
		switch {
		case st.Effect == EffectDeny:
			if m.Deny == nil {
				m.Deny = st
			}
		case st.Effect != EffectAllow:
		case pm == matchDirect:
			if m.Allow == nil {
				m.Allow = st
			}
		default:
			if m.AllowAccount == nil {
				m.AllowAccount = st
			}
		}
		if m.Deny != nil && m.Allow != nil {
			break // nothing further changes the outcome
		}
	}
	return m
}

func (st *Statement) matchAction(action string) bool {
	if st.notAction != nil {
		for _, a := range st.notAction {
			if matchFold(a, action) {
				return false
			}
		}
		return true
	}
	for _, a := range st.action {
		if matchFold(a, action) {
			return true
		}
	}
	return false
}

func (st *Statement) matchResource(r *Request, vars bool) bool {
	res := r.Resource
	if res == "" {
		res = "*"
	}
	if st.notResource != nil {
		for _, p := range st.notResource {
			if matchResource(r.Context, vars, p, res) {
				return false
			}
		}
		return true
	}
	for _, p := range st.resource {
		if matchResource(r.Context, vars, p, res) {
			return true
		}
	}
	return false
}

func (st *Statement) matchConditions(ctx Context, vars bool) bool {
	if len(st.Conditions) == 0 {
		return true
	}
	if ctx == nil {
		ctx = MapContext(nil)
	}
	for i := range st.Conditions {
		if !st.Conditions[i].eval(ctx, vars) {
			return false
		}
	}
	return true
}

// matchPrincipal says how the statement's Principal (or NotPrincipal)
// element names the caller.
func (st *Statement) matchPrincipal(c *Principal) principalMatch {
	if c == nil {
		return noMatch
	}
	if st.NotPrincipal != nil {
		// Everyone except the principals listed (an account listed exempts
		// the whole account).
		if st.NotPrincipal.match(c) != noMatch {
			return noMatch
		}
		return matchDirect
	}
	return st.Principal.match(c)
}

func (e *PrincipalElement) match(c *Principal) principalMatch {
	if e == nil {
		return noMatch
	}
	if e.Any {
		return matchDirect
	}
	best := noMatch
	if c.Service != "" {
		for _, v := range e.Values["Service"] {
			if v == "*" || v == c.Service {
				return matchDirect
			}
		}
		return noMatch
	}
	for _, v := range e.Values["AWS"] {
		switch {
		case v == "*":
			return matchDirect
		case v == c.Account || isRootOf(v, c.Account):
			best = matchAccount
		case v == c.PrincipalARN || v == c.ARN || (c.UserID != "" && v == c.UserID):
			return matchDirect
		}
	}
	return best
}

// Decision is the outcome of an authorization.
type Decision uint8

const (
	// ImplicitDeny: no policy allows the request.
	ImplicitDeny Decision = iota
	// Allow: the request is allowed.
	Allow
	// ExplicitDeny: a statement denies the request.
	ExplicitDeny
)

func (d Decision) String() string {
	switch d {
	case Allow:
		return "Allow"
	case ExplicitDeny:
		return "ExplicitDeny"
	}
	return "ImplicitDeny"
}

// PolicyType names the kind of policy that decided a denial, in the words
// of AWS's AccessDeniedException messages.
type PolicyType uint8

const (
	// IdentityBased: the caller's identity-based policies.
	IdentityBased PolicyType = iota
	// ResourceBased: the resource's policy (a key policy, a secret's
	// resource policy).
	ResourceBased
)

// Result is the outcome of Authorize.
type Result struct {
	Decision Decision
	// By is the kind of policy that decided a denial: the one with the
	// explicit deny, or the one that lacked an allow.
	By PolicyType
	// Statement is the statement that decided (the deny, or the allow),
	// or nil.
	Statement *Statement
}

// Allowed reports whether the request is allowed.
func (r Result) Allowed() bool { return r.Decision == Allow }

// Authorization is what Authorize combines for one request.
type Authorization struct {
	// Request is the question.
	Request *Request
	// Identity are the caller's identity-based policies. The account root
	// needs none: IAM allows it everything in its own account.
	Identity []*Policy
	// Resource is the resource's policy, or nil when it has none.
	Resource *Policy
	// ResourceAccount is the account that owns the resource ("" for an
	// action without a resource, which only identity policies decide).
	ResourceAccount string
	// ResourceRequired is set for KMS keys: the key policy is the
	// authority, so without its allow (of the caller, or of the caller's
	// account whose IAM policies then decide) the request is denied.
	// Without it (Secrets Manager), within the account either kind of
	// policy may allow.
	ResourceRequired bool
	// Granted is an allow from outside the policies (a KMS grant): it
	// allows the request unless a policy explicitly denies it.
	Granted bool
}

// Authorize decides a request as AWS does: an explicit deny in any policy
// wins; otherwise the request is allowed when the policies allow it:
//   - in the caller's own account, by an identity-based policy (or because
//     the caller is the root) or by the resource policy naming the caller;
//     for a KMS key (ResourceRequired) the key policy must allow the caller
//     itself, or allow the account when the identity side allows too;
//   - across accounts, by both the resource policy (naming the caller or
//     its account) and the caller's identity side;
//   - by a grant.
func Authorize(a Authorization) Result {
	r := a.Request
	c := r.Principal
	var idAllow, idDeny *Statement
	for _, p := range a.Identity {
		m := p.Evaluate(r, IdentityPolicy)
		if m.Deny != nil && idDeny == nil {
			idDeny = m.Deny
		}
		if m.Allow != nil && idAllow == nil {
			idAllow = m.Allow
		}
	}
	if idDeny != nil {
		return Result{Decision: ExplicitDeny, By: IdentityBased, Statement: idDeny}
	}
	var res Match
	if a.Resource != nil {
		res = a.Resource.Evaluate(r, ResourcePolicy)
		if res.Deny != nil {
			return Result{Decision: ExplicitDeny, By: ResourceBased, Statement: res.Deny}
		}
	}
	identityOK := idAllow != nil || (c != nil && c.Root && c.Service == "")
	allowStmt := idAllow
	if allowStmt == nil {
		allowStmt = res.Allow
	}
	if a.Granted {
		return Result{Decision: Allow}
	}
	sameAccount := a.ResourceAccount == "" || (c != nil && c.Account == a.ResourceAccount)
	switch {
	case a.ResourceAccount == "":
		// No resource: identity policies alone decide.
		if identityOK {
			return Result{Decision: Allow, Statement: idAllow}
		}
		return Result{Decision: ImplicitDeny, By: IdentityBased}
	case sameAccount && !a.ResourceRequired:
		if identityOK || res.Allow != nil {
			return Result{Decision: Allow, Statement: allowStmt}
		}
		return Result{Decision: ImplicitDeny, By: IdentityBased}
	case sameAccount:
		if res.Allow != nil {
			return Result{Decision: Allow, Statement: res.Allow}
		}
		if res.AllowAccount != nil {
			if identityOK {
				return Result{Decision: Allow, Statement: res.AllowAccount}
			}
			return Result{Decision: ImplicitDeny, By: IdentityBased}
		}
		return Result{Decision: ImplicitDeny, By: ResourceBased}
	default:
		// Across accounts: the resource policy must let the caller in, and
		// the caller's own account must let it out.
		if res.Allow == nil && res.AllowAccount == nil {
			return Result{Decision: ImplicitDeny, By: ResourceBased}
		}
		if !identityOK {
			return Result{Decision: ImplicitDeny, By: IdentityBased}
		}
		return Result{Decision: Allow, Statement: allowStmt}
	}
}

// DeniedMessage is the text of AWS's AccessDeniedException for a denied
// request: "User: <caller> is not authorized to perform: <action> on
// resource: <resource> because no identity-based policy allows the
// <action> action", or "... with an explicit deny in a resource-based
// policy". resource is the resource as the message should name it; empty
// leaves out the "on resource" part (actions without a resource).
func (r Result) DeniedMessage(caller, action, resource string) string {
	var b strings.Builder
	b.WriteString("User: ")
	b.WriteString(caller)
	b.WriteString(" is not authorized to perform: ")
	b.WriteString(action)
	if resource != "" {
		b.WriteString(" on resource: ")
		b.WriteString(resource)
	}
	b.WriteString(r.Reason(action))
	return b.String()
}

// Reason is the reason part of DeniedMessage, with its leading space.
func (r Result) Reason(action string) string {
	kind := "an identity-based policy"
	if r.By == ResourceBased {
		kind = "a resource-based policy"
	}
	if r.Decision == ExplicitDeny {
		return " with an explicit deny in " + kind
	}
	kind, _ = strings.CutPrefix(kind, "an ")
	kind, _ = strings.CutPrefix(kind, "a ")
	return " because no " + kind + " allows the " + action + " action"
}

// isRootOf reports whether arn is arn:<partition>:iam::<account>:root.
func isRootOf(arn, account string) bool {
	acct, ok := RootAccount(arn)
	return ok && acct == account
}

// RootAccount returns the account of an account root's ARN,
// arn:<partition>:iam::<account>:root in any partition (aws, aws-cn,
// aws-us-gov, ...), and whether arn is one.
func RootAccount(arn string) (string, bool) {
	rest, ok := strings.CutPrefix(arn, "arn:aws")
	if !ok {
		return "", false
	}
	i := strings.IndexByte(rest, ':')
	if i < 0 || !partitionTail(rest[:i]) {
		return "", false
	}
	rest, ok = strings.CutPrefix(rest[i:], ":iam::")
	if !ok {
		return "", false
	}
	acct, ok := strings.CutSuffix(rest, ":root")
	if !ok || !IsAccountID(acct) {
		return "", false
	}
	return acct, true
}

// partitionTail reports whether s is what follows "aws" in a partition's
// name: nothing, or "-" and lower-case letters and hyphens ("-cn").
func partitionTail(s string) bool {
	if s == "" {
		return true
	}
	if s[0] != '-' || len(s) < 2 {
		return false
	}
	for i := 1; i < len(s); i++ {
		if c := s[i]; (c < 'a' || c > 'z') && c != '-' {
			return false
		}
	}
	return true
}
