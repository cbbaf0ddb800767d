package smapi

import "github.com/keyfort/keyfort/internal/awserr"

// missingIdempotencyToken is Secrets Manager's answer to a request without
// its ClientRequestToken (the SDKs and the CLI always send one; a raw HTTP
// request must). AWS refuses it before looking the secret up, with
// InvalidRequestException, or InvalidParameterException for RotateSecret
// (recorded AWS responses, LocalStack's test_no_client_request_token).
func missingIdempotencyToken(op, _ string) error {
	const msg = "You must provide a ClientRequestToken value. We recommend a UUID-type value."
	if op == "RotateSecret" {
		return awserr.New("InvalidParameterException", msg)
	}
	return awserr.New("InvalidRequestException", msg)
}
