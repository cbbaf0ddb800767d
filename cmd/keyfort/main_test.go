package main

import (
	"bytes"
	"context"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

func noEnv(string) (string, bool) { return "", false }

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

func TestMainUsage(t *testing.T) {
	tests := []struct {
		name       string
		args       []string
		env        map[string]string
		wantCode   int
		wantStdout string
		wantStderr string // exact when it ends in "\n"
	}{
		{name: "version", args: []string{"version"}, wantCode: 0, wantStdout: "keyfort dev\n"},
		{name: "help", args: []string{"help"}, wantCode: 0, wantStdout: "keyfort serves"},
		{name: "no command", args: nil, wantCode: 2, wantStderr: "Usage:"},
		{name: "unknown command", args: []string{"frobnicate"}, wantCode: 2,
			wantStderr: "keyfort: unknown command \"frobnicate\" (try keyfort help)\n"},
		{name: "strict auth", args: []string{"serve", "--auth", "strict"}, wantCode: 2,
			wantStderr: "keyfort: config: credentials: strict auth needs a credentials file (--credentials FILE, KEYFORT_CREDENTIALS or credentials: in the config file)\n"},
		{name: "credentials in dev auth", args: []string{"serve", "--credentials", "creds.yaml"}, wantCode: 2,
			wantStderr: "keyfort: config: credentials: is used only with --auth strict; dev auth accepts any credentials\n"},
		{name: "bad credentials file", args: []string{"serve", "--auth", "strict", "--credentials", "/nonexistent/creds.yaml", "--listen", "0.0.0.0:0"}, wantCode: 1,
			wantStderr: "keyfort: app: credentials: cannot open /nonexistent/creds.yaml: no such file or directory\n"},
		{name: "non-loopback", args: []string{"serve", "--listen", "0.0.0.0:4599"}, wantCode: 2,
			wantStderr: "keyfort: config: listen: 0.0.0.0:4599 is not a loopback address; dev auth accepts any credentials, so listening there needs --insecure-dev-auth\n"},
		{name: "bad env", args: []string{"serve"}, env: map[string]string{"KEYFORT_LOG_LEVEL": "loud"}, wantCode: 2,
			wantStderr: "keyfort: config: log-level: \"loud\" is not one of debug, info, warn, error\n"},
		{name: "tls cert without key", args: []string{"serve", "--tls-cert", "cert.pem"}, wantCode: 2,
			wantStderr: "keyfort: config: tls-key: is missing: --tls-cert needs the certificate's private key (--tls-key FILE)\n"},
		{name: "tls self-signed and cert", args: []string{"serve", "--tls-self-signed", "--tls-cert", "c.pem", "--tls-key", "k.pem"}, wantCode: 2,
			wantStderr: "keyfort: config: tls-self-signed: cannot be used with --tls-cert and --tls-key: it makes its own certificate; give either one or the other\n"},
		{name: "tls client ca without tls", args: []string{"serve"}, env: map[string]string{"KEYFORT_TLS_CLIENT_CA": "ca.pem"}, wantCode: 2,
			wantStderr: "keyfort: config: tls-client-ca: mutual TLS needs TLS: give --tls-cert and --tls-key, or --tls-self-signed\n"},
		{name: "missing tls cert", args: []string{"serve", "--tls-cert", "/nonexistent/cert.pem", "--tls-key", "/nonexistent/key.pem"}, wantCode: 1,
			wantStderr: "keyfort: app: tls-cert: open /nonexistent/cert.pem: no such file or directory\n"},
		{name: "metrics on the listen address", args: []string{"serve", "--listen", "127.0.0.1:4599", "--metrics-listen", "127.0.0.1:4599"}, wantCode: 2,
			wantStderr: "keyfort: config: metrics-listen: 127.0.0.1:4599 is the address of --listen (127.0.0.1:4599); metrics need a listener of their own\n"},
		{name: "metrics env on the listen address", args: []string{"serve"}, env: map[string]string{"KEYFORT_METRICS_LISTEN": "127.0.0.1:4599"}, wantCode: 2,
			wantStderr: "keyfort: config: metrics-listen: 127.0.0.1:4599 is the address of --listen (127.0.0.1:4599); metrics need a listener of their own\n"},
		{name: "bad flag", args: []string{"serve", "--nope"}, wantCode: 2, wantStderr: "flag provided but not defined: -nope"},
		{name: "backup without a file", args: []string{"backup"}, wantCode: 2,
			wantStderr: "keyfort: usage: keyfort backup FILE [flags] (keyfort backup -h)\n"},
		{name: "backup of PostgreSQL", args: []string{"backup", "out.db"}, env: map[string]string{"KEYFORT_STORE": "postgres://db/keyfort"}, wantCode: 1,
			wantStderr: "keyfort: app: backup: the store is PostgreSQL: back it up with pg_dump and restore it with pg_restore; keyfort backup and restore are for the embedded store\n"},
		{name: "restore of PostgreSQL", args: []string{"restore", "in.db"}, env: map[string]string{"KEYFORT_STORE": "postgresql://db/keyfort"}, wantCode: 1,
			wantStderr: "keyfort: app: restore: the store is PostgreSQL: back it up with pg_dump and restore it with pg_restore; keyfort backup and restore are for the embedded store\n"},
		{name: "backup with no store", args: []string{"backup", "out.db", "--data", "/nonexistent/data"}, wantCode: 1,
			wantStderr: "keyfort: app: backup: no Keyfort store in /nonexistent/data (/nonexistent/data/keyfort.db does not exist)\n"},
		{name: "backup flag of serve", args: []string{"backup", "out.db", "--listen", "127.0.0.1:1"}, wantCode: 2, wantStderr: "flag provided but not defined: -listen"},
		{name: "serve help", args: []string{"serve", "-h"}, wantCode: 0, wantStderr: "-listen"},
		{name: "migrate without a direction", args: []string{"migrate", "--data", "d"}, wantCode: 2,
			wantStderr: "keyfort: migrate needs exactly one of --to URL (embedded -> PostgreSQL) and --from URL (PostgreSQL -> embedded) (keyfort migrate -h)\n"},
		{name: "migrate both ways", args: []string{"migrate", "--to", "postgres://db/a", "--from", "postgres://db/b"}, wantCode: 2,
			wantStderr: "keyfort: migrate needs exactly one of"},
		{name: "migrate reads no KEYFORT_STORE", args: []string{"migrate"}, env: map[string]string{"KEYFORT_STORE": "postgres://db/keyfort"}, wantCode: 2,
			wantStderr: "keyfort: migrate needs exactly one of"},
		{name: "migrate to another database", args: []string{"migrate", "--to", "mysql://u:hunter2@db/k"}, wantCode: 2,
			wantStderr: "keyfort: --to: must be a postgres:// or postgresql:// URL\n"},
		{name: "migrate from a bad URL", args: []string{"migrate", "--from", "postgres://u:hunter2@db:port/k"}, wantCode: 2,
			wantStderr: "keyfort: --from: must be a postgres:// or postgresql:// URL\n"},
		{name: "migrate with an argument", args: []string{"migrate", "extra", "--to", "postgres://db/k"}, wantCode: 2,
			wantStderr: "keyfort: migrate takes no argument (got \"extra\")\n"},
		{name: "migrate with no store", args: []string{"migrate", "--data", "/nonexistent/data", "--to", "postgres://db/k"}, wantCode: 1,
			wantStderr: "keyfort: app: migrate: no Keyfort store in /nonexistent/data (/nonexistent/data/keyfort.db does not exist)\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			lookup := func(k string) (string, bool) { v, ok := tt.env[k]; return v, ok }
			code := Main(t.Context(), tt.args, &stdout, &stderr, lookup)
			if code != tt.wantCode {
				t.Errorf("Main(%q) = %d, want %d (stderr %q)", tt.args, code, tt.wantCode, stderr.String())
			}
			if !strings.Contains(stdout.String(), tt.wantStdout) {
				t.Errorf("Main(%q) stdout = %q, want %q", tt.args, stdout.String(), tt.wantStdout)
			}
			if strings.HasSuffix(tt.wantStderr, "\n") {
				if stderr.String() != tt.wantStderr {
					t.Errorf("Main(%q) stderr = %q, want %q", tt.args, stderr.String(), tt.wantStderr)
				}
			} else if !strings.Contains(stderr.String(), tt.wantStderr) {
				t.Errorf("Main(%q) stderr = %q, want it to contain %q", tt.args, stderr.String(), tt.wantStderr)
			}
		})
	}
}

