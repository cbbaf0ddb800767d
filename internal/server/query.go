package server

import (
	"context"
	"fmt"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"runtime/debug"
	"strings"
	"time"

	"github.com/keyfort/keyfort/internal/audit"
	"github.com/keyfort/keyfort/internal/awserr"
	"github.com/keyfort/keyfort/internal/awsjson"
	"github.com/keyfort/keyfort/internal/identity"
)

// STS over the AWS Query protocol. Keyfort serves one STS operation,
// GetCallerIdentity, which tools such as the Terraform AWS provider call to
// check their credentials before anything else. The Query protocol (a
// form-encoded request, an XML response) is unlike the AWS JSON 1.1 of the
// other services, and one operation does not justify generating the STS
// model: this file is its whole codec, written by hand against botocore's
// sts model (protocol "query", xmlNamespace below) and the STS API
// reference.
const (
	stsSigningName  = "sts"
	stsEventSource  = "sts.amazonaws.com"
	stsVersion      = "2011-06-15"
	stsXMLNamespace = "https://sts.amazonaws.com/doc/2011-06-15/"
	// stsMaxBody bounds a Query request: GetCallerIdentity has no
	// parameters, so anything near this size is not one.
	stsMaxBody = 16 << 10
)

// stsOperations are the operations of the STS model (botocore
// sts/2011-06-15) that Keyfort does not serve: they answer InvalidAction
// with a message that says so, rather than the one for an unknown action.
var stsOperations = map[string]bool{
	"AssumeRole": true, "AssumeRoleWithSAML": true, "AssumeRoleWithWebIdentity": true,
	"AssumeRoot": true, "DecodeAuthorizationMessage": true, "GetAccessKeyInfo": true,
	"GetDelegatedAccessToken": true, "GetFederationToken": true, "GetSessionToken": true,
	"GetWebIdentityToken": true,
}

// isQuery reports whether r is an AWS Query request: no X-Amz-Target and a
// form-encoded body. Any other request is AWS JSON 1.1's.
func isQuery(r *http.Request) bool {
	if _, ok := r.Header[awsjson.HeaderTarget]; ok {
		return false
	}
	ct := r.Header.Get("Content-Type")
	if ct == "" {
		return false
	}
	mt, _, err := mime.ParseMediaType(ct)
	return err == nil && mt == "application/x-www-form-urlencoded"
}

