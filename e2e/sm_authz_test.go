package e2e

import (
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/keyfort/keyfort/internal/keyfortest"
)

// TestSecretResourcePolicyDecides shows a secret's resource policy deciding
// for the account root in development auth: an explicit deny binds it, and
// removing the policy lifts it at once.
func TestSecretResourcePolicyDecides(t *testing.T) {
	srv := keyfortest.Start(t)
	c := srv.SecretsManagerAs(acctA, "us-east-1")
	sec := createSecret(t, c, "app/db", "s3cret")
	deny := `{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Principal":"*","Action":"secretsmanager:GetSecretValue","Resource":"*"}]}`
	_, err := c.PutResourcePolicy(ctxT(t), &secretsmanager.PutResourcePolicyInput{SecretId: aws.String("app/db"), ResourcePolicy: aws.String(deny)})
	mustNoErr(t, err, "PutResourcePolicy")
	_, err = c.GetSecretValue(ctxT(t), &secretsmanager.GetSecretValueInput{SecretId: aws.String("app/db")})
	wantAPIError(t, err, "AccessDeniedException",
		"User: arn:aws:iam::"+acctA+":root is not authorized to perform: secretsmanager:GetSecretValue on resource: app/db with an explicit deny in a resource-based policy")
	_, err = c.GetSecretValue(ctxT(t), &secretsmanager.GetSecretValueInput{SecretId: sec.ARN})
	wantAPIError(t, err, "AccessDeniedException", "on resource: "+aws.ToString(sec.ARN)+" with an explicit deny")
	// BatchGetSecretValue reports the refusal per secret.
	batch, err := c.BatchGetSecretValue(ctxT(t), &secretsmanager.BatchGetSecretValueInput{SecretIdList: []string{"app/db"}})
	mustNoErr(t, err, "BatchGetSecretValue")
	if len(batch.SecretValues) != 0 || len(batch.Errors) != 1 || aws.ToString(batch.Errors[0].ErrorCode) != "AccessDeniedException" {
		t.Fatalf("BatchGetSecretValue = %d values, errors %+v", len(batch.SecretValues), batch.Errors)
	}
	_, err = c.DescribeSecret(ctxT(t), &secretsmanager.DescribeSecretInput{SecretId: aws.String("app/db")})
	mustNoErr(t, err, "DescribeSecret is not denied")
	_, err = c.DeleteResourcePolicy(ctxT(t), &secretsmanager.DeleteResourcePolicyInput{SecretId: aws.String("app/db")})
	mustNoErr(t, err, "DeleteResourcePolicy")
	if got := secretValue(t, c, "app/db"); got != "s3cret" {
		t.Fatalf("GetSecretValue after the policy is gone = %q", got)
	}
}

