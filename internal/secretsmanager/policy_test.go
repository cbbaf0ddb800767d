package secretsmanager

import (
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/keyfort/keyfort/internal/iam"
	"github.com/keyfort/keyfort/internal/kms/kmsapi"
	"github.com/keyfort/keyfort/internal/secretsmanager/smapi"
)

// stmt builds a one-statement policy around a statement body.
func stmt(body string) string {
	return `{"Version":"2012-10-17","Statement":[` + body + `]}`
}

const (
	allowRole = `{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::123456789012:role/MyRole"},"Action":"secretsmanager:GetSecretValue","Resource":"*"}`
	allowAny  = `{"Effect":"Allow","Principal":"*","Action":"secretsmanager:GetSecretValue","Resource":"*"}`
)

func checks(fs []iam.Finding) []string {
	out := []string{}
	for _, f := range fs {
		out = append(out, f.Check)
	}
	return out
}

func TestParsePolicyGrammar(t *testing.T) {
	tests := []struct {
		name   string
		doc    string
		checks []string // nil: no findings
	}{
		{"valid single statement", stmt(allowRole), nil},
		{"statement as object", `{"Version":"2012-10-17","Statement":` + allowRole + `}`, nil},
		{"2008 version", `{"Version":"2008-10-17","Statement":[` + allowRole + `]}`, nil},
		{"no version", `{"Statement":[` + allowRole + `]}`, nil},
		{"id and sid", `{"Version":"2012-10-17","Id":"p1","Statement":[{"Sid":"s1","Effect":"Deny","Principal":{"AWS":"123456789012"},"Action":["secretsmanager:Delete*","secretsmanager:PutResourcePolicy"],"Resource":["*","arn:aws:secretsmanager:us-east-1:123456789012:secret:a-AbCdEf"]}]}`, nil},
		{"all principal kinds", stmt(`{"Effect":"Allow","Principal":{"AWS":["*","arn:aws:sts::123456789012:assumed-role/r/s","AIDAEXAMPLEEXAMPLE1"],"Service":"lambda.amazonaws.com","Federated":"cognito-identity.amazonaws.com","CanonicalUser":"` + strings.Repeat("ab", 32) + `"},"Action":"*","Resource":"*"}`), nil},
		{"not action and not resource", stmt(`{"Effect":"Deny","NotPrincipal":{"AWS":"123456789012"},"NotAction":"secretsmanager:Describe*","NotResource":"arn:aws:secretsmanager:*:*:secret:x*"}`), nil},
		{"action case-insensitive", stmt(`{"Effect":"Allow","Principal":{"AWS":"123456789012"},"Action":"SecretsManager:getsecretvalue","Resource":"*"}`), nil},
		{"conditions", stmt(`{"Effect":"Allow","Principal":{"AWS":"123456789012"},"Action":"secretsmanager:*","Resource":"*","Condition":{"StringEquals":{"aws:PrincipalOrgID":["o-1"]},"ForAnyValue:StringLikeIfExists":{"aws:TagKeys":"a*"},"NumericLessThan":{"s:n":5},"Bool":{"aws:SecureTransport":false},"Null":{"aws:ResourceTag/x":"true"}}}`), nil},

		{"unknown top-level element", `{"Version":"2012-10-17","Foo":1,"Statement":[` + allowRole + `]}`, []string{iam.CheckPolicyElement}},
		{"bad version", `{"Version":"2020-01-01","Statement":[` + allowRole + `]}`, []string{iam.CheckVersion}},
		{"version not a string", `{"Version":2012,"Statement":[` + allowRole + `]}`, []string{iam.CheckDataType}},
		{"missing statement", `{"Version":"2012-10-17"}`, []string{iam.CheckMissingStatement}},
		{"empty statement list", `{"Version":"2012-10-17","Statement":[]}`, []string{iam.CheckMissingStatement}},
		{"statement not an object", `{"Version":"2012-10-17","Statement":["x"]}`, []string{iam.CheckDataType}},
		{"statement a number", `{"Version":"2012-10-17","Statement":3}`, []string{iam.CheckDataType}},
		{"top level an array", `[1,2]`, []string{iam.CheckDataType}},
		{"top level a string", `"policy"`, []string{iam.CheckDataType}},
		{"unknown statement element", stmt(`{"Effect":"Allow","Principal":"*","Action":"*","Resource":"*","Extra":1}`), []string{iam.CheckPolicyElement}},
		{"missing effect", stmt(`{"Principal":{"AWS":"123456789012"},"Action":"*","Resource":"*"}`), []string{iam.CheckMissingEffect}},
		{"bad effect", stmt(`{"Effect":"allow","Principal":{"AWS":"123456789012"},"Action":"*","Resource":"*"}`), []string{iam.CheckEffect}},
		{"effect not a string", stmt(`{"Effect":true,"Principal":{"AWS":"123456789012"},"Action":"*","Resource":"*"}`), []string{iam.CheckDataType}},
		{"missing principal", stmt(`{"Effect":"Allow","Action":"*","Resource":"*"}`), []string{iam.CheckMissingPrincipal}},
		{"principal and not principal", stmt(`{"Effect":"Allow","Principal":"*","NotPrincipal":"*","Action":"*","Resource":"*"}`), []string{iam.CheckPolicyElement}},
		{"principal string not star", stmt(`{"Effect":"Allow","Principal":"bob","Action":"*","Resource":"*"}`), []string{iam.CheckPrincipalFormat}},
		{"principal empty object", stmt(`{"Effect":"Allow","Principal":{},"Action":"*","Resource":"*"}`), []string{iam.CheckMissingPrincipal}},
		{"principal bad key", stmt(`{"Effect":"Allow","Principal":{"User":"bob"},"Action":"*","Resource":"*"}`), []string{iam.CheckPrincipalKey}},
		{"principal bad AWS value", stmt(`{"Effect":"Allow","Principal":{"AWS":"bob"},"Action":"*","Resource":"*"}`), []string{iam.CheckPrincipalFormat}},
		{"principal bad canonical user", stmt(`{"Effect":"Allow","Principal":{"CanonicalUser":"xyz"},"Action":"*","Resource":"*"}`), []string{iam.CheckPrincipalFormat}},
		{"principal number", stmt(`{"Effect":"Allow","Principal":7,"Action":"*","Resource":"*"}`), []string{iam.CheckDataType}},
		{"principal list of numbers", stmt(`{"Effect":"Allow","Principal":{"AWS":[1]},"Action":"*","Resource":"*"}`), []string{iam.CheckDataType}},
		{"missing action", stmt(`{"Effect":"Allow","Principal":{"AWS":"123456789012"},"Resource":"*"}`), []string{iam.CheckMissingAction}},
		{"empty action list", stmt(`{"Effect":"Allow","Principal":{"AWS":"123456789012"},"Action":[],"Resource":"*"}`), []string{iam.CheckMissingAction}},
		{"action and not action", stmt(`{"Effect":"Allow","Principal":{"AWS":"123456789012"},"Action":"*","NotAction":"*","Resource":"*"}`), []string{iam.CheckPolicyElement}},
		{"unknown action", stmt(`{"Effect":"Allow","Principal":{"AWS":"123456789012"},"Action":"secretsmanager:GetSecret","Resource":"*"}`), []string{iam.CheckAction}},
		{"wildcard matching nothing", stmt(`{"Effect":"Allow","Principal":{"AWS":"123456789012"},"Action":"secretsmanager:Fly*","Resource":"*"}`), []string{iam.CheckAction}},
		{"action without service", stmt(`{"Effect":"Allow","Principal":{"AWS":"123456789012"},"Action":"GetSecretValue","Resource":"*"}`), []string{iam.CheckAction}},
		{"other service action", stmt(`{"Effect":"Allow","Principal":{"AWS":"123456789012"},"Action":"kms:Decrypt","Resource":"*"}`), []string{iam.CheckUnsupportedAction}},
		{"action object", stmt(`{"Effect":"Allow","Principal":{"AWS":"123456789012"},"Action":{"a":1},"Resource":"*"}`), []string{iam.CheckDataType}},
		{"missing resource", stmt(`{"Effect":"Allow","Principal":{"AWS":"123456789012"},"Action":"*"}`), []string{iam.CheckMissingResource}},
		{"resource and not resource", stmt(`{"Effect":"Allow","Principal":{"AWS":"123456789012"},"Action":"*","Resource":"*","NotResource":"*"}`), []string{iam.CheckPolicyElement}},
		{"bad resource", stmt(`{"Effect":"Allow","Principal":{"AWS":"123456789012"},"Action":"*","Resource":"my-secret"}`), []string{iam.CheckResource}},
		{"unknown condition operator", stmt(`{"Effect":"Allow","Principal":{"AWS":"123456789012"},"Action":"*","Resource":"*","Condition":{"StringSortOf":{"aws:SourceAccount":"1"}}}`), []string{iam.CheckConditionOperator}},
		{"bad qualifier", stmt(`{"Effect":"Allow","Principal":{"AWS":"123456789012"},"Action":"*","Resource":"*","Condition":{"ForSomeValues:StringEquals":{"aws:TagKeys":"1"}}}`), []string{iam.CheckConditionOperator}},
		{"null if exists", stmt(`{"Effect":"Allow","Principal":{"AWS":"123456789012"},"Action":"*","Resource":"*","Condition":{"NullIfExists":{"aws:TagKeys":"true"}}}`), []string{iam.CheckConditionOperator}},
		{"condition not an object", stmt(`{"Effect":"Allow","Principal":{"AWS":"123456789012"},"Action":"*","Resource":"*","Condition":"x"}`), []string{iam.CheckDataType}},
		{"condition operator body not an object", stmt(`{"Effect":"Allow","Principal":{"AWS":"123456789012"},"Action":"*","Resource":"*","Condition":{"StringEquals":"x"}}`), []string{iam.CheckDataType}},
		{"condition value object", stmt(`{"Effect":"Allow","Principal":{"AWS":"123456789012"},"Action":"*","Resource":"*","Condition":{"StringEquals":{"k":{"a":1}}}}`), []string{iam.CheckDataType}},
		{"condition key empty", stmt(`{"Effect":"Allow","Principal":{"AWS":"123456789012"},"Action":"*","Resource":"*","Condition":{"StringEquals":{"":"v"}}}`), []string{iam.CheckConditionKey}},
		{"several problems in order", `{"Version":"1","Statement":[{"Effect":"Maybe","Principal":{"AWS":"123456789012"},"Action":"kms:Decrypt"}]}`, []string{iam.CheckVersion, iam.CheckEffect, iam.CheckUnsupportedAction, iam.CheckMissingResource}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			doc, findings, err := parsePolicy(tc.doc)
			if err != nil {
				t.Fatalf("parsePolicy(%q) error = %v, want findings %v", tc.doc, err, tc.checks)
			}
			if doc == nil {
				t.Fatalf("parsePolicy(%q) returned no document", tc.doc)
			}
			got := checks(findings)
			want := tc.checks
			if want == nil {
				want = []string{}
			}
			if !slices.Equal(got, want) {
				t.Fatalf("parsePolicy(%q) findings = %v (%v), want %v", tc.doc, got, findings, want)
			}
			for _, f := range findings {
				if f.Message == "" || !strings.HasSuffix(f.Message, ".") {
					t.Fatalf("finding %s has message %q, want a full sentence", f.Check, f.Message)
				}
			}
		})
	}
}

