package secretsmanager

// Authorization, as AWS Secrets Manager decides it: within the secret's
// account either the caller's identity-based policies or the secret's
// resource policy may allow; across accounts (a secret named by the ARN of
// another account) both must; an explicit deny in either wins. Every
// request is authorized where its secret is resolved (secretFor), or, for
// operations on no secret (ListSecrets, GetRandomPassword,
// BatchGetSecretValue itself), by authorizeAccount. Using the secret's KMS
// key is KMS's decision: Secrets Manager calls KMS through the service
// (kms:ViaService), and a refusal is "Access to KMS is not allowed".

import (
	"context"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/keyfort/keyfort/internal/awserr"
	"github.com/keyfort/keyfort/internal/iam"
	"github.com/keyfort/keyfort/internal/identity"
	"github.com/keyfort/keyfort/internal/operation"
	"github.com/keyfort/keyfort/internal/partition"
	"github.com/keyfort/keyfort/internal/secretsmanager/smapi"
	"github.com/keyfort/keyfort/internal/storage"
)

// access is one authorization question of a request: the action and the
// condition keys the request adds to those of the caller and the secret.
type access struct {
	action string
	// extra holds the request's secretsmanager:* keys (Name, Description,
	// KmsKeyId, VersionId, VersionStage, ...), by lower-case key.
	extra iam.MapContext
	// tags answers aws:RequestTag/* and aws:TagKeys; nil for requests
	// that name no tags.
	tags *iam.RequestTags
	// value is set for operations that read or write the secret's value,
	// which another account may do only with a customer managed key.
	value bool
}

func act(action string) *access { return &access{action: action} }

// with adds condition keys of the request.
func (a *access) with(kv ...string) *access {
	if a.extra == nil {
		a.extra = iam.MapContext{}
	}
	for i := 0; i+1 < len(kv); i += 2 {
		a.extra[kv[i]] = append(a.extra[kv[i]], kv[i+1])
	}
	return a
}

// secretScope returns the account and region of the secret id names: the
// caller's, or the account of an ARN of another account in the caller's
// region, so that a resource policy can let other accounts in.
func secretScope(ctx context.Context, id *string) (storage.Scope, error) {
	scope, err := scopeOf(ctx)
	if err != nil || id == nil {
		return scope, err
	}
	rest, ok := cutSecretARNPrefix(*id, scope.Region)
	if !ok || len(rest) < 13 || rest[12] != ':' || !iam.IsAccountID(rest[:12]) {
		return scope, nil
	}
	scope.Account = rest[:12]
	return scope, nil
}

// cutSecretARNPrefix is strings.CutPrefix(id, partition.ARN(region,
// "secretsmanager:"+region+":")) without building the prefix.
func cutSecretARNPrefix(id, region string) (string, bool) {
	rest, ok := strings.CutPrefix(id, "arn:")
	if !ok {
		return id, false
	}
	for _, part := range [...]string{partition.For(region), ":secretsmanager:", region, ":"} {
		if rest, ok = strings.CutPrefix(rest, part); !ok {
			return id, false
		}
	}
	return rest, true
}

// secretFor resolves the secret id names in scope and authorizes a on it.
// A caller who may not act on a secret that does not exist learns nothing
// from the answer: AccessDeniedException, as on AWS; only a caller who may
// gets ResourceNotFoundException.
func (s *Service) secretFor(ctx context.Context, g getter, scope storage.Scope, id string, a *access) (*secret, error) {
	sec, err := resolveSecret(ctx, g, scope, id)
	if err != nil {
		if isNotFound(err) {
			if derr := s.authorizeMissing(ctx, scope, id, a); derr != nil {
				return nil, derr
			}
		}
		return nil, err
	}
	if err := s.authorize(ctx, sec, id, a); err != nil {
		return nil, err
	}
	auditSecret(ctx, scope, sec.meta.ARN)
	return sec, nil
}

// resourceSecret is CloudTrail's resource type of secrets.
const resourceSecret = "AWS::SecretsManager::Secret"

// auditSecret names the secret arn as a resource of the request's audit
// event, so that LookupEvents finds the request by the secret's ARN
// (ResourceName) as CloudTrail's event history does.
func auditSecret(ctx context.Context, scope storage.Scope, arn string) {
	operation.AddResource(ctx, operation.Resource{Type: resourceSecret, ARN: arn, Account: scope.Account})
}

