package e2e

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"
)

const (
	policyRole = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::123456789012:role/MyRole"},"Action":"secretsmanager:GetSecretValue","Resource":"*"}]}`
	policyAny  = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"secretsmanager:GetSecretValue","Resource":"*"}]}`
	// policyOrg is a wildcard principal restricted to one organization: not public.
	policyOrg = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"*"},"Action":"secretsmanager:GetSecretValue","Resource":"*","Condition":{"StringEquals":{"aws:PrincipalOrgID":"o-a1b2c3d4e5"}}}]}`
)

func getPolicy(t *testing.T, c *secretsmanager.Client, id string) *secretsmanager.GetResourcePolicyOutput {
	t.Helper()
	out, err := c.GetResourcePolicy(ctxT(t), &secretsmanager.GetResourcePolicyInput{SecretId: aws.String(id)})
	mustNoErr(t, err, "GetResourcePolicy("+id+")")
	return out
}

func TestSMResourcePolicyLifecycle(t *testing.T) {
	srv, c := startSM(t)
	created := createSecret(t, c, "pol/db", "v")
	arn := aws.ToString(created.ARN)

	got := getPolicy(t, c, "pol/db")
	if aws.ToString(got.ARN) != arn || aws.ToString(got.Name) != "pol/db" || got.ResourcePolicy != nil {
		t.Fatalf("GetResourcePolicy(no policy) = ARN %q Name %q Policy %v, want %q, pol/db, nil",
			aws.ToString(got.ARN), aws.ToString(got.Name), got.ResourcePolicy, arn)
	}

	put, err := c.PutResourcePolicy(ctxT(t), &secretsmanager.PutResourcePolicyInput{
		SecretId: aws.String(arn), ResourcePolicy: aws.String(policyRole), BlockPublicPolicy: aws.Bool(true),
	})
	mustNoErr(t, err, "PutResourcePolicy")
	if aws.ToString(put.ARN) != arn || aws.ToString(put.Name) != "pol/db" {
		t.Fatalf("PutResourcePolicy = ARN %q Name %q, want %q pol/db", aws.ToString(put.ARN), aws.ToString(put.Name), arn)
	}
	// By partial ARN too; the document comes back as it was given.
	if p := aws.ToString(getPolicy(t, c, arn[:len(arn)-7]).ResourcePolicy); p != policyRole {
		t.Fatalf("GetResourcePolicy = %s, want %s", p, policyRole)
	}

	// A restricted wildcard principal passes BlockPublicPolicy.
	_, err = c.PutResourcePolicy(ctxT(t), &secretsmanager.PutResourcePolicyInput{
		SecretId: aws.String("pol/db"), ResourcePolicy: aws.String(policyOrg), BlockPublicPolicy: aws.Bool(true),
	})
	mustNoErr(t, err, "PutResourcePolicy(org-restricted)")

	// The policy survives a restart.
	srv.Restart(t)
	c = srv.SecretsManager()
	if p := aws.ToString(getPolicy(t, c, "pol/db").ResourcePolicy); p != policyOrg {
		t.Fatalf("GetResourcePolicy after restart = %s, want %s", p, policyOrg)
	}

	del, err := c.DeleteResourcePolicy(ctxT(t), &secretsmanager.DeleteResourcePolicyInput{SecretId: aws.String("pol/db")})
	mustNoErr(t, err, "DeleteResourcePolicy")
	if aws.ToString(del.ARN) != arn || aws.ToString(del.Name) != "pol/db" {
		t.Fatalf("DeleteResourcePolicy = ARN %q Name %q", aws.ToString(del.ARN), aws.ToString(del.Name))
	}
	if p := getPolicy(t, c, "pol/db").ResourcePolicy; p != nil {
		t.Fatalf("GetResourcePolicy after delete = %s, want none", *p)
	}
	// Deleting again is not an error.
	_, err = c.DeleteResourcePolicy(ctxT(t), &secretsmanager.DeleteResourcePolicyInput{SecretId: aws.String("pol/db")})
	mustNoErr(t, err, "DeleteResourcePolicy(no policy)")

	// Without BlockPublicPolicy a public policy is stored (AWS's default).
	_, err = c.PutResourcePolicy(ctxT(t), &secretsmanager.PutResourcePolicyInput{SecretId: aws.String("pol/db"), ResourcePolicy: aws.String(policyAny)})
	mustNoErr(t, err, "PutResourcePolicy(public, not blocked)")
	if p := aws.ToString(getPolicy(t, c, "pol/db").ResourcePolicy); p != policyAny {
		t.Fatalf("GetResourcePolicy = %s, want %s", p, policyAny)
	}
}

