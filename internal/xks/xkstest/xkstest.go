// Package xkstest is an external key store proxy (XKS proxy) for tests: it
// implements GetHealthStatus, GetKeyMetadata, Encrypt and Decrypt of the
// AWS KMS External Key Store Proxy API Specification (version 1) over HTTPS
// on 127.0.0.1, with keys held in memory, SigV4 verification and the
// specification's error answers, plus faults on demand (errors, delays,
// malformed answers) and a record of the requests it received.
//
// Signatures are verified with aws-sdk-go-v2's signer, an implementation
// independent of Keyfort's (package sigv4), which the client uses to sign.
// It is for tests only.
package xkstest

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base32"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"log"
	"maps"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/keyfort/keyfort/internal/sensitive"
	"github.com/keyfort/keyfort/internal/xks"
)

// DefaultPath is the URI path of a Proxy started without Options.Path.
const DefaultPath = "/keyfort/kms/xks/v1"

// DefaultRegion is the region of a Proxy started without Options.Region.
const DefaultRegion = "us-east-1"

// MaxSkew is how far a request's X-Amz-Date may be from the proxy's clock,
// either way (the specification's 5 minutes).
const MaxSkew = 5 * time.Minute

// maxRequestBody bounds a request body; a longer one is answered with
// UnsupportedOperationException.
const maxRequestBody = 1 << 20

const amzDateLayout = "20060102T150405Z"

// Options configure a Proxy. The zero value is ready to use.
type Options struct {
	// Path is the URI path ([/prefix]/kms/xks/v1); "" means DefaultPath.
	Path string
	// AccessKeyID and Secret are the proxy authentication credential. ""
	// means a random one in the specification's form: 26 characters of
	// A-Z and 2-7, and the Base64 of 32 random bytes.
	AccessKeyID string
	Secret      string
	// Region is the region requests must be signed for; "" means
	// DefaultRegion.
	Region string
	// Now is the clock that dates requests are checked against; nil means
	// time.Now.
	Now func() time.Time
	// Hosts are DNS names the certificate is also for, beside 127.0.0.1
	// (a client reaching the proxy by a name: AWS's XksProxyUriEndpoint
	// holds no port, so a test names a host and tells its client where
	// that host is).
	Hosts []string
	// CiphertextMetadata, when set (at most 20 bytes), is returned by every
	// Encrypt and bound into the authentication tag as the specification
	// describes.
	CiphertextMetadata []byte
}

// Request is one request the proxy received, authenticated and with a
// well-formed requestMetadata.
type Request struct {
	// Operation is xks.OpGetHealthStatus, xks.OpGetKeyMetadata,
	// xks.OpEncrypt or xks.OpDecrypt.
	Operation string
	// KeyID is the external key id of the path; "" for GetHealthStatus.
	KeyID string
	// AccessKeyID is the access key id that signed the request.
	AccessKeyID string
	// Metadata are the requestMetadata members as received.
	Metadata map[string]string
	// AAD reports whether additionalAuthenticatedData was sent (Encrypt,
	// Decrypt); Integrity whether ciphertextDataIntegrityValueAlgorithm
	// was (Encrypt).
	AAD, Integrity bool
}

// Garbage is a way of spoiling the answer to a request that would succeed.
type Garbage int

// The kinds of Garbage.
const (
	// GarbageOff: sound answers.
	GarbageOff Garbage = iota
	// GarbageNotJSON: 200 with a body that is not JSON.
	GarbageNotJSON
	// GarbageMissing: 200 without a required member (ekmFleetDetails,
	// keyStatus, authenticationTag, plaintext).
	GarbageMissing
	// GarbageWrongType: 200 with a required member of the wrong JSON type
	// (xksProxyFleetSize a string, keyUsage a string, ciphertext a number,
	// plaintext a boolean).
	GarbageWrongType
	// GarbageWrongSize: 200 with a member of the wrong size (a fleet size
	// of 0, 11 keyUsage values, a 15-byte authenticationTag, a plaintext
	// one byte longer than the ciphertext).
	GarbageWrongSize
	// GarbageIntegrity: Encrypt answers a sound ciphertext with a
	// ciphertextDataIntegrityValue that does not match it; the other
	// operations answer soundly.
	GarbageIntegrity
	// GarbageTooLong: 200 with a JSON body longer than 64 KiB.
	GarbageTooLong
)

