package main

import (
	"bytes"
	"context"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestServeRefusesWrongRootKey runs `keyfort serve` on a store whose root
// key is missing, then another: each is refused with one line naming the
// key the store expects, and nothing is written.
func TestServeRefusesWrongRootKey(t *testing.T) {
	dir := t.TempDir()
	var out, errb syncBuffer
	// rootkey rotate on a new data directory leaves a store sealed under
	// the installed root.key.
	if code := Main(context.Background(), []string{"rootkey", "rotate", "--data", dir, "--log-level", "error"}, &out, &errb, noEnv); code != 0 {
		t.Fatalf("keyfort rootkey rotate = %d, stderr %q", code, errb.String())
	}
	m := regexp.MustCompile(`to ([0-9a-f]{16})\n`).FindStringSubmatch(out.String())
	if m == nil {
		t.Fatalf("keyfort rootkey rotate printed %q", out.String())
	}
	want := "the store is sealed under root key " + m[1]
	if err := os.Rename(filepath.Join(dir, "root.key"), filepath.Join(t.TempDir(), "root.key")); err != nil {
		t.Fatal(err)
	}
	names := func() string {
		des, _ := os.ReadDir(dir)
		var s []string
		for _, de := range des {
			s = append(s, de.Name())
		}
		return strings.Join(s, " ")
	}
	before := names()

	otherKey := "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=" // 32 bytes 0..31, base64
	tests := []struct {
		name string
		env  func(string) (string, bool)
		want string
	}{
		{"missing", noEnv, "refusing to generate a new root key beside existing data"},
		{"wrong", func(k string) (string, bool) {
			if k == "KEYFORT_ROOT_KEY" {
				return otherKey, true
			}
			return "", false
		}, "the root key from KEYFORT_ROOT_KEY is "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stderr syncBuffer
			code := Main(context.Background(), []string{"serve", "--listen", "127.0.0.1:0", "--data", dir, "--log-level", "error"}, &bytes.Buffer{}, &stderr, tt.env)
			got := stderr.String()
			if code != 1 || !strings.Contains(got, want) || !strings.Contains(got, tt.want) || strings.Count(got, "\n") != 1 {
				t.Errorf("keyfort serve = %d, stderr %q; want 1 and one line with %q and %q", code, got, want, tt.want)
			}
			if after := names(); after != before {
				t.Errorf("data directory after a refused serve = %q, want %q", after, before)
			}
		})
	}
}

// TestServeOnUsedPortLeavesNoDataDir runs `keyfort serve` on a port in use
// with a new data directory: it fails and the directory is not left behind.
func TestServeOnUsedPortLeavesNoDataDir(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	dir := filepath.Join(t.TempDir(), "data")
	var stderr syncBuffer
	code := Main(context.Background(), []string{"serve", "--listen", busy.Addr().String(), "--data", dir, "--log-level", "error"}, &bytes.Buffer{}, &stderr, noEnv)
	if code != 1 || !strings.Contains(stderr.String(), "address already in use") {
		t.Errorf("keyfort serve on a used port = %d, stderr %q; want 1, address already in use", code, stderr.String())
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("the data directory of a failed serve exists: %v", err)
	}
}
