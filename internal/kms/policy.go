package kms

import (
	"context"
	"strconv"

	"github.com/keyfort/keyfort/internal/awserr"
	"github.com/keyfort/keyfort/internal/iam"
	"github.com/keyfort/keyfort/internal/kms/kmsapi"
	"github.com/keyfort/keyfort/internal/partition"
	"github.com/keyfort/keyfort/internal/storage"
)

// defaultPolicyName is the only key policy name KMS supports.
const defaultPolicyName = "default"

// maxPolicyBytes is KMS's limit on a key policy document (32 KiB).
const maxPolicyBytes = 32768

// defaultKeyPolicy is the policy KMS gives a key created without one: the
// account root may do everything, so IAM policies govern access. The layout
// (" : " separators, two-space indents) is AWS's.
func defaultKeyPolicy(account, region string) string {
	return `{
  "Version" : "2012-10-17",
  "Id" : "key-default-1",
  "Statement" : [ {
    "Sid" : "Enable IAM User Permissions",
    "Effect" : "Allow",
    "Principal" : {
      "AWS" : "` + partition.ARN(region, "iam::"+account+":root") + `"
    },
    "Action" : "kms:*",
    "Resource" : "*"
  } ]
}`
}

// managedKeyPolicy is the policy of an AWS managed key for service, e.g.
// "secretsmanager": usable through that service by principals of the
// account, readable by the account.
func managedKeyPolicy(account, region, service string) string {
	return `{
  "Version" : "2012-10-17",
  "Id" : "auto-` + service + `-1",
  "Statement" : [ {
    "Sid" : "Allow access through ` + service + ` for all principals in the account that are authorized to use ` + service + `",
    "Effect" : "Allow",
    "Principal" : {
      "AWS" : "*"
    },
    "Action" : [ "kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:CreateGrant", "kms:DescribeKey" ],
    "Resource" : "*",
    "Condition" : {
      "StringEquals" : {
        "kms:CallerAccount" : "` + account + `",
        "kms:ViaService" : "` + service + `.` + region + `.amazonaws.com"
      }
    }
  }, {
    "Sid" : "Allow direct access to key metadata to the account",
    "Effect" : "Allow",
    "Principal" : {
      "AWS" : "` + partition.ARN(region, "iam::"+account+":root") + `"
    },
    "Action" : [ "kms:Describe*", "kms:Get*", "kms:List*", "kms:RevokeGrant" ],
    "Resource" : "*"
  } ]
}`
}

// keyPolicyOptions is the grammar of a key policy: a resource policy whose
// statements name principals and KMS actions.
var keyPolicyOptions = iam.ParseOptions{Kind: iam.ResourcePolicy, Service: "kms", ResourceType: "AWS::KMS::Key"}

func errMalformed(msg string) error {
	return awserr.New(codeMalformedPolicy, msg)
}

// parseKeyPolicy checks a key policy document as KMS does before storing
// it: at most 32 KiB, one JSON object, and the policy grammar (an Effect,
// a Principal and an Action in each statement, ...). A problem is
// MalformedPolicyDocumentException naming the first one.
func parseKeyPolicy(doc string) (*iam.Policy, error) {
	if len(doc) > maxPolicyBytes {
		return nil, awserr.Newf(codeLimitExceeded, "The key policy must not exceed %d bytes.", maxPolicyBytes)
	}
	p, findings, err := iam.Parse(doc, keyPolicyOptions)
	if err != nil {
		return nil, errMalformed("The new key policy contains invalid JSON.")
	}
	if len(findings) > 0 {
		return nil, errMalformed(findings[0].Message)
	}
	return p, nil
}

// errLockout is KMS's answer when a new key policy would not let the
// caller change it again.
func errLockout() error {
	return errMalformed("The new key policy will not allow you to update the key policy in the future.")
}