// Proxy is a running XKS proxy. Its methods are safe for concurrent use.
type Proxy struct {
	srv        *httptest.Server
	path       string
	region     string
	akid       string
	secret     string
	certPEM    []byte
	roots      *x509.CertPool
	now        func() time.Time
	ctMetadata []byte
	done       chan struct{}
	closeOnce  sync.Once

	mu         sync.Mutex
	paths      []string          // AllowPath's, beside path
	creds      map[string]string // access key id -> secret
	keys       map[string]*key
	fail       string
	failStatus int
	delay      time.Duration
	garbage    Garbage
	health     string
	requests   []Request
}

type key struct {
	material []byte // AES-256
	status   string
	spec     string
	usage    []string
}

// Start starts a Proxy on 127.0.0.1 (a random port) with a new self-signed
// certificate for 127.0.0.1. Close it when done.
func Start(opts Options) (*Proxy, error) {
	p := &Proxy{
		path: opts.Path, region: opts.Region, akid: opts.AccessKeyID, secret: opts.Secret, now: opts.Now,
		ctMetadata: slices.Clone(opts.CiphertextMetadata),
		done:       make(chan struct{}),
		keys:       make(map[string]*key),
		health:     xks.HealthActive,
	}
	if p.path == "" {
		p.path = DefaultPath
	}
	if !xks.ValidURIPath(p.path) {
		return nil, errors.New("xkstest: invalid path " + p.path)
	}
	if p.region == "" {
		p.region = DefaultRegion
	}
	if p.now == nil {
		p.now = time.Now
	}
	if len(p.ctMetadata) > xks.MaxCiphertextMetadata {
		return nil, errors.New("xkstest: CiphertextMetadata is longer than 20 bytes")
	}
	if p.akid == "" {
		p.akid = base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(randomBytes(16))
	}
	if p.secret == "" {
		p.secret = base64.StdEncoding.EncodeToString(randomBytes(32))
	}
	p.creds = map[string]string{p.akid: p.secret}

	cert, certPEM, err := selfSigned(opts.Hosts)
	if err != nil {
		return nil, err
	}
	p.certPEM = certPEM
	p.roots = x509.NewCertPool()
	p.roots.AppendCertsFromPEM(certPEM)

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, errors.New("xkstest: listen: " + err.Error())
	}
	p.srv = &httptest.Server{
		Listener: l,
		Config: &http.Server{
			Handler:           p,
			ReadHeaderTimeout: 10 * time.Second,
			ErrorLog:          log.New(io.Discard, "", 0), // tests make handshakes fail on purpose
		},
		TLS: &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}},
	}
	p.srv.StartTLS()
	return p, nil
}

// AllowPath makes the proxy serve path (a URI path, [/prefix]/kms/xks/v1)
// as well as Path: several external key stores on one proxy.
func (p *Proxy) AllowPath(path string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.paths = append(p.paths, path)
}

// Close stops the proxy; requests being delayed are answered at once.
func (p *Proxy) Close() {
	p.closeOnce.Do(func() {
		close(p.done)
		p.srv.Close()
	})
}

// URL returns the endpoint: https://127.0.0.1:port.
func (p *Proxy) URL() string { return p.srv.URL }

// Address returns the host:port the proxy listens on (127.0.0.1 and its
// port): where a client reaches the host names of Options.Hosts.
func (p *Proxy) Address() string { return p.srv.Listener.Addr().String() }

// Path returns the URI path, e.g. DefaultPath.
func (p *Proxy) Path() string { return p.path }

// Region returns the region requests must be signed for.
func (p *Proxy) Region() string { return p.region }