// TestSecretAcrossAccounts shares a secret with another account: the
// resource policy and a customer managed key whose policy lets the account
// in; a secret under the default key cannot be shared.
func TestSecretAcrossAccounts(t *testing.T) {
	srv := keyfortest.Start(t)
	ka := srv.KMSAs(acctA, "us-east-1")
	a, b := srv.SecretsManagerAs(acctA, "us-east-1"), srv.SecretsManagerAs(acctB, "us-east-1")
	keyPolicy := `{"Version":"2012-10-17","Statement":[
	 {"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::` + acctA + `:root"},"Action":"kms:*","Resource":"*"},
	 {"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::` + acctB + `:root"},"Action":["kms:Decrypt","kms:GenerateDataKey"],"Resource":"*",
	  "Condition":{"StringEquals":{"kms:ViaService":"secretsmanager.us-east-1.amazonaws.com"}}}]}`
	key := createKey(t, ka, &kms.CreateKeyInput{Policy: aws.String(keyPolicy)})
	shared, err := a.CreateSecret(ctxT(t), &secretsmanager.CreateSecretInput{Name: aws.String("shared"), SecretString: aws.String("for b"), KmsKeyId: key.Arn})
	mustNoErr(t, err, "CreateSecret shared")
	plain := createSecret(t, a, "plain", "default key")
	policy := aws.String(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::` + acctB + `:root"},"Action":["secretsmanager:GetSecretValue","secretsmanager:PutSecretValue"],"Resource":"*"}]}`)
	for _, arn := range []*string{shared.ARN, plain.ARN} {
		_, err = a.PutResourcePolicy(ctxT(t), &secretsmanager.PutResourcePolicyInput{SecretId: arn, ResourcePolicy: policy})
		mustNoErr(t, err, "PutResourcePolicy")
	}

	if got := secretValue(t, b, aws.ToString(shared.ARN)); got != "for b" {
		t.Fatalf("other account GetSecretValue = %q", got)
	}
	_, err = b.PutSecretValue(ctxT(t), &secretsmanager.PutSecretValueInput{SecretId: shared.ARN, SecretString: aws.String("from b")})
	mustNoErr(t, err, "other account PutSecretValue")
	if got := secretValue(t, a, "shared"); got != "from b" {
		t.Fatalf("owner reads %q after the other account's PutSecretValue", got)
	}
	_, err = b.DescribeSecret(ctxT(t), &secretsmanager.DescribeSecretInput{SecretId: shared.ARN})
	wantAPIError(t, err, "AccessDeniedException",
		"User: arn:aws:iam::"+acctB+":root is not authorized to perform: secretsmanager:DescribeSecret on resource: "+aws.ToString(shared.ARN)+" because no resource-based policy allows the secretsmanager:DescribeSecret action")
	// By name, the other account looks in its own account.
	_, err = b.GetSecretValue(ctxT(t), &secretsmanager.GetSecretValueInput{SecretId: aws.String("shared")})
	wantAPIError(t, err, "ResourceNotFoundException", "")
	_, err = b.GetSecretValue(ctxT(t), &secretsmanager.GetSecretValueInput{SecretId: plain.ARN})
	wantAPIError(t, err, "InvalidRequestException", "You can't access a secret from a different AWS account if you encrypt the secret with the default KMS service key.")
	// ListSecrets lists only the caller's own secrets.
	list, err := b.ListSecrets(ctxT(t), &secretsmanager.ListSecretsInput{})
	mustNoErr(t, err, "ListSecrets")
	if len(list.SecretList) != 0 {
		t.Fatalf("other account lists %d secrets", len(list.SecretList))
	}
}

// TestSecretKeyThroughService uses a key whose policy allows its use only
// through Secrets Manager (kms:ViaService): direct use is refused, the
// secret works, and taking the permission away makes Secrets Manager answer
// "Access to KMS is not allowed".
func TestSecretKeyThroughService(t *testing.T) {
	srv := keyfortest.Start(t)
	k := srv.KMS()
	sm := srv.SecretsManager()
	root := "arn:aws:iam::123456789012:root"
	viaOnly := `{"Version":"2012-10-17","Statement":[
	 {"Sid":"admin","Effect":"Allow","Principal":{"AWS":"` + root + `"},"NotAction":["kms:Encrypt","kms:Decrypt","kms:ReEncrypt*","kms:GenerateDataKey*"],"Resource":"*"},
	 {"Sid":"use through Secrets Manager","Effect":"Allow","Principal":{"AWS":"` + root + `"},"Action":["kms:Decrypt","kms:GenerateDataKey"],"Resource":"*",
	  "Condition":{"StringEquals":{"kms:ViaService":"secretsmanager.us-east-1.amazonaws.com","kms:CallerAccount":"123456789012"}}}]}`
	key := createKey(t, k, &kms.CreateKeyInput{Policy: aws.String(viaOnly)})
	_, err := k.GenerateDataKey(ctxT(t), &kms.GenerateDataKeyInput{KeyId: key.KeyId, NumberOfBytes: aws.Int32(32)})
	wantAPIError(t, err, "AccessDeniedException", "because no resource-based policy allows the kms:GenerateDataKey action")

	_, err = sm.CreateSecret(ctxT(t), &secretsmanager.CreateSecretInput{Name: aws.String("via"), SecretString: aws.String("v1"), KmsKeyId: key.KeyId})
	mustNoErr(t, err, "CreateSecret under the key")
	if got := secretValue(t, sm, "via"); got != "v1" {
		t.Fatalf("GetSecretValue = %q", got)
	}
	adminOnly := `{"Version":"2012-10-17","Statement":[
	 {"Sid":"admin","Effect":"Allow","Principal":{"AWS":"` + root + `"},"NotAction":["kms:Encrypt","kms:Decrypt","kms:ReEncrypt*","kms:GenerateDataKey*"],"Resource":"*"}]}`
	_, err = k.PutKeyPolicy(ctxT(t), &kms.PutKeyPolicyInput{KeyId: key.KeyId, Policy: aws.String(adminOnly)})
	mustNoErr(t, err, "PutKeyPolicy")
	_, err = sm.GetSecretValue(ctxT(t), &secretsmanager.GetSecretValueInput{SecretId: aws.String("via")})
	wantAPIError(t, err, "AccessDeniedException", "Access to KMS is not allowed")
	_, err = sm.PutSecretValue(ctxT(t), &secretsmanager.PutSecretValueInput{SecretId: aws.String("via"), SecretString: aws.String("v2")})
	wantAPIError(t, err, "AccessDeniedException", "Access to KMS is not allowed")
}
