package kms

import (
	"context"

	"github.com/keyfort/keyfort/internal/awserr"
	"github.com/keyfort/keyfort/internal/kms/kmsapi"
)

// Imported key material is not built: CreateKey refuses Origin EXTERNAL,
// so every key has origin AWS_KMS, and the operations of imported material
// answer what AWS answers for such a key once the caller may call them:
// UnsupportedOperationException "<key ARN> origin is AWS_KMS which is not
// valid for this operation." (AWS's text for GetParametersForImport,
// recorded in LocalStack's AWS-validated snapshot
// test_get_parameters_for_import; the other two follow its pattern). As on
// AWS they take a key id or key ARN of the caller's account only.

// GetParametersForImport implements kmsapi.Service.
func (s *Service) GetParametersForImport(ctx context.Context, in *kmsapi.GetParametersForImportInput) (*kmsapi.GetParametersForImportOutput, error) {
	return nil, s.refuseImport(ctx, deref(in.KeyId), in.IAMAction())
}

// ImportKeyMaterial implements kmsapi.Service.
func (s *Service) ImportKeyMaterial(ctx context.Context, in *kmsapi.ImportKeyMaterialInput) (*kmsapi.ImportKeyMaterialOutput, error) {
	return nil, s.refuseImport(ctx, deref(in.KeyId), in.IAMAction())
}

// DeleteImportedKeyMaterial implements kmsapi.Service.
func (s *Service) DeleteImportedKeyMaterial(ctx context.Context, in *kmsapi.DeleteImportedKeyMaterialInput) (*kmsapi.DeleteImportedKeyMaterialOutput, error) {
	return nil, s.refuseImport(ctx, deref(in.KeyId), in.IAMAction())
}

// refuseImport finds the key keyID names and checks that the caller may
// call action on it (NotFoundException, AccessDeniedException), then
// refuses it for its origin.
func (s *Service) refuseImport(ctx context.Context, keyID, action string) error {
	scope, _, err := scopeOf(ctx)
	if err != nil {
		return err
	}
	k, err := s.lookupKey(ctx, scope, keyID, refKeyOnly, act(action))
	if err != nil {
		return err
	}
	return errOrigin(k.arn, k.meta.Origin)
}

func errOrigin(arn, origin string) error {
	return awserr.Newf(codeUnsupported, "%s origin is %s which is not valid for this operation.", arn, origin)
}
