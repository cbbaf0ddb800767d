package webhook

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

const fn = "arn:aws:lambda:us-east-1:123456789012:function:rotate"

func TestCheckURL(t *testing.T) {
	tests := []struct {
		name, url string
		ok        bool
	}{
		{"http", "http://127.0.0.1:8080/rotate", true},
		{"https with query", "https://hooks.example.com/r?key=abc", true},
		{"ftp", "ftp://example.com/x", false},
		{"relative", "/rotate", false},
		{"no host", "http:///rotate", false},
		{"fragment", "http://example.com/r#x", false},
		{"garbage", "http://[::1", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := CheckURL(tt.url)
			if (err == nil) != tt.ok {
				t.Fatalf("CheckURL(%q) = %v, want ok=%v", tt.url, err, tt.ok)
			}
			if err != nil && strings.Contains(err.Error(), tt.url) {
				t.Fatalf("CheckURL(%q) error %q repeats the URL", tt.url, err)
			}
		})
	}
}

func TestNewRejectsBadURL(t *testing.T) {
	_, err := New(map[string]string{fn: "file:///etc/passwd"}, Options{})
	if err == nil {
		t.Fatal("New with a file: URL = nil error, want an error")
	}
}

func TestInvoke(t *testing.T) {
	var mu sync.Mutex
	var got []map[string]string
	status := http.StatusOK
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/json" {
			t.Errorf("request %s with Content-Type %q, want POST application/json", r.Method, r.Header.Get("Content-Type"))
		}
		var ev map[string]string
		b, _ := io.ReadAll(r.Body)
		if err := json.Unmarshal(b, &ev); err != nil {
			t.Errorf("body %q is not JSON: %v", b, err)
		}
		mu.Lock()
		got = append(got, ev)
		st := status
		mu.Unlock()
		w.WriteHeader(st)
		_, _ = w.Write([]byte("secret-looking body"))
	}))
	defer ts.Close()
	inv, err := New(map[string]string{fn: ts.URL + "/hook?token=sekrit"}, Options{})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	if !inv.CanInvoke(fn) || inv.CanInvoke(fn+"x") {
		t.Fatalf("CanInvoke(%q)=%v, CanInvoke(other)=%v; want true, false", fn, inv.CanInvoke(fn), inv.CanInvoke(fn+"x"))
	}
	ctx := context.Background()
	if err := inv.Invoke(ctx, fn, []byte(`{"Step":"createSecret"}`)); err != nil {
		t.Fatalf("Invoke = %v, want nil", err)
	}
	if len(got) != 1 || got[0]["Step"] != "createSecret" {
		t.Fatalf("webhook received %v, want one createSecret event", got)
	}

	mu.Lock()
	status = http.StatusInternalServerError
	mu.Unlock()
	err = inv.Invoke(ctx, fn, []byte(`{"Step":"testSecret"}`))
	if err == nil || !strings.Contains(err.Error(), "HTTP 500") {
		t.Fatalf("Invoke against a 500 = %v, want an error naming HTTP 500", err)
	}
	for _, leak := range []string{"sekrit", "secret-looking"} {
		if strings.Contains(err.Error(), leak) {
			t.Fatalf("error %q contains %q", err, leak)
		}
	}

	if err := inv.Invoke(ctx, "arn:aws:lambda:us-east-1:123456789012:function:none", []byte(`{}`)); err == nil {
		t.Fatal("Invoke of an unmapped function = nil, want an error")
	}
}

func TestInvokeDoesNotFollowRedirects(t *testing.T) {
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.Error("the redirect target was called")
	}))
	defer other.Close()
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, other.URL, http.StatusTemporaryRedirect)
	}))
	defer ts.Close()
	inv, err := New(map[string]string{fn: ts.URL}, Options{})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	if err := inv.Invoke(context.Background(), fn, []byte(`{}`)); err == nil || !strings.Contains(err.Error(), "HTTP 307") {
		t.Fatalf("Invoke against a redirect = %v, want an HTTP 307 error", err)
	}
}

func TestInvokeTimeout(t *testing.T) {
	release := make(chan struct{})
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer ts.Close()
	defer close(release)
	inv, err := New(map[string]string{fn: ts.URL}, Options{Timeout: 50 * time.Millisecond})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	start := time.Now()
	err = inv.Invoke(context.Background(), fn, []byte(`{}`))
	if err == nil {
		t.Fatal("Invoke of a webhook that never answers = nil, want a timeout error")
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("Invoke returned after %v, want about the 50ms timeout", d)
	}
}
