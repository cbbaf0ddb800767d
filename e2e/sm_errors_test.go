package e2e

import (
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
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
