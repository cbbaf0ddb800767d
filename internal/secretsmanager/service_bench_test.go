package secretsmanager

import (
	"crypto/rand"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/keyfort/keyfort/internal/envelope"
	"github.com/keyfort/keyfort/internal/kms"
	"github.com/keyfort/keyfort/internal/secretsmanager/smapi"
	"github.com/keyfort/keyfort/internal/storage/sqlite"
)

// newEnvTB is newEnv for a benchmark.
func newEnvTB(tb testing.TB) *env {
	tb.Helper()
	ctx := tb.Context()
	path := filepath.Join(tb.TempDir(), "db")
	store, err := sqlite.Open(ctx, path, sqlite.Options{})
	if err != nil {
		tb.Fatalf("sqlite.Open: %v", err)
	}
	tb.Cleanup(func() { _ = store.Close() })
	root, err := envelope.GenerateRootKey(rand.Reader)
	if err != nil {
		tb.Fatalf("GenerateRootKey: %v", err)
	}
	c := &clock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
	k := kms.New(kms.Config{Store: store, Sealer: envelope.NewSealer(nil, root), Now: c.Now})
	sm := New(Config{Store: store, KMS: k, Now: c.Now})
	return &env{sm: sm, kms: k, clock: c, path: path, ctx: asCaller(ctx, testAccount, testRegion)}
}

// newBenchEnv is newEnv for a benchmark: n secrets named bench/secret-00000...
// with a description and a 64-character value, each read once.
func newBenchEnv(b *testing.B, n int) *env {
	b.Helper()
	e := newEnvTB(b)
	for i := range n {
		name := fmt.Sprintf("bench/secret-%05d", i)
		_, err := e.sm.CreateSecret(e.ctx, &smapi.CreateSecretInput{Name: str(name), Description: str(fmt.Sprintf("bench secret %d", i)),
			SecretString: secretString(fmt.Sprintf("%064d", i))})
		if err == nil {
			_, err = e.sm.GetSecretValue(e.ctx, &smapi.GetSecretValueInput{SecretId: str(name)})
		}
		if err != nil {
			b.Fatal(err)
		}
	}
	return e
}

// BenchmarkGetSecretValue is the service's own work for a read (the KMS
// Decrypt of the data key included), without HTTP, codec or audit.
func BenchmarkGetSecretValue(b *testing.B) {
	e := newBenchEnv(b, 1)
	in := &smapi.GetSecretValueInput{SecretId: str("bench/secret-00000")}
	var buf []byte
	b.ReportAllocs()
	for b.Loop() {
		out, err := e.sm.GetSecretValue(e.ctx, in)
		if err != nil {
			b.Fatal(err)
		}
		buf = out.AppendJSON(buf[:0])
	}
}

// BenchmarkListSecretsPage is one page of 100 of a listing of 2,000 secrets
// (default sort), and its encoding into a reused buffer (as the server's
// codec does), without HTTP or audit.
func BenchmarkListSecretsPage(b *testing.B) {
	e := newBenchEnv(b, 2000)
	in := &smapi.ListSecretsInput{MaxResults: ptr(int32(100))}
	var buf []byte
	b.ReportAllocs()
	for b.Loop() {
		out, err := e.sm.ListSecrets(e.ctx, in)
		if err != nil {
			b.Fatal(err)
		}
		buf = out.AppendJSON(buf[:0])
	}
}
