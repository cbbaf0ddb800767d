package kms

import (
	"fmt"

	"github.com/keyfort/keyfort/internal/awserr"
)

// KMS exception codes used by the service.
const (
	codeNotFound          = "NotFoundException"
	codeInvalidArn        = "InvalidArnException"
	codeInvalidState      = "KMSInvalidStateException"
	codeDisabled          = "DisabledException"
	codeAlreadyExists     = "AlreadyExistsException"
	codeInvalidAliasName  = "InvalidAliasNameException"
	codeLimitExceeded     = "LimitExceededException"
	codeTag               = "TagException"
	codeInvalidMarker     = "InvalidMarkerException"
	codeInvalidCiphertext = "InvalidCiphertextException"
	codeIncorrectKey      = "IncorrectKeyException"
	codeInvalidKeyUsage   = "InvalidKeyUsageException"
	codeMalformedPolicy   = "MalformedPolicyDocumentException"
	codeUnsupported       = "UnsupportedOperationException"
	codeDryRun            = "DryRunOperationException"
	codeInvalidGrantToken = "InvalidGrantTokenException"
	codeCustomKeyStoreNF  = "CustomKeyStoreNotFoundException"
)

func errKeyNotFound(arn string) error {
	return awserr.Newf(codeNotFound, "Key '%s' does not exist", arn)
}

func errAliasNotFound(aliasARN string) error {
	return awserr.Newf(codeNotFound, "Alias %s is not found.", aliasARN)
}

func errInvalidKeyID(v string) error {
	return awserr.Newf(codeNotFound, "Invalid keyId %s", v)
}

// errAliasNotSupported is AWS's answer when an operation that takes only a
// key id or key ARN is given an alias name or alias ARN.
func errAliasNotSupported() error {
	return awserr.New(codeInvalidArn, "Key Aliases are not supported for this operation.")
}

func errInvalidArn(v string) error {
	return awserr.Newf(codeInvalidArn, "Invalid arn %s", v)
}

func errPendingDeletion(arn string) error {
	return awserr.Newf(codeInvalidState, "%s is pending deletion.", arn)
}

func errInvalidState(arn string, state string) error {
	return awserr.Newf(codeInvalidState, "%s is %s.", arn, stateWords(state))
}

func errDisabled(arn string) error {
	return awserr.Newf(codeDisabled, "%s is disabled.", arn)
}

func errValidation(format string, args ...any) error {
	return awserr.Validation(fmt.Sprintf(format, args...))
}

func stateWords(state string) string {
	switch state {
	case stateDisabled:
		return "disabled"
	case statePendingDeletion:
		return "pending deletion"
	case statePendingImport:
		return "pending import"
	case stateEnabled:
		return "enabled"
	}
	return state
}
