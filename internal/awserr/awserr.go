// Package awserr defines the one error type a client of Keyfort can see: an
// AWS exception with its code, message and HTTP status.
//
// Services return *Error for anything a client may see. Any other error that
// reaches the wire becomes the service's internal error with a fixed message;
// the cause is logged with the request id, never shown. This package imports
// only the standard library.
package awserr

import (
	"errors"
	"fmt"
)

// Error is an AWS exception as it appears on the wire.
type Error struct {
	// Code is the exception name, e.g. "NotFoundException". The SDKs pick the
	// exception type from it, so it must match the model exactly.
	Code string
	// Message is the human-readable text. It never contains plaintexts,
	// secret values or key material.
	Message string
	// Status is the HTTP status code (400 for client errors, 500 for faults).
	Status int
}

// Error implements the error interface.
func (e *Error) Error() string { return e.Code + ": " + e.Message }

// New returns a client error (HTTP 400) with the given code and message.
func New(code, message string) *Error {
	return &Error{Code: code, Message: message, Status: 400}
}

// Newf is New with a formatted message.
func Newf(code, format string, args ...any) *Error {
	return New(code, fmt.Sprintf(format, args...))
}

// WithStatus returns an error with an explicit HTTP status.
func WithStatus(status int, code, message string) *Error {
	return &Error{Code: code, Message: message, Status: status}
}

// As reports whether err is or wraps an *Error and returns it.
func As(err error) (*Error, bool) {
	var e *Error
	if errors.As(err, &e) {
		return e, true
	}
	return nil, false
}

// Common error codes: what any operation of an AWS JSON service may answer
// besides the exceptions its model declares (AWS's "Common Errors" of the
// KMS and Secrets Manager API references), and Keyfort's own
// NotImplementedException. See
// https://docs.aws.amazon.com/kms/latest/APIReference/CommonErrors.html.
const (
	CodeValidation            = "ValidationException"
	CodeSerialization         = "SerializationException"
	CodeUnknownOperation      = "UnknownOperationException"
	CodeAccessDenied          = "AccessDeniedException"
	CodeIncompleteSignature   = "IncompleteSignatureException"
	CodeInvalidSignature      = "InvalidSignatureException"
	CodeMissingAuthToken      = "MissingAuthenticationTokenException"
	CodeUnrecognizedClient    = "UnrecognizedClientException"
	CodeNotImplemented        = "NotImplementedException"
	CodeInternalFailure       = "InternalFailure"
	CodeRequestEntityTooLarge = "RequestEntityTooLargeException"
)

// IsCommon reports whether code is one of the common error codes, which
// any operation may answer.
func IsCommon(code string) bool {
	switch code {
	case CodeValidation, CodeSerialization, CodeUnknownOperation, CodeAccessDenied,
		CodeIncompleteSignature, CodeInvalidSignature, CodeMissingAuthToken, CodeUnrecognizedClient,
		CodeNotImplemented, CodeInternalFailure, CodeRequestEntityTooLarge:
		return true
	}
	return false
}

// Validation returns a ValidationException (HTTP 400).
func Validation(message string) *Error { return New(CodeValidation, message) }

// Serialization returns a SerializationException (HTTP 400).
func Serialization(message string) *Error { return New(CodeSerialization, message) }

// NotImplemented returns the error of an operation Keyfort does not provide
// yet: HTTP 501 with a message naming the operation.
func NotImplemented(service, op string) *Error {
	return WithStatus(501, CodeNotImplemented,
		fmt.Sprintf("Keyfort does not implement %s.%s yet", service, op))
}
