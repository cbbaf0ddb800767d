package smapi_test

import (
	"context"
	"encoding/json"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/keyfort/keyfort/internal/awserr"
	"github.com/keyfort/keyfort/internal/operation"
	"github.com/keyfort/keyfort/internal/secretsmanager/smapi"
	"github.com/keyfort/keyfort/internal/sensitive"
)

func str(s string) *string { return &s }

func ptr[T any](v T) *T { return &v }

func TestValidate(t *testing.T) {
	long := strings.Repeat("s", 2049)
	tests := []struct {
		name string
		in   operation.Input
		want string // "" means valid
	}{
		{
			name: "valid",
			in: &smapi.CreateSecretInput{Name: str("db/password"), SecretString: ptr(sensitive.String("hunter2")),
				ClientRequestToken: str("EXAMPLE1-90ab-cdef-fedc-ba987SECRET1")},
		},
		{
			name: "missing required",
			in:   &smapi.GetSecretValueInput{},
			want: "1 validation error detected: Value null at 'secretId' failed to satisfy constraint: Member must not be null",
		},
		{
			name: "too long",
			in:   &smapi.GetSecretValueInput{SecretId: str(long)},
			want: "1 validation error detected: Value '" + long[:1024] + "...' at 'secretId' failed to satisfy constraint: Member must have length less than or equal to 2048",
		},
		{
			name: "sensitive string is not echoed",
			in:   &smapi.CreateSecretInput{Name: str("n"), SecretString: ptr(sensitive.String(""))},
			want: "1 validation error detected: Value at 'secretString' failed to satisfy constraint: Member must have length greater than or equal to 1",
		},
		{
			name: "bad enum",
			in:   &smapi.ListSecretsInput{SortOrder: "up"},
			want: "1 validation error detected: Value 'up' at 'sortOrder' failed to satisfy constraint: Member must satisfy enum value set: [asc, desc]",
		},
		{
			name: "number range",
			in:   &smapi.ListSecretsInput{MaxResults: ptr(int32(0))},
			want: "1 validation error detected: Value '0' at 'maxResults' failed to satisfy constraint: Member must have value greater than or equal to 1",
		},
		{
			name: "nested list path, list of strings and several errors",
			in: &smapi.ListSecretsInput{Filters: []smapi.Filter{
				{Key: smapi.FilterNameStringTypeName, Values: []string{"ok"}},
				{Key: "colour", Values: []string{"fine", "not#fine"}},
			}},
			want: "2 validation errors detected: " +
				"Value 'colour' at 'filters.2.member.key' failed to satisfy constraint: Member must satisfy enum value set: [description, name, tag-key, tag-value, primary-region, owning-service, all]; " +
				"Value '[fine, not#fine]' at 'filters.2.member.values' failed to satisfy constraint: Member must satisfy constraint: [Member must satisfy regular expression pattern: ^\\!?[a-zA-Z0-9 :_@\\/\\+\\=\\.\\-\\!]*$]",
		},
		{
			name: "pattern on a sensitive member",
			in:   &smapi.PutSecretValueInput{SecretId: str("s"), RotationToken: ptr(sensitive.String("bad token " + strings.Repeat("0", 40)))},
			want: "1 validation error detected: Value at 'rotationToken' failed to satisfy constraint: Member must satisfy regular expression pattern: ^[a-zA-Z0-9\\-]+$",
		},
		{
			name: "long value",
			in:   &smapi.GetRandomPasswordInput{PasswordLength: ptr(int64(4097))},
			want: "1 validation error detected: Value '4097' at 'passwordLength' failed to satisfy constraint: Member must have value less than or equal to 4096",
		},
		{
			name: "list length",
			in:   &smapi.BatchGetSecretValueInput{SecretIdList: []string{}},
			want: "1 validation error detected: Value at 'secretIdList' failed to satisfy constraint: Member must have length greater than or equal to 1",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.in.Validate()
			if tt.want == "" {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			e, ok := awserr.As(err)
			if !ok || e.Code != awserr.CodeValidation || e.Status != http.StatusBadRequest {
				t.Fatalf("Validate() = %#v, want a 400 ValidationException", err)
			}
			if e.Message != tt.want {
				t.Errorf("Validate() message =\n%s\nwant\n%s", e.Message, tt.want)
			}
		})
	}
}

// TestValidateIdempotencyToken checks that an input without its
// ClientRequestToken (which the SDKs fill in) is refused once the model's
// constraints pass, with the code AWS answers for the operation.
func TestValidateIdempotencyToken(t *testing.T) {
	for _, tt := range []struct {
		in   interface{ Validate() error }
		code string
	}{
		{&smapi.CreateSecretInput{Name: str("n")}, "InvalidRequestException"},
		{&smapi.UpdateSecretInput{SecretId: str("n")}, "InvalidRequestException"},
		{&smapi.PutSecretValueInput{SecretId: str("n")}, "InvalidRequestException"},
		{&smapi.RotateSecretInput{SecretId: str("n")}, "InvalidParameterException"},
	} {
		e, ok := awserr.As(tt.in.Validate())
		if !ok || e.Code != tt.code || e.Message != "You must provide a ClientRequestToken value. We recommend a UUID-type value." {
			t.Errorf("%T.Validate() = %v, want %s", tt.in, e, tt.code)
		}
	}
	// A model violation is reported first.
	e, ok := awserr.As((&smapi.CreateSecretInput{}).Validate())
	if !ok || e.Code != awserr.CodeValidation {
		t.Errorf("CreateSecretInput{}.Validate() = %v, want a ValidationException", e)
	}
	if err := (&smapi.RotateSecretInput{SecretId: str("n"), ClientRequestToken: str("EXAMPLE1-90ab-cdef-fedc-ba987SECRET1")}).Validate(); err != nil {
		t.Errorf("RotateSecretInput with a token: Validate() = %v, want nil", err)
	}
}

