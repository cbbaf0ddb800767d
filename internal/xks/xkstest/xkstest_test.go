package xkstest_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/keyfort/keyfort/internal/sigv4"
	"github.com/keyfort/keyfort/internal/xks"
	"github.com/keyfort/keyfort/internal/xks/xkstest"
)

const (
	healthBody  = `{"requestMetadata":{"kmsRequestId":"r1","kmsOperation":"KmsHealthCheck"}}`
	encryptBody = `{"requestMetadata":{"awsPrincipalArn":"arn:aws:iam::123456789012:user/Alice",` +
		`"kmsKeyArn":"arn:aws:kms:us-east-1:123456789012:key/k","kmsOperation":"Encrypt","kmsRequestId":"r2"},` +
		`"plaintext":"SGVsbG8gV29ybGQh","encryptionAlgorithm":"AES_GCM"}`
)

func startProxy(t *testing.T) (*xkstest.Proxy, *http.Client) {
	t.Helper()
	p, err := xkstest.Start(xkstest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	p.AddKey("foo")
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: p.RootCAs(), MinVersion: tls.VersionTLS12}}
	t.Cleanup(tr.CloseIdleConnections)
	return p, &http.Client{Transport: tr, Timeout: 10 * time.Second}
}

// answer is a response: status and decoded JSON body (nil if not JSON).
type answer struct {
	status int
	body   map[string]any
}

