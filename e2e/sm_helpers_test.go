package e2e

import (
	"errors"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/smithy-go"

	"github.com/keyfort/keyfort/internal/keyfortest"
)

// startSM starts a server and returns it with its Secrets Manager client,
// and fails the test when the service does not answer.
func startSM(t *testing.T, opts ...keyfortest.Option) (*keyfortest.Server, *secretsmanager.Client) {
	t.Helper()
	srv := keyfortest.Start(t, opts...)
	c := srv.SecretsManager()
	_, err := c.GetRandomPassword(ctxT(t), &secretsmanager.GetRandomPasswordInput{PasswordLength: aws.Int64(8)})
	var ae smithy.APIError
	if errors.As(err, &ae) && ae.ErrorCode() == "NotImplementedException" {
		t.Fatal("Secrets Manager answers NotImplementedException: it is not wired into the server (internal/app/services.go)")
	}
	mustNoErr(t, err, "GetRandomPassword")
	return srv, c
}

func createSecret(t *testing.T, c *secretsmanager.Client, name, value string) *secretsmanager.CreateSecretOutput {
	t.Helper()
	out, err := c.CreateSecret(ctxT(t), &secretsmanager.CreateSecretInput{Name: aws.String(name), SecretString: aws.String(value)})
	mustNoErr(t, err, "CreateSecret("+name+")")
	return out
}

func secretValue(t *testing.T, c *secretsmanager.Client, id string) string {
	t.Helper()
	out, err := c.GetSecretValue(ctxT(t), &secretsmanager.GetSecretValueInput{SecretId: aws.String(id)})
	mustNoErr(t, err, "GetSecretValue("+id+")")
	return aws.ToString(out.SecretString)
}