// AccessKeyID returns the access key id of the credential given in Options
// (or generated).
func (p *Proxy) AccessKeyID() string { return p.akid }

// Secret returns the secret access key of that credential.
func (p *Proxy) Secret() sensitive.String { return sensitive.String(p.secret) }

// CertPEM returns the proxy's self-signed certificate, PEM-encoded.
func (p *Proxy) CertPEM() []byte { return slices.Clone(p.certPEM) }

// RootCAs returns a pool holding the proxy's certificate alone.
func (p *Proxy) RootCAs() *x509.CertPool { return p.roots.Clone() }

// XKSProxy returns the proxy's settings for xksclient.Client.
func (p *Proxy) XKSProxy() xks.Proxy {
	return xks.Proxy{Endpoint: p.URL(), Path: p.path, AccessKeyID: p.akid, Secret: p.Secret(), Region: p.region}
}

// AddCredential makes the proxy also accept requests signed with
// accessKeyID and secret (as during a rotation of the credential).
func (p *Proxy) AddCredential(accessKeyID, secret string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.creds[accessKeyID] = secret
}

// RemoveCredential makes the proxy refuse requests signed with accessKeyID.
func (p *Proxy) RemoveCredential(accessKeyID string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.creds, accessKeyID)
}

// AddKey creates (or replaces) the external key id: a random AES-256 key,
// ENABLED, of spec AES_256 and usage ENCRYPT, DECRYPT, WRAP, UNWRAP.
func (p *Proxy) AddKey(id string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.keys[id] = &key{
		material: randomBytes(32), status: xks.KeyStatusEnabled, spec: xks.KeySpecAES256,
		usage: []string{xks.KeyUsageEncrypt, xks.KeyUsageDecrypt, "WRAP", "UNWRAP"},
	}
}

// RemoveKey deletes the external key id; it reports whether it existed.
func (p *Proxy) RemoveKey(id string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	_, ok := p.keys[id]
	delete(p.keys, id)
	return ok
}

// SetKeyStatus sets the keyStatus of id (ENABLED or DISABLED; Encrypt and
// Decrypt with a key that is not ENABLED answer InvalidStateException). It
// reports whether the key exists.
func (p *Proxy) SetKeyStatus(id, status string) bool {
	return p.updateKey(id, func(k *key) { k.status = status })
}

// SetKeyUsage sets the keyUsage of id (Encrypt needs ENCRYPT, Decrypt
// DECRYPT, else InvalidKeyUsageException). It reports whether the key
// exists.
func (p *Proxy) SetKeyUsage(id string, usage ...string) bool {
	return p.updateKey(id, func(k *key) { k.usage = slices.Clone(usage) })
}

// SetKeySpec sets the keySpec GetKeyMetadata reports for id; the key stays
// an AES-256 key. It reports whether the key exists.
func (p *Proxy) SetKeySpec(id, spec string) bool {
	return p.updateKey(id, func(k *key) { k.spec = spec })
}

func (p *Proxy) updateKey(id string, f func(*key)) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	k, ok := p.keys[id]
	if ok {
		f(k)
	}
	return ok
}

// SetHealthStatus sets the healthStatus GetHealthStatus reports
// (ACTIVE, DEGRADED or UNAVAILABLE; ACTIVE at start).
func (p *Proxy) SetHealthStatus(status string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.health = status
}

// SetFail makes the proxy answer every authenticated request with the
// errorName name, at the HTTP status of the specification's table (400 for
// a name not in it), until SetFail(""). SetFail takes precedence over
// SetFailStatus.
func (p *Proxy) SetFail(name string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.fail = name
}

// SetFailStatus makes the proxy answer every authenticated request with
// the HTTP status code and a body that is not JSON, until SetFailStatus(0).
func (p *Proxy) SetFailStatus(code int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.failStatus = code
}

// SetDelay makes the proxy wait d before answering each authenticated
// request (0: no wait).
func (p *Proxy) SetDelay(d time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.delay = d
}

