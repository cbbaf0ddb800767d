package secretsmanager

import (
	"context"
	"crypto/rand"
	"errors"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keyfort/keyfort/internal/awserr"
	"github.com/keyfort/keyfort/internal/envelope"
	"github.com/keyfort/keyfort/internal/identity"
	"github.com/keyfort/keyfort/internal/kms"
	"github.com/keyfort/keyfort/internal/kms/kmsapi"
	"github.com/keyfort/keyfort/internal/secretsmanager/smapi"
	"github.com/keyfort/keyfort/internal/sensitive"
	"github.com/keyfort/keyfort/internal/storage"
	"github.com/keyfort/keyfort/internal/storage/sqlite"
)

const (
	testAccount = "123456789012"
	testRegion  = "us-east-1"
)

// clock is a settable test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// env is a Secrets Manager service over a real SQLite store and the real KMS
// service.
type env struct {
	sm    *Service
	kms   *kms.Service
	clock *clock
	ctx   context.Context
	path  string
}

func newEnv(t *testing.T) *env {
	t.Helper()
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "db")
	store, err := sqlite.Open(ctx, path, sqlite.Options{})
	if err != nil {
		t.Fatalf("sqlite.Open: %v", err)
	}
	t.Cleanup(func() { _ = store.Close() })
	root, err := envelope.GenerateRootKey(rand.Reader)
	if err != nil {
		t.Fatalf("GenerateRootKey: %v", err)
	}
	c := &clock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
	k := kms.New(kms.Config{Store: store, Sealer: envelope.NewSealer(nil, root), Now: c.Now})
	sm := New(Config{Store: store, KMS: k, Now: c.Now})
	return &env{
		sm: sm, kms: k, clock: c, path: path,
		ctx: asCaller(ctx, testAccount, testRegion),
	}
}

func asCaller(ctx context.Context, account, region string) context.Context {
	c := identity.Root(account, region, "")
	c.RequestID = "test"
	return identity.With(ctx, c)
}

func str(s string) *string { return &s }

func secretString(s string) *sensitive.String {
	v := sensitive.String(s)
	return &v
}

// token returns a valid ClientRequestToken (32+ characters) built from s.
func token(s string) *string {
	return str((s + strings.Repeat("0", 32))[:32])
}

// wantCode asserts that err is an *awserr.Error with code and, when msgPart
// is not empty, a message containing it.
func wantCode(t *testing.T, err error, code, msgPart string) {
	t.Helper()
	if err == nil {
		t.Fatalf("got no error, want %s", code)
	}
	var e *awserr.Error
	if !errors.As(err, &e) {
		t.Fatalf("error %v is not an *awserr.Error, want %s", err, code)
	}
	if e.Code != code {
		t.Fatalf("error = %s: %s, want code %s", e.Code, e.Message, code)
	}
	if msgPart != "" && !strings.Contains(e.Message, msgPart) {
		t.Fatalf("error message = %q, want it to contain %q", e.Message, msgPart)
	}
	if _, declared := smapi.Errors[e.Code]; !declared && e.Code != awserr.CodeValidation && e.Code != awserr.CodeAccessDenied {
		t.Fatalf("error code %s is not declared by the Secrets Manager model", e.Code)
	}
}

func mustOK(t *testing.T, err error, what string) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

func (e *env) create(t *testing.T, name, value string) *smapi.CreateSecretOutput {
	t.Helper()
	out, err := e.sm.CreateSecret(e.ctx, &smapi.CreateSecretInput{Name: str(name), SecretString: secretString(value)})
	mustOK(t, err, "CreateSecret("+name+")")
	return out
}

func (e *env) get(t *testing.T, id string) *smapi.GetSecretValueOutput {
	t.Helper()
	out, err := e.sm.GetSecretValue(e.ctx, &smapi.GetSecretValueInput{SecretId: str(id)})
	mustOK(t, err, "GetSecretValue("+id+")")
	return out
}

func (e *env) describe(t *testing.T, id string) *smapi.DescribeSecretOutput {
	t.Helper()
	out, err := e.sm.DescribeSecret(e.ctx, &smapi.DescribeSecretInput{SecretId: str(id)})
	mustOK(t, err, "DescribeSecret("+id+")")
	return out
}

func (e *env) createKey(t *testing.T) string {
	t.Helper()
	out, err := e.kms.CreateKey(e.ctx, &kmsapi.CreateKeyInput{})
	mustOK(t, err, "kms.CreateKey")
	return *out.KeyMetadata.Arn
}

func scopeT() storageScope { return storageScope{Account: testAccount, Region: testRegion} }

type storageScope = storage.Scope
