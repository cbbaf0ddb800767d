package kms

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/keyfort/keyfort/internal/awserr"
	"github.com/keyfort/keyfort/internal/kms/kmsapi"
	"github.com/keyfort/keyfort/internal/storage"
)

// defaultPolicyName is the only key policy name KMS supports.
const defaultPolicyName = "default"

// maxPolicyBytes is KMS's limit on a key policy document (32 KiB).
const maxPolicyBytes = 32768

// defaultKeyPolicy is the policy KMS gives a key created without one: the
// account root may do everything, so IAM policies govern access. The layout
// (" : " separators, two-space indents) is AWS's.
func defaultKeyPolicy(account string) string {
	return `{
  "Version" : "2012-10-17",
  "Id" : "key-default-1",
  "Statement" : [ {
    "Sid" : "Enable IAM User Permissions",
    "Effect" : "Allow",
    "Principal" : {
      "AWS" : "arn:aws:iam::` + account + `:root"
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
      "AWS" : "arn:aws:iam::` + account + `:root"
    },
    "Action" : [ "kms:Describe*", "kms:Get*", "kms:List*", "kms:RevokeGrant" ],
    "Resource" : "*"
  } ]
}`
}

// policyStatement is the part of a statement the validator and the lockout
// check read. Evaluation is the iam package's job (a later issue).
type policyStatement struct {
	Sid       any             `json:"Sid"`
	Effect    string          `json:"Effect"`
	Principal json.RawMessage `json:"Principal"`
	NotPrin   json.RawMessage `json:"NotPrincipal"`
	Action    json.RawMessage `json:"Action"`
	NotAction json.RawMessage `json:"NotAction"`
	Resource  json.RawMessage `json:"Resource"`
	NotRes    json.RawMessage `json:"NotResource"`
	Condition json.RawMessage `json:"Condition"`
}

func errMalformed(msg string) error {
	return awserr.New(codeMalformedPolicy, msg)
}

// validatePolicy checks a key policy document as KMS does before storing it:
// well-formed JSON, a Statement with Effect, Principal and Action in each,
// and (unless bypass) the lockout safety check: the account root keeps the
// right to call PutKeyPolicy.
func validatePolicy(doc, account string, bypass bool) error {
	if len(doc) > maxPolicyBytes {
		return awserr.Newf(codeLimitExceeded, "The key policy must not exceed %d bytes.", maxPolicyBytes)
	}
	var top map[string]json.RawMessage
	dec := json.NewDecoder(strings.NewReader(doc))
	dec.UseNumber()
	if err := dec.Decode(&top); err != nil || top == nil {
		return errMalformed("The new key policy contains invalid JSON.")
	}
	if dec.More() {
		return errMalformed("The new key policy contains invalid JSON.")
	}
	if v, ok := top["Version"]; ok {
		var ver string
		if json.Unmarshal(v, &ver) != nil || (ver != "2012-10-17" && ver != "2008-10-17") {
			return errMalformed("The policy Version must be 2012-10-17 or 2008-10-17.")
		}
	}
	raw, ok := top["Statement"]
	if !ok {
		return errMalformed("The key policy must contain a Statement.")
	}
	var stmts []policyStatement
	if err := json.Unmarshal(raw, &stmts); err != nil {
		var one policyStatement
		if err := json.Unmarshal(raw, &one); err != nil {
			return errMalformed("The key policy Statement is malformed.")
		}
		stmts = []policyStatement{one}
	}
	if len(stmts) == 0 {
		return errMalformed("The key policy must contain at least one Statement.")
	}
	for i, st := range stmts {
		n := i + 1
		if st.Effect != "Allow" && st.Effect != "Deny" {
			return errMalformed(fmt.Sprintf("Statement %d: Effect must be Allow or Deny.", n))
		}
		if len(st.Principal) == 0 && len(st.NotPrin) == 0 {
			return errMalformed(fmt.Sprintf("Statement %d: a key policy statement must have a Principal.", n))
		}
		if len(st.Action) == 0 && len(st.NotAction) == 0 {
			return errMalformed(fmt.Sprintf("Statement %d: a statement must have an Action.", n))
		}
		if len(st.Principal) > 0 && !validPrincipal(st.Principal) {
			return errMalformed(fmt.Sprintf("Statement %d: the Principal is not valid.", n))
		}
		for _, a := range stringOrList(st.Action) {
			if a != "*" && !strings.HasPrefix(strings.ToLower(a), "kms:") {
				return errMalformed(fmt.Sprintf("Statement %d: the action %s is not a KMS action.", n, a))
			}
		}
	}
	if !bypass && !allowsRootPutKeyPolicy(stmts, account) {
		return errMalformed("The new key policy will not allow you to update the key policy in the future.")
	}
	return nil
}