// SetGarbage makes the proxy spoil its answers to requests that would
// succeed, as g says, until SetGarbage(GarbageOff).
func (p *Proxy) SetGarbage(g Garbage) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.garbage = g
}

// Requests returns the requests received so far, oldest first.
func (p *Proxy) Requests() []Request {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]Request, len(p.requests))
	for i, r := range p.requests {
		r.Metadata = maps.Clone(r.Metadata)
		out[i] = r
	}
	return out
}

// ResetRequests forgets the requests received so far.
func (p *Proxy) ResetRequests() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.requests = nil
}

// apiError is an error answer: {"errorName", "errorMessage"}.
type apiError struct{ name, message string }

func failf(name, message string) *apiError { return &apiError{name, message} }

// ServeHTTP implements http.Handler.
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	op, keyID, routed := p.route(r.URL.Path)
	if !routed {
		writeError(w, failf(xks.NameInvalidURIPath, "the URI path is not valid"))
		return
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxRequestBody+1))
	if err != nil {
		return // the client went away
	}
	if len(body) > maxRequestBody {
		// Read a few MiB more, so that the connection is not closed
		// before the client has sent its body.
		_, _ = io.Copy(io.Discard, io.LimitReader(r.Body, 4*maxRequestBody))
		writeError(w, failf(xks.NameUnsupportedOperation, "the request body is too large"))
		return
	}
	akid, ok := p.authenticate(r, body)
	if !ok {
		writeError(w, failf(xks.NameAuthenticationFailed, "the request signature could not be verified"))
		return
	}
	doc, md, aerr := parseRequest(op, r, body)
	if aerr != nil {
		writeError(w, aerr)
		return
	}
	_, aad := doc["additionalAuthenticatedData"]
	_, cdiv := doc["ciphertextDataIntegrityValueAlgorithm"]
	p.mu.Lock()
	p.requests = append(p.requests, Request{Operation: op, KeyID: keyID, AccessKeyID: akid, Metadata: md,
		AAD: aad && op != xks.OpGetHealthStatus, Integrity: cdiv && op == xks.OpEncrypt})
	delay, fail, failStatus, garbage := p.delay, p.fail, p.failStatus, p.garbage
	p.mu.Unlock()

	if delay > 0 {
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			// Nothing is answered: returning would send an empty 200.
			panic(http.ErrAbortHandler)
		case <-p.done:
			t.Stop()
			panic(http.ErrAbortHandler)
		}
	}
	switch {
	case fail != "":
		writeError(w, failf(fail, "injected failure"))
		return
	case failStatus != 0:
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(failStatus)
		_, _ = io.WriteString(w, "<html><body>injected failure</body></html>")
		return
	}
	if op != xks.OpGetHealthStatus && !xks.ValidKeyID(keyID) {
		writeError(w, failf(xks.NameValidation, "the external key id is not valid"))
		return
	}

	var answer map[string]any
	switch op {
	case xks.OpGetHealthStatus:
		answer = p.healthStatus()
	case xks.OpGetKeyMetadata:
		answer, aerr = p.keyMetadata(keyID)
	case xks.OpEncrypt:
		answer, aerr = p.encrypt(keyID, doc)
	case xks.OpDecrypt:
		answer, aerr = p.decrypt(keyID, doc)
	}
	if aerr != nil {
		writeError(w, aerr)
		return
	}
	writeAnswer(w, spoil(op, answer, garbage))
}

// route maps a path to an operation and a key id.
func (p *Proxy) route(path string) (op, keyID string, ok bool) {
	p.mu.Lock()
	paths := append([]string{p.path}, p.paths...)
	p.mu.Unlock()
	var rest string
	for _, prefix := range paths {
		if rest, ok = strings.CutPrefix(path, prefix+"/"); ok {
			break
		}
	}
	if !ok {
		return "", "", false
	}
	if rest == "health" {
		return xks.OpGetHealthStatus, "", true
	}
	rest, ok = strings.CutPrefix(rest, "keys/")
	if !ok {
		return "", "", false
	}
	id, verb, ok := strings.Cut(rest, "/")
	if !ok || id == "" {
		return "", "", false
	}
	switch verb {
	case "metadata":
		return xks.OpGetKeyMetadata, id, true
	case "encrypt":
		return xks.OpEncrypt, id, true
	case "decrypt":
		return xks.OpDecrypt, id, true
	}
	return "", "", false
}

