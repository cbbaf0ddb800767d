package kms

import (
	"context"
	"errors"
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

// errInvalidKeyID is AWS's answer to a KeyId that is neither a key id, a key
// ARN nor an alias: the value is quoted (LocalStack's AWS-validated snapshot
// test_get_key_invalid_uuid records "Invalid keyId 'fake-key-id'").
func errInvalidKeyID(v string) error {
	return awserr.Newf(codeNotFound, "Invalid keyId '%s'", v)
}

// errOtherRegionArn is AWS's answer to a key ARN of another region: it
// names only that region (snapshot test_get_key_in_different_region).
func errOtherRegionArn(region string) error {
	return awserr.New(codeNotFound, "Invalid arn "+region)
}

// errTagsReserved, errDuplicateTags and errTooManyTags are AWS's TagException
// texts (snapshots test_create_key_with_invalid_tag_key,
// test_tag_key_with_duplicate_tag_keys_raises_error and
// test_create_key_with_too_many_tags_raises_error), without a final period.
func errTagsReserved() error { return awserr.New(codeTag, "Tags beginning with aws: are reserved") }

func errDuplicateTags() error { return awserr.New(codeTag, "Duplicate tag keys") }

func errTooManyTags() error { return awserr.New(codeTag, "Too many tags") }

// errAliasNotSupported is AWS's answer when an operation that takes only a
// key id or key ARN is given an alias name or alias ARN.
func errAliasNotSupported() error {
	return awserr.New(codeInvalidArn, "Key Aliases are not supported for this operation.")
}

func errInvalidArn(v string) error {
	return awserr.Newf(codeInvalidArn, "Invalid arn %s", v)
}

// pendingDeletion reports whether k is pending deletion, or (a
// multi-Region primary key) pending replica deletion: the states in which
// AWS refuses to change a key.
func pendingDeletion(k *key) bool {
	return k.meta.State == statePendingDeletion || k.meta.State == statePendingReplicaDeletion
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
	case statePendingReplicaDeletion:
		return "pending replica deletion"
	case stateEnabled:
		return "enabled"
	}
	return state
}

// InternalMessage is the message of KMSInternalException, the answer to an
// error that is not the client's (the model's wording).
const InternalMessage = "The request was rejected because an internal exception occurred. The request can be retried."

// MapError is the one mapping of errors the service returns that are not
// *awserr.Error (a storage failure, a record that will not open, a request
// whose context ended) to what a client sees: DependencyTimeoutException
// when the request's context was cancelled or timed out, else nil, and the
// server answers KMSInternalException with InternalMessage and logs the
// cause.
func MapError(err error) *awserr.Error {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return awserr.WithStatus(500, "DependencyTimeoutException", "The request timed out.")
	}
	return nil
}