// send POSTs body to path below the proxy's URI path, signed with sigv4.Sign
// unless sign is false; edit may change the request after signing.
func send(t *testing.T, p *xkstest.Proxy, c *http.Client, method, path, body string, edit func(r *http.Request)) answer {
	t.Helper()
	r, err := http.NewRequest(method, p.URL()+p.Path()+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	r.Header.Set("Content-Type", "application/json")
	sigv4.Sign(r, []byte(body), p.AccessKeyID(), p.Secret().Reveal(), p.Region(), xks.Service, time.Now())
	if edit != nil {
		edit(r)
	}
	resp, err := c.Do(r)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	_ = json.Unmarshal(data, &m)
	return answer{resp.StatusCode, m}
}

func wantErrorName(t *testing.T, what string, a answer, name string) {
	t.Helper()
	status, _ := xks.ErrorStatus(name)
	if a.status != status || a.body["errorName"] != name {
		t.Errorf("%s = %d %v, want %d errorName %s", what, a.status, a.body, status, name)
	}
	if msg, _ := a.body["errorMessage"].(string); len(msg) >= 512 {
		t.Errorf("%s: errorMessage of %d characters, want < 512", what, len(msg))
	}
}

func TestWire(t *testing.T) {
	p, c := startProxy(t)
	if a := send(t, p, c, "POST", "/health", healthBody, nil); a.status != 200 || a.body["xksProxyFleetSize"] != 1.0 {
		t.Errorf("GetHealthStatus = %d %v", a.status, a.body)
	}
	a := send(t, p, c, "POST", "/keys/foo/encrypt", encryptBody, nil)
	if a.status != 200 || a.body["ciphertext"] == nil || a.body["ciphertextDataIntegrityValue"] != nil {
		t.Errorf("Encrypt without ciphertextDataIntegrityValueAlgorithm = %d %v", a.status, a.body)
	}
	if a := send(t, p, c, "GET", "/keys/foo/metadata", "", nil); a.status != http.StatusMethodNotAllowed {
		t.Errorf("GET metadata = %d, want 405", a.status)
	}

	replace := func(old, new string) string { return strings.Replace(encryptBody, old, new, 1) }
	tests := []struct {
		name, path, body string
		edit             func(r *http.Request)
		want             string
	}{
		{"missing plaintext", "/keys/foo/encrypt", replace(`"plaintext":"SGVsbG8gV29ybGQh",`, ""), nil, xks.NameValidation},
		{"plaintext not base64", "/keys/foo/encrypt", replace(`SGVsbG8gV29ybGQh`, "**"), nil, xks.NameValidation},
		{"wrong algorithm", "/keys/foo/encrypt", replace(`AES_GCM`, "AES_CBC"), nil, xks.NameValidation},
		{"wrong integrity algorithm", "/keys/foo/encrypt", replace(`"encryptionAlgorithm"`, `"ciphertextDataIntegrityValueAlgorithm":"MD5","encryptionAlgorithm"`), nil, xks.NameValidation},
		{"no kmsKeyArn", "/keys/foo/encrypt", replace(`"kmsKeyArn":"arn:aws:kms:us-east-1:123456789012:key/k",`, ""), nil, xks.NameValidation},
		{"metadata not strings", "/health", `{"requestMetadata":{"kmsRequestId":1,"kmsOperation":"x"}}`, nil, xks.NameValidation},
		{"no requestMetadata", "/health", `{}`, nil, xks.NameValidation},
		{"not JSON", "/health", `kmsRequestId=1`, nil, xks.NameValidation},
		{"not application/json", "/health", healthBody, func(r *http.Request) { r.Header.Set("Content-Type", "text/plain") }, xks.NameValidation},
		{"invalid key id", "/keys/f~o/encrypt", encryptBody, nil, xks.NameValidation},
		{"unknown key", "/keys/bar/encrypt", encryptBody, nil, xks.NameKeyNotFound},
		{"unknown operation", "/keys/foo/sign", encryptBody, nil, xks.NameInvalidURIPath},
		{"empty key id", "/keys//encrypt", encryptBody, nil, xks.NameInvalidURIPath},
		{"extra segment", "/invalid/keys/foo/encrypt", encryptBody, nil, xks.NameInvalidURIPath},
		{"no Authorization", "/health", healthBody, func(r *http.Request) { r.Header.Del("Authorization") }, xks.NameAuthenticationFailed},
		{"body changed after signing", "/health", healthBody, func(r *http.Request) {
			b := strings.Replace(healthBody, "r1", "r9", 1)
			r.Body, r.ContentLength = io.NopCloser(strings.NewReader(b)), int64(len(b))
		}, xks.NameAuthenticationFailed},
		{"date changed after signing", "/health", healthBody, func(r *http.Request) {
			r.Header.Set("X-Amz-Date", time.Now().Add(time.Second).UTC().Format("20060102T150405Z"))
		}, xks.NameAuthenticationFailed},
		{"x-amz-date not signed", "/health", healthBody, func(r *http.Request) {
			r.Header.Set("Authorization", strings.Replace(r.Header.Get("Authorization"), "host;x-amz-date", "host", 1))
		}, xks.NameAuthenticationFailed},
	}
	for _, tt := range tests {
		wantErrorName(t, tt.name, send(t, p, c, "POST", tt.path, tt.body, tt.edit), tt.want)
	}

	big := strings.Replace(encryptBody, "SGVsbG8gV29ybGQh", strings.Repeat("A", 2<<20), 1)
	wantErrorName(t, "2 MiB body", send(t, p, c, "POST", "/keys/foo/encrypt", big, nil), xks.NameUnsupportedOperation)
}

// TestOtherSigners checks that requests signed by another signer with more
// signed headers (as curl --aws-sigv4 or the SDK sign) are accepted, and
// that a signature for another service is not.
func TestOtherSigners(t *testing.T) {
	p, c := startProxy(t)
	for _, tt := range []struct {
		service string
		want    int
	}{{xks.Service, 200}, {"kms", 401}} {
		r, err := http.NewRequest("POST", p.URL()+p.Path()+"/health", bytes.NewReader([]byte(healthBody)))
		if err != nil {
			t.Fatal(err)
		}
		r.Header.Set("Content-Type", "application/json")
		sum := sha256.Sum256([]byte(healthBody))
		creds := aws.Credentials{AccessKeyID: p.AccessKeyID(), SecretAccessKey: p.Secret().Reveal()}
		if err := v4.NewSigner().SignHTTP(context.Background(), creds, r, hex.EncodeToString(sum[:]), tt.service, p.Region(), time.Now()); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(r.Header.Get("Authorization"), "SignedHeaders=content-length;content-type;host;x-amz-date") {
			t.Fatalf("the SDK signed %s", r.Header.Get("Authorization"))
		}
		resp, err := c.Do(r)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tt.want {
			t.Errorf("request signed by the SDK for %s = %d, want %d", tt.service, resp.StatusCode, tt.want)
		}
	}
}

func TestStartOptions(t *testing.T) {
	if _, err := xkstest.Start(xkstest.Options{Path: "/nope"}); err == nil {
		t.Error("Start(Path /nope) = nil error, want an error")
	}
	if _, err := xkstest.Start(xkstest.Options{CiphertextMetadata: make([]byte, 21)}); err == nil {
		t.Error("Start(21-byte CiphertextMetadata) = nil error, want an error")
	}
	p, err := xkstest.Start(xkstest.Options{Path: "/a/kms/xks/v1", Region: "eu-west-3"})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	defer p.Close() // Close may be called twice
	akid := p.AccessKeyID()
	if len(akid) < 20 || len(akid) > 30 || strings.Trim(akid, "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567") != "" {
		t.Errorf("AccessKeyID() = %q, want 20-30 of A-Z 2-7", akid)
	}
	if s := p.Secret().Reveal(); len(s) < 43 || len(s) > 64 {
		t.Errorf("Secret() has %d characters, want 43-64", len(s))
	}
	if p.Path() != "/a/kms/xks/v1" || p.Region() != "eu-west-3" || !strings.HasPrefix(p.URL(), "https://127.0.0.1:") {
		t.Errorf("Path, Region, URL = %q, %q, %q", p.Path(), p.Region(), p.URL())
	}
	if !bytes.HasPrefix(p.CertPEM(), []byte("-----BEGIN CERTIFICATE-----")) {
		t.Errorf("CertPEM() = %q", p.CertPEM())
	}
	if p.SetKeyStatus("missing", xks.KeyStatusDisabled) || p.RemoveKey("missing") {
		t.Error("SetKeyStatus or RemoveKey of a missing key reported it found")
	}
}