var listenRE = regexp.MustCompile(`"msg":"keyfort listening","addr":"([^"]+)"`)

func TestServeAndShutdown(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var stderr syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- Main(ctx, []string{"serve", "--listen", "127.0.0.1:0", "--data", dir, "--log-format", "json"}, &bytes.Buffer{}, &stderr, noEnv)
	}()
	var addr string
	for i := 0; i < 1000 && addr == ""; i++ { // bounded wait for the listening line
		if m := listenRE.FindStringSubmatch(stderr.String()); m != nil {
			addr = m[1]
			break
		}
		select {
		case code := <-done:
			t.Fatalf("serve exited with %d: %s", code, stderr.String())
		case <-time.After(10 * time.Millisecond):
		}
	}
	if addr == "" {
		t.Fatalf("server did not log its address: %s", stderr.String())
	}
	resp, err := http.Get("http://" + addr + "/health")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("GET /health = %d, want 200", resp.StatusCode)
	}
	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Errorf("serve exit code = %d, want 0 (stderr %s)", code, stderr.String())
		}
	case <-time.After(15 * time.Second):
		t.Fatal("serve did not stop after cancel")
	}
	if !strings.Contains(stderr.String(), "generated a new root key") {
		t.Errorf("no root-key warning in %s", stderr.String())
	}
}