// resourcePolicy returns the secret's parsed resource policy (nil when it
// has none), parsed once per loaded secret.
func (s *secret) resourcePolicy() (*iam.Policy, error) {
	if s.meta.ResourcePolicyJSON == "" {
		return nil, nil
	}
	if p := s.policy.Load(); p != nil {
		return p, nil
	}
	p, _, err := parsePolicy(s.meta.ResourcePolicyJSON)
	if err != nil {
		return nil, wrap("parse stored resource policy of "+s.meta.Name, err)
	}
	s.policy.Store(p)
	return p, nil
}

// decide evaluates a on sec for the caller of ctx.
func (s *Service) decide(ctx context.Context, c *identity.Caller, sec *secret, tags []tag, a *access) (iam.Result, error) {
	pol, err := sec.resourcePolicy()
	if err != nil {
		return iam.Result{}, err
	}
	cond := &smContext{caller: c, via: identity.ViaFrom(ctx), now: s.now(), sec: sec, tags: tags, a: *a}
	return iam.Authorize(iam.Authorization{
		Request:         &iam.Request{Action: a.action, Resource: sec.meta.ARN, Principal: &c.Principal, Context: cond},
		Identity:        c.Policies,
		Resource:        pol,
		ResourceAccount: sec.rec.Scope.Account,
	}), nil
}

// authorize decides a on sec; id is the SecretId as the caller gave it,
// which AWS's message names.
func (s *Service) authorize(ctx context.Context, sec *secret, id string, a *access) error {
	c := identity.From(ctx)
	if c == nil {
		return wrap("authorize", errNoCaller)
	}
	res, err := s.decide(ctx, c, sec, sec.meta.Tags, a)
	if err != nil {
		return err
	}
	if !res.Allowed() {
		return awserr.New(awserr.CodeAccessDenied, res.DeniedMessage(c.ARN, a.action, id))
	}
	if a.value && c.Account != sec.rec.Scope.Account && sec.meta.KmsKeyID == "" {
		return errInvalidRequest("You can't access a secret from a different AWS account if you encrypt the secret with the default KMS service key.")
	}
	return nil
}

// authorizeMissing decides a on a secret that does not exist: only the
// caller's identity-based policies can allow it (on the ARN the secret
// would have), and only in the caller's own account.
func (s *Service) authorizeMissing(ctx context.Context, scope storage.Scope, id string, a *access) error {
	c := identity.From(ctx)
	if c == nil {
		return wrap("authorize", errNoCaller)
	}
	arn := id
	if !strings.HasPrefix(id, "arn:") {
		arn = arnPrefix(scope) + id + "-??????"
	}
	cond := &smContext{caller: c, via: identity.ViaFrom(ctx), now: s.now(), a: *a}
	res := iam.Authorize(iam.Authorization{
		Request:         &iam.Request{Action: a.action, Resource: arn, Principal: &c.Principal, Context: cond},
		Identity:        c.Policies,
		ResourceAccount: scope.Account,
	})
	if res.Allowed() {
		return nil
	}
	return awserr.New(awserr.CodeAccessDenied, res.DeniedMessage(c.ARN, a.action, id))
}

// authorizeAccount decides an action on no secret (ListSecrets,
// GetRandomPassword, BatchGetSecretValue): identity policies on "*".
func (s *Service) authorizeAccount(ctx context.Context, a *access) error {
	c := identity.From(ctx)
	if c == nil {
		return wrap("authorize", errNoCaller)
	}
	cond := &smContext{caller: c, via: identity.ViaFrom(ctx), now: s.now(), a: *a}
	res := iam.Authorize(iam.Authorization{
		Request:  &iam.Request{Action: a.action, Resource: "*", Principal: &c.Principal, Context: cond},
		Identity: c.Policies,
	})
	if res.Allowed() {
		return nil
	}
	return awserr.New(awserr.CodeAccessDenied, res.DeniedMessage(c.ARN, a.action, ""))
}