func TestParsePolicySyntaxErrors(t *testing.T) {
	for _, doc := range []string{``, `{`, `{"Version":}`, `not json`, `{"a":1} {"b":2}`, `{"a":1}x`, "{\"a\":\"\x00\"}"} {
		_, _, err := parsePolicy(doc)
		var se *iam.SyntaxError
		if !errors.As(err, &se) {
			t.Fatalf("parsePolicy(%q) error = %v, want *iam.SyntaxError", doc, err)
		}
		if !strings.HasPrefix(se.Error(), "Fix the JSON syntax error at index ") {
			t.Fatalf("parsePolicy(%q) error text = %q", doc, se.Error())
		}
	}
}

func TestPolicyPublic(t *testing.T) {
	cond := func(c string) string {
		return stmt(`{"Effect":"Allow","Principal":"*","Action":"secretsmanager:GetSecretValue","Resource":"*","Condition":` + c + `}`)
	}
	tests := []struct {
		name string
		doc  string
		want int
	}{
		{"named role", stmt(allowRole), -1},
		{"principal star", stmt(allowAny), 0},
		{"AWS star", stmt(`{"Effect":"Allow","Principal":{"AWS":"*"},"Action":"*","Resource":"*"}`), 0},
		{"AWS star in list", stmt(`{"Effect":"Allow","Principal":{"AWS":["123456789012","*"]},"Action":"*","Resource":"*"}`), 0},
		{"second statement", stmt(allowRole + `,` + allowAny), 1},
		{"deny star", stmt(`{"Effect":"Deny","Principal":"*","Action":"*","Resource":"*"}`), -1},
		{"allow with not principal", stmt(`{"Effect":"Allow","NotPrincipal":{"AWS":"123456789012"},"Action":"*","Resource":"*"}`), 0},
		{"service principal", stmt(`{"Effect":"Allow","Principal":{"Service":"lambda.amazonaws.com"},"Action":"*","Resource":"*"}`), -1},
		{"source account", cond(`{"StringEquals":{"aws:SourceAccount":"123456789012"}}`), -1},
		{"principal account", cond(`{"StringEquals":{"aws:PrincipalAccount":["123456789012"]}}`), -1},
		{"principal org id", cond(`{"StringEquals":{"aws:PrincipalOrgID":"o-abc"}}`), -1},
		{"source arn like fixed", cond(`{"ArnLike":{"aws:SourceArn":"arn:aws:lambda:us-east-1:123456789012:function:f"}}`), -1},
		{"source vpc", cond(`{"StringEquals":{"aws:SourceVpc":"vpc-1"}}`), -1},
		{"key case-insensitive", cond(`{"StringEquals":{"AWS:SOURCEACCOUNT":"123456789012"}}`), -1},
		{"source ip", cond(`{"IpAddress":{"aws:SourceIp":"10.0.0.0/8"}}`), -1},
		{"source ip everywhere", cond(`{"IpAddress":{"aws:SourceIp":"0.0.0.0/0"}}`), 0},
		{"wildcard value", cond(`{"StringLike":{"aws:PrincipalOrgID":"o-*"}}`), 0},
		{"star value", cond(`{"StringEquals":{"aws:SourceAccount":"*"}}`), 0},
		{"negated operator", cond(`{"StringNotEquals":{"aws:SourceAccount":"123456789012"}}`), 0},
		{"if exists", cond(`{"StringEqualsIfExists":{"aws:SourceAccount":"123456789012"}}`), 0},
		{"for all values", cond(`{"ForAllValues:StringEquals":{"aws:PrincipalOrgID":"o-1"}}`), 0},
		{"non-restricting key", cond(`{"Bool":{"aws:SecureTransport":"true"}}`), 0},
		{"restricting plus other", cond(`{"Bool":{"aws:SecureTransport":"true"},"StringEquals":{"aws:SourceAccount":"123456789012"}}`), -1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			doc, findings, err := parsePolicy(tc.doc)
			if err != nil || len(findings) > 0 {
				t.Fatalf("parsePolicy(%q) = %v, %v; want a valid policy", tc.doc, findings, err)
			}
			if got := publicStatement(doc); got != tc.want {
				t.Fatalf("public(%s) = %d, want %d", tc.doc, got, tc.want)
			}
		})
	}
}

func TestPolicyLockout(t *testing.T) {
	tests := []struct {
		name string
		body string
		want int
	}{
		{"deny all", `{"Effect":"Deny","Principal":"*","Action":"*","Resource":"*"}`, 0},
		{"deny secretsmanager star", `{"Effect":"Deny","Principal":{"AWS":"*"},"Action":"secretsmanager:*","Resource":"*"}`, 0},
		{"deny put", `{"Effect":"Deny","Principal":"*","Action":"secretsmanager:PutResourcePolicy","Resource":"*"}`, 0},
		{"deny wildcard delete", `{"Effect":"Deny","Principal":"*","Action":"secretsmanager:Delete*","Resource":"*"}`, 0},
		{"deny not action read", `{"Effect":"Deny","Principal":"*","NotAction":"secretsmanager:GetSecretValue","Resource":"*"}`, 0},
		{"deny read only", `{"Effect":"Deny","Principal":"*","Action":"secretsmanager:GetSecretValue","Resource":"*"}`, -1},
		{"deny not action covering both", `{"Effect":"Deny","Principal":"*","NotAction":["secretsmanager:PutResourcePolicy","secretsmanager:DeleteResourcePolicy"],"Resource":"*"}`, -1},
		{"deny one account", `{"Effect":"Deny","Principal":{"AWS":"123456789012"},"Action":"*","Resource":"*"}`, -1},
		{"deny with condition", `{"Effect":"Deny","Principal":"*","Action":"*","Resource":"*","Condition":{"Bool":{"aws:SecureTransport":"false"}}}`, -1},
		{"deny one resource", `{"Effect":"Deny","Principal":"*","Action":"*","Resource":"arn:aws:secretsmanager:us-east-1:123456789012:secret:other-AbCdEf"}`, -1},
		{"allow all", `{"Effect":"Allow","Principal":"*","Action":"*","Resource":"*"}`, -1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			doc, findings, err := parsePolicy(stmt(tc.body))
			if err != nil || len(findings) > 0 {
				t.Fatalf("parsePolicy(%q) = %v, %v; want a valid policy", tc.body, findings, err)
			}
			if got := lockoutStatement(doc); got != tc.want {
				t.Fatalf("lockout(%s) = %d, want %d", tc.body, got, tc.want)
			}
		})
	}
}

