// Package sigv4 authenticates AWS Signature Version 4 requests.
//
// It parses the Authorization header and the credential scope, derives the
// caller's account and region, and reports failures with AWS's exception
// codes and wording (MissingAuthenticationTokenException,
// IncompleteSignatureException, InvalidSignatureException, ...). In
// development mode ([Dev]) the header must be well formed but the signature
// is not verified; in strict mode ([Strict]) the signature, the date and
// the session token are verified against [Credentials] (the credentials
// file, package credentials, through the app). This package imports no
// service and no storage.
package sigv4

import (
	"net/http"
	"strings"
	"time"

	"github.com/keyfort/keyfort/internal/awserr"
	"github.com/keyfort/keyfort/internal/iam"
	"github.com/keyfort/keyfort/internal/identity"
)

// Algorithm is the only signing algorithm Keyfort accepts.
const Algorithm = "AWS4-HMAC-SHA256"

// Terminator ends every SigV4 credential scope.
const Terminator = "aws4_request"

// DefaultAccount is the account of every access key that is not itself a
// 12-digit account id, in development mode.
const DefaultAccount = "123456789012"

// Error codes of authentication failures, as AWS JSON services send them.
const (
	CodeMissingAuthenticationToken = awserr.CodeMissingAuthToken
	CodeIncompleteSignature        = awserr.CodeIncompleteSignature
	CodeInvalidSignature           = awserr.CodeInvalidSignature
	CodeUnrecognizedClient         = awserr.CodeUnrecognizedClient
)

// Authenticator authenticates one request for a service whose SigV4 signing
// name is service (e.g. "kms", "secretsmanager").
type Authenticator interface {
	// Authenticate returns the caller (Account, Region, AccessKeyID, ARN,
	// Type and Principal set) or an *awserr.Error with an authentication
	// error code. body is the whole request body (strict verification
	// hashes it); Authenticate must not keep it.
	Authenticate(r *http.Request, body []byte, service string) (*identity.Caller, error)
	// Verifies reports whether signatures are verified. A server whose
	// authenticator does not verify listens only on loopback unless told
	// otherwise.
	Verifies() bool
}

// Credential is the Credential component of an Authorization header.
type Credential struct {
	AccessKeyID string
	Date        string // yyyymmdd
	Region      string
	Service     string
	Terminator  string
}

// Authorization is a parsed SigV4 Authorization header. The strings are
// substrings of the header (parsing does not allocate).
type Authorization struct {
	Algorithm     string
	Credential    Credential
	SignedHeaders string // semicolon-separated, lower case
	Signature     string // hex
}

// ParseAuthorization parses a SigV4 Authorization header value:
//
//	AWS4-HMAC-SHA256 Credential=<AKID>/<yyyymmdd>/<region>/<service>/aws4_request, SignedHeaders=<h1;h2>, Signature=<hex>
//
// It tolerates the spacing variants that SDKs and the CLI send (with or
// without a space after each comma). Errors are *awserr.Error values with
// code IncompleteSignatureException or InvalidSignatureException. It checks
// form only: which service and region are acceptable is the caller's
// decision ([Authorization.CheckScope]).
func ParseAuthorization(h string) (Authorization, error) {
	var a Authorization
	h = strings.TrimSpace(h)
	alg, rest, _ := strings.Cut(h, " ")
	a.Algorithm = alg
	if alg != Algorithm {
		if alg == "" {
			return a, missingToken()
		}
		return a, awserr.New(CodeIncompleteSignature,
			"Unsupported AWS 'algorithm': only "+Algorithm+" is supported")
	}
	var cred string
	var haveCred, haveSH, haveSig bool
	for rest != "" {
		var part string
		part, rest, _ = strings.Cut(rest, ",")
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		key, val, ok := strings.Cut(part, "=")
		if !ok {
			return a, awserr.New(CodeIncompleteSignature,
				"Authorization header requires each component to be of the form key=value")
		}
		switch strings.TrimSpace(key) {
		case "Credential":
			cred, haveCred = strings.TrimSpace(val), true
		case "SignedHeaders":
			a.SignedHeaders, haveSH = strings.TrimSpace(val), true
		case "Signature":
			a.Signature, haveSig = strings.TrimSpace(val), true
		}
	}
	if !haveCred || !haveSH || !haveSig || cred == "" || a.SignedHeaders == "" || a.Signature == "" {
		var msg strings.Builder
		if !haveCred || cred == "" {
			msg.WriteString("Authorization header requires 'Credential' parameter. ")
		}
		if !haveSig || a.Signature == "" {
			msg.WriteString("Authorization header requires 'Signature' parameter. ")
		}
		if !haveSH || a.SignedHeaders == "" {
			msg.WriteString("Authorization header requires 'SignedHeaders' parameter. ")
		}
		return a, awserr.New(CodeIncompleteSignature, strings.TrimSpace(msg.String()))
	}
	if !isHex(a.Signature) {
		return a, awserr.New(CodeIncompleteSignature,
			"Authorization header 'Signature' parameter must be a hex-encoded value")
	}
	c, err := parseCredential(cred)
	if err != nil {
		return a, err
	}
	a.Credential = c
	return a, nil
}