// authenticate verifies the SigV4 signature of r: signed for kms-xks-proxy
// in the proxy's region, by a known access key, with host and x-amz-date
// among the signed headers, dated within MaxSkew. It recomputes the
// Authorization header with aws-sdk-go-v2's signer over the headers r
// signed and compares the two in constant time. It returns the access key
// id.
func (p *Proxy) authenticate(r *http.Request, body []byte) (string, bool) {
	auth := r.Header.Get("Authorization")
	rest, ok := strings.CutPrefix(auth, "AWS4-HMAC-SHA256 Credential=")
	if !ok {
		return "", false
	}
	akid, _, ok := strings.Cut(rest, "/")
	if !ok {
		return "", false
	}
	_, signed, ok := strings.Cut(auth, "SignedHeaders=")
	if !ok {
		return "", false
	}
	signed, _, _ = strings.Cut(signed, ",")
	names := strings.Split(signed, ";")
	if !slices.Contains(names, "host") || !slices.Contains(names, "x-amz-date") {
		return "", false
	}
	at, err := time.Parse(amzDateLayout, r.Header.Get("X-Amz-Date"))
	if err != nil {
		return "", false
	}
	if now := p.now(); at.Before(now.Add(-MaxSkew)) || at.After(now.Add(MaxSkew)) {
		return "", false
	}
	p.mu.Lock()
	secret, known := p.creds[akid]
	p.mu.Unlock()
	if !known {
		return "", false
	}

	// The request as it was signed: its method, URL, host, the headers it
	// signed and nothing else (the SDK signs every header it is given).
	u := &url.URL{Scheme: "https", Host: r.Host, Path: r.URL.Path, RawPath: r.URL.RawPath, RawQuery: r.URL.RawQuery}
	re := &http.Request{Method: r.Method, URL: u, Host: r.Host, Header: make(http.Header)}
	for _, name := range names {
		switch name {
		case "host":
		case "content-length":
			re.ContentLength = r.ContentLength
		default:
			vals := r.Header.Values(name)
			if len(vals) == 0 {
				return "", false
			}
			re.Header[http.CanonicalHeaderKey(name)] = vals
		}
	}
	sum := sha256.Sum256(body)
	creds := aws.Credentials{AccessKeyID: akid, SecretAccessKey: secret}
	if err := v4.NewSigner().SignHTTP(context.Background(), creds, re, hex.EncodeToString(sum[:]), xks.Service, p.region, at); err != nil {
		return "", false
	}
	return akid, subtle.ConstantTimeCompare([]byte(auth), []byte(re.Header.Get("Authorization"))) == 1
}