// authorizeNew decides CreateSecret on the secret it would create (arn),
// which has no resource policy yet.
func (s *Service) authorizeNew(ctx context.Context, scope storage.Scope, arn string, a *access) error {
	c := identity.From(ctx)
	if c == nil {
		return wrap("authorize", errNoCaller)
	}
	cond := &smContext{caller: c, via: identity.ViaFrom(ctx), now: s.now(), a: *a}
	res := iam.Authorize(iam.Authorization{
		Request:         &iam.Request{Action: a.action, Resource: arn, Principal: &c.Principal, Context: cond},
		Identity:        c.Policies,
		ResourceAccount: scope.Account,
	})
	if res.Allowed() {
		auditSecret(ctx, scope, arn)
		return nil
	}
	return awserr.New(awserr.CodeAccessDenied, res.DeniedMessage(c.ARN, a.action, arn))
}

// lockoutActions are the actions on a secret whose loss a tag change must
// not cause (TagResource, UntagResource).
var lockoutActions = func() []string {
	var out []string
	for _, a := range secretsManagerActions {
		switch a {
		case "BatchGetSecretValue", "CreateSecret", "GetRandomPassword", "ListSecrets":
			continue
		}
		out = append(out, "secretsmanager:"+a)
	}
	return out
}()

// checkTagLockout refuses a tag change that would take from the caller a
// permission on the secret it has now (ABAC: a policy that allows on a
// tag), as AWS blocks such a TagResource or UntagResource with an Access
// Denied error. newTags are the tags after the change.
func (s *Service) checkTagLockout(ctx context.Context, sec *secret, id string, newTags []tag, a *access) error {
	c := identity.From(ctx)
	if c == nil {
		return wrap("authorize", errNoCaller)
	}
	for _, action := range lockoutActions {
		probe := act(action)
		before, err := s.decide(ctx, c, sec, sec.meta.Tags, probe)
		if err != nil {
			return err
		}
		if !before.Allowed() {
			continue
		}
		after, err := s.decide(ctx, c, sec, newTags, probe)
		if err != nil {
			return err
		}
		if !after.Allowed() {
			return awserr.New(awserr.CodeAccessDenied, "User: "+c.ARN+" is not authorized to perform: "+a.action+
				" on resource: "+id+" because the change would remove your permission for "+action+" on this secret")
		}
	}
	return nil
}

var errNoCaller = errorString("request has no caller identity")

type errorString string

func (e errorString) Error() string { return string(e) }

// smContext answers the condition keys of one Secrets Manager request.
type smContext struct {
	caller *identity.Caller
	via    *identity.Via
	now    time.Time
	sec    *secret // nil for actions on no existing secret
	tags   []tag   // the secret's tags (as they would be, for the lockout check)
	a      access  // a copy: the caller's access need not escape with the context
}

func one(v string) ([]string, bool) { return []string{v}, true }

// Value implements iam.Context.
func (c *smContext) Value(key string) ([]string, bool) {
	a := &c.a
	if v, ok := a.extra[key]; ok {
		return v, true
	}
	switch key {
	case "secretsmanager:secretid":
		if c.sec != nil {
			return one(c.sec.meta.ARN)
		}
		return nil, false
	case "secretsmanager:secretprimaryregion":
		if c.sec != nil && c.sec.meta.PrimaryRegion != "" {
			return one(c.sec.meta.PrimaryRegion)
		}
		return nil, false
	case "secretsmanager:resource/allowrotationlambdaarn":
		if c.sec != nil && c.sec.meta.RotationLambdaARN != "" {
			return one(c.sec.meta.RotationLambdaARN)
		}
		return nil, false
	case "aws:resourceaccount":
		if c.sec != nil {
			return one(c.sec.rec.Scope.Account)
		}
		return nil, false
	}
	if v, ok := a.tags.Value(key); ok {
		return v, true
	}
	for _, prefix := range []string{"aws:resourcetag/", "secretsmanager:resourcetag/"} {
		if name, ok := strings.CutPrefix(key, prefix); ok {
			if c.sec == nil {
				return nil, false
			}
			for _, t := range c.tags {
				if strings.EqualFold(t.Key, name) {
					return one(t.Value)
				}
			}
			return nil, false
		}
	}
	return identity.GlobalValue(c.caller, c.via, c.now, key)
}

// policyCache is embedded in secret: its parsed resource policy.
type policyCache = atomic.Pointer[iam.Policy]

// boolStr formats a condition key's boolean value.
func boolStr(b bool) string { return strconv.FormatBool(b) }