// FuzzValidateResourcePolicy checks that the policy parser never panics,
// separates non-JSON from grammar findings exactly as encoding/json does,
// and that every finding is named and explained.
func FuzzValidateResourcePolicy(f *testing.F) {
	for _, seed := range []string{
		stmt(allowRole), stmt(allowAny), `{}`, `[]`, `null`, `{"Statement":{}}`,
		stmt(`{"Effect":"Deny","Principal":"*","NotAction":"secretsmanager:Get*","Resource":"*","Condition":{"ForAnyValue:StringLikeIfExists":{"aws:SourceArn":["a",1,true]}}}`),
		`{"Version":"2012-10-17","Statement":[{"Principal":{"AWS":[null]},"Action":[{}],"Resource":[[]]}]}`,
		`{"Statement":[{"Effect":"Allow","Principal":"*","Action":"secretsmanager:*?*","Resource":"*","Condition":{"IpAddress":{"aws:SourceIp":"::/0"}}}]}`,
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, text string) {
		doc, findings, err := parsePolicy(text)
		if valid := json.Valid([]byte(text)); valid != (err == nil) {
			t.Fatalf("parsePolicy(%q) error = %v, but json.Valid = %v", text, err, valid)
		}
		if err != nil {
			return
		}
		if doc == nil {
			t.Fatalf("parsePolicy(%q) returned neither a document nor an error", text)
		}
		for _, fd := range findings {
			if fd.Check == "" || fd.Message == "" {
				t.Fatalf("parsePolicy(%q) finding %+v lacks a check name or message", text, fd)
			}
		}
		if i := publicStatement(doc); i < -1 || i >= len(doc.Statements) {
			t.Fatalf("public() = %d with %d statements", i, len(doc.Statements))
		}
		if i := lockoutStatement(doc); i < -1 || i >= len(doc.Statements) {
			t.Fatalf("lockout() = %d with %d statements", i, len(doc.Statements))
		}
	})
}

