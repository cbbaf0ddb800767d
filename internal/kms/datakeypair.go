package kms

// Data key pairs: GenerateDataKeyPair and GenerateDataKeyPairWithoutPlaintext
// make an asymmetric key pair outside any KMS key and return its public key
// (DER SubjectPublicKeyInfo) and its private key (PKCS#8 DER) encrypted
// under a symmetric encryption key, as an ordinary CiphertextBlob that
// Decrypt opens with the same encryption context; GenerateDataKeyPair also
// returns the private key in plaintext. Keyfort keeps neither.

import (
	"context"
	"strings"

	"github.com/keyfort/keyfort/internal/awserr"
	"github.com/keyfort/keyfort/internal/iam"
	"github.com/keyfort/keyfort/internal/kms/kmsapi"
	"github.com/keyfort/keyfort/internal/sensitive"
)

// errSM2KeyPairRegion refuses KeyPairSpec SM2 outside the China regions,
// where AWS does not offer it.
func errSM2KeyPairRegion() error {
	return awserr.New(codeUnsupported, "KeyPairSpec SM2 is supported only in the AWS China regions.")
}

// dataKeyPair is one generated pair.
type dataKeyPair struct {
	k       *key
	private []byte // PKCS#8 DER; the caller clears it
	public  []byte // SubjectPublicKeyInfo DER
	blob    []byte // private encrypted under k
}

// generateDataKeyPair resolves the symmetric key that encrypts the private
// key, authorizes op on it (with kms:DataKeyPairSpec and
// kms:EncryptionAlgorithm SYMMETRIC_DEFAULT), checks its state and usage
// and the spec, and makes the pair.
func (s *Service) generateDataKeyPair(ctx context.Context, op string, keyID *string, spec kmsapi.DataKeyPairSpec, ec map[string]string, dryRun *bool, tokens []string) (*dataKeyPair, error) {
	scope, _, err := scopeOf(ctx)
	if err != nil {
		return nil, err
	}
	a := cryptoAccess(op, ec, "", tokens)
	a.extra = iam.MapContext{"kms:datakeypairspec": {string(spec)}}
	k, err := s.usableKey(ctx, scope, deref(keyID), "", a)
	if err != nil {
		return nil, err
	}
	if k.meta.XKS != nil {
		return nil, awserr.Newf(codeUnsupported, "%s origin is %s which is not valid for this operation.", k.arn, k.meta.Origin)
	}
	if spec == specSM2 && !sm2Allowed(scope.Region) {
		return nil, errSM2KeyPairRegion()
	}
	if privateKeyKind(string(spec)) == "" {
		return nil, errValidation("KeyPairSpec %s is not a key pair spec.", spec)
	}
	if deref(dryRun) {
		return nil, errDryRun()
	}
	signer, err := generatePrivateKey(s.rand, string(spec))
	if err != nil {
		return nil, wrap("data key pair", err)
	}
	priv, err := marshalPKCS8(signer)
	if err != nil {
		return nil, wrap("data key pair", err)
	}
	pub, err := marshalPKIX(signer.Public())
	if err != nil {
		clear(priv)
		return nil, wrap("data key pair", err)
	}
	blob, err := s.encryptWith(ctx, k, strings.TrimPrefix(op, "kms:"), ec, priv)
	if err != nil {
		clear(priv)
		return nil, err
	}
	return &dataKeyPair{k: k, private: priv, public: pub, blob: blob}, nil
}

// GenerateDataKeyPair returns a new key pair: the private key in plaintext
// and encrypted under a symmetric key, and the public key.
func (s *Service) generateDataKeyPairOp(ctx context.Context, in *kmsapi.GenerateDataKeyPairInput) (*kmsapi.GenerateDataKeyPairOutput, error) {
	if err := refuseRecipient(in.Recipient); err != nil {
		return nil, err
	}
	p, err := s.generateDataKeyPair(ctx, in.IAMAction(), in.KeyId, in.KeyPairSpec, in.EncryptionContext, in.DryRun, in.GrantTokens)
	if err != nil {
		return nil, err
	}
	return &kmsapi.GenerateDataKeyPairOutput{
		PrivateKeyCiphertextBlob: p.blob,
		PrivateKeyPlaintext:      sensitive.Bytes(p.private),
		PublicKey:                p.public,
		KeyId:                    ptr(p.k.arn),
		KeyPairSpec:              in.KeyPairSpec,
		KeyMaterialId:            ptr(p.k.useMaterial(ctx, p.k.meta.Material)),
	}, nil
}

// GenerateDataKeyPairWithoutPlaintext returns a new key pair: the private
// key only encrypted under a symmetric key, and the public key.
func (s *Service) generateDataKeyPairWithoutPlaintext(ctx context.Context, in *kmsapi.GenerateDataKeyPairWithoutPlaintextInput) (*kmsapi.GenerateDataKeyPairWithoutPlaintextOutput, error) {
	p, err := s.generateDataKeyPair(ctx, in.IAMAction(), in.KeyId, in.KeyPairSpec, in.EncryptionContext, in.DryRun, in.GrantTokens)
	if err != nil {
		return nil, err
	}
	clear(p.private)
	return &kmsapi.GenerateDataKeyPairWithoutPlaintextOutput{
		PrivateKeyCiphertextBlob: p.blob,
		PublicKey:                p.public,
		KeyId:                    ptr(p.k.arn),
		KeyPairSpec:              in.KeyPairSpec,
		KeyMaterialId:            ptr(p.k.useMaterial(ctx, p.k.meta.Material)),
	}, nil
}