// The accesses of operations whose requests add condition keys.

// getValueAccess returns the access by value: GetSecretValue keeps it on
// its stack (decide copies it into the condition context).
func getValueAccess(in *smapi.GetSecretValueInput) access {
	a := access{action: in.IAMAction(), value: true}
	if in.VersionId != nil {
		a.with("secretsmanager:versionid", *in.VersionId)
	}
	if in.VersionStage != nil {
		a.with("secretsmanager:versionstage", *in.VersionStage)
	}
	return a
}

func deleteAccess(in *smapi.DeleteSecretInput) *access {
	a := act(in.IAMAction())
	if in.RecoveryWindowInDays != nil {
		a.with("secretsmanager:recoverywindowindays", strconv.FormatInt(*in.RecoveryWindowInDays, 10))
	}
	if in.ForceDeleteWithoutRecovery != nil {
		a.with("secretsmanager:forcedeletewithoutrecovery", boolStr(*in.ForceDeleteWithoutRecovery))
	}
	return a
}

func updateAccess(in *smapi.UpdateSecretInput) *access {
	a := &access{action: in.IAMAction(), value: in.SecretString != nil || in.SecretBinary != nil}
	if in.Description != nil {
		a.with("secretsmanager:description", *in.Description)
	}
	if in.KmsKeyId != nil {
		a.with("secretsmanager:kmskeyid", *in.KmsKeyId)
	}
	return a
}

func rotateAccess(in *smapi.RotateSecretInput) *access {
	a := act(in.IAMAction())
	if in.RotationLambdaARN != nil {
		a.with("secretsmanager:rotationlambdaarn", *in.RotationLambdaARN)
	}
	if in.RotateImmediately != nil {
		a.with("secretsmanager:rotateimmediately", boolStr(*in.RotateImmediately))
	}
	a.with("secretsmanager:modifyrotationrules", boolStr(in.RotationRules != nil))
	return a
}

func replicateAccess(in *smapi.ReplicateSecretToRegionsInput) *access {
	a := act(in.IAMAction())
	for _, r := range in.AddReplicaRegions {
		a.with("secretsmanager:addreplicaregions", deref(r.Region))
	}
	if in.ForceOverwriteReplicaSecret != nil {
		a.with("secretsmanager:forceoverwritereplicasecret", boolStr(*in.ForceOverwriteReplicaSecret))
	}
	return a
}

// requestTags is the RequestTags of a request that sets tags.
func requestTags(tags []smapi.Tag) *iam.RequestTags {
	return iam.SetTags(tags, func(t smapi.Tag) (string, string) { return deref(t.Key), deref(t.Value) })
}

// authorizeCreate decides CreateSecret on the secret it would create, and,
// as AWS requires, secretsmanager:TagResource for Tags and
// secretsmanager:ReplicateSecretToRegions for AddReplicaRegions.
func (s *Service) authorizeCreate(ctx context.Context, scope storage.Scope, arn string, in *smapi.CreateSecretInput) error {
	a := act(in.IAMAction())
	if in.Tags != nil {
		a.tags = requestTags(in.Tags)
	}
	a.with("secretsmanager:name", deref(in.Name))
	if in.Description != nil {
		a.with("secretsmanager:description", *in.Description)
	}
	if in.KmsKeyId != nil {
		a.with("secretsmanager:kmskeyid", *in.KmsKeyId)
	}
	for _, r := range in.AddReplicaRegions {
		a.with("secretsmanager:addreplicaregions", deref(r.Region))
	}
	if in.ForceOverwriteReplicaSecret != nil {
		a.with("secretsmanager:forceoverwritereplicasecret", boolStr(*in.ForceOverwriteReplicaSecret))
	}
	if err := s.authorizeNew(ctx, scope, arn, a); err != nil {
		return err
	}
	if len(in.Tags) > 0 {
		if err := s.authorizeNew(ctx, scope, arn, &access{action: "secretsmanager:TagResource", tags: requestTags(in.Tags)}); err != nil {
			return err
		}
	}
	if len(in.AddReplicaRegions) > 0 {
		if err := s.authorizeNew(ctx, scope, arn, &access{action: "secretsmanager:ReplicateSecretToRegions", extra: a.extra}); err != nil {
			return err
		}
	}
	return nil
}
