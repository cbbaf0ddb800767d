package e2e

import (
	"bytes"
	"fmt"
	"slices"
	"sort"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"
)

func TestSMBatchGetSecretValueByID(t *testing.T) {
	srv, c := startSM(t)
	one := createSecret(t, c, "batch/one", "v1")
	createSecret(t, c, "batch/two", "v2")
	_, err := c.CreateSecret(ctxT(t), &secretsmanager.CreateSecretInput{Name: aws.String("batch/bin"), SecretBinary: []byte{0, 1, 2}})
	mustNoErr(t, err, "CreateSecret(binary)")
	_, err = c.CreateSecret(ctxT(t), &secretsmanager.CreateSecretInput{Name: aws.String("batch/novalue")})
	mustNoErr(t, err, "CreateSecret(no value)")
	createSecret(t, c, "batch/gone", "x")
	_, err = c.DeleteSecret(ctxT(t), &secretsmanager.DeleteSecretInput{SecretId: aws.String("batch/gone")})
	mustNoErr(t, err, "DeleteSecret")
	k := srv.KMS()
	key, err := k.CreateKey(ctxT(t), &kms.CreateKeyInput{})
	mustNoErr(t, err, "kms.CreateKey")
	_, err = c.CreateSecret(ctxT(t), &secretsmanager.CreateSecretInput{Name: aws.String("batch/cmk"), KmsKeyId: key.KeyMetadata.Arn, SecretString: aws.String("c")})
	mustNoErr(t, err, "CreateSecret(cmk)")
	_, err = k.DisableKey(ctxT(t), &kms.DisableKeyInput{KeyId: key.KeyMetadata.KeyId})
	mustNoErr(t, err, "DisableKey")
	// A second version: the batch returns AWSCURRENT.
	_, err = c.PutSecretValue(ctxT(t), &secretsmanager.PutSecretValueInput{SecretId: aws.String("batch/two"), SecretString: aws.String("v2b")})
	mustNoErr(t, err, "PutSecretValue")

	out, err := c.BatchGetSecretValue(ctxT(t), &secretsmanager.BatchGetSecretValueInput{
		SecretIdList: []string{aws.ToString(one.ARN), "batch/two", "batch/missing", "batch/bin", "batch/novalue", "batch/gone", "batch/cmk"},
	})
	mustNoErr(t, err, "BatchGetSecretValue")

	if len(out.SecretValues) != 3 {
		t.Fatalf("SecretValues = %d entries, want 3", len(out.SecretValues))
	}
	v := out.SecretValues[0]
	if aws.ToString(v.ARN) != aws.ToString(one.ARN) || aws.ToString(v.Name) != "batch/one" || aws.ToString(v.SecretString) != "v1" ||
		aws.ToString(v.VersionId) != aws.ToString(one.VersionId) || !slices.Equal(v.VersionStages, []string{"AWSCURRENT"}) || v.CreatedDate == nil {
		t.Fatalf("SecretValues[0] = %+v, want batch/one v1 AWSCURRENT", v)
	}
	if got := aws.ToString(out.SecretValues[1].SecretString); aws.ToString(out.SecretValues[1].Name) != "batch/two" || got != "v2b" {
		t.Fatalf("SecretValues[1] = %s %q, want batch/two v2b", aws.ToString(out.SecretValues[1].Name), got)
	}
	if b := out.SecretValues[2]; aws.ToString(b.Name) != "batch/bin" || !bytes.Equal(b.SecretBinary, []byte{0, 1, 2}) || b.SecretString != nil {
		t.Fatalf("SecretValues[2] = %+v, want batch/bin binary 000102", b)
	}

	want := []types.APIErrorType{
		{SecretId: aws.String("batch/missing"), ErrorCode: aws.String("ResourceNotFoundException"), Message: aws.String("Secrets Manager can't find the specified secret.")},
		{SecretId: aws.String("batch/novalue"), ErrorCode: aws.String("ResourceNotFoundException"), Message: aws.String("Secrets Manager can't find the specified secret value for staging label: AWSCURRENT")},
		{SecretId: aws.String("batch/gone"), ErrorCode: aws.String("InvalidRequestException"), Message: aws.String("You can't perform this operation on the secret because it was marked for deletion.")},
		{SecretId: aws.String("batch/cmk"), ErrorCode: aws.String("DecryptionFailure"), Message: aws.String("Secrets Manager can't decrypt the protected secret text using the provided KMS key.")},
	}
	if len(out.Errors) != len(want) {
		t.Fatalf("Errors = %d entries (%s), want %d", len(out.Errors), apiErrors(out.Errors), len(want))
	}
	for i := range want {
		g, w := out.Errors[i], want[i]
		if aws.ToString(g.SecretId) != aws.ToString(w.SecretId) || aws.ToString(g.ErrorCode) != aws.ToString(w.ErrorCode) || aws.ToString(g.Message) != aws.ToString(w.Message) {
			t.Fatalf("Errors[%d] = %s, want %s", i, apiErrors([]types.APIErrorType{g}), apiErrors([]types.APIErrorType{w}))
		}
	}
	if out.NextToken != nil {
		t.Fatalf("NextToken = %q for a list of ids, want none", aws.ToString(out.NextToken))
	}
}

func apiErrors(es []types.APIErrorType) string {
	s := ""
	for _, e := range es {
		s += fmt.Sprintf("[%s %s %q]", aws.ToString(e.SecretId), aws.ToString(e.ErrorCode), aws.ToString(e.Message))
	}
	return s
}