// parseRequest parses the body of an op request: a JSON object with a
// requestMetadata object of strings holding the members op requires.
func parseRequest(op string, r *http.Request, body []byte) (map[string]json.RawMessage, map[string]string, *apiError) {
	if ct := r.Header.Get("Content-Type"); ct != "application/json" && !strings.HasPrefix(ct, "application/json;") {
		return nil, nil, failf(xks.NameValidation, "the Content-Type must be application/json")
	}
	var doc map[string]json.RawMessage
	if err := json.Unmarshal(body, &doc); err != nil || doc == nil {
		return nil, nil, failf(xks.NameValidation, "the body is not a JSON object")
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(doc["requestMetadata"], &raw); err != nil || raw == nil {
		return nil, nil, failf(xks.NameValidation, "requestMetadata is missing or not an object")
	}
	md := make(map[string]string, len(raw))
	for name, v := range raw {
		var s string
		if len(v) == 0 || v[0] != '"' || json.Unmarshal(v, &s) != nil {
			return nil, nil, failf(xks.NameValidation, "requestMetadata."+name+" is not a string")
		}
		md[name] = s
	}
	required := []string{"kmsRequestId", "kmsOperation"}
	switch op {
	case xks.OpGetKeyMetadata:
		required = append(required, "awsPrincipalArn")
	case xks.OpEncrypt, xks.OpDecrypt:
		required = append(required, "awsPrincipalArn", "kmsKeyArn")
	}
	for _, name := range required {
		if _, ok := md[name]; !ok {
			return nil, nil, failf(xks.NameValidation, "requestMetadata."+name+" is missing")
		}
	}
	return doc, md, nil
}

func (p *Proxy) healthStatus() map[string]any {
	p.mu.Lock()
	status := p.health
	p.mu.Unlock()
	return map[string]any{
		"xksProxyFleetSize": 1,
		"xksProxyVendor":    "Keyfort",
		"xksProxyModel":     "Keyfort xkstest",
		"ekmVendor":         "Keyfort",
		"ekmFleetDetails": []any{
			map[string]any{"id": "xkstest-1", "model": "in-memory AES-256-GCM", "healthStatus": status},
		},
	}
}

// key returns a copy of the key id, or KeyNotFoundException.
func (p *Proxy) key(id string) (key, *apiError) {
	p.mu.Lock()
	defer p.mu.Unlock()
	k, ok := p.keys[id]
	if !ok {
		return key{}, failf(xks.NameKeyNotFound, "the external key is not found")
	}
	return key{material: k.material, status: k.status, spec: k.spec, usage: slices.Clone(k.usage)}, nil
}

func (p *Proxy) keyMetadata(id string) (map[string]any, *apiError) {
	k, aerr := p.key(id)
	if aerr != nil {
		return nil, aerr
	}
	usage := k.usage
	if usage == nil {
		usage = []string{}
	}
	return map[string]any{"keySpec": k.spec, "keyUsage": usage, "keyStatus": k.status}, nil
}

// usable returns the key id if it is ENABLED and has usage.
func (p *Proxy) usable(id, usage string) (key, *apiError) {
	k, aerr := p.key(id)
	switch {
	case aerr != nil:
		return key{}, aerr
	case k.status != xks.KeyStatusEnabled:
		return key{}, failf(xks.NameInvalidState, "the external key is not enabled")
	case !slices.Contains(k.usage, usage):
		return key{}, failf(xks.NameInvalidKeyUsage, "the external key does not support this operation")
	}
	return k, nil
}

func (p *Proxy) encrypt(id string, doc map[string]json.RawMessage) (map[string]any, *apiError) {
	pt, aerr := member(doc, "plaintext", true)
	if aerr != nil {
		return nil, aerr
	}
	aad, aerr := member(doc, "additionalAuthenticatedData", false)
	if aerr != nil {
		return nil, aerr
	}
	if aerr := checkAlgorithm(doc); aerr != nil {
		return nil, aerr
	}
	cdiv := false
	if raw, ok := doc["ciphertextDataIntegrityValueAlgorithm"]; ok {
		var alg string
		if json.Unmarshal(raw, &alg) != nil || alg != xks.IntegrityAlgorithm {
			return nil, failf(xks.NameValidation, "ciphertextDataIntegrityValueAlgorithm must be SHA_256")
		}
		cdiv = true
	}
	k, aerr := p.usable(id, xks.KeyUsageEncrypt)
	if aerr != nil {
		return nil, aerr
	}
	gcmAAD, ok := boundAAD(aad, p.ctMetadata)
	if !ok {
		return nil, failf(xks.NameValidation, "additionalAuthenticatedData is too long")
	}
	iv := randomBytes(12)
	sealed := newGCM(k.material, len(iv)).Seal(nil, iv, pt, gcmAAD)
	ct, tag := sealed[:len(pt)], sealed[len(pt):]
	answer := map[string]any{
		"ciphertext":           b64(ct),
		"initializationVector": b64(iv),
		"authenticationTag":    b64(tag),
	}
	if len(p.ctMetadata) > 0 {
		answer["ciphertextMetadata"] = b64(p.ctMetadata)
	}
	if cdiv {
		// Appendix C: the integrity value first, then a decrypt of the
		// answer, and only then the answer.
		h := sha256.New()
		for _, b := range [][]byte{aad, p.ctMetadata, iv, ct, tag} {
			h.Write(b)
		}
		sum := h.Sum(nil)
		if _, err := newGCM(k.material, len(iv)).Open(nil, iv, sealed, gcmAAD); err != nil {
			return nil, failf(xks.NameInternal, "the ciphertext does not decrypt")
		}
		answer["ciphertextDataIntegrityValue"] = b64(sum)
	}
	return answer, nil
}

func (p *Proxy) decrypt(id string, doc map[string]json.RawMessage) (map[string]any, *apiError) {
	ct, aerr := member(doc, "ciphertext", true)
	if aerr != nil {
		return nil, aerr
	}
	meta, aerr := member(doc, "ciphertextMetadata", false)
	if aerr != nil {
		return nil, aerr
	}
	aad, aerr := member(doc, "additionalAuthenticatedData", false)
	if aerr != nil {
		return nil, aerr
	}
	tag, aerr := member(doc, "authenticationTag", true)
	if aerr != nil {
		return nil, aerr
	}
	iv, aerr := member(doc, "initializationVector", true)
	if aerr != nil {
		return nil, aerr
	}
	if aerr := checkAlgorithm(doc); aerr != nil {
		return nil, aerr
	}
	if len(meta) > xks.MaxCiphertextMetadata {
		return nil, failf(xks.NameValidation, "ciphertextMetadata is longer than 20 bytes")
	}
	k, aerr := p.usable(id, xks.KeyUsageDecrypt)
	if aerr != nil {
		return nil, aerr
	}
	gcmAAD, ok := boundAAD(aad, meta)
	if (len(iv) != 12 && len(iv) != 16) || len(tag) != xks.TagSize || !ok {
		return nil, failf(xks.NameInvalidCiphertext, "the ciphertext is invalid")
	}
	pt, err := newGCM(k.material, len(iv)).Open(nil, iv, append(ct, tag...), gcmAAD)
	if err != nil {
		return nil, failf(xks.NameInvalidCiphertext, "the ciphertext is invalid")
	}
	return map[string]any{"plaintext": b64(pt)}, nil
}

func checkAlgorithm(doc map[string]json.RawMessage) *apiError {
	var alg string
	if json.Unmarshal(doc["encryptionAlgorithm"], &alg) != nil || alg != xks.EncryptionAlgorithm {
		return failf(xks.NameValidation, "encryptionAlgorithm must be AES_GCM")
	}
	return nil
}

// member decodes the Base64 string member name of doc.
func member(doc map[string]json.RawMessage, name string, required bool) ([]byte, *apiError) {
	raw, ok := doc[name]
	if !ok {
		if required {
			return nil, failf(xks.NameValidation, name+" is missing")
		}
		return nil, nil
	}
	var s string
	if len(raw) == 0 || raw[0] != '"' || json.Unmarshal(raw, &s) != nil {
		return nil, failf(xks.NameValidation, name+" is not a string")
	}
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return nil, failf(xks.NameValidation, name+" is not Base64")
	}
	return b, nil
}