// checkLockout is the policy lockout safety check of CreateKey and
// PutKeyPolicy: the new key policy p of k must let the caller (with its
// identity policies, where p lets the account delegate) call PutKeyPolicy
// on the key later.
func (s *Service) checkLockout(ctx context.Context, p *iam.Policy, k *key) error {
	c, via, err := callerOf(ctx)
	if err != nil {
		return err
	}
	a := act("kms:PutKeyPolicy")
	cond := &kmsContext{ctx: ctx, s: s, caller: c, via: via, now: s.now(), k: k, a: *a}
	res := iam.Authorize(iam.Authorization{
		Request:          &iam.Request{Action: a.action, Resource: k.arn, Principal: &c.Principal, Context: cond},
		Identity:         c.Policies,
		Resource:         p,
		ResourceAccount:  k.rec.Scope.Account,
		ResourceRequired: true,
	})
	if !res.Allowed() {
		return errLockout()
	}
	return nil
}

// effectivePolicy returns the key's policy document: the stored one, or the
// account's default key policy when none is stored.
func (k *key) effectivePolicy() string {
	if k.meta.Policy == "" {
		return defaultKeyPolicy(k.rec.Scope.Account, k.rec.Scope.Region)
	}
	return k.meta.Policy
}

func checkPolicyName(name *string) error {
	if name != nil && *name != defaultPolicyName {
		return awserr.New(codeNotFound, "No such policy exists")
	}
	return nil
}

// GetKeyPolicy returns the key policy ("default" is the only name).
func (s *Service) GetKeyPolicy(ctx context.Context, in *kmsapi.GetKeyPolicyInput) (*kmsapi.GetKeyPolicyOutput, error) {
	scope, _, err := scopeOf(ctx)
	if err != nil {
		return nil, err
	}
	k, err := s.lookupKey(ctx, scope, deref(in.KeyId), refKeyOnly, act(in.IAMAction()))
	if err != nil {
		return nil, err
	}
	if err := checkPolicyName(in.PolicyName); err != nil {
		return nil, err
	}
	return &kmsapi.GetKeyPolicyOutput{Policy: ptr(k.effectivePolicy()), PolicyName: ptr(defaultPolicyName)}, nil
}

// PutKeyPolicy validates and stores a key policy.
func (s *Service) PutKeyPolicy(ctx context.Context, in *kmsapi.PutKeyPolicyInput) (*kmsapi.PutKeyPolicyOutput, error) {
	a := act(in.IAMAction())
	a.extra = iam.MapContext{"kms:bypasspolicylockoutsafetycheck": {strconv.FormatBool(deref(in.BypassPolicyLockoutSafetyCheck))}}
	_, err := s.updateKey(ctx, a, in.KeyId, func(_ storage.Tx, k *key) error {
		if err := checkPolicyName(in.PolicyName); err != nil {
			return err
		}
		if k.meta.Manager == managerAWS {
			return awserr.Newf(awserr.CodeAccessDenied, "You cannot change the key policy of an AWS managed key: %s", k.arn)
		}
		p, err := parseKeyPolicy(deref(in.Policy))
		if err != nil {
			return err
		}
		if !deref(in.BypassPolicyLockoutSafetyCheck) {
			if err := s.checkLockout(ctx, p, k); err != nil {
				return err
			}
		}
		k.meta.Policy = deref(in.Policy)
		if k.meta.Policy == defaultKeyPolicy(k.rec.Scope.Account, k.rec.Scope.Region) {
			k.meta.Policy = "" // stored as "the default"
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &kmsapi.PutKeyPolicyOutput{}, nil
}

// ListKeyPolicies lists the key's policy names: always ["default"].
func (s *Service) ListKeyPolicies(ctx context.Context, in *kmsapi.ListKeyPoliciesInput) (*kmsapi.ListKeyPoliciesOutput, error) {
	scope, _, err := scopeOf(ctx)
	if err != nil {
		return nil, err
	}
	if _, err := s.lookupKey(ctx, scope, deref(in.KeyId), refKeyOnly, act(in.IAMAction())); err != nil {
		return nil, err
	}
	if in.Marker != nil {
		if _, err := s.marker.decode("policies", *in.Marker); err != nil {
			return nil, err
		}
		return &kmsapi.ListKeyPoliciesOutput{PolicyNames: []string{}, Truncated: ptr(false)}, nil
	}
	return &kmsapi.ListKeyPoliciesOutput{PolicyNames: []string{defaultPolicyName}, Truncated: ptr(false)}, nil
}
