package app_test

import (
	"bytes"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/keyfort/keyfort/internal/app"
	"github.com/keyfort/keyfort/internal/config"
)

// TestInsecureDevAuthWarns checks the loud line --insecure-dev-auth prints
// when it serves dev auth beyond loopback.
func TestInsecureDevAuthWarns(t *testing.T) {
	var buf syncBuffer
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	cfg.Listen = "0.0.0.0:0"
	cfg.InsecureDevAuth = true
	a, err := app.New(t.Context(), cfg, app.Options{
		Logger:    slog.New(slog.NewTextHandler(&buf, nil)),
		LookupEnv: func(string) (string, bool) { return "", false },
	})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if err := a.Start(); err != nil {
		t.Fatal(err)
	}
	var line string
	for l := range strings.Lines(buf.String()) {
		if strings.Contains(l, "insecure-dev-auth") {
			line = l
		}
	}
	for _, want := range []string{"level=ERROR", "any caller", "root of an AWS account", "non-loopback"} {
		if !strings.Contains(line, want) {
			t.Errorf("--insecure-dev-auth on 0.0.0.0 logged %q, want it to contain %q", line, want)
		}
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }
