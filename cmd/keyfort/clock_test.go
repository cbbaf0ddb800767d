package main

import (
	"encoding/json"
	"encoding/pem"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/keyfort/keyfort/internal/clock"
)

func runClock(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var o, e strings.Builder
	code = Main(t.Context(), append([]string{"clock"}, args...), &o, &e, noEnv)
	return o.String(), e.String(), code
}

func TestClockUsage(t *testing.T) {
	for _, c := range []struct {
		name       string
		args       []string
		code       int
		wantStderr string
	}{
		{"no subcommand", nil, 2, "Usage:"},
		{"unknown subcommand", []string{"rewind"}, 2, `unknown command clock "rewind"`},
		{"no duration", []string{"advance"}, 2, "keyfort clock advance DURATION"},
		{"two durations", []string{"advance", "1d", "2d"}, 2, "keyfort clock advance DURATION"},
		{"show with an argument", []string{"show", "8d"}, 2, `unexpected "8d"`},
		{"negative", []string{"advance", "-8d"}, 2, "only moves forward"},
		{"bad duration", []string{"advance", "8days"}, 2, "not a duration"},
		{"fractional days", []string{"advance", "1.5d"}, 2, "whole number"},
		{"bad endpoint", []string{"advance", "8d", "--endpoint", "ftp://127.0.0.1"}, 2, "--endpoint"},
		{"endpoint with a path", []string{"show", "--endpoint", "http://127.0.0.1:4599/keyfort"}, 2, "without a path"},
		{"missing CA file", []string{"show", "--ca-bundle", "/nonexistent/ca.pem"}, 2, "--ca-bundle"},
		{"unknown flag", []string{"show", "--listen", "x"}, 2, "flag provided but not defined: -listen"},
	} {
		t.Run(c.name, func(t *testing.T) {
			out, errOut, code := runClock(t, c.args...)
			if code != c.code || out != "" || !strings.Contains(errOut, c.wantStderr) {
				t.Fatalf("keyfort clock %v = exit %d, stdout %q, stderr %q; want exit %d and stderr containing %q", c.args, code, out, errOut, c.code, c.wantStderr)
			}
		})
	}
	// --help shows only the command's flags, with their defaults.
	_, errOut, code := runClock(t, "advance", "-h")
	if code != 0 || !strings.Contains(errOut, "-endpoint URL") || !strings.Contains(errOut, `(default "http://127.0.0.1:4599")`) ||
		!strings.Contains(errOut, "-ca-bundle FILE") || strings.Contains(errOut, "-listen") || strings.Contains(errOut, "-data") {
		t.Fatalf("keyfort clock advance -h = exit %d, %q; want its two flags with defaults only", code, errOut)
	}
	out, _, code := runClock(t, "help")
	if code != 0 || !strings.Contains(out, "keyfort clock advance DURATION") {
		t.Fatalf("keyfort clock help = exit %d, %q", code, out)
	}
}

// TestClockAgainstServers: the commands' requests, answers and one-line
// errors, over HTTP and over HTTPS with --ca-bundle.
func TestClockAgainstServers(t *testing.T) {
	var got struct{ method, path, ct, body string }
	now := time.Date(2026, 5, 12, 9, 0, 0, 0, time.UTC)
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b := make([]byte, 512)
		n, _ := r.Body.Read(b)
		got.method, got.path, got.ct, got.body = r.Method, r.URL.Path, r.Header.Get("Content-Type"), string(b[:n])
		json.NewEncoder(w).Encode(clock.State{Now: now, Offset: "8d", Steps: 3})
	})
	ts := httptest.NewUnstartedServer(ok)
	ts.Config.ErrorLog = log.New(io.Discard, "", 0) // the handshake the untrusting client aborts
	ts.StartTLS()
	defer ts.Close()
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ts.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	out, errOut, code := runClock(t, "advance", "--ca-bundle", ca, "8d", "--endpoint", ts.URL+"/")
	if code != 0 || out != "clock advanced by 8d: now 2026-05-12T09:00:00Z, 8d ahead of real time (due work ran in 3 steps)\n" || errOut != "" {
		t.Fatalf("clock advance = exit %d, %q, %q", code, out, errOut)
	}
	if got.method != "POST" || got.path != clock.PathAdvance || got.ct != "application/json" || got.body != `{"duration":"8d"}` {
		t.Fatalf("the server got %+v, want POST %s application/json {\"duration\":\"8d\"}", got, clock.PathAdvance)
	}
	out, _, code = runClock(t, "show", "--endpoint", ts.URL, "--ca-bundle", ca)
	if code != 0 || out != "now 2026-05-12T09:00:00Z, 8d ahead of real time\n" || got.method != "GET" || got.path != clock.PathShow {
		t.Fatalf("clock show = exit %d, %q; server got %+v", code, out, got)
	}
	// Without the CA the certificate is not trusted: one line, exit 1.
	out, errOut, code = runClock(t, "show", "--endpoint", ts.URL)
	if code != 1 || out != "" || strings.Count(errOut, "\n") != 1 || !strings.Contains(errOut, "certificate") {
		t.Fatalf("clock show without --ca-bundle = exit %d, %q, %q", code, out, errOut)
	}

	refuse := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusForbidden)
		w.Write([]byte(`{"error":"the clock can be moved only in dev auth mode; this server runs --auth strict"}` + "\n"))
	}))
	defer refuse.Close()
	out, errOut, code = runClock(t, "advance", "8d", "--endpoint", refuse.URL)
	if code != 1 || out != "" || errOut != "keyfort: clock advance: the clock can be moved only in dev auth mode; this server runs --auth strict (HTTP 403)\n" {
		t.Fatalf("clock advance refused = exit %d, %q, %q", code, out, errOut)
	}

	notKeyfort := httptest.NewServer(http.NotFoundHandler())
	defer notKeyfort.Close()
	out, errOut, code = runClock(t, "show", "--endpoint", notKeyfort.URL)
	if code != 1 || out != "" || strings.Count(errOut, "\n") != 1 || !strings.Contains(errOut, "404 Not Found") {
		t.Fatalf("clock show against another server = exit %d, %q, %q", code, out, errOut)
	}
}