func parseCredential(s string) (Credential, error) {
	var c Credential
	parts := [5]string{}
	n := 0
	for n < 5 {
		i := strings.IndexByte(s, '/')
		if i < 0 {
			parts[n] = s
			n++
			s = ""
			break
		}
		parts[n] = s[:i]
		s = s[i+1:]
		n++
	}
	if n != 5 || s != "" {
		return c, awserr.New(CodeIncompleteSignature,
			"Credential is malformed; expecting \"<YOUR-AKID>/YYYYMMDD/REGION/SERVICE/aws4_request\".")
	}
	c = Credential{AccessKeyID: parts[0], Date: parts[1], Region: parts[2], Service: parts[3], Terminator: parts[4]}
	if c.AccessKeyID == "" {
		return c, awserr.New(CodeUnrecognizedClient, "The security token included in the request is invalid.")
	}
	if !isDate(c.Date) {
		return c, awserr.New(CodeInvalidSignature,
			"Credential should be scoped to a valid date in the form YYYYMMDD. ")
	}
	if c.Terminator != Terminator {
		return c, awserr.New(CodeInvalidSignature,
			"Credential should be scoped with a valid terminator: 'aws4_request', not '"+clip(c.Terminator)+"'. ")
	}
	if !ValidRegion(c.Region) {
		return c, awserr.New(CodeInvalidSignature, "Credential should be scoped to a valid region. ")
	}
	return c, nil
}

// CheckScope reports an InvalidSignatureException when the credential scope
// names another service than service (the SigV4 signing name).
func (a *Authorization) CheckScope(service string) error {
	if a.Credential.Service != service {
		return awserr.New(CodeInvalidSignature,
			"Credential should be scoped to correct service: '"+service+"'. ")
	}
	return nil
}

// ValidRegion reports whether s has the form of an AWS region name, such as
// us-east-1, eu-central-2 or us-gov-west-1.
func ValidRegion(s string) bool {
	// <2+ letters>(-<letters>)+-<digits>, without allocating.
	if len(s) < 6 || len(s) > 32 {
		return false
	}
	groups := 0
	for rest := s; ; groups++ {
		g, tail, more := strings.Cut(rest, "-")
		if g == "" || (groups == 0 && len(g) < 2) {
			return false
		}
		for j := 0; j < len(g); j++ {
			c := g[j]
			if more && (c < 'a' || c > 'z') || !more && (c < '0' || c > '9') {
				return false
			}
		}
		if !more {
			return groups >= 2
		}
		rest = tail
	}
}

// ParseAmzDate parses an X-Amz-Date value (ISO 8601 basic format,
// 20060102T150405Z).
func ParseAmzDate(s string) (time.Time, error) {
	if t, ok := parseBasic(s); ok {
		return t, nil
	}
	return time.Time{}, awserr.New(CodeIncompleteSignature,
		"Date must be in ISO-8601 'basic format'. Got '"+clip(s)+"'. See http://en.wikipedia.org/wiki/ISO_8601")
}

