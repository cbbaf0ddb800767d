package e2e

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/keyfort/keyfort/internal/keyfortest"
)

// TestSMErrorTextsMatchAWS asserts the codes and messages that AWS answered
// in LocalStack's AWS-validated snapshot tests (tests/aws/services/
// secretsmanager/test_secretsmanager.snapshot.json); each case names the
// snapshot test it comes from.
func TestSMErrorTextsMatchAWS(t *testing.T) {
	_, c := startSM(t)
	ctx := ctxT(t)
	const notFound = "Secrets Manager can't find the specified secret."
	const invalidName = "Invalid name. Must be a valid name containing alphanumeric characters, or any of the following: -/_+=.@!"

	// test_secret_not_found
	_, err := c.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String("e2e-no-such-secret")})
	wantExactAPIError(t, err, "ResourceNotFoundException", notFound)
	_, err = c.ListSecretVersionIds(ctx, &secretsmanager.ListSecretVersionIdsInput{SecretId: aws.String("e2e-no-such-secret")})
	wantExactAPIError(t, err, "ResourceNotFoundException", notFound)

	// test_invalid_secret_name
	_, err = c.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String(" Inv *?!]Name"), SecretString: aws.String("x")})
	wantExactAPIError(t, err, "ValidationException", invalidName)
	_, err = c.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String("Inv Name")})
	wantExactAPIError(t, err, "ValidationException", invalidName)

	// test_secret_exists_snapshots
	createSecret(t, c, "e2e-exists", "v1")
	_, err = c.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String("e2e-exists"), SecretString: aws.String("v2")})
	wantExactAPIError(t, err, "ResourceExistsException", "The operation failed because the secret e2e-exists already exists.")

	// test_get_secret_value_errors
	_, err = c.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String("e2e-exists"), VersionStage: aws.String("AWSPREVIOUS")})
	wantExactAPIError(t, err, "ResourceNotFoundException", "Secrets Manager can't find the specified secret value for staging label: AWSPREVIOUS")
	cur, err := c.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String("e2e-exists")})
	mustNoErr(t, err, "GetSecretValue")
	_, err = c.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String("e2e-exists"), VersionId: cur.VersionId, VersionStage: aws.String("AWSPENDING")})
	wantExactAPIError(t, err, "InvalidRequestException", "You provided a VersionStage that is not associated to the provided VersionId.")

	// test_secret_version_not_found: a secret created without a value.
	_, err = c.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String("e2e-empty")})
	mustNoErr(t, err, "CreateSecret without value")
	_, err = c.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String("e2e-empty")})
	wantExactAPIError(t, err, "ResourceNotFoundException", "Secrets Manager can't find the specified secret value for staging label: AWSCURRENT")
	const vid = "11111111-2222-4333-8444-555555555555"
	_, err = c.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String("e2e-empty"), VersionId: aws.String(vid)})
	wantExactAPIError(t, err, "ResourceNotFoundException", "Secrets Manager can't find the specified secret value for VersionId: "+vid)
	_, err = c.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String("e2e-empty"), VersionStage: aws.String("AWSPENDING")})
	wantExactAPIError(t, err, "ResourceNotFoundException", "Secrets Manager can't find the specified secret value for staging label: AWSPENDING")

	// test_exp_raised_on_creation_of_secret_scheduled_for_deletion
	_, err = c.DeleteSecret(ctx, &secretsmanager.DeleteSecretInput{SecretId: aws.String("e2e-exists")})
	mustNoErr(t, err, "DeleteSecret")
	_, err = c.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String("e2e-exists"), SecretString: aws.String("v3")})
	wantExactAPIError(t, err, "InvalidRequestException", "You can't create this secret because a secret with this name is already scheduled for deletion.")
}

// TestSMMissingClientRequestToken sends raw requests without the
// ClientRequestToken the SDKs always fill in: AWS refuses them before it
// looks the secret up (InvalidParameterException for RotateSecret), as its
// recorded responses show (LocalStack's test_no_client_request_token).
func TestSMMissingClientRequestToken(t *testing.T) {
	srv := keyfortest.Start(t)
	const msg = "You must provide a ClientRequestToken value. We recommend a UUID-type value."
	for _, tc := range []struct {
		op, body, code string
	}{
		{"CreateSecret", `{"Name":"no-token","SecretString":"thisisthesecret","Description":"d"}`, "InvalidRequestException"},
		{"UpdateSecret", `{"SecretId":"never-created","SecretString":"thisisthesecret","Description":"d"}`, "InvalidRequestException"},
		{"PutSecretValue", `{"SecretId":"never-created","SecretString":"thisisthesecret"}`, "InvalidRequestException"},
		{"RotateSecret", `{"SecretId":"never-created"}`, "InvalidParameterException"},
	} {
		t.Run(tc.op, func(t *testing.T) {
			status, raw := rawCall(t, srv, "secretsmanager", tc.op, tc.body)
			var body struct {
				Type    string `json:"__type"`
				Message string `json:"message"`
			}
			if err := json.Unmarshal(raw, &body); err != nil {
				t.Fatalf("decode error body %q: %v", raw, err)
			}
			if status != http.StatusBadRequest || !strings.HasSuffix(body.Type, tc.code) || body.Message != msg {
				t.Errorf("%s without a token: HTTP %d %q %q, want 400 %s %q", tc.op, status, body.Type, body.Message, tc.code, msg)
			}
		})
	}
	// Nothing was created.
	_, err := srv.SecretsManager().DescribeSecret(ctxT(t), &secretsmanager.DescribeSecretInput{SecretId: aws.String("no-token")})
	wantAPIError(t, err, "ResourceNotFoundException", "")
}
