package app_test

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/keyfort/keyfort/internal/app"
	"github.com/keyfort/keyfort/internal/clock"
	"github.com/keyfort/keyfort/internal/config"
	"github.com/keyfort/keyfort/internal/keyfortest"
)

// TestClockEndpointBadInput: every bad request gets a clear 4xx in JSON,
// and the clock does not move.
func TestClockEndpointBadInput(t *testing.T) {
	s := keyfortest.Start(t)
	do := func(method, path, contentType, body string) (int, string) {
		t.Helper()
		req, err := http.NewRequestWithContext(t.Context(), method, s.URL+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		if contentType != "" {
			req.Header.Set("Content-Type", contentType)
		}
		resp, err := s.HTTPClient().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
			t.Errorf("%s %s: Content-Type %q, want application/json", method, path, ct)
		}
		return resp.StatusCode, string(b)
	}
	const js = "application/json"
	for _, c := range []struct {
		name, method, path, ct, body string
		status                       int
		want                         string
	}{
		{"negative", "POST", clock.PathAdvance, js, `{"duration":"-1d"}`, 400, "only moves forward"},
		{"fractional days", "POST", clock.PathAdvance, js, `{"duration":"1.5d"}`, 400, "whole number"},
		{"not a duration", "POST", clock.PathAdvance, js, `{"duration":"soon"}`, 400, "not a duration"},
		{"no duration", "POST", clock.PathAdvance, js, `{}`, 400, "required"},
		{"over ten years", "POST", clock.PathAdvance, js, `{"duration":"3651d"}`, 400, "at most 3650d"},
		{"overflow", "POST", clock.PathAdvance, js, `{"duration":"99999999999d"}`, 400, "too long"},
		{"unknown member", "POST", clock.PathAdvance, js, `{"duration":"1d","by":"2d"}`, 400, "unknown field"},
		{"wrong type", "POST", clock.PathAdvance, js, `{"duration":8}`, 400, "JSON object"},
		{"not JSON", "POST", clock.PathAdvance, js, `8d`, 400, "JSON object"},
		{"two objects", "POST", clock.PathAdvance, js, `{"duration":"1d"}{"duration":"1d"}`, 400, "nothing after it"},
		{"too big", "POST", clock.PathAdvance, js, `{"duration":"` + strings.Repeat("1", 5000) + `"}`, 400, "over 4096 bytes"},
		{"form post", "POST", clock.PathAdvance, "application/x-www-form-urlencoded", `duration=8d`, 415, "application/json"},
		{"text/plain", "POST", clock.PathAdvance, "text/plain", `{"duration":"8d"}`, 415, "application/json"},
		{"GET advance", "GET", clock.PathAdvance, "", ``, 405, "use POST"},
		{"POST show", "POST", clock.PathShow, js, `{}`, 405, "use GET"},
		{"unknown path", "GET", "/keyfort/clocks", "", ``, 404, "no Keyfort endpoint"},
	} {
		t.Run(c.name, func(t *testing.T) {
			status, body := do(c.method, c.path, c.ct, c.body)
			var e clock.ErrorBody
			if status != c.status || json.Unmarshal([]byte(body), &e) != nil || !strings.Contains(e.Error, c.want) {
				t.Fatalf("%s %s %s = %d %s, want %d with an error containing %q", c.method, c.path, c.body, status, body, c.status, c.want)
			}
		})
	}
	if st := s.App.Clock(); st.Offset != "0s" {
		t.Fatalf("offset after refused requests = %s, want 0s", st.Offset)
	}
	status, body := do("GET", clock.PathShow, "", "")
	var st clock.State
	if status != 200 || json.Unmarshal([]byte(body), &st) != nil || st.Offset != "0s" || st.Now.IsZero() {
		t.Fatalf("GET %s = %d %s, want 200 with the time and offset 0s", clock.PathShow, status, body)
	}
	if got := s.AdvanceClock(t, "0s"); got.Offset != "0s" || got.Steps != 1 {
		t.Fatalf("advance 0s = %+v, want offset 0s in one step (the due work runs)", got)
	}
	if got := s.AdvanceClock(t, "1d12h"); got.Offset != "1d12h" {
		t.Fatalf("advance 1d12h = offset %s, want 1d12h", got.Offset)
	}
}

// TestClockRefusedOnNonLoopback: dev auth on all interfaces (with
// --insecure-dev-auth) serves AWS requests but refuses to move its clock,
// even to a request that arrives over loopback.
func TestClockRefusedOnNonLoopback(t *testing.T) {
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	cfg.Listen = "0.0.0.0:0"
	cfg.InsecureDevAuth = true
	a, err := app.New(t.Context(), cfg, app.Options{LookupEnv: func(string) (string, bool) { return "", false }})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if err := a.Start(); err != nil {
		t.Fatal(err)
	}
	_, port, _ := strings.Cut(a.Addr(), "]:")
	if port == "" {
		_, port, _ = strings.Cut(a.Addr(), ":")
	}
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, "http://127.0.0.1:"+port+clock.PathAdvance, strings.NewReader(`{"duration":"8d"}`))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var e clock.ErrorBody
	if resp.StatusCode != http.StatusForbidden || json.Unmarshal(b, &e) != nil || !strings.Contains(e.Error, "loopback") {
		t.Fatalf("advance on 0.0.0.0 = %d %s, want 403 naming loopback", resp.StatusCode, b)
	}
	if _, err := a.AdvanceClock(t.Context(), 0); err == nil || !strings.Contains(err.Error(), "loopback") {
		t.Fatalf("AdvanceClock on 0.0.0.0 = %v, want the loopback refusal", err)
	}
	if st := a.Clock(); st.Offset != "0s" {
		t.Fatalf("offset = %s, want 0s", st.Offset)
	}
}