// boundAAD is the AES-GCM additional data the specification prescribes:
// the 2-byte big-endian length of aad, aad, the 1-byte length of the
// ciphertext metadata, the metadata.
func boundAAD(aad, meta []byte) ([]byte, bool) {
	if len(aad) > 0xffff || len(meta) > 0xff {
		return nil, false
	}
	out := make([]byte, 0, 3+len(aad)+len(meta))
	out = binary.BigEndian.AppendUint16(out, uint16(len(aad)))
	out = append(out, aad...)
	out = append(out, byte(len(meta)))
	return append(out, meta...), true
}

func newGCM(key []byte, nonceSize int) cipher.AEAD {
	block, err := aes.NewCipher(key)
	if err != nil {
		panic("xkstest: " + err.Error()) // keys are 32 bytes
	}
	var aead cipher.AEAD
	if nonceSize == 12 {
		aead, err = cipher.NewGCM(block)
	} else {
		aead, err = cipher.NewGCMWithNonceSize(block, nonceSize)
	}
	if err != nil {
		panic("xkstest: " + err.Error()) // sizes are checked
	}
	return aead
}

// spoil applies g to the answer of op.
func spoil(op string, answer map[string]any, g Garbage) any {
	type change struct {
		name  string
		value any // nil: delete
	}
	var c change
	switch g {
	case GarbageOff:
		return answer
	case GarbageNotJSON:
		return rawBody("this is not JSON")
	case GarbageTooLong:
		answer["padding"] = strings.Repeat("x", xks.MaxResponseBody)
		return answer
	case GarbageMissing:
		c = map[string]change{
			xks.OpGetHealthStatus: {"ekmFleetDetails", nil}, xks.OpGetKeyMetadata: {"keyStatus", nil},
			xks.OpEncrypt: {"authenticationTag", nil}, xks.OpDecrypt: {"plaintext", nil},
		}[op]
	case GarbageWrongType:
		c = map[string]change{
			xks.OpGetHealthStatus: {"xksProxyFleetSize", "2"}, xks.OpGetKeyMetadata: {"keyUsage", "ENCRYPT"},
			xks.OpEncrypt: {"ciphertext", 12}, xks.OpDecrypt: {"plaintext", true},
		}[op]
	case GarbageWrongSize:
		switch op {
		case xks.OpGetHealthStatus:
			c = change{"xksProxyFleetSize", 0}
		case xks.OpGetKeyMetadata:
			c = change{"keyUsage", slices.Repeat([]string{"ENCRYPT"}, xks.MaxKeyUsages+1)}
		case xks.OpEncrypt:
			c = change{"authenticationTag", b64(randomBytes(xks.TagSize - 1))}
		case xks.OpDecrypt:
			pt, _ := base64.StdEncoding.DecodeString(answer["plaintext"].(string))
			c = change{"plaintext", b64(append(pt, 0))}
		}
	case GarbageIntegrity:
		v, ok := answer["ciphertextDataIntegrityValue"].(string)
		if op != xks.OpEncrypt || !ok {
			return answer
		}
		sum, _ := base64.StdEncoding.DecodeString(v)
		sum[0] ^= 1
		c = change{"ciphertextDataIntegrityValue", b64(sum)}
	}
	if c.value == nil {
		delete(answer, c.name)
	} else {
		answer[c.name] = c.value
	}
	return answer
}

// rawBody is an answer written as is.
type rawBody string

func writeAnswer(w http.ResponseWriter, answer any) {
	var body []byte
	if raw, ok := answer.(rawBody); ok {
		body = []byte(raw)
	} else {
		var err error
		if body, err = json.Marshal(answer); err != nil {
			writeError(w, failf(xks.NameInternal, "the answer cannot be encoded"))
			return
		}
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(body)
}

func writeError(w http.ResponseWriter, e *apiError) {
	status, ok := xks.ErrorStatus(e.name)
	if !ok {
		status = http.StatusBadRequest
	}
	body, _ := json.Marshal(map[string]string{"errorName": e.name, "errorMessage": e.message})
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// selfSigned returns a new ECDSA P-256 certificate for 127.0.0.1, valid
// for a day, signed by itself.
func selfSigned(hosts []string) (tls.Certificate, []byte, error) {
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	serial := new(big.Int).SetBytes(randomBytes(16))
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "Keyfort xkstest proxy"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		DNSNames:              slices.Clone(hosts),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &priv.PublicKey, priv)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: priv}, certPEM, nil
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read does not fail
	return b
}

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }
