package app_test

import (
	"bufio"
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/smithy-go"

	"github.com/keyfort/keyfort/internal/app"
	"github.com/keyfort/keyfort/internal/config"
	"github.com/keyfort/keyfort/internal/keyfortest"
)

func TestHealth(t *testing.T) {
	s := keyfortest.Start(t)
	resp, err := http.Get(s.URL + "/health")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body strings.Builder
	if _, err := bufio.NewReader(resp.Body).WriteTo(&body); err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 || body.String() != `{"status":"ok"}` {
		t.Errorf("GET /health = %d %s, want 200 {\"status\":\"ok\"}", resp.StatusCode, body.String())
	}
	if resp.Header.Get("X-Amzn-RequestId") == "" {
		t.Errorf("GET /health has no x-amzn-RequestId")
	}
}

// TestSDKRoundTripAcrossRestart drives the KMS service wired by app through
// the SDK, restarts on the same data directory and root key, and decrypts
// again.
func TestSDKRoundTripAcrossRestart(t *testing.T) {
	s := keyfortest.Start(t)
	ctx := t.Context()
	k, err := s.KMS().CreateKey(ctx, &kms.CreateKeyInput{Description: aws.String("app test")})
	if err != nil {
		t.Fatalf("CreateKey = %v", err)
	}
	enc, err := s.KMS().Encrypt(ctx, &kms.EncryptInput{KeyId: k.KeyMetadata.KeyId, Plaintext: []byte("hunter2")})
	if err != nil {
		t.Fatalf("Encrypt = %v", err)
	}
	s.Restart(t)
	dec, err := s.KMS().Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: enc.CiphertextBlob})
	if err != nil {
		t.Fatalf("Decrypt after restart = %v", err)
	}
	if string(dec.Plaintext) != "hunter2" {
		t.Errorf("Decrypt after restart = %q, want %q", dec.Plaintext, "hunter2")
	}
	// Another account does not see the key.
	_, err = s.KMSAs("111122223333", "us-east-1").DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: k.KeyMetadata.KeyId})
	var apiErr smithy.APIError
	if !errors.As(err, &apiErr) || apiErr.ErrorCode() != "NotFoundException" {
		t.Errorf("DescribeKey from another account = %v, want NotFoundException", err)
	}

	// The audit trail holds the requests and never the plaintext.
	s.Close()
	b, err := os.ReadFile(filepath.Join(s.DataDir, "audit", "keyfort-audit.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"eventName":"CreateKey"`, `"eventName":"Encrypt"`, `"eventName":"Decrypt"`, `"errorCode":"NotFoundException"`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("audit trail lacks %s", want)
		}
	}
	if strings.Contains(string(b), "hunter2") || strings.Contains(string(b), "aHVudGVyMg") {
		t.Errorf("audit trail contains the plaintext")
	}
}

func TestDataDirAndRootKey(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	s := keyfortest.Start(t, keyfortest.WithDataDir(dir))
	for path, mode := range map[string]os.FileMode{dir: 0o700, filepath.Join(dir, "root.key"): 0o600} {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != mode {
			t.Errorf("%s mode = %v, want %v", path, fi.Mode().Perm(), mode)
		}
	}
	if _, err := os.Stat(s.DBPath()); err != nil {
		t.Errorf("database: %v", err)
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	tests := []struct {
		name   string
		modify func(*config.Config)
		want   string
	}{
		{"non-loopback without insecure-dev-auth", func(c *config.Config) { c.Listen = "0.0.0.0:0" }, "needs --insecure-dev-auth"},
		{"strict auth without credentials", func(c *config.Config) { c.Auth = "strict" }, "strict auth needs a credentials file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := config.Default()
			cfg.DataDir = t.TempDir()
			cfg.Listen = "127.0.0.1:0"
			tt.modify(&cfg)
			a, err := app.New(t.Context(), cfg, app.Options{})
			if err == nil {
				a.Close()
				t.Fatalf("New = nil, want error")
			}
			var ce *config.Error
			if !errors.As(err, &ce) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("New = %v, want a config error containing %q", err, tt.want)
			}
		})
	}
}

func TestRunShutsDownOnCancel(t *testing.T) {
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	cfg.Listen = "127.0.0.1:0"
	a, err := app.New(t.Context(), cfg, app.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Start(); err != nil {
		t.Fatal(err)
	}
	addr := a.Addr()
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	resp, err := http.Get("http://" + addr + "/health")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run = %v, want nil", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
	if _, err := http.Get("http://" + addr + "/health"); err == nil {
		t.Errorf("server still answers after shutdown")
	}
	if err := a.Close(); err != nil {
		t.Errorf("second Close = %v, want nil", err)
	}
}

// TestDataDirectoryIsLocked checks that a second server on the same data
// directory refuses to start instead of sharing the embedded store.
func TestDataDirectoryIsLocked(t *testing.T) {
	dir := t.TempDir()
	keyfortest.Start(t, keyfortest.WithDataDir(dir))
	cfg := config.Default()
	cfg.DataDir = dir
	cfg.Listen = "127.0.0.1:0"
	a, err := app.New(t.Context(), cfg, app.Options{LookupEnv: func(string) (string, bool) { return "", false }})
	if err == nil {
		a.Close()
		t.Fatal("a second app on the same data directory started")
	}
	if !strings.Contains(err.Error(), "in use by another keyfort process") {
		t.Errorf("second app.New = %v, want the data directory in use", err)
	}
}

// metricsListening matches the line Start logs for --metrics-listen, with
// the listener's bound address: how an operator who asked for port 0
// learns where to scrape.
var metricsListening = regexp.MustCompile(`msg="metrics listening" addr=(\S+)`)

// TestReadyFollowsStartAndClose checks App.Ready (GET /ready): not ready
// after New, ready once Start has started the jobs, not ready once Close
// has begun; and that the metrics listener, asked for port 0, logs a bound
// address of its own, not the main listener's.
func TestReadyFollowsStartAndClose(t *testing.T) {
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	cfg.Listen = "127.0.0.1:0"
	cfg.MetricsListen = "127.0.0.1:0"
	var logs lockedBuffer
	a, err := app.New(t.Context(), cfg, app.Options{LookupEnv: func(string) (string, bool) { return "", false },
		Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if err := a.Ready(t.Context()); err == nil {
		t.Error("Ready before Start = nil, want an error")
	}
	if err := a.Start(); err != nil {
		t.Fatal(err)
	}
	if err := a.Ready(t.Context()); err != nil {
		t.Errorf("Ready after Start = %v", err)
	}
	if m := metricsListening.FindStringSubmatch(logs.String()); m == nil || m[1] == "127.0.0.1:0" || m[1] == a.Addr() {
		t.Errorf("metrics listening line %q beside Addr %q, want the metrics listener's own bound address", m, a.Addr())
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if err := a.Ready(t.Context()); err == nil {
		t.Error("Ready after Close = nil, want an error")
	}
}

// TestMetricsListenTaken checks that Start fails, leaving nothing
// listening, when the metrics address cannot be had.
func TestMetricsListenTaken(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	cfg.Listen = "127.0.0.1:0"
	cfg.MetricsListen = l.Addr().String()
	a, err := app.New(t.Context(), cfg, app.Options{LookupEnv: func(string) (string, bool) { return "", false }})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if err := a.Start(); err == nil || !strings.Contains(err.Error(), "metrics listen") {
		t.Errorf("Start with the metrics address taken = %v, want a metrics listen error", err)
	}
}
