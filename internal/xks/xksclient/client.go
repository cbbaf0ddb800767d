package xksclient

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"github.com/keyfort/keyfort/internal/xks"
	"io"
	"maps"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/keyfort/keyfort/internal/sigv4"
)

// Client calls XKS proxies. It keeps connections open between calls. It is
// safe for concurrent use.
type Client struct {
	hc      *http.Client
	timeout time.Duration
	now     func() time.Time
	// addrs maps a proxy host to the host:port dialed for it (SetAddresses).
	addrs map[string]string
}

// New returns a Client that trusts the certificates of roots (nil: the
// system's roots), speaks HTTP/1.1 over TLS 1.2 or later, and gives each
// call timeout to complete, connection and handshake included (0 or less:
// DefaultTimeout). now is the clock of the signatures (nil: time.Now).
func New(roots *x509.CertPool, timeout time.Duration, now func() time.Time) *Client {
	if timeout <= 0 {
		timeout = xks.DefaultTimeout
	}
	if now == nil {
		now = time.Now
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: roots, NextProtos: []string{"http/1.1"}}
	dialer := &net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second}
	c := &Client{timeout: timeout, now: now}
	tr := &http.Transport{
		// Dialing here tells a connection failure from a handshake
		// failure by type, not by message.
		DialTLSContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			ctx, cancel := context.WithTimeout(ctx, timeout)
			defer cancel()
			host, _, err := net.SplitHostPort(addr)
			if err != nil {
				host = addr
			}
			dial := addr
			if a, ok := c.addrs[host]; ok {
				dial = a
			}
			conn, err := dialer.DialContext(ctx, network, dial)
			if err != nil {
				return nil, err
			}
			c := cfg.Clone()
			c.ServerName = host
			tc := tls.Client(conn, c)
			if err := tc.HandshakeContext(ctx); err != nil {
				_ = conn.Close()
				return nil, &handshakeError{err}
			}
			return tc, nil
		},
		MaxIdleConnsPerHost: 16,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
	}
	c.hc = &http.Client{
		Transport:     tr,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	return c
}

// SetAddresses makes the client dial addrs[host] (host:port) for a proxy
// whose endpoint names host, instead of host:443, as curl's --resolve
// does: the certificate is still checked against host. AWS's
// XksProxyUriEndpoint cannot hold a port, so a proxy on another port, or
// one not in DNS, is reached so. Call it before the first call.
func (c *Client) SetAddresses(addrs map[string]string) { c.addrs = maps.Clone(addrs) }

// CloseIdleConnections closes the connections kept open between calls.
func (c *Client) CloseIdleConnections() { c.hc.CloseIdleConnections() }

// handshakeError marks a failed TLS handshake.
type handshakeError struct{ err error }

func (e *handshakeError) Error() string { return e.err.Error() }
func (e *handshakeError) Unwrap() error { return e.err }

// Health calls GetHealthStatus (POST {Path}/health). md needs KMSRequestID
// and KMSOperation (e.g. "KmsHealthCheck", "CreateCustomKeyStore"); its
// other members are not sent.
func (c *Client) Health(ctx context.Context, p xks.Proxy, md xks.RequestMetadata) (*xks.Health, error) {
	const op = xks.OpGetHealthStatus
	if md.KMSRequestID == "" || md.KMSOperation == "" {
		return nil, xks.NewError(xks.KindInvalidInput, op, "requestMetadata needs kmsRequestId and kmsOperation")
	}
	in := struct {
		MD healthMetadata `json:"requestMetadata"`
	}{healthMetadata{KMSRequestID: md.KMSRequestID, KMSOperation: md.KMSOperation}}
	m, err := c.call(ctx, &p, op, "/health", in)
	if err != nil {
		return nil, err
	}
	h, msg := decodeHealth(m)
	if msg != "" {
		return nil, invalid(op, msg)
	}
	return h, nil
}

