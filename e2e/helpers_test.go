// Package e2e holds black-box tests: the real server, started with the same
// wiring as `keyfort serve`, driven by the AWS SDK for Go v2 over HTTP.
package e2e

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/aws/smithy-go"
)

func ctxT(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// wantAPIError asserts that err is an AWS API error with code and, when
// msgPart is not empty, a message containing it.
func wantAPIError(t *testing.T, err error, code, msgPart string) {
	t.Helper()
	if err == nil {
		t.Fatalf("got no error, want %s", code)
	}
	var ae smithy.APIError
	if !errors.As(err, &ae) {
		t.Fatalf("error %v is not an API error, want %s", err, code)
	}
	if ae.ErrorCode() != code {
		t.Fatalf("error code = %q (%s), want %q", ae.ErrorCode(), ae.ErrorMessage(), code)
	}
	if msgPart != "" && !strings.Contains(ae.ErrorMessage(), msgPart) {
		t.Fatalf("error message = %q, want it to contain %q", ae.ErrorMessage(), msgPart)
	}
}

func mustNoErr(t *testing.T, err error, what string) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}
