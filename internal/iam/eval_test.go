package iam

import (
	"strings"
	"testing"
)

const (
	acct  = "111122223333"
	other = "444455556666"
	keyA  = "arn:aws:kms:us-east-1:" + acct + ":key/1234abcd-12ab-34cd-56ef-1234567890ab"
)

var (
	root  = &Principal{ARN: "arn:aws:iam::" + acct + ":root", PrincipalARN: "arn:aws:iam::" + acct + ":root", Account: acct, Root: true}
	alice = &Principal{ARN: "arn:aws:iam::" + acct + ":user/alice", PrincipalARN: "arn:aws:iam::" + acct + ":user/alice", Account: acct, UserID: "AIDAALICEEXAMPLE0001"}
	bob   = &Principal{ARN: "arn:aws:sts::" + acct + ":assumed-role/Ops/bob", PrincipalARN: "arn:aws:iam::" + acct + ":role/Ops", Account: acct}
	carol = &Principal{ARN: "arn:aws:iam::" + other + ":user/carol", PrincipalARN: "arn:aws:iam::" + other + ":user/carol", Account: other}
)

func mustResource(t *testing.T, doc string) *Policy {
	t.Helper()
	p, f, err := Parse(doc, ParseOptions{Kind: ResourcePolicy})
	if err != nil || len(f) > 0 {
		t.Fatalf("parse %s: %v %v", doc, err, f)
	}
	return p
}

func mustIdentity(t *testing.T, doc string) *Policy {
	t.Helper()
	p, f, err := Parse(doc, ParseOptions{Kind: IdentityPolicy})
	if err != nil || len(f) > 0 {
		t.Fatalf("parse %s: %v %v", doc, err, f)
	}
	return p
}

// defaultKeyPolicy is AWS's default key policy (key-default-1).
const defaultKeyPolicy = `{"Version":"2012-10-17","Id":"key-default-1","Statement":[{"Sid":"Enable IAM User Permissions","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::` + acct + `:root"},"Action":"kms:*","Resource":"*"}]}`

// The key policy of AWS's developer guide example with a key administrator
// role and a key user role.
const adminUserKeyPolicy = `{
 "Version": "2012-10-17",
 "Statement": [
  {"Sid": "Allow access for Key Administrators", "Effect": "Allow",
   "Principal": {"AWS": "arn:aws:iam::` + acct + `:role/Ops"},
   "Action": ["kms:Create*","kms:Describe*","kms:Enable*","kms:List*","kms:Put*","kms:Update*","kms:Revoke*","kms:Disable*","kms:Get*","kms:Delete*","kms:TagResource","kms:UntagResource","kms:ScheduleKeyDeletion","kms:CancelKeyDeletion"],
   "Resource": "*"},
  {"Sid": "Allow use of the key", "Effect": "Allow",
   "Principal": {"AWS": "arn:aws:iam::` + acct + `:user/alice"},
   "Action": ["kms:Encrypt","kms:Decrypt","kms:ReEncrypt*","kms:GenerateDataKey*","kms:DescribeKey"],
   "Resource": "*"}
 ]}`

