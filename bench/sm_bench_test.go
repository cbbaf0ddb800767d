package bench

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/keyfort/keyfort/internal/keyfortest"
)

const smAuthHeader = "AWS4-HMAC-SHA256 Credential=AKIDBENCH/20260101/us-east-1/secretsmanager/aws4_request, SignedHeaders=content-type;host;x-amz-date;x-amz-target, Signature=0000000000000000000000000000000000000000000000000000000000000000"

// smBenchOp is benchOp for Secrets Manager (its credential scope names the
// secretsmanager service).
func smBenchOp(b *testing.B, target string, body []byte, srv *keyfortest.Server) {
	c := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			req, _ := http.NewRequest("POST", srv.URL, bytes.NewReader(body))
			req.Header.Set("Content-Type", "application/x-amz-json-1.1")
			req.Header.Set("X-Amz-Target", target)
			req.Header.Set("X-Amz-Date", "20260101T000000Z")
			req.Header.Set("Authorization", smAuthHeader)
			resp, err := c.Do(req)
			if err != nil {
				b.Fatal(err)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				b.Fatalf("%s: HTTP %d", target, resp.StatusCode)
			}
		}
	})
}

// setupSecrets starts a server with n secrets named bench/secret-00000...,
// each read once (so that reads in the benchmark record no access date).
func setupSecrets(b *testing.B, n int) *keyfortest.Server {
	srv := keyfortest.Start(b)
	c := srv.SecretsManager()
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += 8 {
				name := fmt.Sprintf("bench/secret-%05d", i)
				_, err := c.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String(name), SecretString: aws.String(fmt.Sprintf("%064d", i))})
				if err == nil {
					_, err = c.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(name)})
				}
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
	return srv
}

func BenchmarkServerGetSecretValue(b *testing.B) {
	srv := setupSecrets(b, 1)
	smBenchOp(b, "secretsmanager.GetSecretValue", []byte(`{"SecretId":"bench/secret-00000"}`), srv)
}

func BenchmarkServerDescribeSecret(b *testing.B) {
	srv := setupSecrets(b, 1)
	smBenchOp(b, "secretsmanager.DescribeSecret", []byte(`{"SecretId":"bench/secret-00000"}`), srv)
}

// BenchmarkServerListSecrets reads the first page (100 secrets, default sort)
// of a listing of 2,000 secrets.
func BenchmarkServerListSecrets(b *testing.B) {
	srv := setupSecrets(b, 2000)
	smBenchOp(b, "secretsmanager.ListSecrets", []byte(`{"MaxResults":100}`), srv)
}
