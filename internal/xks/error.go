package xks

import (
	"errors"
	"strconv"
	"strings"
)

// Kind says what went wrong in a call to a proxy, in terms a caller can map
// to AWS KMS exceptions.
type Kind int

// The kinds of [Error].
const (
	// KindConfig: the Proxy is unusable (an endpoint that is not https://,
	// an invalid URI path or region, a missing credential). Nothing was
	// sent.
	KindConfig Kind = iota + 1
	// KindInvalidInput: an argument is invalid (a key id, a ciphertext
	// part, a required request metadata member left empty). Nothing was
	// sent.
	KindInvalidInput
	// KindUnreachable: no connection (DNS, dial, reset), or the caller's
	// context was canceled.
	KindUnreachable
	// KindTLSInvalid: the TLS handshake failed (certificate not trusted,
	// wrong name, expired; no common protocol version or cipher suite).
	KindTLSInvalid
	// KindTimeout: no complete answer within the client's timeout or the
	// caller's deadline.
	KindTimeout
	// KindAuthFailed: the proxy refused the signature
	// (AuthenticationFailedException), or answered 401 or 403 without an
	// errorName.
	KindAuthFailed
	// KindInvalidResponse: an answer that cannot be used: not JSON, a
	// missing or ill-typed member, a wrong size, an integrity value that
	// does not match, an unexpected HTTP status, an unknown errorName.
	KindInvalidResponse
	// KindProxy: the proxy answered one of the specification's errors
	// (other than AuthenticationFailedException); Error.Name holds it.
	KindProxy
)

var kindNames = [...]string{
	KindConfig:          "invalid proxy configuration",
	KindInvalidInput:    "invalid input",
	KindUnreachable:     "proxy unreachable",
	KindTLSInvalid:      "TLS handshake failed",
	KindTimeout:         "timeout",
	KindAuthFailed:      "authentication failed",
	KindInvalidResponse: "invalid response",
	KindProxy:           "proxy error",
}

// String returns a short description of k.
func (k Kind) String() string {
	if k > 0 && int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "Kind(" + strconv.Itoa(int(k)) + ")"
}

// The errorName values of the specification.
const (
	NameValidation           = "ValidationException"
	NameInvalidState         = "InvalidStateException"
	NameInvalidCiphertext    = "InvalidCiphertextException"
	NameInvalidKeyUsage      = "InvalidKeyUsageException"
	NameAuthenticationFailed = "AuthenticationFailedException"
	NameAccessDenied         = "AccessDeniedException"
	NameKeyNotFound          = "KeyNotFoundException"
	NameInvalidURIPath       = "InvalidUriPathException"
	NameThrottling           = "ThrottlingException"
	NameUnsupportedOperation = "UnsupportedOperationException"
	NameDependencyTimeout    = "DependencyTimeoutException"
	NameInternal             = "InternalException"
)

const (
	maxErrorMessage    = 512 // errorMessage, in characters
	maxEchoedErrorName = 64  // an unknown errorName, as kept
)

// errorStatus is the HTTP status of each errorName, from the
// specification's table.
var errorStatus = map[string]int{
	NameValidation:           400,
	NameInvalidState:         400,
	NameInvalidCiphertext:    400,
	NameInvalidKeyUsage:      400,
	NameAuthenticationFailed: 401,
	NameAccessDenied:         403,
	NameKeyNotFound:          404,
	NameInvalidURIPath:       404,
	NameThrottling:           429,
	NameUnsupportedOperation: 501,
	NameDependencyTimeout:    503,
	NameInternal:             500,
}

// ErrorStatus returns the HTTP status the specification gives the
// errorName name, and whether name is one of its errors.
func ErrorStatus(name string) (int, bool) {
	s, ok := errorStatus[name]
	return s, ok
}

// Error is every error of a call to a proxy.
type Error struct {
	Kind Kind
	// Op is the XKS operation: OpGetHealthStatus, OpGetKeyMetadata,
	// OpEncrypt or OpDecrypt.
	Op string
	// Name is the errorName the proxy answered, if any (for
	// KindInvalidResponse, an unknown one, clipped to 64 characters).
	Name string
	// Message is the proxy's errorMessage when it answered an errorName
	// (printable ASCII only, at most 512 characters, possibly empty), else
	// Keyfort's description. It is for logs: AWS KMS does not return a
	// proxy's errorMessage to its callers.
	Message string
	// Status is the HTTP status of the answer, 0 when there was none.
	Status int
	// Err is the underlying error (a dial, TLS or context error), if any.
	Err error
}

// Error implements error.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("xks: ")
	if e.Op != "" {
		b.WriteString(e.Op)
		b.WriteString(": ")
	}
	b.WriteString(e.Kind.String())
	if e.Name != "" {
		b.WriteString(": ")
		b.WriteString(e.Name)
	}
	if e.Status != 0 {
		b.WriteString(" (HTTP ")
		b.WriteString(strconv.Itoa(e.Status))
		b.WriteString(")")
	}
	if e.Message != "" {
		b.WriteString(": ")
		b.WriteString(e.Message)
	}
	if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	}
	return b.String()
}

// Unwrap returns the underlying error.
func (e *Error) Unwrap() error { return e.Err }

// KindOf returns the Kind of err when it is (or wraps) an *Error, else 0.
func KindOf(err error) Kind {
	if e, ok := errors.AsType[*Error](err); ok {
		return e.Kind
	}
	return 0
}

func NewError(k Kind, op, msg string) *Error {
	return &Error{Kind: k, Op: op, Message: msg}
}

// StatusError is the Error of an answer with an HTTP status other than
// 200 whose body named errorName name and errorMessage message (each ""
// when absent): AuthenticationFailedException, or 401 and 403 without a
// name, is KindAuthFailed; another name of the specification KindProxy;
// anything else KindInvalidResponse.
func StatusError(op string, status int, name, message string) *Error {
	e := &Error{Op: op, Status: status, Message: printable(message, maxErrorMessage)}
	_, known := errorStatus[name]
	switch {
	case name == "" && (status == 401 || status == 403):
		e.Kind, e.Message = KindAuthFailed, "the proxy answered HTTP "+strconv.Itoa(status)+" without an errorName"
	case name == "":
		e.Kind, e.Message = KindInvalidResponse, "the proxy answered HTTP "+strconv.Itoa(status)+" without an errorName"
	case name == NameAuthenticationFailed:
		e.Kind, e.Name = KindAuthFailed, name
	case known:
		e.Kind, e.Name = KindProxy, name
	default:
		e.Kind, e.Name = KindInvalidResponse, printable(name, maxEchoedErrorName)
		e.Message = "unknown errorName"
	}
	return e
}

// printable keeps the printable ASCII of s (0x20-0x7e), clipped to max
// characters: a proxy's text goes to logs only in that form.
func printable(s string, max int) string {
	var b strings.Builder
	for i := 0; i < len(s) && b.Len() < max; i++ {
		if c := s[i]; c >= 0x20 && c <= 0x7e {
			b.WriteByte(c)
		}
	}
	return b.String()
}