func TestAuthorizeKeyPolicies(t *testing.T) {
	allowAllKMS := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"kms:*","Resource":"*"}]}`
	denyDecrypt := `{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":"kms:Decrypt","Resource":"*"}]}`
	onlyKeyA := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["kms:Encrypt","kms:Decrypt"],"Resource":"` + keyA + `"}]}`
	tests := []struct {
		name     string
		caller   *Principal
		action   string
		keyPol   string
		identity []string
		want     Decision
		by       PolicyType
	}{
		{"root, default policy", root, "kms:Encrypt", defaultKeyPolicy, nil, Allow, 0},
		{"user without IAM policy, default policy", alice, "kms:Encrypt", defaultKeyPolicy, nil, ImplicitDeny, IdentityBased},
		{"user with IAM kms:*, default policy", alice, "kms:Encrypt", defaultKeyPolicy, []string{allowAllKMS}, Allow, 0},
		{"user with IAM allow on the key ARN", alice, "kms:Decrypt", defaultKeyPolicy, []string{onlyKeyA}, Allow, 0},
		{"user with IAM allow on the key ARN, other action", alice, "kms:DescribeKey", defaultKeyPolicy, []string{onlyKeyA}, ImplicitDeny, IdentityBased},
		{"IAM explicit deny wins over allow", alice, "kms:Decrypt", defaultKeyPolicy, []string{allowAllKMS, denyDecrypt}, ExplicitDeny, IdentityBased},
		{"key user named in key policy, no IAM", alice, "kms:Decrypt", adminUserKeyPolicy, nil, Allow, 0},
		{"key user may not administer", alice, "kms:PutKeyPolicy", adminUserKeyPolicy, []string{allowAllKMS}, ImplicitDeny, ResourceBased},
		{"root not in key policy is denied", root, "kms:Encrypt", adminUserKeyPolicy, nil, ImplicitDeny, ResourceBased},
		{"role session matches role ARN", bob, "kms:ScheduleKeyDeletion", adminUserKeyPolicy, nil, Allow, 0},
		{"role session may not use the key", bob, "kms:Encrypt", adminUserKeyPolicy, nil, ImplicitDeny, ResourceBased},
		{"IAM allow without key policy delegation", bob, "kms:Encrypt", adminUserKeyPolicy, []string{allowAllKMS}, ImplicitDeny, ResourceBased},
		{"cross-account without key policy", carol, "kms:Encrypt", defaultKeyPolicy, []string{allowAllKMS}, ImplicitDeny, ResourceBased},
		{"cross-account, key policy names the account, IAM allows", carol, "kms:Encrypt",
			`{"Version":"2012-10-17","Statement":[` + `{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::` + other + `:root"},"Action":"kms:Encrypt","Resource":"*"}]}`,
			[]string{allowAllKMS}, Allow, 0},
		{"cross-account, key policy names the account, no IAM", carol, "kms:Encrypt",
			`{"Version":"2012-10-17","Statement":[` + `{"Effect":"Allow","Principal":{"AWS":"` + other + `"},"Action":"kms:Encrypt","Resource":"*"}]}`,
			nil, ImplicitDeny, IdentityBased},
		{"cross-account, key policy names the user, still needs IAM", carol, "kms:Encrypt",
			`{"Version":"2012-10-17","Statement":[` + `{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::` + other + `:user/carol"},"Action":"kms:Encrypt","Resource":"*"}]}`,
			nil, ImplicitDeny, IdentityBased},
		{"key policy deny for the account applies to root", root, "kms:ScheduleKeyDeletion",
			`{"Version":"2012-10-17","Statement":[` + `{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::` + acct + `:root"},"Action":"kms:*","Resource":"*"},{"Effect":"Deny","Principal":{"AWS":"` + acct + `"},"Action":"kms:ScheduleKeyDeletion","Resource":"*"}]}`,
			nil, ExplicitDeny, ResourceBased},
		{"NotPrincipal deny exempts the named user", alice, "kms:Decrypt",
			`{"Version":"2012-10-17","Statement":[` + `{"Effect":"Allow","Principal":"*","Action":"kms:*","Resource":"*"},{"Effect":"Deny","NotPrincipal":{"AWS":"arn:aws:iam::` + acct + `:user/alice"},"Action":"kms:Decrypt","Resource":"*"}]}`,
			nil, Allow, 0},
		{"NotPrincipal deny applies to others", bob, "kms:Decrypt",
			`{"Version":"2012-10-17","Statement":[` + `{"Effect":"Allow","Principal":"*","Action":"kms:*","Resource":"*"},{"Effect":"Deny","NotPrincipal":{"AWS":"arn:aws:iam::` + acct + `:user/alice"},"Action":"kms:Decrypt","Resource":"*"}]}`,
			nil, ExplicitDeny, ResourceBased},
		{"NotAction allow", alice, "kms:Encrypt",
			`{"Version":"2012-10-17","Statement":[` + `{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::` + acct + `:user/alice"},"NotAction":["kms:Put*","kms:Schedule*"],"Resource":"*"}]}`,
			nil, Allow, 0},
		{"NotAction excludes", alice, "kms:PutKeyPolicy",
			`{"Version":"2012-10-17","Statement":[` + `{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::` + acct + `:user/alice"},"NotAction":["kms:Put*","kms:Schedule*"],"Resource":"*"}]}`,
			nil, ImplicitDeny, ResourceBased},
		{"actions match case-insensitively", alice, "kms:Decrypt",
			`{"Version":"2012-10-17","Statement":[` + `{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::` + acct + `:user/alice"},"Action":"KMS:decrypt","Resource":"*"}]}`,
			nil, Allow, 0},
		{"user id as principal", alice, "kms:Decrypt",
			`{"Version":"2012-10-17","Statement":[` + `{"Effect":"Allow","Principal":{"AWS":"AIDAALICEEXAMPLE0001"},"Action":"kms:Decrypt","Resource":"*"}]}`,
			nil, Allow, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var ids []*Policy
			for _, d := range tc.identity {
				ids = append(ids, mustIdentity(t, d))
			}
			got := Authorize(Authorization{
				Request:          &Request{Action: tc.action, Resource: keyA, Principal: tc.caller},
				Identity:         ids,
				Resource:         mustResource(t, tc.keyPol),
				ResourceAccount:  acct,
				ResourceRequired: true,
			})
			if got.Decision != tc.want || (tc.want != Allow && got.By != tc.by) {
				t.Fatalf("got %v by %v, want %v by %v", got.Decision, got.By, tc.want, tc.by)
			}
		})
	}
}

