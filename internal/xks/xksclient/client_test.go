package xksclient_test

import (
	"bytes"
	"context"
	"errors"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keyfort/keyfort/internal/sensitive"
	"github.com/keyfort/keyfort/internal/xks"
	"github.com/keyfort/keyfort/internal/xks/xksclient"
	"github.com/keyfort/keyfort/internal/xks/xkstest"
)

const keyID = "key-1"

// testTimeout is the timeout of the tests' clients: generous, so that a
// loaded machine (-race) does not fail them; the timeout tests set their own.
const testTimeout = 10 * time.Second

var cryptoMD = xks.RequestMetadata{
	AWSPrincipalARN: "arn:aws:iam::111122223333:user/alice",
	KMSKeyARN:       "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab",
	KMSOperation:    "Encrypt",
	KMSRequestID:    "4112f4d6-db54-4af4-ae30-c55a22a8dfae",
}

var healthMD = xks.RequestMetadata{KMSOperation: "KmsHealthCheck", KMSRequestID: "r-health"}

func start(t *testing.T, opts xkstest.Options) (*xkstest.Proxy, *xksclient.Client) {
	t.Helper()
	p, err := xkstest.Start(opts)
	if err != nil {
		t.Fatalf("xkstest.Start: %v", err)
	}
	t.Cleanup(p.Close)
	p.AddKey(keyID)
	c := xksclient.New(p.RootCAs(), testTimeout, nil)
	t.Cleanup(c.CloseIdleConnections)
	return p, c
}

// wantError checks that err is an *xks.Error of kind k (and name, when not
// empty) and returns it.
func wantError(t *testing.T, call string, err error, k xks.Kind, name string) *xks.Error {
	t.Helper()
	e, ok := errors.AsType[*xks.Error](err)
	if !ok {
		t.Fatalf("%s = %v, want an *xks.Error of kind %v", call, err, k)
	}
	if e.Kind != k || e.Name != name {
		t.Fatalf("%s = %v (kind %v, name %q), want kind %v, name %q", call, err, e.Kind, e.Name, k, name)
	}
	if xks.KindOf(err) != k {
		t.Errorf("KindOf(%v) = %v, want %v", err, xks.KindOf(err), k)
	}
	return e
}

func TestRoundTrip(t *testing.T) {
	for _, meta := range [][]byte{nil, []byte("key_version=1")} {
		t.Run("ciphertextMetadata="+string(meta), func(t *testing.T) {
			p, c := start(t, xkstest.Options{CiphertextMetadata: meta})
			ctx := t.Context()
			px := p.XKSProxy()

			h, err := c.Health(ctx, px, healthMD)
			if err != nil {
				t.Fatalf("Health = %v", err)
			}
			if h.ProxyFleetSize != 1 || len(h.EKMFleet) != 1 || h.EKMFleet[0].HealthStatus != xks.HealthActive || h.ProxyVendor == "" {
				t.Errorf("Health = %+v", h)
			}

			km, err := c.KeyMetadata(ctx, px, keyID, cryptoMD)
			if err != nil {
				t.Fatalf("KeyMetadata = %v", err)
			}
			if km.KeySpec != xks.KeySpecAES256 || km.KeyStatus != xks.KeyStatusEnabled ||
				strings.Join(km.KeyUsage, ",") != "ENCRYPT,DECRYPT,WRAP,UNWRAP" {
				t.Errorf("KeyMetadata = %+v", km)
			}

			for _, tt := range []struct{ name, plaintext, aad string }{
				{"no aad", "Hello World!", ""},
				{"aad", "Hello World!", "project=nile,department=marketing"},
				{"empty plaintext", "", "x"},
				{"data key", strings.Repeat("k", 32), strings.Repeat("a", 8192)},
				{"4300 bytes", strings.Repeat("p", 4300), ""},
			} {
				pt, aad := []byte(tt.plaintext), []byte(tt.aad)
				ct, err := c.Encrypt(ctx, px, keyID, cryptoMD, pt, aad)
				if err != nil {
					t.Fatalf("%s: Encrypt = %v", tt.name, err)
				}
				if len(ct.Ciphertext) != len(pt) || len(ct.IV) != 12 || len(ct.Tag) != 16 || !bytes.Equal(ct.Metadata, meta) {
					t.Errorf("%s: Encrypt = %d-byte ciphertext, %d-byte IV, %d-byte tag, metadata %q",
						tt.name, len(ct.Ciphertext), len(ct.IV), len(ct.Tag), ct.Metadata)
				}
				if len(pt) > 0 && bytes.Equal(ct.Ciphertext, pt) {
					t.Errorf("%s: Encrypt returned the plaintext", tt.name)
				}
				got, err := c.Decrypt(ctx, px, keyID, cryptoMD, ct, aad)
				if err != nil {
					t.Fatalf("%s: Decrypt = %v", tt.name, err)
				}
				if !bytes.Equal(got, pt) {
					t.Errorf("%s: Decrypt(Encrypt(p)) != p", tt.name)
				}
			}
		})
	}
}

// TestRequestMetadata checks the members each operation sends: the
// specification's required ones, and the optional ones only when set.
func TestRequestMetadata(t *testing.T) {
	p, c := start(t, xkstest.Options{})
	ctx := t.Context()
	px := p.XKSProxy()
	full := xks.RequestMetadata{
		AWSPrincipalARN: "arn:aws:iam::111122223333:role/r", AWSSourceVPC: "vpc-1", AWSSourceVPCE: "vpce-1",
		KMSKeyARN: "arn:aws:kms:us-east-1:111122223333:key/k", KMSOperation: "GenerateDataKey",
		KMSRequestID: "req-1", KMSViaService: "ebs",
	}
	minimal := full
	minimal.AWSSourceVPC, minimal.AWSSourceVPCE, minimal.KMSViaService = "", "", ""

	if _, err := c.Health(ctx, px, full); err != nil {
		t.Fatal(err)
	}
	if _, err := c.KeyMetadata(ctx, px, keyID, full); err != nil {
		t.Fatal(err)
	}
	createKey := minimal
	createKey.KMSKeyARN = ""
	if _, err := c.KeyMetadata(ctx, px, keyID, createKey); err != nil {
		t.Fatal(err)
	}
	ct, err := c.Encrypt(ctx, px, keyID, full, []byte("p"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Decrypt(ctx, px, keyID, minimal, ct, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Encrypt(ctx, px, keyID, minimal, []byte("p"), []byte("aad")); err != nil {
		t.Fatal(err)
	}

	want := []xkstest.Request{
		{Operation: xks.OpGetHealthStatus, Metadata: map[string]string{"kmsOperation": "GenerateDataKey", "kmsRequestId": "req-1"}},
		{Operation: xks.OpGetKeyMetadata, KeyID: keyID, Metadata: map[string]string{
			"awsPrincipalArn": full.AWSPrincipalARN, "awsSourceVpc": "vpc-1", "awsSourceVpce": "vpce-1",
			"kmsKeyArn": full.KMSKeyARN, "kmsOperation": "GenerateDataKey", "kmsRequestId": "req-1"}},
		{Operation: xks.OpGetKeyMetadata, KeyID: keyID, Metadata: map[string]string{
			"awsPrincipalArn": full.AWSPrincipalARN, "kmsOperation": "GenerateDataKey", "kmsRequestId": "req-1"}},
		{Operation: xks.OpEncrypt, KeyID: keyID, Integrity: true, Metadata: map[string]string{
			"awsPrincipalArn": full.AWSPrincipalARN, "awsSourceVpc": "vpc-1", "awsSourceVpce": "vpce-1",
			"kmsKeyArn": full.KMSKeyARN, "kmsOperation": "GenerateDataKey", "kmsRequestId": "req-1", "kmsViaService": "ebs"}},
		{Operation: xks.OpDecrypt, KeyID: keyID, Metadata: map[string]string{
			"awsPrincipalArn": full.AWSPrincipalARN, "kmsKeyArn": full.KMSKeyARN,
			"kmsOperation": "GenerateDataKey", "kmsRequestId": "req-1"}},
		{Operation: xks.OpEncrypt, KeyID: keyID, AAD: true, Integrity: true, Metadata: map[string]string{
			"awsPrincipalArn": full.AWSPrincipalARN, "kmsKeyArn": full.KMSKeyARN,
			"kmsOperation": "GenerateDataKey", "kmsRequestId": "req-1"}},
	}
	got := p.Requests()
	if len(got) != len(want) {
		t.Fatalf("Requests() = %d requests, want %d: %+v", len(got), len(want), got)
	}
	for i := range want {
		want[i].AccessKeyID = p.AccessKeyID()
		g, w := got[i], want[i]
		if g.Operation != w.Operation || g.KeyID != w.KeyID || g.AccessKeyID != w.AccessKeyID ||
			g.AAD != w.AAD || g.Integrity != w.Integrity || !maps.Equal(g.Metadata, w.Metadata) {
			t.Errorf("request %d = %+v, want %+v", i, g, w)
		}
	}
	p.ResetRequests()
	if n := len(p.Requests()); n != 0 {
		t.Errorf("after ResetRequests, Requests() = %d requests, want 0", n)
	}
}

// call runs op against the proxy with the usual arguments.
func call(ctx context.Context, c *xksclient.Client, px xks.Proxy, op string) error {
	var err error
	switch op {
	case xks.OpGetHealthStatus:
		_, err = c.Health(ctx, px, healthMD)
	case xks.OpGetKeyMetadata:
		_, err = c.KeyMetadata(ctx, px, keyID, cryptoMD)
	case xks.OpEncrypt:
		_, err = c.Encrypt(ctx, px, keyID, cryptoMD, []byte("plaintext"), []byte("aad"))
	case xks.OpDecrypt:
		_, err = c.Decrypt(ctx, px, keyID, cryptoMD,
			&xks.Ciphertext{Ciphertext: []byte("123456789"), IV: make([]byte, 12), Tag: make([]byte, 16)}, nil)
	}
	return err
}

var ops = []string{xks.OpGetHealthStatus, xks.OpGetKeyMetadata, xks.OpEncrypt, xks.OpDecrypt}

func TestProxyErrors(t *testing.T) {
	tests := []struct {
		name   string
		setup  func(p *xkstest.Proxy, px *xks.Proxy)
		op     string
		kind   xks.Kind
		ename  string
		status int
	}{
		{"unknown key", func(p *xkstest.Proxy, _ *xks.Proxy) { p.RemoveKey(keyID) }, xks.OpEncrypt, xks.KindProxy, xks.NameKeyNotFound, 404},
		{"unknown key metadata", func(p *xkstest.Proxy, _ *xks.Proxy) { p.RemoveKey(keyID) }, xks.OpGetKeyMetadata, xks.KindProxy, xks.NameKeyNotFound, 404},
		{"disabled key encrypt", func(p *xkstest.Proxy, _ *xks.Proxy) { p.SetKeyStatus(keyID, xks.KeyStatusDisabled) }, xks.OpEncrypt, xks.KindProxy, xks.NameInvalidState, 400},
		{"disabled key decrypt", func(p *xkstest.Proxy, _ *xks.Proxy) { p.SetKeyStatus(keyID, xks.KeyStatusDisabled) }, xks.OpDecrypt, xks.KindProxy, xks.NameInvalidState, 400},
		{"decrypt-only key", func(p *xkstest.Proxy, _ *xks.Proxy) { p.SetKeyUsage(keyID, xks.KeyUsageDecrypt) }, xks.OpEncrypt, xks.KindProxy, xks.NameInvalidKeyUsage, 400},
		{"encrypt-only key", func(p *xkstest.Proxy, _ *xks.Proxy) { p.SetKeyUsage(keyID, xks.KeyUsageEncrypt) }, xks.OpDecrypt, xks.KindProxy, xks.NameInvalidKeyUsage, 400},
		{"wrong ciphertext", nil, xks.OpDecrypt, xks.KindProxy, xks.NameInvalidCiphertext, 400},
		{"wrong uri path", func(_ *xkstest.Proxy, px *xks.Proxy) { px.Path = "/other/kms/xks/v1" }, xks.OpEncrypt, xks.KindProxy, xks.NameInvalidURIPath, 404},
		{"wrong uri path health", func(_ *xkstest.Proxy, px *xks.Proxy) { px.Path = "/kms/xks/v1" }, xks.OpGetHealthStatus, xks.KindProxy, xks.NameInvalidURIPath, 404},
		{"401 without errorName", func(p *xkstest.Proxy, _ *xks.Proxy) { p.SetFailStatus(401) }, xks.OpEncrypt, xks.KindAuthFailed, "", 401},
		{"403 without errorName", func(p *xkstest.Proxy, _ *xks.Proxy) { p.SetFailStatus(403) }, xks.OpGetHealthStatus, xks.KindAuthFailed, "", 403},
		{"502 without errorName", func(p *xkstest.Proxy, _ *xks.Proxy) { p.SetFailStatus(502) }, xks.OpDecrypt, xks.KindInvalidResponse, "", 502},
		{"302", func(p *xkstest.Proxy, _ *xks.Proxy) { p.SetFailStatus(302) }, xks.OpGetKeyMetadata, xks.KindInvalidResponse, "", 302},
		{"unknown errorName", func(p *xkstest.Proxy, _ *xks.Proxy) { p.SetFail("BogusException") }, xks.OpEncrypt, xks.KindInvalidResponse, "BogusException", 400},
		{"injected AuthenticationFailed", func(p *xkstest.Proxy, _ *xks.Proxy) { p.SetFail(xks.NameAuthenticationFailed) }, xks.OpDecrypt, xks.KindAuthFailed, xks.NameAuthenticationFailed, 401},
	}
	for _, name := range []string{
		xks.NameValidation, xks.NameInvalidState, xks.NameInvalidCiphertext, xks.NameInvalidKeyUsage,
		xks.NameAccessDenied, xks.NameKeyNotFound, xks.NameInvalidURIPath, xks.NameThrottling,
		xks.NameUnsupportedOperation, xks.NameDependencyTimeout, xks.NameInternal,
	} {
		status, _ := xks.ErrorStatus(name)
		for _, op := range ops {
			tests = append(tests, struct {
				name   string
				setup  func(p *xkstest.Proxy, px *xks.Proxy)
				op     string
				kind   xks.Kind
				ename  string
				status int
			}{"injected " + name + " " + op, func(p *xkstest.Proxy, _ *xks.Proxy) { p.SetFail(name) }, op, xks.KindProxy, name, status})
		}
	}
	p, c := start(t, xkstest.Options{})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p.AddKey(keyID)
			p.SetFail("")
			p.SetFailStatus(0)
			px := p.XKSProxy()
			if tt.setup != nil {
				tt.setup(p, &px)
			}
			err := call(t.Context(), c, px, tt.op)
			e := wantError(t, tt.op, err, tt.kind, tt.ename)
			if e.Status != tt.status || e.Op != tt.op {
				t.Errorf("%s = %v: status %d, op %q; want %d, %q", tt.op, err, e.Status, e.Op, tt.status, tt.op)
			}
		})
	}
}

func TestWrongCredentials(t *testing.T) {
	p, c := start(t, xkstest.Options{})
	tests := []struct {
		name  string
		edit  func(px *xks.Proxy)
		clock func() time.Time
	}{
		{"wrong secret", func(px *xks.Proxy) { px.Secret += "x" }, nil},
		{"unknown access key", func(px *xks.Proxy) { px.AccessKeyID = "AAAAAAAAAAAAAAAAAAAAAAAAAA" }, nil},
		{"wrong region", func(px *xks.Proxy) { px.Region = "eu-west-1" }, nil},
		{"clock 6 minutes ahead", nil, func() time.Time { return time.Now().Add(6 * time.Minute) }},
		{"clock 6 minutes behind", nil, func() time.Time { return time.Now().Add(-6 * time.Minute) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			px := p.XKSProxy()
			if tt.edit != nil {
				tt.edit(&px)
			}
			cl := c
			if tt.clock != nil {
				cl = xksclient.New(p.RootCAs(), testTimeout, tt.clock)
			}
			for _, op := range ops {
				e := wantError(t, op, call(t.Context(), cl, px, op), xks.KindAuthFailed, xks.NameAuthenticationFailed)
				if e.Status != 401 {
					t.Errorf("%s: status %d, want 401", op, e.Status)
				}
			}
		})
	}
	// Within the allowed skew the request passes.
	cl := xksclient.New(p.RootCAs(), testTimeout, func() time.Time { return time.Now().Add(4 * time.Minute) })
	if _, err := cl.Health(t.Context(), p.XKSProxy(), healthMD); err != nil {
		t.Errorf("Health with a clock 4 minutes ahead = %v, want nil", err)
	}
}

func TestCredentialRotation(t *testing.T) {
	p, c := start(t, xkstest.Options{AccessKeyID: "OLDOLDOLDOLDOLDOLDOLD2345", Secret: strings.Repeat("o", 43)})
	old := p.XKSProxy()
	next := old
	next.AccessKeyID, next.Secret = "NEWNEWNEWNEWNEWNEWNEW2345", sensitive.String(strings.Repeat("n", 44))
	wantError(t, "Health(new)", call(t.Context(), c, next, xks.OpGetHealthStatus), xks.KindAuthFailed, xks.NameAuthenticationFailed)
	p.AddCredential(next.AccessKeyID, next.Secret.Reveal())
	for _, px := range []xks.Proxy{old, next} {
		if err := call(t.Context(), c, px, xks.OpEncrypt); err != nil {
			t.Errorf("Encrypt signed by %s = %v", px.AccessKeyID, err)
		}
	}
	p.RemoveCredential(old.AccessKeyID)
	wantError(t, "Health(old)", call(t.Context(), c, old, xks.OpGetHealthStatus), xks.KindAuthFailed, xks.NameAuthenticationFailed)
	if got := p.Requests(); len(got) != 2 || got[1].AccessKeyID != next.AccessKeyID {
		t.Errorf("Requests() = %+v, want 2, the second signed by %s", got, next.AccessKeyID)
	}
}

func TestTimeout(t *testing.T) {
	p, err := xkstest.Start(xkstest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	p.AddKey(keyID)
	p.SetDelay(3 * time.Second)
	c := xksclient.New(p.RootCAs(), 100*time.Millisecond, nil)
	defer c.CloseIdleConnections()
	start := time.Now()
	e := wantError(t, "Encrypt", call(t.Context(), c, p.XKSProxy(), xks.OpEncrypt), xks.KindTimeout, "")
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Encrypt took %v with a 100ms timeout", d)
	}
	if !errors.Is(e, context.DeadlineExceeded) {
		t.Errorf("Encrypt = %v, want it to wrap context.DeadlineExceeded", e)
	}
	if n := len(p.Requests()); n != 1 {
		t.Errorf("the proxy received %d requests, want 1", n)
	}

	// The caller's deadline counts too.
	c2 := xksclient.New(p.RootCAs(), testTimeout, nil)
	defer c2.CloseIdleConnections()
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	wantError(t, "Health", call(ctx, c2, p.XKSProxy(), xks.OpGetHealthStatus), xks.KindTimeout, "")

	// Canceled by the caller.
	ctx, cancel = context.WithCancel(t.Context())
	cancel()
	wantError(t, "Health", call(ctx, c2, p.XKSProxy(), xks.OpGetHealthStatus), xks.KindUnreachable, "")

	if DefaultTimeout := xks.DefaultTimeout; DefaultTimeout != 250*time.Millisecond {
		t.Errorf("DefaultTimeout = %v, want 250ms (the specification's)", DefaultTimeout)
	}
}

func TestUnreachable(t *testing.T) {
	p, err := xkstest.Start(xkstest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	px := p.XKSProxy()
	p.Close() // nothing listens there now
	c := xksclient.New(p.RootCAs(), testTimeout, nil)
	for _, op := range ops {
		wantError(t, op, call(t.Context(), c, px, op), xks.KindUnreachable, "")
	}
}

func TestTLSInvalid(t *testing.T) {
	p, _ := start(t, xkstest.Options{})
	other, err := xkstest.Start(xkstest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	plain := httptest.NewServer(http.NotFoundHandler()) // not TLS
	defer plain.Close()

	tests := []struct {
		name  string
		roots func() *xksclient.Client
		edit  func(px *xks.Proxy)
	}{
		{"system roots", func() *xksclient.Client { return xksclient.New(nil, testTimeout, nil) }, nil},
		{"another proxy's certificate", func() *xksclient.Client { return xksclient.New(other.RootCAs(), testTimeout, nil) }, nil},
		{"wrong host name", func() *xksclient.Client { return xksclient.New(p.RootCAs(), testTimeout, nil) }, func(px *xks.Proxy) {
			px.Endpoint = strings.Replace(px.Endpoint, "127.0.0.1", "localhost", 1)
		}},
		{"not TLS", func() *xksclient.Client { return xksclient.New(p.RootCAs(), testTimeout, nil) }, func(px *xks.Proxy) {
			px.Endpoint = strings.Replace(plain.URL, "http://", "https://", 1)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := tt.roots()
			defer c.CloseIdleConnections()
			px := p.XKSProxy()
			if tt.edit != nil {
				tt.edit(&px)
			}
			wantError(t, "Health", call(t.Context(), c, px, xks.OpGetHealthStatus), xks.KindTLSInvalid, "")
		})
	}
	if n := len(p.Requests()); n != 0 {
		t.Errorf("the proxy received %d requests, want 0", n)
	}
}

func TestConfig(t *testing.T) {
	p, c := start(t, xkstest.Options{})
	tests := []struct {
		name string
		edit func(px *xks.Proxy)
	}{
		{"http", func(px *xks.Proxy) { px.Endpoint = strings.Replace(px.Endpoint, "https://", "http://", 1) }},
		{"no scheme", func(px *xks.Proxy) { px.Endpoint = strings.TrimPrefix(px.Endpoint, "https://") }},
		{"endpoint with a path", func(px *xks.Proxy) { px.Endpoint += "/keyfort" }},
		{"endpoint with a query", func(px *xks.Proxy) { px.Endpoint += "?a=b" }},
		{"endpoint with user info", func(px *xks.Proxy) { px.Endpoint = strings.Replace(px.Endpoint, "https://", "https://u:p@", 1) }},
		{"path without /kms/xks/v1", func(px *xks.Proxy) { px.Path = "/keyfort" }},
		{"path without leading slash", func(px *xks.Proxy) { px.Path = "keyfort/kms/xks/v1" }},
		{"path with a dot", func(px *xks.Proxy) { px.Path = "/a.b/kms/xks/v1" }},
		{"path too long", func(px *xks.Proxy) { px.Path = "/" + strings.Repeat("a", 118) + "/kms/xks/v1" }},
		{"no access key", func(px *xks.Proxy) { px.AccessKeyID = "" }},
		{"no secret", func(px *xks.Proxy) { px.Secret = "" }},
		{"no region", func(px *xks.Proxy) { px.Region = "" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			px := p.XKSProxy()
			tt.edit(&px)
			for _, op := range ops {
				wantError(t, op, call(t.Context(), c, px, op), xks.KindConfig, "")
			}
		})
	}
	if n := len(p.Requests()); n != 0 {
		t.Errorf("the proxy received %d requests, want 0", n)
	}
	// The longest valid path passes.
	px := p.XKSProxy()
	px.Path = "/" + strings.Repeat("a", 116) + "/kms/xks/v1"
	wantError(t, "Health", call(t.Context(), c, px, xks.OpGetHealthStatus), xks.KindProxy, xks.NameInvalidURIPath)
}

func TestInvalidInput(t *testing.T) {
	p, c := start(t, xkstest.Options{})
	ctx, px := t.Context(), p.XKSProxy()
	ct := &xks.Ciphertext{Ciphertext: []byte("x"), IV: make([]byte, 12), Tag: make([]byte, 16)}
	noKeyARN := cryptoMD
	noKeyARN.KMSKeyARN = ""
	noPrincipal := cryptoMD
	noPrincipal.AWSPrincipalARN = ""
	tests := []struct {
		name string
		f    func() error
	}{
		{"key id with a slash", func() error { _, err := c.Encrypt(ctx, px, "a/b", cryptoMD, nil, nil); return err }},
		{"key id with a space", func() error { _, err := c.KeyMetadata(ctx, px, "a b", cryptoMD); return err }},
		{"empty key id", func() error { _, err := c.Decrypt(ctx, px, "", cryptoMD, ct, nil); return err }},
		{"key id too long", func() error { _, err := c.KeyMetadata(ctx, px, strings.Repeat("k", 129), cryptoMD); return err }},
		{"health without request id", func() error {
			_, err := c.Health(ctx, px, xks.RequestMetadata{KMSOperation: "KmsHealthCheck"})
			return err
		}},
		{"metadata without principal", func() error { _, err := c.KeyMetadata(ctx, px, keyID, noPrincipal); return err }},
		{"encrypt without key arn", func() error { _, err := c.Encrypt(ctx, px, keyID, noKeyARN, nil, nil); return err }},
		{"decrypt without key arn", func() error { _, err := c.Decrypt(ctx, px, keyID, noKeyARN, ct, nil); return err }},
		{"nil ciphertext", func() error { _, err := c.Decrypt(ctx, px, keyID, cryptoMD, nil, nil); return err }},
		{"11-byte IV", func() error {
			_, err := c.Decrypt(ctx, px, keyID, cryptoMD, &xks.Ciphertext{IV: make([]byte, 11), Tag: make([]byte, 16)}, nil)
			return err
		}},
		{"15-byte tag", func() error {
			_, err := c.Decrypt(ctx, px, keyID, cryptoMD, &xks.Ciphertext{IV: make([]byte, 12), Tag: make([]byte, 15)}, nil)
			return err
		}},
		{"21-byte metadata", func() error {
			_, err := c.Decrypt(ctx, px, keyID, cryptoMD,
				&xks.Ciphertext{IV: make([]byte, 12), Tag: make([]byte, 16), Metadata: make([]byte, 21)}, nil)
			return err
		}},
	}
	for _, tt := range tests {
		wantError(t, tt.name, tt.f(), xks.KindInvalidInput, "")
	}
	if _, err := c.KeyMetadata(ctx, px, strings.Repeat("k", 128), cryptoMD); xks.KindOf(err) != xks.KindProxy {
		t.Errorf("KeyMetadata(128-character id) = %v, want KeyNotFoundException", err)
	}
	if n := len(p.Requests()); n != 1 {
		t.Errorf("the proxy received %d requests, want 1", n)
	}
}

func TestTamperedCiphertext(t *testing.T) {
	p, c := start(t, xkstest.Options{CiphertextMetadata: []byte("v1")})
	ctx, px := t.Context(), p.XKSProxy()
	aad := []byte("context")
	ct, err := c.Encrypt(ctx, px, keyID, cryptoMD, []byte("a data key of 32 bytes, really!!"), aad)
	if err != nil {
		t.Fatal(err)
	}
	flip := func(b []byte, i int) []byte {
		b = bytes.Clone(b)
		b[i] ^= 0x80
		return b
	}
	tests := []struct {
		name string
		ct   xks.Ciphertext
		aad  []byte
	}{
		{"ciphertext", xks.Ciphertext{Ciphertext: flip(ct.Ciphertext, 3), IV: ct.IV, Tag: ct.Tag, Metadata: ct.Metadata}, aad},
		{"tag", xks.Ciphertext{Ciphertext: ct.Ciphertext, IV: ct.IV, Tag: flip(ct.Tag, 15), Metadata: ct.Metadata}, aad},
		{"iv", xks.Ciphertext{Ciphertext: ct.Ciphertext, IV: flip(ct.IV, 0), Tag: ct.Tag, Metadata: ct.Metadata}, aad},
		{"16-byte iv", xks.Ciphertext{Ciphertext: ct.Ciphertext, IV: append(bytes.Clone(ct.IV), 0, 0, 0, 0), Tag: ct.Tag, Metadata: ct.Metadata}, aad},
		{"metadata", xks.Ciphertext{Ciphertext: ct.Ciphertext, IV: ct.IV, Tag: ct.Tag, Metadata: []byte("v2")}, aad},
		{"no metadata", xks.Ciphertext{Ciphertext: ct.Ciphertext, IV: ct.IV, Tag: ct.Tag}, aad},
		{"aad", *ct, []byte("other")},
		{"no aad", *ct, nil},
		// The lengths bound into the AAD keep metadata and AAD apart.
		{"metadata moved into aad", xks.Ciphertext{Ciphertext: ct.Ciphertext, IV: ct.IV, Tag: ct.Tag}, append(bytes.Clone(aad), ct.Metadata...)},
	}
	for _, tt := range tests {
		_, err := c.Decrypt(ctx, px, keyID, cryptoMD, &tt.ct, tt.aad)
		e := wantError(t, "Decrypt(tampered "+tt.name+")", err, xks.KindProxy, xks.NameInvalidCiphertext)
		if e.Status != 400 {
			t.Errorf("Decrypt(tampered %s): status %d, want 400", tt.name, e.Status)
		}
	}
	// Another key of the proxy does not decrypt it either.
	p.AddKey("key-2")
	if _, err := c.Decrypt(ctx, px, "key-2", cryptoMD, ct, aad); xks.KindOf(err) != xks.KindProxy {
		t.Errorf("Decrypt with another key = %v, want InvalidCiphertextException", err)
	}
}

func TestGarbage(t *testing.T) {
	p, c := start(t, xkstest.Options{})
	ctx, px := t.Context(), p.XKSProxy()
	good, err := c.Encrypt(ctx, px, keyID, cryptoMD, []byte("plaintext"), nil)
	if err != nil {
		t.Fatal(err)
	}
	run := func(op string) error {
		if op == xks.OpDecrypt {
			_, err := c.Decrypt(ctx, px, keyID, cryptoMD, good, nil)
			return err
		}
		return call(ctx, c, px, op)
	}
	for _, g := range []xkstest.Garbage{xkstest.GarbageNotJSON, xkstest.GarbageMissing, xkstest.GarbageWrongType,
		xkstest.GarbageWrongSize, xkstest.GarbageTooLong} {
		p.SetGarbage(g)
		for _, op := range ops {
			wantError(t, op, run(op), xks.KindInvalidResponse, "")
		}
	}
	p.SetGarbage(xkstest.GarbageIntegrity)
	e := wantError(t, "Encrypt", run(xks.OpEncrypt), xks.KindInvalidResponse, "")
	if !strings.Contains(e.Message, "ciphertextDataIntegrityValue") {
		t.Errorf("Encrypt = %v, want an integrity value mismatch", e)
	}
	for _, op := range []string{xks.OpGetHealthStatus, xks.OpGetKeyMetadata, xks.OpDecrypt} {
		if err := run(op); err != nil {
			t.Errorf("%s with GarbageIntegrity = %v, want nil", op, err)
		}
	}
	p.SetGarbage(xkstest.GarbageOff)
	for _, op := range []string{xks.OpGetHealthStatus, xks.OpGetKeyMetadata, xks.OpEncrypt, xks.OpDecrypt} {
		if err := run(op); err != nil {
			t.Errorf("%s after GarbageOff = %v, want nil", op, err)
		}
	}
}

// TestErrorsHoldNoSecrets checks that no error text carries the secret
// access key or the plaintext.
func TestErrorsHoldNoSecrets(t *testing.T) {
	p, c := start(t, xkstest.Options{})
	ctx, px := t.Context(), p.XKSProxy()
	secret := px.Secret.Reveal()
	plaintext := []byte("TOP-SECRET-PLAINTEXT")
	var errs []error
	for _, g := range []xkstest.Garbage{xkstest.GarbageWrongSize, xkstest.GarbageIntegrity, xkstest.GarbageMissing} {
		p.SetGarbage(g)
		_, err := c.Encrypt(ctx, px, keyID, cryptoMD, plaintext, nil)
		errs = append(errs, err)
	}
	p.SetGarbage(xkstest.GarbageOff)
	ct, err := c.Encrypt(ctx, px, keyID, cryptoMD, plaintext, nil)
	if err != nil {
		t.Fatal(err)
	}
	p.SetGarbage(xkstest.GarbageWrongSize)
	_, err = c.Decrypt(ctx, px, keyID, cryptoMD, ct, nil)
	errs = append(errs, err)
	p.SetGarbage(xkstest.GarbageOff)
	bad := px
	bad.Secret += "x"
	_, err = c.Encrypt(ctx, bad, keyID, cryptoMD, plaintext, nil)
	errs = append(errs, err)
	bad = px
	bad.Endpoint = "http://127.0.0.1:1"
	_, err = c.Encrypt(ctx, bad, keyID, cryptoMD, plaintext, nil)
	errs = append(errs, err)
	for _, err := range errs {
		if err == nil {
			t.Fatal("want an error")
		}
		s := err.Error()
		if strings.Contains(s, secret) || strings.Contains(s, string(plaintext)) || strings.Contains(s, "VE9QLVNFQ1JFVC1QTEFJTlRFWFQ") {
			t.Errorf("error %q holds a secret or the plaintext", s)
		}
	}
}

func TestConcurrent(t *testing.T) {
	p, c := start(t, xkstest.Options{})
	px := p.XKSProxy()
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for i := range 16 {
		wg.Go(func() {
			pt := bytes.Repeat([]byte{byte(i)}, 32)
			for range 5 {
				ct, err := c.Encrypt(t.Context(), px, keyID, cryptoMD, pt, []byte{byte(i)})
				if err != nil {
					errs <- err
					return
				}
				got, err := c.Decrypt(t.Context(), px, keyID, cryptoMD, ct, []byte{byte(i)})
				if err != nil {
					errs <- err
					return
				}
				if !bytes.Equal(got, pt) {
					errs <- errors.New("Decrypt(Encrypt(p)) != p")
					return
				}
			}
		})
	}
	go func() {
		for range 20 {
			p.SetKeyUsage("key-x", "ENCRYPT")
			p.AddKey("key-x")
			_ = p.Requests()
		}
	}()
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// TestHTTPSOnly checks that a redirect is not followed.
func TestHTTPSOnly(t *testing.T) {
	p, _ := start(t, xkstest.Options{})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(http.RedirectHandler(p.URL()+p.Path()+"/health", http.StatusTemporaryRedirect))
	srv.Listener.Close()
	srv.Listener = l
	srv.StartTLS()
	defer srv.Close()
	pool := p.RootCAs()
	pool.AddCert(srv.Certificate())
	c := xksclient.New(pool, testTimeout, nil)
	defer c.CloseIdleConnections()
	px := p.XKSProxy()
	px.Endpoint = srv.URL
	wantError(t, "Health", call(t.Context(), c, px, xks.OpGetHealthStatus), xks.KindInvalidResponse, "")
	if n := len(p.Requests()); n != 0 {
		t.Errorf("the proxy received %d requests, want 0 (redirect followed)", n)
	}
}
