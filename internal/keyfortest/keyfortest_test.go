package keyfortest

import (
	"bytes"
	"os"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
)

func TestRestartKeepsDataAndRootKey(t *testing.T) {
	key := bytes.Repeat([]byte{7}, 32)
	s := Start(t, WithRootKey(key))
	ctx := t.Context()
	out, err := s.KMSAs("444455556666", "eu-central-1").CreateKey(ctx, &kms.CreateKeyInput{})
	if err != nil {
		t.Fatalf("CreateKey = %v", err)
	}
	if got, want := aws.ToString(out.KeyMetadata.Arn), "arn:aws:kms:eu-central-1:444455556666:key/"; len(got) < len(want) || got[:len(want)] != want {
		t.Errorf("CreateKey ARN = %q, want prefix %q", got, want)
	}
	dir := s.DataDir
	s.Restart(t)
	if s.DataDir != dir {
		t.Errorf("DataDir after Restart = %q, want %q", s.DataDir, dir)
	}
	if _, err := s.KMSAs("444455556666", "eu-central-1").DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: out.KeyMetadata.KeyId}); err != nil {
		t.Errorf("DescribeKey after Restart = %v", err)
	}
}

func TestPostgresStore(t *testing.T) {
	dsn := os.Getenv("KEYFORT_TEST_POSTGRES")
	if dsn == "" {
		t.Skip("KEYFORT_TEST_POSTGRES is not set")
	}
	s := Start(t, WithStore(dsn))
	ctx := t.Context()
	out, err := s.KMS().CreateKey(ctx, &kms.CreateKeyInput{})
	if err != nil {
		t.Fatalf("CreateKey = %v", err)
	}
	s.Restart(t)
	if _, err := s.KMS().DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: out.KeyMetadata.KeyId}); err != nil {
		t.Errorf("DescribeKey after Restart = %v", err)
	}
	// A second server on the same database has its own schema.
	other := Start(t, WithStore(dsn))
	keys, err := other.KMS().ListKeys(ctx, &kms.ListKeysInput{})
	if err != nil {
		t.Fatalf("ListKeys = %v", err)
	}
	if len(keys.Keys) != 0 {
		t.Errorf("ListKeys on a fresh schema = %d keys, want 0", len(keys.Keys))
	}
}
