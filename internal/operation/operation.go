// Package operation is the contract between the generated API packages
// (kms/kmsapi, secretsmanager/smapi) and the wire codec (awsjson, server).
//
// A generated package exposes its operations as a table of Operation values
// bound to a service implementation. The server looks an operation up by its
// X-Amz-Target, decodes the body into NewInput(), calls Validate, calls Invoke
// and encodes the Output. Services never see HTTP. This package imports only
// the standard library.
package operation

import "context"

// Input is a generated operation input shape.
type Input interface {
	// UnmarshalAWSJSON decodes a complete AWS JSON 1.1 request body (a JSON
	// object) into the input, strictly: member names match exactly, a member
	// given twice, a value of the wrong JSON type, invalid UTF-8 and
	// non-canonical base64 are refused, and no value is altered. Generated
	// inputs return a *jsonread.Error, whose message never echoes a request
	// value, for the codec to answer as SerializationException.
	UnmarshalAWSJSON(body []byte) error
	// Validate checks the shape constraints of the model (required members,
	// lengths, ranges, enums, patterns) and returns an *awserr.Error with
	// code ValidationException in AWS's wording, or nil.
	Validate() error
}

// Output is a generated operation output shape.
type Output interface {
	// AppendJSON appends the AWS JSON 1.1 encoding of the output to b and
	// returns the extended slice. Absent members are omitted; timestamps are
	// epoch seconds; blobs are base64; sensitive members are revealed here
	// and nowhere else.
	AppendJSON(b []byte) []byte
}

// Operation is one row of a service's operation table.
type Operation struct {
	// Service is the target prefix: "TrentService" or "secretsmanager".
	Service string
	// Name is the operation name, e.g. "Encrypt".
	Name string
	// ReadOnly is true for operations that do not change state (CloudTrail's
	// readOnly field).
	ReadOnly bool
	// Action is the IAM action the operation is authorized as, e.g.
	// "kms:Encrypt".
	Action string
	// Resource is the input member that names the resource the operation
	// acts on ("KeyId", "SecretId", ...), or "" when it acts on no existing
	// resource (CreateKey, ListSecrets, ...).
	Resource string
	// MaxBody is the largest request body accepted, in bytes.
	MaxBody int64
	// Errors lists the exception codes the model declares for the operation.
	Errors []string
	// NewInput returns a new zero input shape to decode into.
	NewInput func() Input
	// Invoke calls the service method with in (which NewInput returned).
	Invoke func(ctx context.Context, in Input) (Output, error)
}

// ErrorShape describes one exception of a service model.
type ErrorShape struct {
	// Code is the exception name, e.g. "NotFoundException".
	Code string
	// Status is the HTTP status code (from the model, else 400 for client
	// errors and 500 for faults).
	Status int
	// Fault is true for server faults.
	Fault bool
	// MessageField is the JSON name the model uses for the message member:
	// "message" or "Message".
	MessageField string
}

// Facts are what the server needs to know of a service besides its
// operations and errors. Each generated package returns its own from
// Facts(), taken from the model and tools/apigen's table of services, so
// that the server hard-codes no service.
type Facts struct {
	// TargetPrefix is the X-Amz-Target prefix, e.g. "TrentService".
	TargetPrefix string
	// TargetAliases are further X-Amz-Target prefixes the service answers
	// to: when botocore's prefix is a qualified name
	// ("com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101"), its last
	// part, the Smithy service name that SDKs generated from Smithy models
	// send ("CloudTrail_20131101"); AWS accepts both.
	TargetAliases []string
	// SigningName is the SigV4 service name of the credential scope, e.g.
	// "kms".
	SigningName string
	// EventSource is the CloudTrail eventSource, e.g. "kms.amazonaws.com".
	EventSource string
	// MessageField is the message member of the model's exceptions
	// ("message" for KMS, "Message" for Secrets Manager).
	MessageField string
	// InternalErrorCode is the code of internal errors (HTTP 500), e.g.
	// "KMSInternalException".
	InternalErrorCode string
	// NoResponseElements names operations whose output is never put in the
	// audit trail (responseElements null), as CloudTrail records them.
	NoResponseElements []string
}