func TestAppendJSON(t *testing.T) {
	created := time.Unix(1523477145, 713_000_000).UTC()
	tests := []struct {
		name string
		out  operation.Output
		want string
	}{
		{
			name: "secret value is revealed",
			out: &smapi.GetSecretValueOutput{
				ARN:           str("arn:aws:secretsmanager:us-east-1:123456789012:secret:db-AbCdEf"),
				Name:          str("db"),
				SecretString:  ptr(sensitive.String("{\"user\":\"a\\b\"}\n")),
				SecretBinary:  sensitive.Bytes{0xff},
				VersionStages: []string{"AWSCURRENT"},
				CreatedDate:   &created,
			},
			want: `{"ARN":"arn:aws:secretsmanager:us-east-1:123456789012:secret:db-AbCdEf","Name":"db","SecretBinary":"/w==",` +
				`"SecretString":"{\"user\":\"a\\b\"}\n","VersionStages":["AWSCURRENT"],"CreatedDate":1523477145.713}`,
		},
		{
			name: "map of lists",
			out: &smapi.DescribeSecretOutput{
				Name:               str("n"),
				Tags:               []smapi.Tag{},
				VersionIdsToStages: map[string][]string{"v2": {"AWSPENDING"}, "v1": {"AWSCURRENT", "custom"}, "v3": {}},
			},
			want: `{"Name":"n","Tags":[],"VersionIdsToStages":{"v1":["AWSCURRENT","custom"],"v2":["AWSPENDING"],"v3":[]}}`,
		},
		{
			name: "output without members",
			out:  &smapi.TagResourceOutput{},
			want: `{}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := string(tt.out.AppendJSON(nil)); got != tt.want {
				t.Errorf("AppendJSON() =\n%s\nwant\n%s", got, tt.want)
			}
		})
	}
}

func TestRoundTrip(t *testing.T) {
	created := time.Unix(1523477145, 1_000_000).UTC()
	in := &smapi.ListSecretsOutput{SecretList: []smapi.SecretListEntry{{
		Name:                   str("a\u2028b"),
		CreatedDate:            &created,
		LastAccessedDate:       ptr(time.Unix(1523404800, 0).UTC()),
		RotationRules:          &smapi.RotationRulesType{AutomaticallyAfterDays: ptr(int64(30))},
		SecretVersionsToStages: map[string][]string{"v": {"AWSCURRENT"}},
	}}, NextToken: str("t")}
	var back smapi.ListSecretsOutput
	if err := json.Unmarshal(in.AppendJSON(nil), &back); err != nil {
		t.Fatalf("Unmarshal(AppendJSON()) = %v", err)
	}
	if !reflect.DeepEqual(&back, in) {
		t.Errorf("round trip = %s, want %s", back.AppendJSON(nil), in.AppendJSON(nil))
	}
}

func TestOperationsAndErrors(t *testing.T) {
	ops := smapi.Operations(smapi.UnimplementedService{})
	if len(ops) != 23 {
		t.Fatalf("len(Operations()) = %d, want 23", len(ops))
	}
	for _, op := range ops {
		if op.Service != "secretsmanager" || op.MaxBody != 1<<20 {
			t.Errorf("operation %s: service %q, max body %d", op.Name, op.Service, op.MaxBody)
		}
		for _, e := range op.Errors {
			if _, ok := smapi.Errors[e]; !ok {
				t.Errorf("operation %s: error %s is not in Errors", op.Name, e)
			}
		}
		out, err := op.Invoke(context.Background(), op.NewInput())
		if out != nil {
			t.Errorf("%s: Invoke() output = %#v, want a nil interface", op.Name, out)
		}
		e, ok := awserr.As(err)
		if !ok || e.Code != awserr.CodeNotImplemented || e.Status != http.StatusNotImplemented || !strings.Contains(e.Message, "SecretsManager."+op.Name) {
			t.Errorf("%s: Invoke() error = %#v, want a 501 NotImplementedException", op.Name, err)
		}
		wantRO := strings.HasPrefix(op.Name, "Get") || strings.HasPrefix(op.Name, "List") || strings.HasPrefix(op.Name, "Describe") ||
			strings.HasPrefix(op.Name, "BatchGet") || strings.HasPrefix(op.Name, "Validate")
		if op.ReadOnly != wantRO {
			t.Errorf("%s: ReadOnly = %t, want %t", op.Name, op.ReadOnly, wantRO)
		}
	}
	want := operation.ErrorShape{Code: "ResourceNotFoundException", Status: 400, MessageField: "Message"}
	if got := smapi.Errors["ResourceNotFoundException"]; got != want {
		t.Errorf("Errors[ResourceNotFoundException] = %+v, want %+v", got, want)
	}
	if got := smapi.Errors["InternalServiceError"]; got.Status != 500 || !got.Fault {
		t.Errorf("Errors[InternalServiceError] = %+v, want 500 fault", got)
	}
	if smapi.TargetPrefix != "secretsmanager" || smapi.ServiceID != "SecretsManager" {
		t.Errorf("TargetPrefix, ServiceID = %q, %q", smapi.TargetPrefix, smapi.ServiceID)
	}
}