// KeyMetadata calls GetKeyMetadata (POST {Path}/keys/{keyID}/metadata).
// md needs AWSPrincipalARN, KMSOperation and KMSRequestID.
func (c *Client) KeyMetadata(ctx context.Context, p xks.Proxy, keyID string, md xks.RequestMetadata) (*xks.KeyMetadata, error) {
	const op = xks.OpGetKeyMetadata
	if err := checkKeyID(op, keyID); err != nil {
		return nil, err
	}
	if md.AWSPrincipalARN == "" || md.KMSOperation == "" || md.KMSRequestID == "" {
		return nil, xks.NewError(xks.KindInvalidInput, op, "requestMetadata needs awsPrincipalArn, kmsOperation and kmsRequestId")
	}
	in := struct {
		MD keyMetadataMetadata `json:"requestMetadata"`
	}{keyMetadataMetadata{
		AWSPrincipalARN: md.AWSPrincipalARN, AWSSourceVPC: md.AWSSourceVPC, AWSSourceVPCE: md.AWSSourceVPCE,
		KMSKeyARN: md.KMSKeyARN, KMSOperation: md.KMSOperation, KMSRequestID: md.KMSRequestID,
	}}
	m, err := c.call(ctx, &p, op, keyPath(keyID, "metadata"), in)
	if err != nil {
		return nil, err
	}
	km, msg := decodeKeyMetadata(m)
	if msg != "" {
		return nil, invalid(op, msg)
	}
	return km, nil
}

// Encrypt calls Encrypt (POST {Path}/keys/{keyID}/encrypt) with AES_GCM,
// aad as additionalAuthenticatedData (not sent when empty), and asks for
// the ciphertext data integrity value (SHA_256), which it verifies. md
// needs AWSPrincipalARN, KMSKeyARN, KMSOperation and KMSRequestID.
func (c *Client) Encrypt(ctx context.Context, p xks.Proxy, keyID string, md xks.RequestMetadata, plaintext, aad []byte) (*xks.Ciphertext, error) {
	const op = xks.OpEncrypt
	if err := checkKeyID(op, keyID); err != nil {
		return nil, err
	}
	if err := checkCryptoMetadata(op, &md); err != nil {
		return nil, err
	}
	in := encryptRequest{
		MD:                  cryptoMetadataOf(&md),
		AAD:                 encodeOptional(aad),
		Plaintext:           base64.StdEncoding.EncodeToString(plaintext),
		EncryptionAlgorithm: xks.EncryptionAlgorithm,
		IntegrityAlgorithm:  xks.IntegrityAlgorithm,
	}
	m, err := c.call(ctx, &p, op, keyPath(keyID, "encrypt"), in)
	if err != nil {
		return nil, err
	}
	ct, msg := decodeEncrypt(m, len(plaintext), aad)
	if msg != "" {
		return nil, invalid(op, msg)
	}
	return ct, nil
}

// Decrypt calls Decrypt (POST {Path}/keys/{keyID}/decrypt) with what
// Encrypt returned and the same aad, and returns the plaintext. md needs
// AWSPrincipalARN, KMSKeyARN, KMSOperation and KMSRequestID.
func (c *Client) Decrypt(ctx context.Context, p xks.Proxy, keyID string, md xks.RequestMetadata, ct *xks.Ciphertext, aad []byte) ([]byte, error) {
	const op = xks.OpDecrypt
	if err := checkKeyID(op, keyID); err != nil {
		return nil, err
	}
	if err := checkCryptoMetadata(op, &md); err != nil {
		return nil, err
	}
	switch {
	case ct == nil:
		return nil, xks.NewError(xks.KindInvalidInput, op, "no ciphertext")
	case len(ct.IV) != 12 && len(ct.IV) != 16:
		return nil, xks.NewError(xks.KindInvalidInput, op, "the initialization vector must be 12 or 16 bytes")
	case len(ct.Tag) != xks.TagSize:
		return nil, xks.NewError(xks.KindInvalidInput, op, "the authentication tag must be 16 bytes")
	case len(ct.Metadata) > xks.MaxCiphertextMetadata:
		return nil, xks.NewError(xks.KindInvalidInput, op, "the ciphertext metadata is longer than 20 bytes")
	}
	in := decryptRequest{
		MD:                  cryptoMetadataOf(&md),
		Ciphertext:          base64.StdEncoding.EncodeToString(ct.Ciphertext),
		Metadata:            encodeOptional(ct.Metadata),
		EncryptionAlgorithm: xks.EncryptionAlgorithm,
		AAD:                 encodeOptional(aad),
		Tag:                 base64.StdEncoding.EncodeToString(ct.Tag),
		IV:                  base64.StdEncoding.EncodeToString(ct.IV),
	}
	m, err := c.call(ctx, &p, op, keyPath(keyID, "decrypt"), in)
	if err != nil {
		return nil, err
	}
	pt, present, ok := m.bytes("plaintext")
	switch {
	case !present:
		return nil, invalid(op, "plaintext is missing")
	case !ok:
		return nil, invalid(op, "plaintext is not a Base64 string")
	case len(pt) != len(ct.Ciphertext):
		return nil, invalid(op, "plaintext is not as long as the ciphertext")
	}
	return pt, nil
}

// call POSTs in, as JSON, to p's path+suffix and returns the members of a
// 200 answer's JSON object.
func (c *Client) call(ctx context.Context, p *xks.Proxy, op, suffix string, in any) (members, error) {
	base, err := checkProxy(p, op)
	if err != nil {
		return nil, err
	}
	body, err := json.Marshal(in)
	if err != nil { // strings and structs of strings only
		return nil, xks.NewError(xks.KindInvalidInput, op, "the request cannot be encoded")
	}
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base.String()+p.Path+suffix, bytes.NewReader(body))
	if err != nil {
		return nil, xks.NewError(xks.KindConfig, op, "the request URL is invalid")
	}
	req.Header.Set("Content-Type", "application/json")
	sigv4.Sign(req, body, p.AccessKeyID, p.Secret.Reveal(), p.Region, xks.Service, c.now())

	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, transportError(op, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, xks.MaxResponseBody+1))
	if err != nil {
		e := transportError(op, err)
		e.Status = resp.StatusCode
		return nil, e
	}
	if len(data) > xks.MaxResponseBody {
		return nil, &xks.Error{Kind: xks.KindInvalidResponse, Op: op, Status: resp.StatusCode,
			Message: "the answer is longer than " + strconv.Itoa(xks.MaxResponseBody>>10) + " KiB"}
	}
	if resp.StatusCode != http.StatusOK {
		return nil, statusError(op, resp.StatusCode, data)
	}
	m, ok := parseObject(data)
	if !ok {
		return nil, invalid(op, "the answer is not a JSON object")
	}
	return m, nil
}

// transportError classifies an error of the exchange: timeouts first (a
// handshake cut by the deadline is a timeout), then handshake failures,
// then the rest (dial errors, resets, cancellation).
func transportError(op string, err error) *xks.Error {
	if ue, ok := errors.AsType[*url.Error](err); ok {
		err = ue.Err // the URL names no secret, but the Op says enough
	}
	ne, isNet := errors.AsType[net.Error](err)
	switch {
	case errors.Is(err, context.DeadlineExceeded) || isNet && ne.Timeout():
		return &xks.Error{Kind: xks.KindTimeout, Op: op, Message: "the proxy did not answer in time", Err: err}
	case errors.Is(err, context.Canceled):
		return &xks.Error{Kind: xks.KindUnreachable, Op: op, Message: "the call was canceled", Err: err}
	}
	if he, ok := errors.AsType[*handshakeError](err); ok {
		return &xks.Error{Kind: xks.KindTLSInvalid, Op: op, Err: he.err}
	}
	return &xks.Error{Kind: xks.KindUnreachable, Op: op, Err: err}
}

// statusError reads an answer other than 200: {"errorName", "errorMessage"}.
func statusError(op string, status int, data []byte) *xks.Error {
	var name, msg string
	if m, ok := parseObject(data); ok {
		name, _, _ = m.string("errorName")
		msg, _, _ = m.string("errorMessage")
	}
	return xks.StatusError(op, status, name, msg)
}

