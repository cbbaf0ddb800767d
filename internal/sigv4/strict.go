package sigv4

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"net/http"
	"net/textproto"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/keyfort/keyfort/internal/awserr"
	"github.com/keyfort/keyfort/internal/identity"
	"github.com/keyfort/keyfort/internal/partition"
	"github.com/keyfort/keyfort/internal/sensitive"
)

// MaxSkew is how far the date of a request may be from the server's clock,
// either way. Keyfort allows 15 minutes, the window AWS documented for
// SigV4 and older JSON services (DynamoDB, ECR) answer with; live KMS and
// Secrets Manager have been seen answering with 5.
const MaxSkew = 15 * time.Minute

// AmzDateLayout is the form of X-Amz-Date and of the times in
// authentication errors (ISO 8601 basic format, UTC).
const AmzDateLayout = "20060102T150405Z"

// maxCachedSigningKeys bounds the cache of derived signing keys; the cache
// is emptied when it is full.
const maxCachedSigningKeys = 1024

// maxEchoedCanonical bounds the canonical request quoted in a signature
// mismatch error.
const maxEchoedCanonical = 4096

// maxEchoedAuthorization bounds the Authorization header quoted in an
// IncompleteSignatureException.
const maxEchoedAuthorization = 512

// SignatureMismatchMessage is the first sentence of the message of every
// signature mismatch, as AWS words it.
const SignatureMismatchMessage = "The request signature we calculated does not match the signature you provided. " +
	"Check your AWS Secret Access Key and signing method. Consult the service documentation for details."

// InvalidTokenMessage is the message of an unknown access key or a wrong
// session token (UnrecognizedClientException).
const InvalidTokenMessage = "The security token included in the request is invalid."

// Credentials is where [Strict] finds the secret of an access key.
type Credentials interface {
	// Credential returns the secret access key of accessKeyID, the session
	// token that requests signed with it must carry in X-Amz-Security-Token
	// ("" when they carry none), and a new Caller for the request (Account,
	// ARN, Type, Principal, UserName, Tags, Policies and AccessKeyID set),
	// which Strict completes and hands to the server. ok is false when the
	// key is unknown. It must be safe for concurrent use.
	Credential(accessKeyID string) (secret, sessionToken sensitive.String, caller *identity.Caller, ok bool)
}

// Strict authenticates requests by verifying their SigV4 signature against
// Credentials. Checks, in AWS's order: the Authorization header (present,
// well formed), the request date (X-Amz-Date, else Date; within [MaxSkew]
// of Now), the signed headers (host, and x-amz-date when X-Amz-Date is
// used), the credential scope (the service's signing name, the request's
// date), the access key, the signature (compared in constant time), and the
// session token. Every failure is an *awserr.Error with HTTP status 400 and
// AWS's code and wording.
//
// Set Credentials (and Now, or time.Now is used) before the first request;
// do not copy a Strict after that.
type Strict struct {
	// Credentials resolves access keys. Required.
	Credentials Credentials
	// Now is the clock. Nil means time.Now.
	Now func() time.Time

	mu   sync.Mutex
	keys map[string][]byte // derived signing keys by scope and secret
}

var _ Authenticator = (*Strict)(nil)

// Verifies implements Authenticator: Strict verifies signatures.
func (*Strict) Verifies() bool { return true }

