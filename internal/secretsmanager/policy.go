package secretsmanager

// This file holds what Secrets Manager adds to the policy grammar of
// internal/iam for resource policies: the actions a secret's policy may
// name, and the two semantic checks it runs (broad access, lock-out).

import (
	"strings"

	"github.com/keyfort/keyfort/internal/iam"
)

// Check names of ValidateResourcePolicy's two semantic checks; grammar
// findings carry IAM Access Analyzer's issue codes (iam.Check*).
const (
	checkBroadAccess = "BROAD_ACCESS"
	checkLockout     = "LOCKOUT"
)

// secretsManagerActions are the actions a secret's resource policy may name
// (without the "secretsmanager:" prefix), from the Secrets Manager service
// authorization reference.
var secretsManagerActions = []string{
	"BatchGetSecretValue", "CancelRotateSecret", "CreateSecret", "DeleteResourcePolicy",
	"DeleteSecret", "DescribeSecret", "GetRandomPassword", "GetResourcePolicy",
	"GetSecretValue", "ListSecretVersionIds", "ListSecrets", "PutResourcePolicy",
	"PutSecretValue", "RemoveRegionsFromReplication", "ReplicateSecretToRegions",
	"RestoreSecret", "RotateSecret", "StopReplicationToReplica", "TagResource",
	"UntagResource", "UpdateSecret", "UpdateSecretVersionStage", "ValidateResourcePolicy",
}

// resourcePolicyOptions is the grammar of a secret's resource policy.
var resourcePolicyOptions = iam.ParseOptions{
	Kind:         iam.ResourcePolicy,
	Service:      "secretsmanager",
	ResourceType: "AWS::SecretsManager::Secret",
	Actions:      secretsManagerActions,
}

// parsePolicy parses a resource policy document: a *iam.SyntaxError when
// text is not JSON, else the document and its grammar findings.
func parsePolicy(text string) (*iam.Policy, []iam.Finding, error) {
	return iam.Parse(text, resourcePolicyOptions)
}

// restrictingKeys are the global condition keys that, compared with fixed
// values, limit a statement with a wildcard principal to known accounts,
// organizations, resources or networks (lower case). Secrets Manager's
// guide names aws:SourceArn, aws:SourceVpc, aws:SourceVpce and
// aws:SourceAccount; the others restrict in the same way for Zelkova.
var restrictingKeys = map[string]bool{
	"aws:sourceaccount":     true,
	"aws:sourcearn":         true,
	"aws:sourceowner":       true,
	"aws:sourcevpc":         true,
	"aws:sourcevpce":        true,
	"aws:sourceorgid":       true,
	"aws:sourceorgpaths":    true,
	"aws:sourceip":          true,
	"aws:principalaccount":  true,
	"aws:principalarn":      true,
	"aws:principalorgid":    true,
	"aws:principalorgpaths": true,
	"aws:userid":            true,
}

// restricts reports whether c limits who can use a statement: a positive
// operator (no Not, no IfExists, no ForAllValues, which an absent key
// satisfies) on a restricting key, with fixed values.
func restricts(c *iam.Condition) bool {
	if !restrictingKeys[strings.ToLower(c.Key)] || len(c.Values) == 0 {
		return false
	}
	q, base, ifExists := splitOperator(c.Operator)
	if ifExists || q == "ForAllValues" {
		return false
	}
	like := false
	switch base {
	case "StringEquals", "StringEqualsIgnoreCase", "ArnEquals", "IpAddress":
	case "StringLike", "ArnLike":
		like = true
	default:
		return false
	}
	for _, v := range c.Values {
		if v == "" || v == "*" || (like && strings.ContainsAny(v, "*?")) {
			return false
		}
		if base == "IpAddress" && (strings.HasSuffix(v, "/0") || !strings.Contains(v, ".") && !strings.Contains(v, ":")) {
			return false
		}
	}
	return true
}

// public returns the index of the first statement that grants broad
// access: an Allow for a wildcard principal (or a NotPrincipal, which
// allows everyone else) without a condition that restricts it. It returns
// -1 when the policy is not public.
func publicStatement(d *iam.Policy) int {
	for i, st := range d.Statements {
		if st.Effect != iam.EffectAllow {
			continue
		}
		if !st.Principal.Wildcard() && st.NotPrincipal == nil {
			continue
		}
		restricted := false
		for i := range st.Conditions {
			if restricts(&st.Conditions[i]) {
				restricted = true
				break
			}
		}
		if !restricted {
			return i
		}
	}
	return -1
}

// lockout returns the index of the first statement that denies every
// principal, without condition, the right to change the policy
// (secretsmanager:PutResourcePolicy or DeleteResourcePolicy) on every
// resource; -1 if none does.
func lockoutStatement(d *iam.Policy) int {
	for i, st := range d.Statements {
		if st.Effect != iam.EffectDeny || !st.Principal.Wildcard() || len(st.Conditions) > 0 {
			continue
		}
		if !coversAll(st.Resource) || st.NotResource != nil {
			continue
		}
		if deniesPolicyChange(st.Action, st.NotAction) {
			return i
		}
	}
	return -1
}

func coversAll(resources []string) bool {
	for _, r := range resources {
		if r == "*" {
			return true
		}
	}
	return false
}

func deniesPolicyChange(action, notAction []string) bool {
	names := []string{"PutResourcePolicy", "DeleteResourcePolicy"}
	matches := func(list []string, name string) bool {
		for _, a := range list {
			if a == "*" {
				return true
			}
			svc, pat, ok := strings.Cut(a, ":")
			if ok && strings.EqualFold(svc, "secretsmanager") && iam.WildcardMatch(strings.ToLower(pat), strings.ToLower(name)) {
				return true
			}
		}
		return false
	}
	for _, n := range names {
		if action != nil && matches(action, n) {
			return true
		}
		if notAction != nil && !matches(notAction, n) {
			return true
		}
	}
	return false
}

// splitOperator splits a condition operator into its qualifier
// (ForAnyValue/ForAllValues or ""), base operator and IfExists suffix.
func splitOperator(op string) (qualifier, base string, ifExists bool) {
	base = op
	if q, rest, ok := strings.Cut(op, ":"); ok {
		qualifier, base = q, rest
	}
	if b, ok := strings.CutSuffix(base, "IfExists"); ok {
		base, ifExists = b, true
	}
	return qualifier, base, ifExists
}