// The operations, through the service (the e2e tests go through the SDK).

func TestResourcePolicyOperations(t *testing.T) {
	e := newEnv(t)
	created := e.create(t, "app/db", "v")
	arn := *created.ARN

	got, err := e.sm.GetResourcePolicy(e.ctx, &smapi.GetResourcePolicyInput{SecretId: str("app/db")})
	mustOK(t, err, "GetResourcePolicy without a policy")
	if *got.ARN != arn || *got.Name != "app/db" || got.ResourcePolicy != nil {
		t.Fatalf("GetResourcePolicy = %+v, want ARN, Name and no policy", got)
	}

	before := e.describe(t, "app/db").LastChangedDate
	e.clock.Add(60e9)
	doc := stmt(allowRole)
	put, err := e.sm.PutResourcePolicy(e.ctx, &smapi.PutResourcePolicyInput{SecretId: str(arn), ResourcePolicy: str(doc), BlockPublicPolicy: ptr(true)})
	mustOK(t, err, "PutResourcePolicy")
	if *put.ARN != arn || *put.Name != "app/db" {
		t.Fatalf("PutResourcePolicy = %+v", put)
	}
	if after := e.describe(t, "app/db").LastChangedDate; !after.After(*before) {
		t.Fatalf("LastChangedDate = %v, want after %v", after, before)
	}
	got, err = e.sm.GetResourcePolicy(e.ctx, &smapi.GetResourcePolicyInput{SecretId: str("app/db")})
	mustOK(t, err, "GetResourcePolicy")
	if got.ResourcePolicy == nil || *got.ResourcePolicy != doc {
		t.Fatalf("GetResourcePolicy policy = %v, want %s", got.ResourcePolicy, doc)
	}

	// Refused puts keep the old policy.
	for _, tc := range []struct {
		name, doc, code string
		block           bool
	}{
		{"not json", `{`, codeMalformedPolicy, false},
		{"grammar", stmt(`{"Effect":"Allow","Action":"*","Resource":"*"}`), codeMalformedPolicy, false},
		{"public blocked", stmt(allowAny), codePublicPolicy, true},
	} {
		_, err := e.sm.PutResourcePolicy(e.ctx, &smapi.PutResourcePolicyInput{SecretId: str("app/db"), ResourcePolicy: str(tc.doc), BlockPublicPolicy: ptr(tc.block)})
		wantCode(t, err, tc.code, "")
		got, err := e.sm.GetResourcePolicy(e.ctx, &smapi.GetResourcePolicyInput{SecretId: str("app/db")})
		mustOK(t, err, "GetResourcePolicy")
		if *got.ResourcePolicy != doc {
			t.Fatalf("%s: policy after refused put = %s, want %s", tc.name, *got.ResourcePolicy, doc)
		}
	}
	// Without BlockPublicPolicy a public policy is accepted.
	_, err = e.sm.PutResourcePolicy(e.ctx, &smapi.PutResourcePolicyInput{SecretId: str("app/db"), ResourcePolicy: str(stmt(allowAny))})
	mustOK(t, err, "PutResourcePolicy(public, not blocked)")

	del, err := e.sm.DeleteResourcePolicy(e.ctx, &smapi.DeleteResourcePolicyInput{SecretId: str("app/db")})
	mustOK(t, err, "DeleteResourcePolicy")
	if *del.ARN != arn || *del.Name != "app/db" {
		t.Fatalf("DeleteResourcePolicy = %+v", del)
	}
	_, err = e.sm.DeleteResourcePolicy(e.ctx, &smapi.DeleteResourcePolicyInput{SecretId: str("app/db")})
	mustOK(t, err, "DeleteResourcePolicy without a policy")
	got, err = e.sm.GetResourcePolicy(e.ctx, &smapi.GetResourcePolicyInput{SecretId: str("app/db")})
	mustOK(t, err, "GetResourcePolicy after delete")
	if got.ResourcePolicy != nil {
		t.Fatalf("policy after delete = %s, want none", *got.ResourcePolicy)
	}

	// Missing and deleted secrets.
	_, err = e.sm.PutResourcePolicy(e.ctx, &smapi.PutResourcePolicyInput{SecretId: str("nope"), ResourcePolicy: str(`{`)})
	wantCode(t, err, codeNotFound, "Secrets Manager can't find the specified secret.")
	_, err = e.sm.DeleteSecret(e.ctx, &smapi.DeleteSecretInput{SecretId: str("app/db")})
	mustOK(t, err, "DeleteSecret")
	_, err = e.sm.PutResourcePolicy(e.ctx, &smapi.PutResourcePolicyInput{SecretId: str("app/db"), ResourcePolicy: str(doc)})
	wantCode(t, err, codeInvalidRequest, "marked for deletion")
	_, err = e.sm.GetResourcePolicy(e.ctx, &smapi.GetResourcePolicyInput{SecretId: str("app/db")})
	wantCode(t, err, codeInvalidRequest, "marked for deletion")
	_, err = e.sm.DeleteResourcePolicy(e.ctx, &smapi.DeleteResourcePolicyInput{SecretId: str("app/db")})
	wantCode(t, err, codeInvalidRequest, "marked for deletion")
}

