package cloudtrail

import (
	"context"
	"fmt"

	"github.com/keyfort/keyfort/internal/awserr"
	"github.com/keyfort/keyfort/internal/cloudtrail/ctapi"
	"github.com/keyfort/keyfort/internal/operation"
)

// Operations returns the operation table the server dispatches to: the
// generated table of svc, with two changes.
//
// LookupEvents validates its input with the operation's own exceptions
// (InvalidLookupAttributesException, InvalidMaxResultsException,
// InvalidEventCategoryException), as CloudTrail does, rather than the
// generic ValidationException of ctapi's Validate.
//
// Every other operation answers UnsupportedOperationException (HTTP 400),
// which the model declares for each of them ("the requested operation is
// not supported"), saying that Keyfort serves only LookupEvents: a typed,
// non-retryable error the SDKs know, where NotImplementedException (501)
// would be an undeclared one.
func Operations(svc *Service) []operation.Operation {
	ops := ctapi.Operations(svc)
	for i := range ops {
		op := &ops[i]
		if op.Name == "LookupEvents" {
			op.NewInput = func() operation.Input { return new(lookupEventsInput) }
			op.Invoke = func(ctx context.Context, in operation.Input) (operation.Output, error) {
				x, ok := in.(*lookupEventsInput)
				if !ok {
					return nil, fmt.Errorf("cloudtrail: LookupEvents: input is %T, want *lookupEventsInput", in)
				}
				out, err := svc.LookupEvents(ctx, &x.LookupEventsInput)
				if err != nil {
					return nil, err
				}
				return out, nil
			}
			continue
		}
		if !declares(op, codeUnsupportedOperation) {
			continue // keeps NotImplementedException (every operation declares it today)
		}
		msg := Unsupported(op.Name).Message
		op.Invoke = func(context.Context, operation.Input) (operation.Output, error) {
			return nil, awserr.New(codeUnsupportedOperation, msg)
		}
	}
	return ops
}

// Unsupported returns the error of a CloudTrail operation Keyfort does not
// serve.
func Unsupported(op string) *awserr.Error {
	return awserr.New(codeUnsupportedOperation,
		"Keyfort serves only LookupEvents of the CloudTrail API; "+op+" is not supported.")
}

func declares(op *operation.Operation, code string) bool {
	for _, e := range op.Errors {
		if e == code {
			return true
		}
	}
	return false
}

// lookupEventsInput is ctapi.LookupEventsInput with CloudTrail's own
// validation (see Operations); decoding and the audit form are ctapi's.
type lookupEventsInput struct {
	ctapi.LookupEventsInput
}

// Validate checks the input as LookupEvents does.
func (in *lookupEventsInput) Validate() error { return validateLookup(&in.LookupEventsInput) }
