package keyforttest_test

import (
	"errors"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	kmstypes "github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/keyfort/keyfort/keyforttest"
)

// TestExample is a whole test to copy: a key encrypts and decrypts, a
// secret is stored and read, and a key scheduled for deletion is gone once
// the clock has moved past its waiting period.
func TestExample(t *testing.T) {
	clock := keyforttest.NewClock(time.Now())
	srv := keyforttest.Start(t, keyforttest.WithClock(clock))
	ctx := t.Context()
	kmsClient := srv.KMS()
	smClient := srv.SecretsManager()

	// A symmetric key encrypts and decrypts.
	key, err := kmsClient.CreateKey(ctx, &kms.CreateKeyInput{Description: aws.String("example")})
	if err != nil {
		t.Fatalf("CreateKey: %v", err)
	}
	keyID := aws.ToString(key.KeyMetadata.KeyId)
	enc, err := kmsClient.Encrypt(ctx, &kms.EncryptInput{KeyId: &keyID, Plaintext: []byte("hello")})
	if err != nil {
		t.Fatalf("Encrypt: %v", err)
	}
	dec, err := kmsClient.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: enc.CiphertextBlob})
	if err != nil {
		t.Fatalf("Decrypt: %v", err)
	}
	if got := string(dec.Plaintext); got != "hello" {
		t.Errorf("Decrypt = %q, want %q", got, "hello")
	}

	// A secret is stored and read back.
	_, err = smClient.CreateSecret(ctx, &secretsmanager.CreateSecretInput{
		Name:         aws.String("app/db"),
		SecretString: aws.String(`{"password":"s3cret"}`),
	})
	if err != nil {
		t.Fatalf("CreateSecret: %v", err)
	}
	val, err := smClient.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String("app/db")})
	if err != nil {
		t.Fatalf("GetSecretValue: %v", err)
	}
	if got := aws.ToString(val.SecretString); got != `{"password":"s3cret"}` {
		t.Errorf("GetSecretValue = %q, want the stored value", got)
	}

	// A key scheduled for deletion in 7 days is gone 8 days later.
	_, err = kmsClient.ScheduleKeyDeletion(ctx, &kms.ScheduleKeyDeletionInput{KeyId: &keyID, PendingWindowInDays: aws.Int32(7)})
	if err != nil {
		t.Fatalf("ScheduleKeyDeletion: %v", err)
	}
	clock.Advance(8 * 24 * time.Hour)
	srv.RunJobs(t)
	_, err = kmsClient.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: &keyID})
	var notFound *kmstypes.NotFoundException
	if !errors.As(err, &notFound) {
		t.Errorf("DescribeKey after the deletion window = %v, want NotFoundException", err)
	}
}