func TestSMBatchGetSecretValueByFilter(t *testing.T) {
	_, c := startSM(t)
	var names []string
	for i := range 7 {
		name := fmt.Sprintf("app/s%d", i)
		names = append(names, name)
		_, err := c.CreateSecret(ctxT(t), &secretsmanager.CreateSecretInput{
			Name: aws.String(name), SecretString: aws.String("val-" + name),
			Tags: []types.Tag{{Key: aws.String("team"), Value: aws.String("blue")}},
		})
		mustNoErr(t, err, "CreateSecret("+name+")")
	}
	createSecret(t, c, "other/x", "no")
	createSecret(t, c, "app/deleted", "no")
	_, err := c.DeleteSecret(ctxT(t), &secretsmanager.DeleteSecretInput{SecretId: aws.String("app/deleted")})
	mustNoErr(t, err, "DeleteSecret")

	// Pages of 3 over the name filter: every matching secret once, none
	// scheduled for deletion.
	var got []string
	var token *string
	for page := 0; ; page++ {
		if page > 10 {
			t.Fatalf("BatchGetSecretValue paging did not end")
		}
		out, err := c.BatchGetSecretValue(ctxT(t), &secretsmanager.BatchGetSecretValueInput{
			Filters:    []types.Filter{{Key: types.FilterNameStringTypeName, Values: []string{"app/"}}},
			MaxResults: aws.Int32(3),
			NextToken:  token,
		})
		mustNoErr(t, err, "BatchGetSecretValue(filters)")
		if len(out.SecretValues) > 3 {
			t.Fatalf("page %d has %d values, want at most 3", page, len(out.SecretValues))
		}
		if len(out.Errors) != 0 {
			t.Fatalf("page %d Errors = %s, want none", page, apiErrors(out.Errors))
		}
		for _, v := range out.SecretValues {
			name := aws.ToString(v.Name)
			if aws.ToString(v.SecretString) != "val-"+name {
				t.Fatalf("value of %s = %q, want %q", name, aws.ToString(v.SecretString), "val-"+name)
			}
			got = append(got, name)
		}
		token = out.NextToken
		if token == nil {
			break
		}
	}
	sort.Strings(got)
	if !slices.Equal(got, names) {
		t.Fatalf("secrets over all pages = %v, want %v", got, names)
	}

	// Tag filters and negation work as in ListSecrets; no MaxResults means up to 20.
	out, err := c.BatchGetSecretValue(ctxT(t), &secretsmanager.BatchGetSecretValueInput{
		Filters: []types.Filter{{Key: types.FilterNameStringTypeTagValue, Values: []string{"blue"}}, {Key: types.FilterNameStringTypeName, Values: []string{"!app/s0"}}},
	})
	mustNoErr(t, err, "BatchGetSecretValue(tag filter)")
	if len(out.SecretValues) != 6 || out.NextToken != nil {
		t.Fatalf("tag filter: %d values, NextToken %v; want 6 and none", len(out.SecretValues), out.NextToken)
	}
}

func TestSMBatchGetSecretValueErrors(t *testing.T) {
	_, c := startSM(t)
	createSecret(t, c, "be/one", "v")
	filter := []types.Filter{{Key: types.FilterNameStringTypeName, Values: []string{"be/"}}}
	tests := []struct {
		name string
		in   *secretsmanager.BatchGetSecretValueInput
		code string
		msg  string
	}{
		{"both", &secretsmanager.BatchGetSecretValueInput{SecretIdList: []string{"be/one"}, Filters: filter},
			"InvalidParameterException", "Either 'SecretIdList' or 'Filters' must be provided, but not both."},
		{"neither", &secretsmanager.BatchGetSecretValueInput{},
			"InvalidParameterException", "Either 'SecretIdList' or 'Filters' must be provided, but not both."},
		{"max results with ids", &secretsmanager.BatchGetSecretValueInput{SecretIdList: []string{"be/one"}, MaxResults: aws.Int32(5)},
			"InvalidParameterException", "'Filters' not specified. 'Filters' must also be specified when 'MaxResults' is provided."},
		{"max results too big", &secretsmanager.BatchGetSecretValueInput{Filters: filter, MaxResults: aws.Int32(21)},
			"ValidationException", "Member must have value less than or equal to 20"},
		{"max results zero", &secretsmanager.BatchGetSecretValueInput{Filters: filter, MaxResults: aws.Int32(0)},
			"ValidationException", "Member must have value greater than or equal to 1"},
		{"21 ids", &secretsmanager.BatchGetSecretValueInput{SecretIdList: make21()},
			"ValidationException", "Member must have length less than or equal to 20"},
		{"forged token", &secretsmanager.BatchGetSecretValueInput{Filters: filter, NextToken: aws.String("bm90LWEtdG9rZW4")},
			"InvalidNextTokenException", "The NextToken value is invalid."},
		{"token with ids", &secretsmanager.BatchGetSecretValueInput{SecretIdList: []string{"be/one"}, NextToken: aws.String("abc")},
			"InvalidNextTokenException", "The NextToken value is invalid."},
		{"filter without values", &secretsmanager.BatchGetSecretValueInput{Filters: []types.Filter{{Key: types.FilterNameStringTypeName}}},
			"InvalidParameterException", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, err := c.BatchGetSecretValue(ctxT(t), tc.in)
			if err == nil {
				t.Fatalf("BatchGetSecretValue(%s) = %+v, want %s", tc.name, out, tc.code)
			}
			wantAPIError(t, err, tc.code, tc.msg)
		})
	}
}

func make21() []string {
	ids := make([]string, 21)
	for i := range ids {
		ids[i] = fmt.Sprintf("id%d", i)
	}
	return ids
}