// invalid is the error of an unusable 200 answer.
func invalid(op, msg string) *xks.Error {
	return &xks.Error{Kind: xks.KindInvalidResponse, Op: op, Message: msg, Status: http.StatusOK}
}

func checkKeyID(op, id string) error {
	if !xks.ValidKeyID(id) {
		return xks.NewError(xks.KindInvalidInput, op, "the external key id must be 1 to 128 of A-Z a-z 0-9 - . _")
	}
	return nil
}

func checkCryptoMetadata(op string, md *xks.RequestMetadata) error {
	if md.AWSPrincipalARN == "" || md.KMSKeyARN == "" || md.KMSOperation == "" || md.KMSRequestID == "" {
		return xks.NewError(xks.KindInvalidInput, op, "requestMetadata needs awsPrincipalArn, kmsKeyArn, kmsOperation and kmsRequestId")
	}
	return nil
}

// keyPath is the path of a key operation below the URI path. Valid key ids
// need no escaping; PathEscape keeps that true should the rule change.
func keyPath(keyID, operation string) string {
	return "/keys/" + url.PathEscape(keyID) + "/" + operation
}

func encodeOptional(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return base64.StdEncoding.EncodeToString(b)
}

// integrity is the ciphertext data integrity value of an Encrypt answer:
// SHA-256(aad || metadata || iv || ciphertext || tag).
func integrity(aad []byte, ct *xks.Ciphertext) [sha256.Size]byte {
	h := sha256.New()
	h.Write(aad)
	h.Write(ct.Metadata)
	h.Write(ct.IV)
	h.Write(ct.Ciphertext)
	h.Write(ct.Tag)
	var sum [sha256.Size]byte
	h.Sum(sum[:0])
	return sum
}

// decodeEncrypt checks an Encrypt answer to a plaintext of n bytes
// encrypted with aad. msg says what is wrong, if anything.
func decodeEncrypt(m members, n int, aad []byte) (ct *xks.Ciphertext, msg string) {
	ct = new(xks.Ciphertext)
	var cdiv []byte
	for _, f := range []struct {
		name     string
		dst      *[]byte
		required bool
	}{
		{"ciphertext", &ct.Ciphertext, true},
		{"ciphertextMetadata", &ct.Metadata, false},
		{"initializationVector", &ct.IV, true},
		{"authenticationTag", &ct.Tag, true},
		{"ciphertextDataIntegrityValue", &cdiv, true},
	} {
		v, present, ok := m.bytes(f.name)
		switch {
		case !present && f.required:
			return nil, f.name + " is missing"
		case present && !ok:
			return nil, f.name + " is not a Base64 string"
		}
		*f.dst = v
	}
	switch {
	case len(ct.Ciphertext) != n:
		return nil, "ciphertext is not as long as the plaintext"
	case len(ct.Metadata) > xks.MaxCiphertextMetadata:
		return nil, "ciphertextMetadata is longer than 20 bytes"
	case len(ct.IV) != 12 && len(ct.IV) != 16:
		return nil, "initializationVector is not 12 or 16 bytes"
	case len(ct.Tag) != xks.TagSize:
		return nil, "authenticationTag is not 16 bytes"
	case len(cdiv) != sha256.Size:
		return nil, "ciphertextDataIntegrityValue is not a SHA-256 hash"
	}
	if want := integrity(aad, ct); subtle.ConstantTimeCompare(cdiv, want[:]) != 1 {
		return nil, "ciphertextDataIntegrityValue does not match the answer"
	}
	if len(ct.Metadata) == 0 {
		ct.Metadata = nil
	}
	return ct, ""
}