func TestSMResourcePolicyRefusals(t *testing.T) {
	_, c := startSM(t)
	createSecret(t, c, "pol/keep", "v")
	_, err := c.PutResourcePolicy(ctxT(t), &secretsmanager.PutResourcePolicyInput{SecretId: aws.String("pol/keep"), ResourcePolicy: aws.String(policyRole)})
	mustNoErr(t, err, "PutResourcePolicy")

	tests := []struct {
		name   string
		id     string
		policy string
		block  bool
		check  func(error) bool
		code   string
		msg    string
	}{
		{"public with block", "pol/keep", policyAny, true,
			func(err error) bool { var e *types.PublicPolicyException; return errors.As(err, &e) },
			"PublicPolicyException", "You can't perform this operation because the resource policy you provided is public."},
		{"AWS star with block", "pol/keep", `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"*"},"Action":"secretsmanager:*","Resource":"*"}]}`, true,
			func(err error) bool { var e *types.PublicPolicyException; return errors.As(err, &e) },
			"PublicPolicyException", "public"},
		{"not json", "pol/keep", `{"Version":"2012-10-17",`, false,
			func(err error) bool { var e *types.MalformedPolicyDocumentException; return errors.As(err, &e) },
			"MalformedPolicyDocumentException", "This resource policy contains a syntax error. Fix the JSON syntax error at index"},
		{"missing effect", "pol/keep", `{"Version":"2012-10-17","Statement":[{"Principal":{"AWS":"123456789012"},"Action":"secretsmanager:GetSecretValue","Resource":"*"}]}`, false,
			func(err error) bool { var e *types.MalformedPolicyDocumentException; return errors.As(err, &e) },
			"MalformedPolicyDocumentException", "Add an Effect element"},
		{"unknown action", "pol/keep", `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"123456789012"},"Action":"secretsmanager:ReadSecret","Resource":"*"}]}`, false,
			func(err error) bool { var e *types.MalformedPolicyDocumentException; return errors.As(err, &e) },
			"MalformedPolicyDocumentException", "The action secretsmanager:ReadSecret"},
		{"bad condition operator", "pol/keep", `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"123456789012"},"Action":"secretsmanager:GetSecretValue","Resource":"*","Condition":{"StringIs":{"aws:SourceAccount":"1"}}}]}`, false,
			func(err error) bool { var e *types.MalformedPolicyDocumentException; return errors.As(err, &e) },
			"MalformedPolicyDocumentException", "The condition operator StringIs"},
		{"missing secret", "pol/none", policyRole, false,
			func(err error) bool { var e *types.ResourceNotFoundException; return errors.As(err, &e) },
			"ResourceNotFoundException", "Secrets Manager can't find the specified secret."},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := c.PutResourcePolicy(ctxT(t), &secretsmanager.PutResourcePolicyInput{
				SecretId: aws.String(tc.id), ResourcePolicy: aws.String(tc.policy), BlockPublicPolicy: aws.Bool(tc.block),
			})
			if !tc.check(err) {
				t.Fatalf("PutResourcePolicy(%s) error = %v, want %s", tc.name, err, tc.code)
			}
			wantAPIError(t, err, tc.code, tc.msg)
			if p := aws.ToString(getPolicy(t, c, "pol/keep").ResourcePolicy); p != policyRole {
				t.Fatalf("policy after refused PutResourcePolicy = %s, want the old %s", p, policyRole)
			}
		})
	}

	// Shape validation: the document is 1-20480 characters.
	_, err = c.PutResourcePolicy(ctxT(t), &secretsmanager.PutResourcePolicyInput{SecretId: aws.String("pol/keep"), ResourcePolicy: aws.String(strings.Repeat("a", 20481))})
	wantAPIError(t, err, "ValidationException", "Member must have length less than or equal to 20480")

	for _, id := range []string{"pol/none"} {
		_, err = c.GetResourcePolicy(ctxT(t), &secretsmanager.GetResourcePolicyInput{SecretId: aws.String(id)})
		wantAPIError(t, err, "ResourceNotFoundException", "Secrets Manager can't find the specified secret.")
		_, err = c.DeleteResourcePolicy(ctxT(t), &secretsmanager.DeleteResourcePolicyInput{SecretId: aws.String(id)})
		wantAPIError(t, err, "ResourceNotFoundException", "Secrets Manager can't find the specified secret.")
	}

	// A secret scheduled for deletion refuses all three, and keeps its policy.
	_, err = c.DeleteSecret(ctxT(t), &secretsmanager.DeleteSecretInput{SecretId: aws.String("pol/keep")})
	mustNoErr(t, err, "DeleteSecret")
	_, err = c.PutResourcePolicy(ctxT(t), &secretsmanager.PutResourcePolicyInput{SecretId: aws.String("pol/keep"), ResourcePolicy: aws.String(policyOrg)})
	wantAPIError(t, err, "InvalidRequestException", "marked for deletion")
	_, err = c.DeleteResourcePolicy(ctxT(t), &secretsmanager.DeleteResourcePolicyInput{SecretId: aws.String("pol/keep")})
	wantAPIError(t, err, "InvalidRequestException", "marked for deletion")
	_, err = c.GetResourcePolicy(ctxT(t), &secretsmanager.GetResourcePolicyInput{SecretId: aws.String("pol/keep")})
	wantAPIError(t, err, "InvalidRequestException", "marked for deletion")
	_, err = c.RestoreSecret(ctxT(t), &secretsmanager.RestoreSecretInput{SecretId: aws.String("pol/keep")})
	mustNoErr(t, err, "RestoreSecret")
	if p := aws.ToString(getPolicy(t, c, "pol/keep").ResourcePolicy); p != policyRole {
		t.Fatalf("policy after restore = %s, want %s", p, policyRole)
	}
}

func TestSMValidateResourcePolicy(t *testing.T) {
	_, c := startSM(t)
	createSecret(t, c, "pol/v", "v")
	tests := []struct {
		name   string
		id     *string
		policy string
		passed bool
		checks []string
	}{
		{"valid", nil, policyRole, true, []string{}},
		{"valid with secret id", aws.String("pol/v"), policyRole, true, []string{}},
		{"restricted wildcard", nil, policyOrg, true, []string{}},
		{"public", nil, policyAny, false, []string{"BROAD_ACCESS"}},
		{"missing statement", nil, `{"Version":"2012-10-17"}`, false, []string{"MISSING_STATEMENT"}},
		{"bad version and effect", nil, `{"Version":"2011-01-01","Statement":[{"Effect":"Permit","Principal":{"AWS":"123456789012"},"Action":"secretsmanager:GetSecretValue","Resource":"*"}]}`, false, []string{"INVALID_VERSION", "INVALID_EFFECT"}},
		{"other service and public", nil, `{"Statement":{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"*"}}`, false, []string{"UNSUPPORTED_ACTION_IN_POLICY", "BROAD_ACCESS"}},
		{"lockout", nil, `{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Principal":"*","Action":"secretsmanager:*","Resource":"*"}]}`, false, []string{"LOCKOUT"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, err := c.ValidateResourcePolicy(ctxT(t), &secretsmanager.ValidateResourcePolicyInput{SecretId: tc.id, ResourcePolicy: aws.String(tc.policy)})
			mustNoErr(t, err, "ValidateResourcePolicy")
			got := []string{}
			for _, e := range out.ValidationErrors {
				if aws.ToString(e.ErrorMessage) == "" {
					t.Fatalf("ValidationErrors entry %s has no ErrorMessage", aws.ToString(e.CheckName))
				}
				got = append(got, aws.ToString(e.CheckName))
			}
			if out.PolicyValidationPassed != tc.passed || !slices.Equal(got, tc.checks) {
				t.Fatalf("ValidateResourcePolicy(%s) = passed %v checks %v, want %v %v", tc.name, out.PolicyValidationPassed, got, tc.passed, tc.checks)
			}
		})
	}

	_, err := c.ValidateResourcePolicy(ctxT(t), &secretsmanager.ValidateResourcePolicyInput{ResourcePolicy: aws.String(`{"Statement":[`)})
	var mp *types.MalformedPolicyDocumentException
	if !errors.As(err, &mp) {
		t.Fatalf("ValidateResourcePolicy(not JSON) error = %v, want MalformedPolicyDocumentException", err)
	}
	wantAPIError(t, err, "MalformedPolicyDocumentException", "This resource policy contains a syntax error.")
	_, err = c.ValidateResourcePolicy(ctxT(t), &secretsmanager.ValidateResourcePolicyInput{SecretId: aws.String("pol/none"), ResourcePolicy: aws.String(policyRole)})
	wantAPIError(t, err, "ResourceNotFoundException", "Secrets Manager can't find the specified secret.")

	// Validation attaches nothing.
	if p := getPolicy(t, c, "pol/v").ResourcePolicy; p != nil {
		t.Fatalf("policy after ValidateResourcePolicy = %s, want none", *p)
	}
}
