package sigv4

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/keyfort/keyfort/internal/awserr"
	"github.com/keyfort/keyfort/internal/identity"
	"github.com/keyfort/keyfort/internal/sensitive"
)

// fakeCredentials is a Credentials of fixed keys.
type fakeCredentials map[string]fakeKey

type fakeKey struct {
	secret, token string
	caller        identity.Caller
}

func (f fakeCredentials) Credential(id string) (sensitive.String, sensitive.String, *identity.Caller, bool) {
	k, ok := f[id]
	if !ok {
		return "", "", nil, false
	}
	c := k.caller
	return sensitive.String(k.secret), sensitive.String(k.token), &c, true
}

const (
	rootKey    = "AKIAROOT0000000001"
	rootSecret = "root-secret-key"
	roleKey    = "ASIAROLE0000000001"
	roleSecret = "role-secret-key"
	roleToken  = "role-session-token"
	cnKey      = "AKIACHINA000000001"
	cnSecret   = "china-secret-key"
)

var testCreds = fakeCredentials{
	rootKey: {secret: rootSecret, caller: *identity.Root("111122223333", "", rootKey)},
	cnKey:   {secret: cnSecret, caller: *identity.Root("111122223333", "cn-north-1", cnKey)}, // arn:aws-cn:iam::...
	roleKey: {secret: roleSecret, token: roleToken, caller: identity.Caller{
		Account: "111122223333", AccessKeyID: roleKey, Type: identity.TypeAssumedRole,
		ARN: "arn:aws:sts::111122223333:assumed-role/r/" + roleKey,
	}},
}

// testNow is the fixed clock of the tests.
var testNow = time.Date(2025, 11, 6, 13, 26, 8, 0, time.UTC)

func newStrict() *Strict {
	return &Strict{Credentials: testCreds, Now: func() time.Time { return testNow }}
}

const testBody = `{"KeyId":"alias/test","Plaintext":"aGVsbG8="}`

// request is a KMS request as the SDK sends it, before signing.
func request(t *testing.T, body string) *http.Request {
	t.Helper()
	r := httptest.NewRequest("POST", "http://kms.us-east-1.amazonaws.com/", strings.NewReader(body))
	r.Header.Set("Content-Type", "application/x-amz-json-1.1")
	r.Header.Set("X-Amz-Target", "TrentService.Encrypt")
	r.Header.Set("User-Agent", "aws-sdk-go-v2/1.0 test")
	return r
}

type signOpts struct {
	key, secret, token string
	service, region    string
	at                 time.Time
}

// sign signs r with the AWS SDK's v4 signer (defaults: the root key, kms,
// us-east-1, testNow).
func sign(t *testing.T, r *http.Request, body string, o signOpts) *http.Request {
	t.Helper()
	if o.key == "" {
		o.key, o.secret = rootKey, rootSecret
	}
	if o.service == "" {
		o.service = "kms"
	}
	if o.region == "" {
		o.region = "us-east-1"
	}
	if o.at.IsZero() {
		o.at = testNow
	}
	sum := sha256.Sum256([]byte(body))
	creds := aws.Credentials{AccessKeyID: o.key, SecretAccessKey: o.secret, SessionToken: o.token}
	if err := v4.NewSigner().SignHTTP(context.Background(), creds, r, hex.EncodeToString(sum[:]), o.service, o.region, o.at); err != nil {
		t.Fatalf("SignHTTP: %v", err)
	}
	return r
}

func TestStrictAcceptsSDKSignatures(t *testing.T) {
	tests := []struct {
		name    string
		body    string
		opts    signOpts
		prepare func(r *http.Request) // before signing
		after   func(r *http.Request) // after signing
		service string
		want    string // caller ARN
	}{
		{name: "root", body: testBody, want: "arn:aws:iam::111122223333:root"},
		{name: "empty body", body: "", want: "arn:aws:iam::111122223333:root"},
		{name: "session token", body: testBody, opts: signOpts{key: roleKey, secret: roleSecret, token: roleToken},
			want: "arn:aws:sts::111122223333:assumed-role/r/" + roleKey},
		{name: "aws-cn key in a China region", body: testBody, opts: signOpts{key: cnKey, secret: cnSecret, region: "cn-northwest-1"},
			want: "arn:aws-cn:iam::111122223333:root"},
		{name: "secrets manager in another region", body: `{}`, service: "secretsmanager",
			opts: signOpts{service: "secretsmanager", region: "eu-central-2"}, want: "arn:aws:iam::111122223333:root"},
		{name: "signed payload hash header", body: testBody, want: "arn:aws:iam::111122223333:root",
			prepare: func(r *http.Request) {
				sum := sha256.Sum256([]byte(testBody))
				r.Header.Set("X-Amz-Content-Sha256", hex.EncodeToString(sum[:]))
			}},
		{name: "multi-value header with spaces", body: testBody, want: "arn:aws:iam::111122223333:root",
			prepare: func(r *http.Request) {
				r.Header.Add("X-Amz-Meta-Test", "  a   b  ")
				r.Header.Add("X-Amz-Meta-Test", "c")
			}},
		{name: "unsigned headers may change", body: testBody, want: "arn:aws:iam::111122223333:root",
			after: func(r *http.Request) {
				r.Header.Set("User-Agent", "changed")
				r.Header.Set("Accept-Encoding", "gzip")
			}},
		{name: "query string in another order", body: testBody, want: "arn:aws:iam::111122223333:root",
			prepare: func(r *http.Request) { r.URL.RawQuery = "b=2&a=1&c=x+y&a=0&d=%2F~" },
			after:   func(r *http.Request) { r.URL.RawQuery = "b=2&a=1&c=x+y&a=0&d=%2F~" }},
		{name: "path with escapes", body: testBody, want: "arn:aws:iam::111122223333:root",
			prepare: func(r *http.Request) { r.URL.Path, r.URL.RawPath = "/a b/c", "" }},
		{name: "within the skew", body: testBody, opts: signOpts{at: testNow.Add(-MaxSkew + time.Second)},
			want: "arn:aws:iam::111122223333:root"},
		{name: "ahead within the skew", body: testBody, opts: signOpts{at: testNow.Add(MaxSkew)},
			want: "arn:aws:iam::111122223333:root"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := request(t, tt.body)
			if tt.prepare != nil {
				tt.prepare(r)
			}
			sign(t, r, tt.body, tt.opts)
			if tt.after != nil {
				tt.after(r)
			}
			service := tt.service
			if service == "" {
				service = "kms"
			}
			s := newStrict()
			c, err := s.Authenticate(r, []byte(tt.body), service)
			if err != nil {
				t.Fatalf("Authenticate(%s) = %v, want nil", r.Header.Get("Authorization"), err)
			}
			region := tt.opts.region
			if region == "" {
				region = "us-east-1"
			}
			key := tt.opts.key
			if key == "" {
				key = rootKey
			}
			if c.ARN != tt.want || c.Region != region || c.AccessKeyID != key || c.Account != "111122223333" {
				t.Errorf("Authenticate = %+v, want ARN %s, region %s, key %s", c, tt.want, region, key)
			}
			// Every request gets its own Caller.
			c2, err := s.Authenticate(r, []byte(tt.body), service)
			if err != nil || c2 == c {
				t.Errorf("second Authenticate = %p, %v; want a new Caller (first %p)", c2, err, c)
			}
		})
	}
}

func TestStrictDateHeader(t *testing.T) {
	// The SDK always sends X-Amz-Date; a client may sign with Date instead.
	r := request(t, testBody)
	r.Header.Set("Date", testNow.Add(-time.Minute).Format(http.TimeFormat))
	stamp := testNow.Add(-time.Minute).Format(AmzDateLayout)
	signed := "content-type;date;host;x-amz-target"
	sum := sha256.Sum256([]byte(testBody))
	canonical := canonicalRequest(r, signed, hex.EncodeToString(sum[:]), false)
	if !strings.HasPrefix(canonical, "POST\n/\n\ncontent-type:application/x-amz-json-1.1\ndate:") {
		t.Fatalf("canonical request = %q", canonical)
	}
	scope := stamp[:8] + "/us-east-1/kms/aws4_request"
	sig := hmacSHA256(DeriveSigningKey(rootSecret, stamp[:8], "us-east-1", "kms"), []byte(stringToSign(stamp, scope, canonical)))
	r.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential="+rootKey+"/"+scope+", SignedHeaders="+signed+", Signature="+hex.EncodeToString(sig))
	if _, err := newStrict().Authenticate(r, []byte(testBody), "kms"); err != nil {
		t.Fatalf("Authenticate(Date header) = %v", err)
	}
	r.Header.Set("Date", testNow.Add(-time.Hour).Format(http.TimeFormat))
	_, err := newStrict().Authenticate(r, []byte(testBody), "kms")
	wantErr(t, err, CodeInvalidSignature, "Signature expired: 20251106T122608Z is now earlier than 20251106T131108Z (20251106T132608Z - 15 min.)", true)
}

func wantErr(t *testing.T, err error, code, msg string, exact bool) {
	t.Helper()
	e, ok := awserr.As(err)
	if !ok {
		t.Fatalf("Authenticate = %v, want %s", err, code)
	}
	if e.Code != code || e.Status != 400 || exact && e.Message != msg || !exact && !strings.HasPrefix(e.Message, msg) {
		t.Fatalf("Authenticate = %s %d %q, want %s 400 %q", e.Code, e.Status, e.Message, code, msg)
	}
}

func TestStrictRefuses(t *testing.T) {
	const mismatch = SignatureMismatchMessage + "\n\nThe Canonical String for this request should have been\n'POST\n/\n\n"
	tests := []struct {
		name    string
		body    string // the body sent; testBody is signed
		opts    signOpts
		service string
		prepare func(r *http.Request)
		after   func(r *http.Request)
		code    string
		msg     string
		exact   bool
	}{
		{name: "no authorization", after: func(r *http.Request) { r.Header.Del("Authorization") },
			code: CodeMissingAuthenticationToken, msg: "Missing Authentication Token", exact: true},
		{name: "wrong secret", opts: signOpts{key: rootKey, secret: "not-the-secret"},
			code: CodeInvalidSignature, msg: mismatch},
		{name: "altered body", body: strings.Replace(testBody, "alias/test", "alias/other", 1),
			code: CodeInvalidSignature, msg: mismatch},
		{name: "altered signed header", after: func(r *http.Request) { r.Header.Set("X-Amz-Target", "TrentService.Decrypt") },
			code: CodeInvalidSignature, msg: mismatch},
		{name: "altered host", after: func(r *http.Request) { r.Host = "kms.eu-west-1.amazonaws.com" },
			code: CodeInvalidSignature, msg: mismatch},
		{name: "altered query", after: func(r *http.Request) { r.URL.RawQuery = "a=1" },
			code: CodeInvalidSignature, msg: strings.Replace(mismatch, "/\n\n", "/\na=1\n", 1)},
		{name: "altered signature", after: func(r *http.Request) {
			h := r.Header.Get("Authorization")
			i := strings.LastIndex(h, "=") + 1
			flip := map[byte]byte{'0': '1'}[h[i]]
			if flip == 0 {
				flip = '0'
			}
			r.Header.Set("Authorization", h[:i]+string(flip)+h[i+1:])
		}, code: CodeInvalidSignature, msg: mismatch},
		{name: "payload hash header not the body's",
			prepare: func(r *http.Request) {
				sum := sha256.Sum256([]byte("something else"))
				r.Header.Set("X-Amz-Content-Sha256", hex.EncodeToString(sum[:]))
			}, code: CodeInvalidSignature, msg: mismatch},
		{name: "unsigned host", after: func(r *http.Request) {
			r.Header.Set("Authorization", strings.Replace(r.Header.Get("Authorization"), "host;", "", 1))
		}, code: CodeInvalidSignature, msg: "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.", exact: true},
		{name: "unsigned x-amz-date", after: func(r *http.Request) {
			r.Header.Set("Authorization", strings.Replace(r.Header.Get("Authorization"), ";x-amz-date", "", 1))
		}, code: CodeInvalidSignature, msg: "'X-Amz-Date' must be a 'SignedHeader' in the AWS Authorization.", exact: true},
		{name: "expired", opts: signOpts{at: testNow.Add(-MaxSkew - time.Second)}, code: CodeInvalidSignature,
			msg: "Signature expired: 20251106T131107Z is now earlier than 20251106T131108Z (20251106T132608Z - 15 min.)", exact: true},
		{name: "not yet current", opts: signOpts{at: testNow.Add(MaxSkew + time.Second)}, code: CodeInvalidSignature,
			msg: "Signature not yet current: 20251106T134109Z is still later than 20251106T134108Z (20251106T132608Z + 15 min.)", exact: true},
		{name: "missing date", after: func(r *http.Request) { r.Header.Del("X-Amz-Date") }, code: CodeIncompleteSignature,
			msg: "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header. Authorization=AWS4-HMAC-SHA256 Credential=" + rootKey + "/20251106/us-east-1/kms/aws4_request, SignedHeaders="},
		{name: "malformed date", after: func(r *http.Request) { r.Header.Set("X-Amz-Date", "2025-11-06T13:26:08Z") },
			code: CodeIncompleteSignature, msg: "Date must be in ISO-8601 'basic format'. Got '2025-11-06T13:26:08Z'. See http://en.wikipedia.org/wiki/ISO_8601", exact: true},
		{name: "scope date not the request's", after: func(r *http.Request) {
			r.Header.Set("Authorization", strings.Replace(r.Header.Get("Authorization"), "/20251106/", "/20251105/", 1))
		}, code: CodeInvalidSignature,
			msg: "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '20251105' != '20251106', from '20251106T132608Z'.", exact: true},
		{name: "wrong service in scope", opts: signOpts{service: "secretsmanager"}, code: CodeInvalidSignature,
			msg: "Credential should be scoped to correct service: 'kms'. ", exact: true},
		{name: "unknown key", opts: signOpts{key: "AKIAUNKNOWN0000001", secret: "x"}, code: CodeUnrecognizedClient,
			msg: InvalidTokenMessage, exact: true},
		// A principal's keys exist in its partition only: signed for a
		// region of another, the key is unknown there.
		{name: "aws key signed for a China region", opts: signOpts{region: "cn-north-1"}, code: CodeUnrecognizedClient,
			msg: InvalidTokenMessage, exact: true},
		{name: "aws key signed for GovCloud", opts: signOpts{region: "us-gov-west-1"}, code: CodeUnrecognizedClient,
			msg: InvalidTokenMessage, exact: true},
		{name: "aws-cn key signed for us-east-1", opts: signOpts{key: cnKey, secret: cnSecret}, code: CodeUnrecognizedClient,
			msg: InvalidTokenMessage, exact: true},
		{name: "assumed role of aws signed for a China region", opts: signOpts{key: roleKey, secret: roleSecret, token: roleToken, region: "cn-north-1"},
			code: CodeUnrecognizedClient, msg: InvalidTokenMessage, exact: true},
		{name: "missing session token", opts: signOpts{key: roleKey, secret: roleSecret}, code: CodeUnrecognizedClient,
			msg: InvalidTokenMessage, exact: true},
		{name: "wrong session token", opts: signOpts{key: roleKey, secret: roleSecret, token: "other-token"},
			code: CodeUnrecognizedClient, msg: InvalidTokenMessage, exact: true},
		{name: "session token for a key without one", opts: signOpts{token: "some-token"},
			code: CodeUnrecognizedClient, msg: InvalidTokenMessage, exact: true},
		{name: "session token sent twice", opts: signOpts{key: roleKey, secret: roleSecret, token: roleToken},
			after: func(r *http.Request) { r.Header.Add("X-Amz-Security-Token", roleToken) },
			code:  CodeInvalidSignature, msg: mismatch},
		{name: "unsupported algorithm", after: func(r *http.Request) {
			r.Header.Set("Authorization", strings.Replace(r.Header.Get("Authorization"), "AWS4-HMAC-SHA256", "AWS4-HMAC-SHA512", 1))
		}, code: CodeIncompleteSignature, msg: "Unsupported AWS 'algorithm'"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := request(t, testBody)
			if tt.prepare != nil {
				tt.prepare(r)
			}
			sign(t, r, testBody, tt.opts)
			if tt.after != nil {
				tt.after(r)
			}
			body := tt.body
			if body == "" {
				body = testBody
			}
			service := tt.service
			if service == "" {
				service = "kms"
			}
			c, err := newStrict().Authenticate(r, []byte(body), service)
			if err == nil {
				t.Fatalf("Authenticate = %+v, nil; want %s", c, tt.code)
			}
			wantErr(t, err, tt.code, tt.msg, tt.exact)
		})
	}
}

func TestStrictMismatchMessage(t *testing.T) {
	r := request(t, testBody)
	sign(t, r, testBody, signOpts{key: roleKey, secret: "wrong", token: roleToken})
	_, err := newStrict().Authenticate(r, []byte(testBody), "kms")
	e, _ := awserr.As(err)
	if e == nil {
		t.Fatalf("Authenticate = %v, want a mismatch", err)
	}
	sum := sha256.Sum256([]byte(testBody))
	want := SignatureMismatchMessage + "\n\nThe Canonical String for this request should have been\n'" +
		"POST\n/\n\n" +
		"content-length:" + fmt.Sprint(len(testBody)) + "\n" +
		"content-type:application/x-amz-json-1.1\n" +
		"host:kms.us-east-1.amazonaws.com\n" +
		"x-amz-date:20251106T132608Z\n" +
		"x-amz-security-token:[REDACTED]\n" +
		"x-amz-target:TrentService.Encrypt\n\n" +
		"content-length;content-type;host;x-amz-date;x-amz-security-token;x-amz-target\n" +
		hex.EncodeToString(sum[:]) + "'\n\nThe String-to-Sign should have been\n'AWS4-HMAC-SHA256\n20251106T132608Z\n20251106/us-east-1/kms/aws4_request\n"
	if !strings.HasPrefix(e.Message, want) || !strings.HasSuffix(e.Message, "'\n") || len(e.Message) != len(want)+64+2 {
		t.Errorf("mismatch message =\n%s\nwant\n%s<64 hex>'\n", e.Message, want)
	}
	for _, s := range []string{roleToken, roleSecret, "alias/test"} {
		if strings.Contains(e.Message, s) {
			t.Errorf("mismatch message contains %q", s)
		}
	}
}

func TestStrictMismatchMessageIsBounded(t *testing.T) {
	r := request(t, testBody)
	r.Header.Set("X-Amz-Meta-Big", strings.Repeat("x", 60000))
	sign(t, r, testBody, signOpts{secret: "wrong", key: rootKey})
	_, err := newStrict().Authenticate(r, []byte(testBody), "kms")
	if e, ok := awserr.As(err); !ok || len(e.Message) > maxEchoedCanonical+1024 {
		t.Errorf("mismatch message is %d bytes, want at most %d", len(e.Message), maxEchoedCanonical+1024)
	}
}

func TestSigningKeyCacheIsBounded(t *testing.T) {
	s := newStrict()
	for i := 0; i < maxCachedSigningKeys+10; i++ {
		s.signingKey(fmt.Sprint("secret", i), "20251106", "us-east-1", "kms")
	}
	if n := len(s.keys); n > maxCachedSigningKeys {
		t.Errorf("the signing key cache holds %d keys, want at most %d", n, maxCachedSigningKeys)
	}
	a := s.signingKey("s", "20251106", "us-east-1", "kms")
	b := s.signingKey("s", "20251106", "us-east-1", "kms")
	if hex.EncodeToString(a) != hex.EncodeToString(b) || hex.EncodeToString(a) != hex.EncodeToString(DeriveSigningKey("s", "20251106", "us-east-1", "kms")) {
		t.Error("cached signing key differs from the derived one")
	}
}

// TestDeriveSigningKey checks the derivation against AWS's documented
// example (IAM User Guide, "Examples of how to derive a signing key").
func TestDeriveSigningKey(t *testing.T) {
	got := hex.EncodeToString(DeriveSigningKey("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "20120215", "us-east-1", "iam"))
	if want := "f4780e2d9f65fa895f9c67b32ce1baf0b0d8a43505a000a1a9e090d414db404d"; got != want {
		t.Errorf("DeriveSigningKey = %s, want %s", got, want)
	}
}

func TestStrictVerifies(t *testing.T) {
	if !newStrict().Verifies() {
		t.Error("Strict.Verifies() = false")
	}
}

func FuzzStrictAuthenticate(f *testing.F) {
	r := request(&testing.T{}, testBody)
	sign(&testing.T{}, r, testBody, signOpts{})
	f.Add(r.Header.Get("Authorization"), r.Header.Get("X-Amz-Date"), "", "", "", "content-type;host;x-amz-date", []byte(testBody))
	f.Add(sdkHeader, "20240102T000000Z", "Mon, 02 Jan 2024 00:00:00 GMT", roleToken, "UNSIGNED-PAYLOAD", "", []byte{})
	f.Add("AWS4-HMAC-SHA256 Credential="+rootKey+"/20251106/us-east-1/kms/aws4_request, SignedHeaders=;;;host;;, Signature=00",
		"20251106T132608Z", "", "", "", "x", []byte("{}"))
	f.Fuzz(func(t *testing.T, auth, amzDate, date, token, contentSHA, extra string, body []byte) {
		req := httptest.NewRequest("POST", "http://kms.us-east-1.amazonaws.com/?a=b%zz&&=", strings.NewReader(string(body)))
		set := func(k, v string) {
			if v != "" {
				req.Header[k] = []string{v}
			}
		}
		set("Authorization", auth)
		set("X-Amz-Date", amzDate)
		set("Date", date)
		set("X-Amz-Security-Token", token)
		set("X-Amz-Content-Sha256", contentSHA)
		set("X-Amz-Meta-Extra", extra)
		c, err := newStrict().Authenticate(req, body, "kms")
		if err != nil {
			e, ok := awserr.As(err)
			if !ok || e.Status != 400 || e.Code == "" {
				t.Fatalf("Authenticate = %v, want a 400 *awserr.Error", err)
			}
			if len(e.Message) > maxEchoedCanonical+1024 {
				t.Fatalf("Authenticate message is %d bytes, want it bounded", len(e.Message))
			}
			if strings.Contains(e.Message, rootSecret) || strings.Contains(e.Message, roleSecret) {
				t.Fatalf("Authenticate message %q holds a secret", e.Message)
			}
			return
		}
		if c == nil || c.Account != "111122223333" {
			t.Fatalf("Authenticate = %+v, nil", c)
		}
	})
}

func BenchmarkStrictAuthenticate(b *testing.B) {
	t := &testing.T{}
	r := sign(t, request(t, testBody), testBody, signOpts{})
	s := newStrict()
	body := []byte(testBody)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Authenticate(r, body, "kms"); err != nil {
			b.Fatal(err)
		}
	}
}
