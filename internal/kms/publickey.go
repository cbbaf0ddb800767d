package kms

// GetPublicKey: the public key of an asymmetric key as DER
// SubjectPublicKeyInfo, with the metadata a caller needs to use it offline.

import (
	"context"
	"crypto"

	"github.com/keyfort/keyfort/internal/awserr"
	"github.com/keyfort/keyfort/internal/kms/kmsapi"
)

// signer opens the private key of an asymmetric key. A key agreement key's
// opens to an agreementKey (the same build whichever operation opens it
// first, as the material cache holds one value per material).
func (s *Service) signer(ctx context.Context, k *key) (crypto.Signer, error) {
	build := parseSigner
	if k.meta.Usage == usageKeyAgreement {
		build = parseAgreementKey
	}
	v, err := s.opened(ctx, k, k.meta.Material, build)
	if err != nil {
		return nil, err
	}
	signer, ok := v.(crypto.Signer)
	if !ok {
		return nil, wrap("material of "+k.rec.ID, errNotPrivateKey)
	}
	return signer, nil
}

// publicKeyOf is the DER SubjectPublicKeyInfo of k's current material. A
// key of origin EXTERNAL whose material was deleted or expired
// (PendingImport) still has the public key it recorded at the import: AWS
// answers GetPublicKey in that state.
func (s *Service) publicKeyOf(ctx context.Context, k *key) ([]byte, error) {
	if k.meta.State == statePendingImport && privateKeyKind(k.meta.Spec) != "" {
		if ref := k.meta.materialRef(k.meta.Material); ref != nil && len(ref.PublicKey) > 0 {
			return ref.PublicKey, nil
		}
	}
	if err := checkEnabled(k); err != nil {
		return nil, err
	}
	if privateKeyKind(k.meta.Spec) == "" {
		return nil, awserr.New(codeUnsupported, "GetPublicKey is not supported for symmetric keys.")
	}
	signer, err := s.signer(ctx, k)
	if err != nil {
		return nil, err
	}
	der, err := marshalPKIX(signer.Public())
	if err != nil {
		return nil, wrap("public key of "+k.rec.ID, err)
	}
	return der, nil
}

// GetPublicKey returns the public key of an asymmetric key. Symmetric and
// HMAC keys have none (UnsupportedOperationException).
func (s *Service) GetPublicKey(ctx context.Context, in *kmsapi.GetPublicKeyInput) (*kmsapi.GetPublicKeyOutput, error) {
	scope, _, err := scopeOf(ctx)
	if err != nil {
		return nil, err
	}
	k, err := s.lookupKey(ctx, scope, deref(in.KeyId), refAliasOK|refCrossAccount, &access{action: in.IAMAction(), tokens: in.GrantTokens})
	if err != nil {
		return nil, err
	}
	der, err := s.publicKeyOf(ctx, k)
	if err != nil {
		return nil, err
	}
	enc, sign, _, agree := specOf(k).algorithms(k.meta.Usage)
	return &kmsapi.GetPublicKeyOutput{
		KeyId:                  ptr(k.arn),
		PublicKey:              der,
		KeySpec:                kmsapi.KeySpec(k.meta.Spec),
		CustomerMasterKeySpec:  kmsapi.CustomerMasterKeySpec(k.meta.Spec),
		KeyUsage:               kmsapi.KeyUsageType(k.meta.Usage),
		EncryptionAlgorithms:   enumList[kmsapi.EncryptionAlgorithmSpec](enc),
		SigningAlgorithms:      enumList[kmsapi.SigningAlgorithmSpec](sign),
		KeyAgreementAlgorithms: enumList[kmsapi.KeyAgreementAlgorithmSpec](agree),
	}, nil
}