func TestValidateResourcePolicyService(t *testing.T) {
	e := newEnv(t)
	e.create(t, "s", "v")
	tests := []struct {
		name   string
		doc    string
		id     *string
		passed bool
		checks []string
	}{
		{"valid", stmt(allowRole), nil, true, []string{}},
		{"valid with secret", stmt(allowRole), str("s"), true, []string{}},
		{"public", stmt(allowAny), nil, false, []string{checkBroadAccess}},
		{"grammar and public", stmt(`{"Effect":"Allow","Principal":"*","Action":"kms:Decrypt","Resource":"*"}`), nil, false, []string{iam.CheckUnsupportedAction, checkBroadAccess}},
		{"lockout", stmt(`{"Effect":"Deny","Principal":"*","Action":"*","Resource":"*"}`), nil, false, []string{checkLockout}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, err := e.sm.ValidateResourcePolicy(e.ctx, &smapi.ValidateResourcePolicyInput{SecretId: tc.id, ResourcePolicy: str(tc.doc)})
			mustOK(t, err, "ValidateResourcePolicy")
			got := []string{}
			for _, v := range out.ValidationErrors {
				got = append(got, *v.CheckName)
			}
			if *out.PolicyValidationPassed != tc.passed || !slices.Equal(got, tc.checks) {
				t.Fatalf("ValidateResourcePolicy(%s) = %v %v, want %v %v", tc.doc, *out.PolicyValidationPassed, got, tc.passed, tc.checks)
			}
		})
	}
	_, err := e.sm.ValidateResourcePolicy(e.ctx, &smapi.ValidateResourcePolicyInput{ResourcePolicy: str(`{"Version":`)})
	wantCode(t, err, codeMalformedPolicy, "This resource policy contains a syntax error.")
	_, err = e.sm.ValidateResourcePolicy(e.ctx, &smapi.ValidateResourcePolicyInput{SecretId: str("missing"), ResourcePolicy: str(stmt(allowRole))})
	wantCode(t, err, codeNotFound, "")
}

func TestBatchGetSecretValueService(t *testing.T) {
	e := newEnv(t)
	e.create(t, "b/one", "1")
	e.create(t, "b/two", "2")
	key := e.createKey(t)
	_, err := e.sm.CreateSecret(e.ctx, &smapi.CreateSecretInput{Name: str("b/cmk"), KmsKeyId: str(key), SecretString: secretString("3")})
	mustOK(t, err, "CreateSecret(b/cmk)")
	_, err = e.sm.CreateSecret(e.ctx, &smapi.CreateSecretInput{Name: str("b/empty")})
	mustOK(t, err, "CreateSecret(b/empty)")
	_, err = e.kms.DisableKey(e.ctx, &kmsapi.DisableKeyInput{KeyId: str(key)})
	mustOK(t, err, "DisableKey")

	out, err := e.sm.BatchGetSecretValue(e.ctx, &smapi.BatchGetSecretValueInput{SecretIdList: []string{"b/two", "b/missing", "b/cmk", "b/empty", "b/one"}})
	mustOK(t, err, "BatchGetSecretValue")
	var names []string
	for _, v := range out.SecretValues {
		names = append(names, *v.Name+"="+v.SecretString.Reveal())
	}
	if !slices.Equal(names, []string{"b/two=2", "b/one=1"}) {
		t.Fatalf("SecretValues = %v, want [b/two=2 b/one=1]", names)
	}
	var errs []string
	for _, x := range out.Errors {
		errs = append(errs, *x.SecretId+":"+*x.ErrorCode)
	}
	want := []string{"b/missing:" + codeNotFound, "b/cmk:" + codeDecryption, "b/empty:" + codeNotFound}
	if !slices.Equal(errs, want) {
		t.Fatalf("Errors = %v, want %v", errs, want)
	}

	_, err = e.sm.BatchGetSecretValue(e.ctx, &smapi.BatchGetSecretValueInput{})
	wantCode(t, err, codeInvalidParameter, "Either 'SecretIdList' or 'Filters' must be provided, but not both.")
	_, err = e.sm.BatchGetSecretValue(e.ctx, &smapi.BatchGetSecretValueInput{SecretIdList: []string{"b/one"}, MaxResults: ptr(int32(5))})
	wantCode(t, err, codeInvalidParameter, "'Filters' must also be specified when 'MaxResults' is provided.")
}