// serveQuery serves an AWS Query request (STS): it reads the body,
// authenticates it with the signing name sts, and answers
// GetCallerIdentity; any other action is InvalidAction. GetCallerIdentity
// is not authorized: AWS always allows it, whatever the policies say. Every
// request is audited (eventSource sts.amazonaws.com) as the others are.
func (s *Server) serveQuery(w http.ResponseWriter, r *http.Request, reqID string) {
	ctx := r.Context()
	start := s.now()
	var caller *identity.Caller
	action := ""
	status := http.StatusOK
	defer func() {
		if p := recover(); p != nil {
			// Keep serving; answer the internal error (nothing was written
			// yet: the answer is written last).
			s.log.Error("panic while serving request", "request_id", reqID, "op", "sts."+action,
				"panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			status = http.StatusInternalServerError
			writeQueryError(w, awserr.WithStatus(status, awserr.CodeInternalFailure, InternalMessage), reqID)
		}
		if s.log.Enabled(ctx, slog.LevelDebug) {
			s.log.LogAttrs(ctx, slog.LevelDebug, "request",
				slog.String("op", "sts."+action), slog.Int("status", status),
				slog.Duration("duration", s.now().Sub(start)), slog.String("request_id", reqID))
		}
	}()
	fail := func(e *awserr.Error) {
		status = e.Status
		if status == 0 {
			status = http.StatusBadRequest
		}
		if err := s.auditQuery(ctx, start, reqID, caller, action, e); err != nil {
			s.log.LogAttrs(ctx, slog.LevelError, "audit write failed; failing the request",
				slog.String("request_id", reqID), slog.String("error", err.Error()))
			e = awserr.WithStatus(http.StatusInternalServerError, awserr.CodeInternalFailure, InternalMessage)
			status = e.Status
		}
		writeQueryError(w, e, reqID)
	}

	bufp := awsjson.GetBuffer()
	defer awsjson.PutBuffer(bufp)
	body, err := awsjson.ReadBody(r.Body, r.ContentLength, stsMaxBody, (*bufp)[:0])
	*bufp = body[:0]
	if err != nil {
		e, ok := awserr.As(err)
		if !ok {
			e = awserr.New("MalformedInput", "The request body could not be read")
			s.log.LogAttrs(ctx, slog.LevelDebug, "request body unreadable (client's fault)",
				slog.String("request_id", reqID), slog.String("error", err.Error()))
		}
		fail(queryAuthError(e))
		return
	}
	form, err := url.ParseQuery(string(body))
	if err != nil {
		fail(awserr.New("MalformedQueryString", "The request body is not a valid form-encoded query string"))
		return
	}
	action = auditName(form.Get("Action"))
	caller, err = s.auth.Authenticate(r, body, stsSigningName)
	if err != nil {
		e, ok := awserr.As(err)
		if !ok {
			s.log.LogAttrs(ctx, slog.LevelError, "internal error",
				slog.String("request_id", reqID), slog.String("error", err.Error()))
			e = awserr.WithStatus(http.StatusInternalServerError, awserr.CodeInternalFailure, InternalMessage)
		}
		fail(queryAuthError(e))
		return
	}
	caller.SourceIP = sourceIP(r.RemoteAddr)
	caller.UserAgent = r.Header.Get("User-Agent")
	caller.RequestID = reqID
	caller.SecureTransport = r.TLS != nil

	if e := checkQueryAction(form); e != nil {
		fail(e)
		return
	}
	if err := s.auditQuery(ctx, start, reqID, caller, action, nil); err != nil {
		s.log.LogAttrs(ctx, slog.LevelError, "audit write failed; failing the request",
			slog.String("request_id", reqID), slog.String("error", err.Error()))
		status = http.StatusInternalServerError
		writeQueryError(w, awserr.WithStatus(status, awserr.CodeInternalFailure, InternalMessage), reqID)
		return
	}
	out := appendCallerIdentity((*bufp)[:0], caller, reqID)
	*bufp = out[:0]
	h := w.Header()
	h["Content-Type"] = []string{"text/xml"}
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(out)
}

// checkQueryAction returns the error for a request that is not
// GetCallerIdentity of version 2011-06-15, or nil.
func checkQueryAction(form url.Values) *awserr.Error {
	action := form.Get("Action")
	switch {
	case action == "":
		return awserr.New("MissingAction", "The request must contain the parameter Action")
	case action == "GetCallerIdentity":
		if v := form.Get("Version"); v != stsVersion {
			if v == "" {
				return awserr.New("MissingParameter", "The request must contain the parameter Version")
			}
			return awserr.New("InvalidAction", "Could not find operation GetCallerIdentity for version "+clip(v, 32))
		}
		for k := range form {
			if k != "Action" && k != "Version" {
				return awserr.New("InvalidParameterValue", "GetCallerIdentity takes no parameter "+clip(k, 64))
			}
		}
		return nil
	case stsOperations[action]:
		return awserr.New("InvalidAction", "Keyfort serves only the STS action GetCallerIdentity; "+
			action+" is not supported")
	default:
		return awserr.New("InvalidAction", "Could not find operation "+clip(action, 64)+
			" (Keyfort serves only the STS action GetCallerIdentity)")
	}
}

// queryAuthError renames an authentication or body error of the JSON protocols to
// the Query protocol's code: STS answers SignatureDoesNotMatch and
// InvalidClientTokenId where KMS answers InvalidSignatureException and
// UnrecognizedClientException; the others lose the Exception suffix.
func queryAuthError(e *awserr.Error) *awserr.Error {
	code := e.Code
	switch code {
	case awserr.CodeInvalidSignature:
		code = "SignatureDoesNotMatch"
	case awserr.CodeUnrecognizedClient:
		code = "InvalidClientTokenId"
	default:
		code = strings.TrimSuffix(code, "Exception")
	}
	return &awserr.Error{Code: code, Message: e.Message, Status: e.Status}
}

// auditName returns action when it can name an audit event (letters only,
// as every STS operation), else "".
func auditName(action string) string {
	if len(action) == 0 || len(action) > 64 {
		return ""
	}
	for i := 0; i < len(action); i++ {
		c := action[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z') {
			return ""
		}
	}
	return action
}

// auditQuery writes the CloudTrail event of an STS request (readOnly: no
// STS action Keyfort answers changes anything). A request for an action
// that is not an STS operation is not audited, as a JSON request for an
// unknown X-Amz-Target is not.
func (s *Server) auditQuery(ctx context.Context, start time.Time, reqID string, caller *identity.Caller, action string, fail *awserr.Error) error {
	if action != "GetCallerIdentity" && !stsOperations[action] {
		return nil
	}
	e := audit.New(stsEventSource, action, start)
	e.RequestID = reqID
	e.ReadOnly = true
	if caller != nil {
		e.UserIdentity = userIdentityOf(caller)
		e.AWSRegion = caller.Region
		e.SourceIPAddress = caller.SourceIP
		e.UserAgent = caller.UserAgent
		e.RecipientAccountID = caller.Account
	}
	if fail != nil {
		e.ErrorCode = fail.Code
		e.ErrorMessage = fail.Message
	}
	return s.audit.Write(ctx, e)
}

// writeQueryError writes e as a Query protocol error:
// <ErrorResponse><Error><Type>Sender|Receiver</Type><Code/><Message/></Error><RequestId/></ErrorResponse>.
func writeQueryError(w http.ResponseWriter, e *awserr.Error, reqID string) {
	status := e.Status
	if status == 0 {
		status = http.StatusBadRequest
	}
	typ := "Sender"
	if status >= 500 {
		typ = "Receiver"
	}
	b := make([]byte, 0, 256+len(e.Message))
	b = append(b, `<ErrorResponse xmlns="`...)
	b = append(b, stsXMLNamespace...)
	b = append(b, `"><Error><Type>`...)
	b = append(b, typ...)
	b = append(b, `</Type><Code>`...)
	b = appendXMLText(b, e.Code)
	b = append(b, `</Code><Message>`...)
	b = appendXMLText(b, e.Message)
	b = append(b, `</Message></Error><RequestId>`...)
	b = appendXMLText(b, reqID)
	b = append(b, "</RequestId></ErrorResponse>\n"...)
	h := w.Header()
	h["Content-Type"] = []string{"text/xml"}
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// appendCallerIdentity appends the GetCallerIdentity response of c.
func appendCallerIdentity(b []byte, c *identity.Caller, reqID string) []byte {
	b = append(b, `<GetCallerIdentityResponse xmlns="`...)
	b = append(b, stsXMLNamespace...)
	b = append(b, "\">\n  <GetCallerIdentityResult>\n    <Arn>"...)
	b = appendXMLText(b, c.ARN)
	b = append(b, "</Arn>\n    <UserId>"...)
	b = appendXMLText(b, callerUserID(c))
	b = append(b, "</UserId>\n    <Account>"...)
	b = appendXMLText(b, c.Account)
	b = append(b, "</Account>\n  </GetCallerIdentityResult>\n  <ResponseMetadata>\n    <RequestId>"...)
	b = appendXMLText(b, reqID)
	b = append(b, "</RequestId>\n  </ResponseMetadata>\n</GetCallerIdentityResponse>\n"...)
	return b
}

// callerUserID is the aws:userid of c: the account id for the root, the
// user's AIDA id, a role's AROA id and session name.
func callerUserID(c *identity.Caller) string {
	if c.Principal.UserID != "" {
		return c.Principal.UserID
	}
	return c.Account
}

// appendXMLText appends s escaped as XML character data. Bytes that XML
// 1.0 cannot carry (control characters, invalid UTF-8) become U+FFFD.
func appendXMLText(b []byte, s string) []byte {
	for _, r := range s {
		switch {
		case r == '<':
			b = append(b, "&lt;"...)
		case r == '>':
			b = append(b, "&gt;"...)
		case r == '&':
			b = append(b, "&amp;"...)
		case r == '"':
			b = append(b, "&quot;"...)
		case r == '\'':
			b = append(b, "&apos;"...)
		case r == '\t' || r == '\n' || r == '\r':
			b = append(b, "&#"...)
			b = append(b, byte('0'+r/10), byte('0'+r%10), ';')
		case r < 0x20 || r == 0xFFFD || r == 0xFFFE || r == 0xFFFF:
			b = append(b, "\uFFFD"...)
		default:
			b = append(b, string(r)...)
		}
	}
	return b
}

// clip cuts s to at most n bytes, for error messages that name what the
// client sent (writeQueryError escapes them).
func clip(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}