// parseBasic parses yyyymmddThhmmssZ without time.Parse's generality
// (it is on every request's path), refusing out-of-range fields as
// time.Parse does.
func parseBasic(s string) (time.Time, bool) {
	if len(s) != len(AmzDateLayout) || s[8] != 'T' || s[15] != 'Z' {
		return time.Time{}, false
	}
	y, ok1 := digits(s, 0, 4)
	mo, ok2 := digits(s, 4, 6)
	d, ok3 := digits(s, 6, 8)
	h, ok4 := digits(s, 9, 11)
	mi, ok5 := digits(s, 11, 13)
	se, ok6 := digits(s, 13, 15)
	if !ok1 || !ok2 || !ok3 || !ok4 || !ok5 || !ok6 || !validDay(y, mo, d) || h > 23 || mi > 59 || se > 59 {
		return time.Time{}, false
	}
	t := time.Date(y, time.Month(mo), d, h, mi, se, 0, time.UTC)
	return t, true
}

// Dev authenticates in development mode: the Authorization header must be
// a well-formed SigV4 header scoped to the right service and a valid region,
// but the signature is not checked. The caller is the root of the account:
// an access key that is exactly 12 digits is that account, any other key is
// [DefaultAccount]. The zero value is ready to use.
type Dev struct{}

var _ Authenticator = Dev{}

// Verifies implements Authenticator: development mode checks only the form.
func (Dev) Verifies() bool { return false }

// Authenticate implements Authenticator.
func (d Dev) Authenticate(r *http.Request, body []byte, service string) (*identity.Caller, error) {
	c := new(identity.Caller)
	if err := d.AuthenticateInto(r, body, service, c); err != nil {
		return nil, err
	}
	return c, nil
}

// AuthenticateInto is Authenticate setting *c to the caller, for a Caller
// the server keeps in the request's state ([InPlace]). *c is left as is
// on error.
func (Dev) AuthenticateInto(r *http.Request, _ []byte, service string, c *identity.Caller) error {
	h := r.Header.Get("Authorization")
	if h == "" {
		return missingToken()
	}
	a, err := ParseAuthorization(h)
	if err != nil {
		return err
	}
	if err := a.CheckScope(service); err != nil {
		return err
	}
	if d := r.Header.Get("X-Amz-Date"); d != "" {
		if _, err := ParseAmzDate(d); err != nil {
			return err
		}
		if err := checkScopeDate(&a, d); err != nil {
			return err
		}
	}
	account := DefaultAccount
	if IsAccountID(a.Credential.AccessKeyID) {
		account = a.Credential.AccessKeyID
	}
	identity.SetRoot(c, account, a.Credential.Region, a.Credential.AccessKeyID)
	return nil
}

// InPlace is implemented by an Authenticator that can write the caller
// into a Caller the server provides, saving an allocation per request.
type InPlace interface {
	// AuthenticateInto is Authenticate setting *c to the caller instead
	// of returning a new one; on error *c is left as is.
	AuthenticateInto(r *http.Request, body []byte, service string, c *identity.Caller) error
}

var _ InPlace = Dev{}

// IsAccountID reports whether s is exactly 12 ASCII digits.
func IsAccountID(s string) bool { return iam.IsAccountID(s) }

func missingToken() *awserr.Error {
	return awserr.New(CodeMissingAuthenticationToken, "Missing Authentication Token")
}

func isDate(s string) bool {
	if len(s) != 8 {
		return false
	}
	y, ok1 := digits(s, 0, 4)
	mo, ok2 := digits(s, 4, 6)
	d, ok3 := digits(s, 6, 8)
	return ok1 && ok2 && ok3 && validDay(y, mo, d)
}

// digits returns the number written in s[from:to], which must be ASCII
// digits only.
func digits(s string, from, to int) (int, bool) {
	n := 0
	for i := from; i < to; i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, true
}

// validDay reports whether y-mo-d is a day of the calendar (no February
// 30th), as time.Parse checks.
func validDay(y, mo, d int) bool {
	if mo < 1 || mo > 12 || d < 1 {
		return false
	}
	n := 31
	switch mo {
	case 4, 6, 9, 11:
		n = 30
	case 2:
		n = 28
		if y%4 == 0 && (y%100 != 0 || y%400 == 0) { // proleptic Gregorian, as package time
			n = 29
		}
	}
	return d <= n
}

func isHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
			return false
		}
	}
	return true
}

// clip bounds a request-supplied value quoted in an error message.
func clip(s string) string {
	const max = 64
	if len(s) > max {
		return s[:max] + "..."
	}
	return s
}