func TestAuthorizeSecretPolicies(t *testing.T) {
	secret := "arn:aws:secretsmanager:us-east-1:" + acct + ":secret:db-AbCdEf"
	allowAlice := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::` + acct + `:user/alice"},"Action":"secretsmanager:GetSecretValue","Resource":"*"}]}`
	allowCarol := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::` + other + `:user/carol"},"Action":"secretsmanager:GetSecretValue","Resource":"*"}]}`
	denyAll := `{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Principal":"*","Action":"secretsmanager:*","Resource":"*"}]}`
	idAllow := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"secretsmanager:GetSecretValue","Resource":"arn:aws:secretsmanager:*:*:secret:db-*"}]}`
	tests := []struct {
		name     string
		caller   *Principal
		resPol   string
		identity []string
		want     Decision
		by       PolicyType
	}{
		{"root, no policies", root, "", nil, Allow, 0},
		{"user, no policies", alice, "", nil, ImplicitDeny, IdentityBased},
		{"resource policy alone allows in the account", alice, allowAlice, nil, Allow, 0},
		{"identity policy alone allows", alice, "", []string{idAllow}, Allow, 0},
		{"resource deny wins over identity allow", alice, denyAll, []string{idAllow}, ExplicitDeny, ResourceBased},
		{"resource deny applies to root", root, denyAll, nil, ExplicitDeny, ResourceBased},
		{"cross-account needs the resource policy", carol, "", []string{idAllow}, ImplicitDeny, ResourceBased},
		{"cross-account needs the identity policy", carol, allowCarol, nil, ImplicitDeny, IdentityBased},
		{"cross-account with both", carol, allowCarol, []string{idAllow}, Allow, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var ids []*Policy
			for _, d := range tc.identity {
				ids = append(ids, mustIdentity(t, d))
			}
			var res *Policy
			if tc.resPol != "" {
				res = mustResource(t, tc.resPol)
			}
			got := Authorize(Authorization{
				Request:         &Request{Action: "secretsmanager:GetSecretValue", Resource: secret, Principal: tc.caller},
				Identity:        ids,
				Resource:        res,
				ResourceAccount: acct,
			})
			if got.Decision != tc.want || (tc.want != Allow && got.By != tc.by) {
				t.Fatalf("got %v by %v, want %v by %v", got.Decision, got.By, tc.want, tc.by)
			}
		})
	}
}

func TestAuthorizeWithoutResourceAndGrants(t *testing.T) {
	createKey := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"kms:CreateKey","Resource":"*"}]}`
	onKeysOnly := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"kms:CreateKey","Resource":"arn:aws:kms:*:*:key/*"}]}`
	r := func(p *Principal) *Request { return &Request{Action: "kms:CreateKey", Resource: "*", Principal: p} }
	if got := Authorize(Authorization{Request: r(root)}); !got.Allowed() {
		t.Fatalf("root CreateKey: %v", got.Decision)
	}
	if got := Authorize(Authorization{Request: r(alice)}); got.Decision != ImplicitDeny || got.By != IdentityBased {
		t.Fatalf("alice without policy: %v", got)
	}
	if got := Authorize(Authorization{Request: r(alice), Identity: []*Policy{mustIdentity(t, createKey)}}); !got.Allowed() {
		t.Fatalf("alice with policy: %v", got.Decision)
	}
	if got := Authorize(Authorization{Request: r(alice), Identity: []*Policy{mustIdentity(t, onKeysOnly)}}); got.Allowed() {
		t.Fatal("a Resource ARN pattern must not match an action without a resource")
	}

	// A grant allows without the key policy, but not against a deny.
	deny := `{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":"kms:Decrypt","Resource":"*"}]}`
	req := &Request{Action: "kms:Decrypt", Resource: keyA, Principal: bob}
	if got := Authorize(Authorization{Request: req, Resource: mustResource(t, adminUserKeyPolicy), ResourceAccount: acct, ResourceRequired: true, Granted: true}); !got.Allowed() {
		t.Fatalf("grant: %v", got.Decision)
	}
	if got := Authorize(Authorization{Request: req, Identity: []*Policy{mustIdentity(t, deny)}, Resource: mustResource(t, adminUserKeyPolicy), ResourceAccount: acct, ResourceRequired: true, Granted: true}); got.Decision != ExplicitDeny {
		t.Fatalf("grant against deny: %v", got.Decision)
	}
}