func decodeKeyMetadata(m members) (*xks.KeyMetadata, string) {
	var km xks.KeyMetadata
	var present, ok bool
	if km.KeySpec, present, ok = m.string("keySpec"); !present || !ok {
		return nil, "keySpec is missing or not a string"
	}
	if km.KeyStatus, present, ok = m.string("keyStatus"); !present || !ok {
		return nil, "keyStatus is missing or not a string"
	}
	if km.KeyStatus != xks.KeyStatusEnabled && km.KeyStatus != xks.KeyStatusDisabled {
		return nil, "keyStatus is neither ENABLED nor DISABLED"
	}
	raw, present := m.get("keyUsage")
	if !present {
		return nil, "keyUsage is missing"
	}
	if err := json.Unmarshal(raw, &km.KeyUsage); err != nil || km.KeyUsage == nil {
		return nil, "keyUsage is not an array of strings"
	}
	if len(km.KeyUsage) > xks.MaxKeyUsages {
		return nil, "keyUsage has more than 10 values"
	}
	return &km, ""
}

func decodeHealth(m members) (*xks.Health, string) {
	var h xks.Health
	raw, present := m.get("xksProxyFleetSize")
	if !present {
		return nil, "xksProxyFleetSize is missing"
	}
	var size int64
	if err := json.Unmarshal(raw, &size); err != nil || size <= 0 || size > 1<<31-1 {
		return nil, "xksProxyFleetSize is not an integer greater than zero"
	}
	h.ProxyFleetSize = int(size)
	for _, f := range []struct {
		name string
		dst  *string
	}{{"xksProxyVendor", &h.ProxyVendor}, {"xksProxyModel", &h.ProxyModel}, {"ekmVendor", &h.EKMVendor}} {
		v, present, ok := m.string(f.name)
		if !present || !ok {
			return nil, f.name + " is missing or not a string"
		}
		*f.dst = v
	}
	raw, present = m.get("ekmFleetDetails")
	if !present {
		return nil, "ekmFleetDetails is missing"
	}
	var fleet []json.RawMessage
	if err := json.Unmarshal(raw, &fleet); err != nil {
		return nil, "ekmFleetDetails is not an array"
	}
	if len(fleet) < 1 || len(fleet) > xks.MaxEKMFleet {
		return nil, "ekmFleetDetails does not have 1 to 10 entries"
	}
	for _, raw := range fleet {
		e, ok := parseObject(raw)
		if !ok {
			return nil, "an ekmFleetDetails entry is not an object"
		}
		var d xks.EKM
		for _, f := range []struct {
			name string
			dst  *string
		}{{"id", &d.ID}, {"model", &d.Model}, {"healthStatus", &d.HealthStatus}} {
			v, present, ok := e.string(f.name)
			if !present || !ok {
				return nil, "ekmFleetDetails." + f.name + " is missing or not a string"
			}
			*f.dst = v
		}
		switch d.HealthStatus {
		case xks.HealthActive, xks.HealthDegraded, xks.HealthUnavailable:
		default:
			return nil, "ekmFleetDetails.healthStatus is not ACTIVE, DEGRADED or UNAVAILABLE"
		}
		h.EKMFleet = append(h.EKMFleet, d)
	}
	return &h, ""
}

// members are the members of a JSON object, by exact (case-sensitive)
// name. A member whose value is null counts as absent.
type members map[string]json.RawMessage

// parseObject parses data as one JSON object.
func parseObject(data []byte) (members, bool) {
	data = bytes.TrimSpace(data)
	if len(data) == 0 || data[0] != '{' {
		return nil, false
	}
	var m members
	if err := json.Unmarshal(data, &m); err != nil || m == nil {
		return nil, false
	}
	return m, true
}

func (m members) get(name string) (json.RawMessage, bool) {
	v, ok := m[name]
	if !ok || string(v) == "null" {
		return nil, false
	}
	return v, true
}

// string returns the string member name: present says whether it is
// there, ok whether it is a string.
func (m members) string(name string) (s string, present, ok bool) {
	raw, present := m.get(name)
	if !present {
		return "", false, false
	}
	if len(raw) == 0 || raw[0] != '"' || json.Unmarshal(raw, &s) != nil {
		return "", true, false
	}
	return s, true, true
}

// bytes returns the Base64 (standard, padded) member name, decoded.
func (m members) bytes(name string) (b []byte, present, ok bool) {
	s, present, ok := m.string(name)
	if !ok {
		return nil, present, false
	}
	b, err := base64.StdEncoding.Strict().DecodeString(s)
	if err != nil {
		return nil, true, false
	}
	return b, true, true
}

