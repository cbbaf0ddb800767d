package app_test

import (
	"bytes"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/smithy-go"

	"github.com/keyfort/keyfort/internal/app"
	"github.com/keyfort/keyfort/internal/config"
	"github.com/keyfort/keyfort/internal/keyfortest"
)

// rootCredentials is a credentials file with one account root whose access
// keys use keyfortest's default secret.
func rootCredentials(keys ...string) string {
	var b strings.Builder
	b.WriteString("principals:\n  - arn: arn:aws:iam::111122223333:root\n    access_keys:\n")
	for _, k := range keys {
		b.WriteString("      - {id: " + k + ", secret: " + keyfortest.DefaultSecretKey + "}\n")
	}
	return b.String()
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func TestStrictAuthReload(t *testing.T) {
	const first, second = "AKIAFIRST00000000001", "AKIASECOND0000000001"
	var logs lockedBuffer
	s := keyfortest.Start(t, keyfortest.WithCredentials(rootCredentials(first)),
		keyfortest.WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
	listKeys := func(key string) error {
		t.Helper()
		_, err := s.KMSAs(key, "us-east-1").ListKeys(t.Context(), &kms.ListKeysInput{})
		return err
	}
	wantWorks := func(key string) {
		t.Helper()
		if err := listKeys(key); err != nil {
			t.Fatalf("ListKeys as %s = %v, want success", key, err)
		}
	}
	wantRefused := func(key string) {
		t.Helper()
		var ae smithy.APIError
		if err := listKeys(key); !errors.As(err, &ae) || ae.ErrorCode() != "UnrecognizedClientException" {
			t.Fatalf("ListKeys as %s = %v, want UnrecognizedClientException", key, err)
		}
	}
	write := func(content string) {
		t.Helper()
		if err := os.WriteFile(s.CredentialsFile(), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	wantWorks(first)
	wantRefused(second)

	// A good file replaces the one in force.
	write(rootCredentials(second))
	if err := s.App.Reload(); err != nil {
		t.Fatalf("Reload(good file) = %v", err)
	}
	wantWorks(second)
	wantRefused(first)
	if !strings.Contains(logs.String(), "level=INFO msg=\"credentials reloaded\"") {
		t.Errorf("no info log of the reload in %s", logs.String())
	}

	// A bad file is logged and returned; the file in force stays.
	write(rootCredentials("AKIA1"))
	err := s.App.Reload()
	const want = `credentials: principals[0] (arn:aws:iam::111122223333:root): access_keys[0]: id "AKIA1" is not 16 to 128 characters of A-Z and 0-9`
	if err == nil || err.Error() != want {
		t.Fatalf("Reload(bad file) = %v, want %q", err, want)
	}
	if !strings.Contains(logs.String(), `level=ERROR msg="credentials not reloaded; the previous ones stay in force"`) ||
		!strings.Contains(logs.String(), `access_keys[0]: id \"AKIA1\" is not 16 to 128 characters`) {
		t.Errorf("no error log of the refused reload in %s", logs.String())
	}
	wantWorks(second)

	// So does a missing file.
	if err := os.Remove(s.CredentialsFile()); err != nil {
		t.Fatal(err)
	}
	if err := s.App.Reload(); err == nil || !strings.Contains(err.Error(), "no such file or directory") {
		t.Fatalf("Reload(missing file) = %v, want an error", err)
	}
	wantWorks(second)
}

func TestStrictAuthBadFileStopsStart(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "credentials.yaml")
	if err := os.WriteFile(file, []byte("principals:\n  - arn: arn:aws:iam::111122223333:root\n    policies: ['{}']\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := config.Default()
	cfg.DataDir = filepath.Join(dir, "data")
	cfg.Listen = "127.0.0.1:0"
	cfg.Auth = config.AuthStrict
	cfg.Credentials = file
	a, err := app.New(t.Context(), cfg, app.Options{LookupEnv: func(string) (string, bool) { return "", false }})
	if err == nil {
		a.Close()
		t.Fatal("New with a bad credentials file = nil, want an error")
	}
	const want = "app: credentials: principals[0] (arn:aws:iam::111122223333:root): policies: the account root cannot have policies"
	if !strings.HasPrefix(err.Error(), want) || strings.Contains(err.Error(), "\n") {
		t.Errorf("New = %v, want one line starting %q", err, want)
	}
}

func TestDevAuthReloadIsANoOp(t *testing.T) {
	s := keyfortest.Start(t)
	if err := s.App.Reload(); err != nil {
		t.Errorf("Reload in dev auth = %v, want nil", err)
	}
}