func TestRootKeyRotateCommand(t *testing.T) {
	dir := t.TempDir()
	var out, errb syncBuffer
	if code := Main(context.Background(), []string{"rootkey"}, &out, &errb, noEnv); code != 2 || !strings.Contains(errb.String(), "usage: keyfort rootkey rotate") {
		t.Errorf("keyfort rootkey = %d, %q; want 2 and the usage", code, errb.String())
	}
	code := Main(context.Background(), []string{"rootkey", "rotate", "--data", dir, "--log-level", "error"}, &out, &errb, noEnv)
	if code != 0 {
		t.Fatalf("keyfort rootkey rotate = %d, stderr %q", code, errb.String())
	}
	if !regexp.MustCompile(`^re-sealed 0 records from root key [0-9a-f]{16} to [0-9a-f]{16}\nthe new root key is installed; the old one is kept in .*root\.key\.old-[0-9a-f]{16} until you remove it\n$`).MatchString(out.String()) {
		t.Errorf("keyfort rootkey rotate printed %q", out.String())
	}
}

// TestCommandHelp checks that -h of backup, restore, rootkey rotate and migrate
// lists only their flags, with defaults, and that keyfort help names them.
func TestCommandHelp(t *testing.T) {
	for cmd, flags := range map[string][]string{
		"backup":         {"-config", "-data", "-force"},
		"restore":        {"-audit-dir", "-config", "-data"},
		"rootkey rotate": {"-config", "-data", "-log-format", "-log-level", "-new-root-key-file", "-root-key-file", "-store"},
		"migrate":        {"-audit-dir", "-config", "-data", "-from", "-to"},
	} {
		var stdout, stderr bytes.Buffer
		if code := Main(context.Background(), append(strings.Fields(cmd), "-h"), &stdout, &stderr, noEnv); code != 0 {
			t.Errorf("keyfort %s -h = %d, want 0", cmd, code)
		}
		got := regexp.MustCompile(`(?m)^  (-[a-z-]+)`).FindAllStringSubmatch(stderr.String(), -1)
		var names []string
		for _, m := range got {
			names = append(names, m[1])
		}
		if strings.Join(names, " ") != strings.Join(flags, " ") || !strings.Contains(stderr.String(), `(default "./keyfort-data")`) {
			t.Errorf("keyfort %s -h lists %v, want %v with the data directory's default:\n%s", cmd, names, flags, stderr.String())
		}
		var help bytes.Buffer
		Main(context.Background(), []string{"help"}, &help, &stderr, noEnv)
		synopsis := "keyfort " + cmd + " FILE [flags]"
		switch cmd {
		case "rootkey rotate":
			synopsis = "keyfort rootkey rotate [flags]"
		case "migrate":
			synopsis = "keyfort migrate --data DIR --to postgres://"
		}
		if !strings.Contains(help.String(), synopsis) {
			t.Errorf("keyfort help does not name %s", synopsis)
		}
	}
}