func TestDeniedMessage(t *testing.T) {
	tests := []struct {
		r        Result
		resource string
		want     string
	}{
		{Result{Decision: ImplicitDeny, By: ResourceBased}, keyA,
			"User: arn:aws:iam::111122223333:user/alice is not authorized to perform: kms:Decrypt on resource: " + keyA + " because no resource-based policy allows the kms:Decrypt action"},
		{Result{Decision: ImplicitDeny, By: IdentityBased}, keyA,
			"User: arn:aws:iam::111122223333:user/alice is not authorized to perform: kms:Decrypt on resource: " + keyA + " because no identity-based policy allows the kms:Decrypt action"},
		{Result{Decision: ExplicitDeny, By: ResourceBased}, keyA,
			"User: arn:aws:iam::111122223333:user/alice is not authorized to perform: kms:Decrypt on resource: " + keyA + " with an explicit deny in a resource-based policy"},
		{Result{Decision: ExplicitDeny, By: IdentityBased}, "",
			"User: arn:aws:iam::111122223333:user/alice is not authorized to perform: kms:Decrypt with an explicit deny in an identity-based policy"},
	}
	for _, tc := range tests {
		if got := tc.r.DeniedMessage(alice.ARN, "kms:Decrypt", tc.resource); got != tc.want {
			t.Errorf("got  %q\nwant %q", got, tc.want)
		}
	}
}

// ctx is a test condition context.
func ctx(kv ...string) MapContext {
	m := MapContext{}
	for i := 0; i+1 < len(kv); i += 2 {
		k := strings.ToLower(kv[i])
		m[k] = append(m[k], kv[i+1])
	}
	return m
}

func TestConditionOperators(t *testing.T) {
	tests := []struct {
		cond string // the Condition element
		ctx  MapContext
		want bool
	}{
		// String operators.
		{`{"StringEquals":{"aws:username":"alice"}}`, ctx("aws:username", "alice"), true},
		{`{"StringEquals":{"aws:username":"alice"}}`, ctx("aws:username", "Alice"), false},
		{`{"StringEquals":{"AWS:UserName":["bob","alice"]}}`, ctx("aws:username", "alice"), true},
		{`{"StringEquals":{"aws:username":"alice"}}`, ctx(), false},
		{`{"StringNotEquals":{"aws:username":"alice"}}`, ctx(), true},
		{`{"StringNotEquals":{"aws:username":["alice","bob"]}}`, ctx("aws:username", "bob"), false},
		{`{"StringNotEquals":{"aws:username":["alice","bob"]}}`, ctx("aws:username", "carol"), true},
		{`{"StringEqualsIgnoreCase":{"aws:username":"ALICE"}}`, ctx("aws:username", "alice"), true},
		{`{"StringNotEqualsIgnoreCase":{"aws:username":"ALICE"}}`, ctx("aws:username", "alice"), false},
		{`{"StringLike":{"aws:username":"al*"}}`, ctx("aws:username", "alice"), true},
		{`{"StringLike":{"aws:username":"a?ice"}}`, ctx("aws:username", "alice"), true},
		{`{"StringLike":{"aws:username":"b*"}}`, ctx("aws:username", "alice"), false},
		{`{"StringNotLike":{"aws:username":"b*"}}`, ctx("aws:username", "alice"), true},
		{`{"StringEquals":{"aws:username":"al*"}}`, ctx("aws:username", "alice"), false},
		{`{"StringEqualsIfExists":{"aws:username":"alice"}}`, ctx(), true},
		{`{"StringEqualsIfExists":{"aws:username":"alice"}}`, ctx("aws:username", "bob"), false},
		// Numeric.
		{`{"NumericLessThan":{"s:n":10}}`, ctx("s:n", "9"), true},
		{`{"NumericLessThan":{"s:n":"10"}}`, ctx("s:n", "10"), false},
		{`{"NumericLessThanEquals":{"s:n":10}}`, ctx("s:n", "10"), true},
		{`{"NumericGreaterThan":{"s:n":10}}`, ctx("s:n", "10.5"), true},
		{`{"NumericGreaterThanEquals":{"s:n":10}}`, ctx("s:n", "9"), false},
		{`{"NumericEquals":{"s:n":7}}`, ctx("s:n", "7"), true},
		{`{"NumericNotEquals":{"s:n":7}}`, ctx("s:n", "7"), false},
		{`{"NumericEquals":{"s:n":7}}`, ctx("s:n", "x"), false},
		// Date.
		{`{"DateLessThan":{"aws:CurrentTime":"2027-01-01T00:00:00Z"}}`, ctx("aws:currenttime", "2026-12-05T10:00:00Z"), true},
		{`{"DateGreaterThan":{"aws:CurrentTime":"2027-01-01"}}`, ctx("aws:currenttime", "2026-12-05T10:00:00Z"), false},
		{`{"DateGreaterThanEquals":{"aws:CurrentTime":"1764928800"}}`, ctx("aws:currenttime", "2025-12-05T10:00:00Z"), true},
		{`{"DateEquals":{"aws:CurrentTime":"2026-12-05T10:00:00+00:00"}}`, ctx("aws:currenttime", "2026-12-05T10:00:00Z"), true},
		{`{"DateNotEquals":{"aws:CurrentTime":"2026-12-05T10:00:00Z"}}`, ctx("aws:currenttime", "2026-12-05T10:00:00Z"), false},
		// Bool.
		{`{"Bool":{"aws:SecureTransport":"true"}}`, ctx("aws:securetransport", "true"), true},
		{`{"Bool":{"aws:SecureTransport":true}}`, ctx("aws:securetransport", "false"), false},
		{`{"Bool":{"aws:SecureTransport":false}}`, ctx("aws:securetransport", "false"), true},
		{`{"Bool":{"aws:SecureTransport":false}}`, ctx(), false},
		{`{"BoolIfExists":{"aws:MultiFactorAuthPresent":false}}`, ctx(), true},
		// Binary.
		{`{"BinaryEquals":{"s:b":"QmluYXJ5"}}`, ctx("s:b", "QmluYXJ5"), true},
		{`{"BinaryEquals":{"s:b":"QmluYXJ5"}}`, ctx("s:b", "QmluYXJ6"), false},
		// IP.
		{`{"IpAddress":{"aws:SourceIp":"203.0.113.0/24"}}`, ctx("aws:sourceip", "203.0.113.9"), true},
		{`{"IpAddress":{"aws:SourceIp":["10.0.0.0/8","203.0.113.0/24"]}}`, ctx("aws:sourceip", "198.51.100.1"), false},
		{`{"IpAddress":{"aws:SourceIp":"127.0.0.1"}}`, ctx("aws:sourceip", "127.0.0.1"), true},
		{`{"IpAddress":{"aws:SourceIp":"2001:db8::/32"}}`, ctx("aws:sourceip", "2001:db8::1"), true},
		{`{"NotIpAddress":{"aws:SourceIp":"203.0.113.0/24"}}`, ctx("aws:sourceip", "198.51.100.1"), true},
		{`{"NotIpAddress":{"aws:SourceIp":"203.0.113.0/24"}}`, ctx("aws:sourceip", "203.0.113.1"), false},
		// ARN.
		{`{"ArnLike":{"aws:PrincipalArn":"arn:aws:iam::*:user/al*"}}`, ctx("aws:principalarn", "arn:aws:iam::111122223333:user/alice"), true},
		{`{"ArnEquals":{"aws:PrincipalArn":"arn:aws:iam::111122223333:user/alice"}}`, ctx("aws:principalarn", "arn:aws:iam::111122223333:user/alice"), true},
		{`{"ArnLike":{"aws:PrincipalArn":"arn:aws:iam::*:role/*"}}`, ctx("aws:principalarn", "arn:aws:iam::111122223333:user/alice"), false},
		{`{"ArnLike":{"aws:PrincipalArn":"arn:aws:iam::111122223333:*"}}`, ctx("aws:principalarn", "arn:aws:iam::111122223333:user/alice"), true},
		{`{"ArnNotLike":{"aws:PrincipalArn":"arn:aws:iam::*:role/*"}}`, ctx("aws:principalarn", "arn:aws:iam::111122223333:user/alice"), true},
		{`{"ArnNotEquals":{"aws:PrincipalArn":"arn:aws:iam::111122223333:user/alice"}}`, ctx(), true},
		// The * of an ArnLike component does not cross a colon.
		{`{"ArnLike":{"aws:SourceArn":"arn:aws:s3:::bucket*"}}`, ctx("aws:sourcearn", "arn:aws:s3:::bucket:extra"), true},
		{`{"ArnLike":{"aws:SourceArn":"arn:aws:*:us-east-1:*"}}`, ctx("aws:sourcearn", "arn:aws:kms:eu-west-1:1:key/x"), false},
		// Null.
		{`{"Null":{"aws:ResourceTag/team":"true"}}`, ctx(), true},
		{`{"Null":{"aws:ResourceTag/team":"true"}}`, ctx("aws:resourcetag/team", "blue"), false},
		{`{"Null":{"aws:ResourceTag/team":"false"}}`, ctx("aws:resourcetag/team", "blue"), true},
		{`{"Null":{"aws:TagKeys":"true"}}`, MapContext{"aws:tagkeys": {}}, true},
		// Multivalued keys and set operators.
		{`{"ForAllValues:StringEquals":{"aws:TagKeys":["team","env"]}}`, ctx("aws:tagkeys", "team", "aws:tagkeys", "env"), true},
		{`{"ForAllValues:StringEquals":{"aws:TagKeys":["team","env"]}}`, ctx("aws:tagkeys", "team", "aws:tagkeys", "owner"), false},
		{`{"ForAllValues:StringEquals":{"aws:TagKeys":["team"]}}`, ctx(), true},
		{`{"ForAnyValue:StringEquals":{"aws:TagKeys":["team"]}}`, ctx(), false},
		{`{"ForAnyValue:StringEquals":{"aws:TagKeys":["team"]}}`, ctx("aws:tagkeys", "owner", "aws:tagkeys", "team"), true},
		{`{"ForAnyValue:StringLike":{"aws:TagKeys":["t*"]}}`, ctx("aws:tagkeys", "owner"), false},
		{`{"ForAllValues:StringNotEquals":{"aws:TagKeys":["secret"]}}`, ctx("aws:tagkeys", "team", "aws:tagkeys", "env"), true},
		{`{"ForAllValues:StringNotEquals":{"aws:TagKeys":["secret"]}}`, ctx("aws:tagkeys", "team", "aws:tagkeys", "secret"), false},
		{`{"ForAnyValue:StringNotEquals":{"aws:TagKeys":["secret"]}}`, ctx("aws:tagkeys", "secret"), false},
		// Several keys and operators are all required.
		{`{"StringEquals":{"aws:username":"alice","aws:PrincipalAccount":"111122223333"}}`, ctx("aws:username", "alice", "aws:principalaccount", "111122223333"), true},
		{`{"StringEquals":{"aws:username":"alice"},"Bool":{"aws:SecureTransport":"true"}}`, ctx("aws:username", "alice", "aws:securetransport", "false"), false},
		// Policy variables.
		{`{"StringEquals":{"aws:ResourceTag/owner":"${aws:username}"}}`, ctx("aws:resourcetag/owner", "alice", "aws:username", "alice"), true},
		{`{"StringEquals":{"aws:ResourceTag/owner":"${aws:username}"}}`, ctx("aws:resourcetag/owner", "alice", "aws:username", "bob"), false},
		{`{"StringEquals":{"aws:ResourceTag/owner":"${aws:username}"}}`, ctx("aws:resourcetag/owner", "alice"), false},
		{`{"StringEquals":{"aws:ResourceTag/owner":"${aws:username, 'nobody'}"}}`, ctx("aws:resourcetag/owner", "nobody"), true},
		{`{"StringEquals":{"aws:ResourceTag/team":"${aws:PrincipalTag/team}"}}`, ctx("aws:resourcetag/team", "blue", "aws:principaltag/team", "blue"), true},
		{`{"StringLike":{"s:k":"${aws:username}-*"}}`, ctx("s:k", "alice-1", "aws:username", "alice"), true},
		// A variable's value is literal: a "*" in it matches only "*".
		{`{"StringLike":{"s:k":"${aws:username}"}}`, ctx("s:k", "alice", "aws:username", "*"), false},
		{`{"StringEquals":{"s:k":"${*}"}}`, ctx("s:k", "*"), true},
	}
	for _, tc := range tests {
		doc := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*","Condition":` + tc.cond + `}]}`
		p := mustIdentity(t, doc)
		m := p.Evaluate(&Request{Action: "kms:Encrypt", Resource: "*", Principal: alice, Context: tc.ctx}, IdentityPolicy)
		if got := m.Allow != nil; got != tc.want {
			t.Errorf("%s with %v: got %v, want %v", tc.cond, tc.ctx, got, tc.want)
		}
	}
}

func TestPolicyVariablesOnlyIn2012(t *testing.T) {
	doc := `{"Version":"2008-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*","Condition":{"StringEquals":{"s:k":"${aws:username}"}}}]}`
	p := mustIdentity(t, doc)
	c := ctx("s:k", "${aws:username}", "aws:username", "alice")
	if m := p.Evaluate(&Request{Action: "a:b", Resource: "*", Principal: alice, Context: c}, IdentityPolicy); m.Allow == nil {
		t.Fatal("a 2008-10-17 policy takes ${...} literally")
	}
}

func TestResourceMatching(t *testing.T) {
	tests := []struct {
		pattern, resource string
		want              bool
	}{
		{"*", keyA, true},
		{"*", "*", true},
		{"arn:aws:kms:us-east-1:111122223333:key/*", keyA, true},
		{"arn:aws:kms:*:111122223333:key/*", keyA, true},
		{"arn:aws:kms:*:444455556666:key/*", keyA, false},
		{"arn:aws:kms:us-east-1:111122223333:alias/*", keyA, false},
		{"arn:aws:kms:us-east-1:111122223333:key/*", "*", false},
		{keyA, keyA, true},
		{"arn:aws:secretsmanager:us-east-1:111122223333:secret:${aws:username}/*", "arn:aws:secretsmanager:us-east-1:111122223333:secret:alice/db-AbCdEf", true},
		{"arn:aws:secretsmanager:us-east-1:111122223333:secret:${aws:username}/*", "arn:aws:secretsmanager:us-east-1:111122223333:secret:bob/db-AbCdEf", false},
	}
	for _, tc := range tests {
		doc := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"` + tc.pattern + `"}]}`
		p := mustIdentity(t, doc)
		m := p.Evaluate(&Request{Action: "kms:Encrypt", Resource: tc.resource, Principal: alice, Context: ctx("aws:username", "alice")}, IdentityPolicy)
		if got := m.Allow != nil; got != tc.want {
			t.Errorf("Resource %s vs %s: got %v, want %v", tc.pattern, tc.resource, got, tc.want)
		}
		// NotResource is the complement.
		doc = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","NotResource":"` + tc.pattern + `"}]}`
		p = mustIdentity(t, doc)
		m = p.Evaluate(&Request{Action: "kms:Encrypt", Resource: tc.resource, Principal: alice, Context: ctx("aws:username", "alice")}, IdentityPolicy)
		if got := m.Allow != nil; got == tc.want {
			t.Errorf("NotResource %s vs %s: got %v, want %v", tc.pattern, tc.resource, got, !tc.want)
		}
	}
}

