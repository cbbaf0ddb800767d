package secretsmanager

import (
	"github.com/keyfort/keyfort/internal/awserr"
)

// Secrets Manager exception codes used by the service.
const (
	codeNotFound         = "ResourceNotFoundException"
	codeInvalidParameter = "InvalidParameterException"
	codeInvalidRequest   = "InvalidRequestException"
	codeExists           = "ResourceExistsException"
	codeLimitExceeded    = "LimitExceededException"
	codeDecryption       = "DecryptionFailure"
	codeEncryption       = "EncryptionFailure"
	codeInvalidNextToken = "InvalidNextTokenException"
)

// InternalMessage is the message of InternalServiceError, the answer to an
// error that is not the client's (the model's wording).
const InternalMessage = "An error occurred on the server side."

func errSecretNotFound() error {
	return awserr.New(codeNotFound, "Secrets Manager can't find the specified secret.")
}

func errNoValueForStage(stage string) error {
	return awserr.Newf(codeNotFound, "Secrets Manager can't find the specified secret value for staging label: %s", stage)
}

func errNoValueForVersion(versionID string) error {
	return awserr.Newf(codeNotFound, "Secrets Manager can't find the specified secret value for VersionId: %s", versionID)
}

func errStageMismatch() error {
	return awserr.New(codeInvalidRequest, "You provided a VersionStage that is not associated to the provided VersionId.")
}

func errMarkedForDeletion() error {
	return awserr.New(codeInvalidRequest, "You can't perform this operation on the secret because it was marked for deletion.")
}

// errInvalidName is AWS's answer to a Name, or a SecretId that is not an
// ARN, with characters a secret name cannot have. AWS answers it with
// ValidationException, on CreateSecret and on every operation that looks a
// secret up (recorded against AWS in LocalStack's validated snapshots).
func errInvalidName() error {
	return awserr.Validation("Invalid name. Must be a valid name containing alphanumeric characters, or any of the following: -/_+=.@!")
}

func errInvalidParameter(msg string) error { return awserr.New(codeInvalidParameter, msg) }

func errInvalidRequest(msg string) error { return awserr.New(codeInvalidRequest, msg) }

// errKMSDenied is AWS's answer when the caller may not use the secret's
// KMS key through Secrets Manager.
func errKMSDenied() error { return awserr.New(awserr.CodeAccessDenied, "Access to KMS is not allowed") }

func errDecryption() error {
	return awserr.New(codeDecryption, "Secrets Manager can't decrypt the protected secret text using the provided KMS key.")
}

func errEncryption() error {
	return awserr.New(codeEncryption, "Secrets Manager can't encrypt the protected secret text using the provided KMS key. Check that the KMS key is available, enabled, and not in an invalid state.")
}

// isCode reports whether err is an *awserr.Error with code.
func isCode(err error, code string) bool {
	e, ok := awserr.As(err)
	return ok && e.Code == code
}