func validPrincipal(raw json.RawMessage) bool {
	var star string
	if json.Unmarshal(raw, &star) == nil {
		return star == "*"
	}
	var m map[string]json.RawMessage
	if json.Unmarshal(raw, &m) != nil || len(m) == 0 {
		return false
	}
	for k, v := range m {
		switch k {
		case "AWS", "Service", "Federated", "CanonicalUser":
		default:
			return false
		}
		if len(stringOrList(v)) == 0 {
			return false
		}
	}
	return true
}

// stringOrList reads a policy element that is a string or a list of strings.
func stringOrList(raw json.RawMessage) []string {
	if len(raw) == 0 {
		return nil
	}
	var one string
	if json.Unmarshal(raw, &one) == nil {
		return []string{one}
	}
	var many []string
	if json.Unmarshal(raw, &many) == nil {
		return many
	}
	return nil
}

// allowsRootPutKeyPolicy is the lockout safety check: some unconditional
// Allow statement lets the account root (or everyone) call kms:PutKeyPolicy.
func allowsRootPutKeyPolicy(stmts []policyStatement, account string) bool {
	for _, st := range stmts {
		if st.Effect != "Allow" || len(st.Principal) == 0 || len(st.Condition) > 0 {
			continue
		}
		if !principalCoversRoot(st.Principal, account) {
			continue
		}
		for _, a := range stringOrList(st.Action) {
			if actionMatches(a, "kms:PutKeyPolicy") {
				return true
			}
		}
	}
	return false
}

func principalCoversRoot(raw json.RawMessage, account string) bool {
	var star string
	if json.Unmarshal(raw, &star) == nil {
		return star == "*"
	}
	var m map[string]json.RawMessage
	if json.Unmarshal(raw, &m) != nil {
		return false
	}
	for _, p := range stringOrList(m["AWS"]) {
		if p == "*" || p == account || p == "arn:aws:iam::"+account+":root" {
			return true
		}
	}
	return false
}

// actionMatches matches an IAM action pattern (with * and ?) case-insensitively.
func actionMatches(pattern, action string) bool {
	return wildcardMatch(strings.ToLower(pattern), strings.ToLower(action))
}

func wildcardMatch(p, s string) bool {
	// Iterative glob with backtracking on the last '*'.
	pi, si, star, mark := 0, 0, -1, 0
	for si < len(s) {
		switch {
		case pi < len(p) && (p[pi] == '?' || p[pi] == s[si]):
			pi++
			si++
		case pi < len(p) && p[pi] == '*':
			star, mark = pi, si
			pi++
		case star >= 0:
			pi = star + 1
			mark++
			si = mark
		default:
			return false
		}
	}
	for pi < len(p) && p[pi] == '*' {
		pi++
	}
	return pi == len(p)
}

// effectivePolicy returns the key's policy document: the stored one, or the
// account's default key policy when none is stored.
func (k *key) effectivePolicy() string {
	if k.meta.Policy == "" {
		return defaultKeyPolicy(k.rec.Scope.Account)
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
		return nil, s.internal(ctx, "GetKeyPolicy", err)
	}
	k, err := s.lookupKey(ctx, scope, deref(in.KeyId), refKeyOnly)
	if err != nil {
		return nil, s.internal(ctx, "GetKeyPolicy", err)
	}
	if err := checkPolicyName(in.PolicyName); err != nil {
		return nil, err
	}
	return &kmsapi.GetKeyPolicyOutput{Policy: ptr(k.effectivePolicy()), PolicyName: ptr(defaultPolicyName)}, nil
}

// PutKeyPolicy validates and stores a key policy.
func (s *Service) PutKeyPolicy(ctx context.Context, in *kmsapi.PutKeyPolicyInput) (*kmsapi.PutKeyPolicyOutput, error) {
	_, err := s.updateKey(ctx, "PutKeyPolicy", in.KeyId, func(_ storage.Tx, k *key) error {
		if err := checkPolicyName(in.PolicyName); err != nil {
			return err
		}
		if k.meta.Manager == managerAWS {
			return awserr.Newf(awserr.CodeAccessDenied, "You cannot change the key policy of an AWS managed key: %s", k.arn)
		}
		if err := validatePolicy(deref(in.Policy), k.rec.Scope.Account, deref(in.BypassPolicyLockoutSafetyCheck)); err != nil {
			return err
		}
		k.meta.Policy = deref(in.Policy)
		if k.meta.Policy == defaultKeyPolicy(k.rec.Scope.Account) {
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
		return nil, s.internal(ctx, "ListKeyPolicies", err)
	}
	if _, err := s.lookupKey(ctx, scope, deref(in.KeyId), refKeyOnly); err != nil {
		return nil, s.internal(ctx, "ListKeyPolicies", err)
	}
	if in.Marker != nil {
		if _, err := s.marker.decode("policies", *in.Marker); err != nil {
			return nil, err
		}
		return &kmsapi.ListKeyPoliciesOutput{PolicyNames: []string{}, Truncated: ptr(false)}, nil
	}
	return &kmsapi.ListKeyPoliciesOutput{PolicyNames: []string{defaultPolicyName}, Truncated: ptr(false)}, nil
}