// Authenticate implements Authenticator.
func (s *Strict) Authenticate(r *http.Request, body []byte, service string) (*identity.Caller, error) {
	h := r.Header.Get("Authorization")
	if h == "" {
		return nil, missingToken()
	}
	a, err := ParseAuthorization(h)
	if err != nil {
		return nil, err
	}

	// The request's date: X-Amz-Date, else Date.
	stamp := r.Header.Get("X-Amz-Date")
	amzDate := stamp != ""
	var t time.Time
	switch {
	case amzDate:
		if t, err = ParseAmzDate(stamp); err != nil {
			return nil, err
		}
	case r.Header.Get("Date") != "":
		d := r.Header.Get("Date")
		if t, err = http.ParseTime(d); err != nil {
			if t, err = ParseAmzDate(d); err != nil {
				return nil, err
			}
		}
		stamp = t.UTC().Format(AmzDateLayout)
	default:
		return nil, awserr.New(CodeIncompleteSignature,
			"Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header. Authorization="+
				clipTo(h, maxEchoedAuthorization))
	}
	now := time.Now
	if s.Now != nil {
		now = s.Now
	}
	if err := checkSkew(t, stamp, now().UTC()); err != nil {
		return nil, err
	}

	if !hasSignedHeader(a.SignedHeaders, "host") {
		return nil, awserr.New(CodeInvalidSignature,
			"'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.")
	}
	if amzDate && !hasSignedHeader(a.SignedHeaders, "x-amz-date") {
		return nil, awserr.New(CodeInvalidSignature,
			"'X-Amz-Date' must be a 'SignedHeader' in the AWS Authorization.")
	}
	if err := a.CheckScope(service); err != nil {
		return nil, err
	}
	if err := checkScopeDate(&a, stamp); err != nil {
		return nil, err
	}

	secret, token, caller, ok := s.Credentials.Credential(a.Credential.AccessKeyID)
	if !ok || caller == nil || !inPartition(caller.ARN, a.Credential.Region) {
		// A principal's access keys exist in its own partition only
		// (aws, aws-cn, aws-us-gov): signed for a region of another, the
		// key is unknown there, as on AWS.
		return nil, awserr.New(CodeUnrecognizedClient, InvalidTokenMessage)
	}

	// The payload hash: X-Amz-Content-Sha256 when it is signed (it must
	// then be the body's), else the body's.
	sum := sha256.Sum256(body)
	payload := hex.EncodeToString(sum[:])
	badPayload := false
	if hasSignedHeader(a.SignedHeaders, "x-amz-content-sha256") {
		if v, present := r.Header["X-Amz-Content-Sha256"]; present {
			badPayload = len(v) != 1 || v[0] != payload
		}
	}
	canonical := canonicalRequest(r, a.SignedHeaders, payload, false)
	scope := a.Credential.Date + "/" + a.Credential.Region + "/" + a.Credential.Service + "/" + Terminator
	sts := stringToSign(stamp, scope, canonical)
	key := s.signingKey(secret.Reveal(), a.Credential.Date, a.Credential.Region, a.Credential.Service)
	want := hmacSHA256(key, []byte(sts))
	got, err := hex.DecodeString(a.Signature)
	if err != nil || badPayload || !hmac.Equal(got, want) {
		if hasSignedHeader(a.SignedHeaders, "x-amz-security-token") {
			canonical = canonicalRequest(r, a.SignedHeaders, payload, true)
		}
		return nil, awserr.New(CodeInvalidSignature, SignatureMismatchMessage+
			"\n\nThe Canonical String for this request should have been\n'"+clipTo(canonical, maxEchoedCanonical)+
			"'\n\nThe String-to-Sign should have been\n'"+sts+"'\n")
	}

	// The session token, after the signature as AWS checks it.
	sent := r.Header.Values("X-Amz-Security-Token")
	switch {
	case len(sent) > 1,
		token == "" && len(sent) == 1,
		token != "" && (len(sent) == 0 || subtle.ConstantTimeCompare([]byte(sent[0]), []byte(token.Reveal())) != 1):
		return nil, awserr.New(CodeUnrecognizedClient, InvalidTokenMessage)
	}

	caller.AccessKeyID = a.Credential.AccessKeyID
	caller.Region = a.Credential.Region
	return caller, nil
}

// inPartition reports whether the principal arn belongs to the partition of
// region (arn:<partition>:...). An ARN without a partition field is not
// refused here.
func inPartition(arn, region string) bool {
	rest, ok := strings.CutPrefix(arn, "arn:")
	if !ok {
		return true
	}
	p, _, ok := strings.Cut(rest, ":")
	return !ok || p == partition.For(region)
}

// checkSkew refuses a request dated more than MaxSkew from now.
func checkSkew(t time.Time, stamp string, now time.Time) error {
	mins := strconv.Itoa(int(MaxSkew / time.Minute))
	if t.Before(now.Add(-MaxSkew)) {
		return awserr.New(CodeInvalidSignature, "Signature expired: "+clip(stamp)+" is now earlier than "+
			now.Add(-MaxSkew).Format(AmzDateLayout)+" ("+now.Format(AmzDateLayout)+" - "+mins+" min.)")
	}
	if t.After(now.Add(MaxSkew)) {
		return awserr.New(CodeInvalidSignature, "Signature not yet current: "+clip(stamp)+" is still later than "+
			now.Add(MaxSkew).Format(AmzDateLayout)+" ("+now.Format(AmzDateLayout)+" + "+mins+" min.)")
	}
	return nil
}

// checkScopeDate refuses a credential scope whose date is not the
// request's (stamp is an X-Amz-Date value).
func checkScopeDate(a *Authorization, stamp string) error {
	if stamp[:8] != a.Credential.Date {
		return awserr.New(CodeInvalidSignature,
			"Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '"+
				a.Credential.Date+"' != '"+stamp[:8]+"', from '"+stamp+"'.")
	}
	return nil
}

// hasSignedHeader reports whether the semicolon-separated list signed
// names header.
func hasSignedHeader(signed, header string) bool {
	for signed != "" {
		var name string
		name, signed, _ = strings.Cut(signed, ";")
		if name == header {
			return true
		}
	}
	return false
}