// Request bodies. Each operation's requestMetadata has its own members.

type healthMetadata struct {
	KMSRequestID string `json:"kmsRequestId"`
	KMSOperation string `json:"kmsOperation"`
}

type keyMetadataMetadata struct {
	AWSPrincipalARN string `json:"awsPrincipalArn"`
	AWSSourceVPC    string `json:"awsSourceVpc,omitempty"`
	AWSSourceVPCE   string `json:"awsSourceVpce,omitempty"`
	KMSKeyARN       string `json:"kmsKeyArn,omitempty"`
	KMSOperation    string `json:"kmsOperation"`
	KMSRequestID    string `json:"kmsRequestId"`
}

type cryptoMetadata struct {
	AWSPrincipalARN string `json:"awsPrincipalArn"`
	AWSSourceVPC    string `json:"awsSourceVpc,omitempty"`
	AWSSourceVPCE   string `json:"awsSourceVpce,omitempty"`
	KMSKeyARN       string `json:"kmsKeyArn"`
	KMSOperation    string `json:"kmsOperation"`
	KMSRequestID    string `json:"kmsRequestId"`
	KMSViaService   string `json:"kmsViaService,omitempty"`
}

func cryptoMetadataOf(md *xks.RequestMetadata) cryptoMetadata {
	return cryptoMetadata{
		AWSPrincipalARN: md.AWSPrincipalARN, AWSSourceVPC: md.AWSSourceVPC, AWSSourceVPCE: md.AWSSourceVPCE,
		KMSKeyARN: md.KMSKeyARN, KMSOperation: md.KMSOperation, KMSRequestID: md.KMSRequestID,
		KMSViaService: md.KMSViaService,
	}
}

type encryptRequest struct {
	MD                  cryptoMetadata `json:"requestMetadata"`
	AAD                 string         `json:"additionalAuthenticatedData,omitempty"`
	Plaintext           string         `json:"plaintext"`
	EncryptionAlgorithm string         `json:"encryptionAlgorithm"`
	IntegrityAlgorithm  string         `json:"ciphertextDataIntegrityValueAlgorithm"`
}

type decryptRequest struct {
	MD                  cryptoMetadata `json:"requestMetadata"`
	Ciphertext          string         `json:"ciphertext"`
	Metadata            string         `json:"ciphertextMetadata,omitempty"`
	EncryptionAlgorithm string         `json:"encryptionAlgorithm"`
	AAD                 string         `json:"additionalAuthenticatedData,omitempty"`
	Tag                 string         `json:"authenticationTag"`
	IV                  string         `json:"initializationVector"`
}

// checkProxy validates p, returning the endpoint as a URL.
func checkProxy(p *xks.Proxy, op string) (*url.URL, error) {
	u, err := url.Parse(p.Endpoint)
	switch {
	case err != nil:
		return nil, xks.NewError(xks.KindConfig, op, "the endpoint is not a URL")
	case u.Scheme != "https":
		return nil, xks.NewError(xks.KindConfig, op, "the endpoint must be an https:// URL")
	case u.Host == "" || u.Hostname() == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" || u.Opaque != "" ||
		(u.Path != "" && u.Path != "/"):
		return nil, xks.NewError(xks.KindConfig, op, "the endpoint must be https://host[:port], without a path")
	case !xks.ValidURIPath(p.Path):
		return nil, xks.NewError(xks.KindConfig, op, "the URI path must be [/prefix]"+xks.URIPathSuffix+
			", at most 128 of A-Z a-z 0-9 / - _")
	case p.AccessKeyID == "" || p.Secret == "":
		return nil, xks.NewError(xks.KindConfig, op, "the proxy authentication credential is incomplete")
	case !sigv4.ValidRegion(p.Region):
		return nil, xks.NewError(xks.KindConfig, op, "the region is not a region name")
	}
	// The default port is not named: the Host sent and signed is the
	// host alone, as other signers and verifiers expect.
	return &url.URL{Scheme: "https", Host: strings.TrimSuffix(u.Host, ":443")}, nil
}