func TestWildcardMatch(t *testing.T) {
	tests := []struct {
		p, s string
		want bool
	}{
		{"", "", true}, {"*", "", true}, {"*", "abc", true}, {"a*", "abc", true},
		{"*c", "abc", true}, {"a?c", "abc", true}, {"a?c", "ac", false}, {"abc", "abd", false},
		{"a*b*c", "aXbYc", true}, {"a*b*c", "aXbY", false}, {"**", "x", true}, {"?", "", false},
		{"getsecret*", "getsecretvalue", true},
	}
	for _, tc := range tests {
		if got := WildcardMatch(tc.p, tc.s); got != tc.want {
			t.Errorf("WildcardMatch(%q, %q) = %v", tc.p, tc.s, got)
		}
		p, _ := compilePattern(nil, false, tc.p)
		if got := p.match(tc.s, false); got != tc.want {
			t.Errorf("pattern(%q).match(%q) = %v", tc.p, tc.s, got)
		}
	}
}

func TestParseKinds(t *testing.T) {
	withPrincipal := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"kms:*","Resource":"*"}]}`
	if _, f, _ := Parse(withPrincipal, ParseOptions{Kind: IdentityPolicy}); len(f) != 1 || f[0].Check != CheckPolicyElement {
		t.Fatalf("identity policy with Principal: %v", f)
	}
	noPrincipal := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"kms:*","Resource":"*"}]}`
	if _, f, _ := Parse(noPrincipal, ParseOptions{Kind: ResourcePolicy}); len(f) != 1 || f[0].Check != CheckMissingPrincipal {
		t.Fatalf("resource policy without Principal: %v", f)
	}
	other := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"*"}]}`
	if _, f, _ := Parse(other, ParseOptions{Kind: ResourcePolicy, Service: "kms", ResourceType: "AWS::KMS::Key"}); len(f) != 1 || f[0].Check != CheckUnsupportedAction {
		t.Fatalf("other service's action: %v", f)
	}
	if _, f, _ := Parse(other, ParseOptions{Kind: ResourcePolicy}); len(f) != 0 {
		t.Fatalf("any service's action without Service: %v", f)
	}
	for _, op := range []string{"ForAnyValue:Null", "NullIfExists", "StringEqualz", "Sometimes:StringEquals", "stringequals"} {
		doc := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*","Condition":{"` + op + `":{"a:b":"c"}}}]}`
		if _, f, _ := Parse(doc, ParseOptions{Kind: IdentityPolicy}); len(f) != 1 || f[0].Check != CheckConditionOperator {
			t.Errorf("operator %s: %v", op, f)
		}
	}
	if _, _, err := Parse(`{"Statement":`, ParseOptions{}); err == nil {
		t.Fatal("truncated JSON parsed")
	}
}

// FuzzParse checks that no document makes the parser or the evaluator
// panic or hang, and that a valid policy evaluates.
func FuzzParse(f *testing.F) {
	f.Add(defaultKeyPolicy)
	f.Add(adminUserKeyPolicy)
	f.Add(`{"Version":"2012-10-17","Statement":{"Effect":"Deny","NotPrincipal":{"AWS":["111122223333"]},"NotAction":"kms:Get*","NotResource":"arn:aws:kms:*:*:key/${aws:username}","Condition":{"ForAllValues:StringLikeIfExists":{"aws:TagKeys":["a*","${aws:PrincipalTag/x, 'y'}"]},"Null":{"k:v":true}}}}`)
	f.Add(`[]`)
	f.Fuzz(func(t *testing.T, doc string) {
		for _, kind := range []Kind{ResourcePolicy, IdentityPolicy} {
			p, _, err := Parse(doc, ParseOptions{Kind: kind})
			if err != nil {
				return
			}
			c := ctx("aws:username", "alice", "aws:tagkeys", "a", "aws:tagkeys", "b", "k:v", "1", "aws:principaltag/x", "*")
			for _, who := range []*Principal{root, alice, carol} {
				Authorize(Authorization{
					Request:          &Request{Action: "kms:GetKeyPolicy", Resource: keyA, Principal: who, Context: c},
					Identity:         []*Policy{p},
					Resource:         p,
					ResourceAccount:  acct,
					ResourceRequired: kind == ResourcePolicy,
				})
			}
		}
	})
}

// BenchmarkAuthorizeDefaultKeyPolicy is the hot path of a KMS request from
// the account root under the default key policy.
func BenchmarkAuthorizeDefaultKeyPolicy(b *testing.B) {
	p := MustParse(defaultKeyPolicy, ParseOptions{Kind: ResourcePolicy})
	req := &Request{Action: "kms:Encrypt", Resource: keyA, Principal: root}
	b.ReportAllocs()
	for b.Loop() {
		if !Authorize(Authorization{Request: req, Resource: p, ResourceAccount: acct, ResourceRequired: true}).Allowed() {
			b.Fatal("denied")
		}
	}
}

// BenchmarkAuthorizeABAC is a user whose identity policy allows on a
// resource tag that must equal a principal tag (a condition and a policy
// variable).
func BenchmarkAuthorizeABAC(b *testing.B) {
	p := MustParse(defaultKeyPolicy, ParseOptions{Kind: ResourcePolicy})
	id := MustParse(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["kms:Encrypt","kms:Decrypt"],"Resource":"*","Condition":{"StringEquals":{"aws:ResourceTag/team":"${aws:PrincipalTag/team}"}}}]}`, ParseOptions{Kind: IdentityPolicy})
	req := &Request{Action: "kms:Encrypt", Resource: keyA, Principal: alice, Context: MapContext{"aws:resourcetag/team": {"blue"}, "aws:principaltag/team": {"blue"}}}
	b.ReportAllocs()
	for b.Loop() {
		if !Authorize(Authorization{Request: req, Identity: []*Policy{id}, Resource: p, ResourceAccount: acct, ResourceRequired: true}).Allowed() {
			b.Fatal("denied")
		}
	}
}

func TestRootAccount(t *testing.T) {
	for arn, want := range map[string]string{
		"arn:aws:iam::111122223333:root":        "111122223333",
		"arn:aws-cn:iam::111122223333:root":     "111122223333",
		"arn:aws-us-gov:iam::111122223333:root": "111122223333",
		"arn:aws:iam::111122223333:user/root":   "",
		"arn:aws-:iam::111122223333:root":       "",
		"arn:awscn:iam::111122223333:root":      "",
		"arn:aws-CN:iam::111122223333:root":     "",
		"arn:aws:sts::111122223333:root":        "",
		"arn:aws:iam::11112222333:root":         "",
		"arn:aws:iam::111122223333:root:":       "",
	} {
		got, ok := RootAccount(arn)
		if got != want || ok != (want != "") {
			t.Errorf("RootAccount(%q) = %q, %v, want %q", arn, got, ok, want)
		}
	}
	if !isRootOf("arn:aws-cn:iam::111122223333:root", "111122223333") || isRootOf("arn:aws-cn:iam::111122223333:root", "444455556666") {
		t.Error("isRootOf does not match the account root of aws-cn")
	}
}