// canonicalRequest builds the SigV4 canonical request of r:
//
//	method \n canonical URI \n canonical query \n canonical headers \n signed headers \n payload hash
//
// The headers are those of signed, in the order listed; host is r.Host.
// With redactToken the value of x-amz-security-token is replaced (for
// quoting the canonical request in an error, which the audit trail
// records).
func canonicalRequest(r *http.Request, signed, payloadHash string, redactToken bool) string {
	var b strings.Builder
	b.Grow(256 + len(signed)*4)
	b.WriteString(r.Method)
	b.WriteByte('\n')
	path := r.URL.EscapedPath()
	if path == "" {
		path = "/"
	}
	// Non-S3 services encode the (already escaped) path once more.
	writeURIEncoded(&b, path, false)
	b.WriteByte('\n')
	writeCanonicalQuery(&b, r.URL.RawQuery)
	b.WriteByte('\n')
	for rest := signed; rest != ""; {
		var name string
		name, rest, _ = strings.Cut(rest, ";")
		b.WriteString(name)
		b.WriteByte(':')
		switch {
		case name == "host":
			writeTrimmed(&b, r.Host)
		case redactToken && name == "x-amz-security-token":
			b.WriteString(sensitive.Redacted)
		default:
			vals := r.Header[textproto.CanonicalMIMEHeaderKey(name)]
			if len(vals) == 0 && name == "content-length" && r.ContentLength >= 0 {
				b.WriteString(strconv.FormatInt(r.ContentLength, 10))
			}
			for i, v := range vals {
				if i > 0 {
					b.WriteByte(',')
				}
				writeTrimmed(&b, v)
			}
		}
		b.WriteByte('\n')
	}
	b.WriteByte('\n')
	b.WriteString(signed)
	b.WriteByte('\n')
	b.WriteString(payloadHash)
	return b.String()
}

// writeTrimmed writes v without leading and trailing spaces and with each
// run of spaces collapsed to one (SigV4's Trimall).
func writeTrimmed(b *strings.Builder, v string) {
	v = strings.TrimSpace(v)
	space := false
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c == ' ' {
			if !space {
				b.WriteByte(' ')
			}
			space = true
			continue
		}
		space = false
		b.WriteByte(c)
	}
}

// writeCanonicalQuery writes the canonical query string of a raw query:
// each name and value decoded, then URI-encoded (RFC 3986), sorted by
// encoded name and then value.
func writeCanonicalQuery(b *strings.Builder, raw string) {
	if raw == "" {
		return
	}
	type param struct{ k, v string }
	var params []param
	for raw != "" {
		var kv string
		kv, raw, _ = strings.Cut(raw, "&")
		if kv == "" {
			continue
		}
		k, v, _ := strings.Cut(kv, "=")
		params = append(params, param{uriEncode(queryUnescape(k)), uriEncode(queryUnescape(v))})
	}
	sort.Slice(params, func(i, j int) bool {
		if params[i].k != params[j].k {
			return params[i].k < params[j].k
		}
		return params[i].v < params[j].v
	})
	for i, p := range params {
		if i > 0 {
			b.WriteByte('&')
		}
		b.WriteString(p.k)
		b.WriteByte('=')
		b.WriteString(p.v)
	}
}

func queryUnescape(s string) string {
	if u, err := url.QueryUnescape(s); err == nil {
		return u
	}
	return s
}

func uriEncode(s string) string {
	var b strings.Builder
	writeURIEncoded(&b, s, true)
	return b.String()
}

// writeURIEncoded writes s with every byte outside A-Z a-z 0-9 - . _ ~
// percent-encoded in upper case; '/' too when encodeSlash.
func writeURIEncoded(b *strings.Builder, s string, encodeSlash bool) {
	const hexUpper = "0123456789ABCDEF"
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' ||
			c == '-' || c == '.' || c == '_' || c == '~' || c == '/' && !encodeSlash {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hexUpper[c>>4])
		b.WriteByte(hexUpper[c&15])
	}
}

// stringToSign returns the SigV4 string to sign.
func stringToSign(stamp, scope, canonical string) string {
	sum := sha256.Sum256([]byte(canonical))
	return Algorithm + "\n" + stamp + "\n" + scope + "\n" + hex.EncodeToString(sum[:])
}

// signingKey returns the SigV4 signing key of secret for a date, region
// and service, from the cache when it was derived before.
func (s *Strict) signingKey(secret, date, region, service string) []byte {
	id := date + "/" + region + "/" + service + "/" + secret
	s.mu.Lock()
	k, ok := s.keys[id]
	s.mu.Unlock()
	if ok {
		return k
	}
	k = DeriveSigningKey(secret, date, region, service)
	s.mu.Lock()
	if s.keys == nil || len(s.keys) >= maxCachedSigningKeys {
		s.keys = make(map[string][]byte)
	}
	s.keys[id] = k
	s.mu.Unlock()
	return k
}

// DeriveSigningKey derives the SigV4 signing key of a secret access key for
// a date (yyyymmdd), region and service.
func DeriveSigningKey(secret, date, region, service string) []byte {
	k := hmacSHA256([]byte("AWS4"+secret), []byte(date))
	k = hmacSHA256(k, []byte(region))
	k = hmacSHA256(k, []byte(service))
	return hmacSHA256(k, []byte(Terminator))
}

func hmacSHA256(key, data []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write(data)
	return m.Sum(nil)
}

// clipTo bounds a request-supplied value quoted in an error message to max
// bytes.
func clipTo(s string, max int) string {
	if len(s) > max {
		return s[:max] + "..."
	}
	return s
}
