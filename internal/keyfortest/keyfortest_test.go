package keyfortest

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kms"

	"github.com/keyfort/keyfort/internal/storage/postgres/pgtest"
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
	dsn := pgtest.DSN(t)
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

// TestClosedConnRetryerDoesNotRetryServerErrors checks that the harness's
// retryer lets every server answer through: a 500 is seen once, not retried.
func TestClosedConnRetryerDoesNotRetryServerErrors(t *testing.T) {
	var calls atomic.Int32
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		w.Header().Set("X-Amzn-ErrorType", "KMSInternalException")
		w.WriteHeader(500)
		_, _ = w.Write([]byte(`{"__type":"KMSInternalException","message":"boom"}`))
	}))
	defer ts.Close()
	c := kms.New(kms.Options{Region: "us-east-1", BaseEndpoint: aws.String(ts.URL),
		Credentials: credentials.NewStaticCredentialsProvider("AKID", "x", ""), Retryer: ClosedConnRetryer()})
	_, err := c.ListKeys(t.Context(), &kms.ListKeysInput{})
	if err == nil {
		t.Fatal("ListKeys against a failing server succeeded")
	}
	if n := calls.Load(); n != 1 {
		t.Errorf("server saw %d requests, want 1 (5xx must not be retried)", n)
	}
}
