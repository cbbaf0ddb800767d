package kms

// Key agreement keys (KeyUsage KEY_AGREEMENT, NIST curves and SM2): DeriveSharedSecret,
// the ECDH primitive of NIST SP 800-56A over the KMS key's private key and a
// peer's public key. The shared secret is the x-coordinate of the product,
// as long as the curve's field (what `openssl pkeyutl -derive` prints).

import (
	"context"
	"crypto"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"

	gmecdh "github.com/emmansun/gmsm/ecdh"
	"github.com/emmansun/gmsm/sm2"

	"github.com/keyfort/keyfort/internal/awserr"
	"github.com/keyfort/keyfort/internal/iam"
	"github.com/keyfort/keyfort/internal/kms/kmsapi"
)

// agreementKey is what the material of a key agreement key opens to: the
// private key as a crypto.Signer (its Public for GetPublicKey) and as an
// ECDH key (crypto/ecdh's for the NIST curves, gmsm's for SM2), converted
// once when the material is opened.
type agreementKey struct {
	crypto.Signer
	ecdh *ecdh.PrivateKey
	sm2  *gmecdh.PrivateKey
}

// parseAgreementKey is the build function of opened for the material of a
// key agreement key.
func parseAgreementKey(raw []byte) (any, error) {
	v, err := parseSigner(raw)
	if err != nil {
		return nil, err
	}
	switch priv := v.(type) {
	case *ecdsa.PrivateKey:
		e, err := priv.ECDH()
		if err != nil {
			return nil, err
		}
		return &agreementKey{Signer: priv, ecdh: e}, nil
	case *sm2.PrivateKey:
		e, err := sm2AgreementKey(priv)
		if err != nil {
			return nil, err
		}
		return &agreementKey{Signer: priv, sm2: e}, nil
	}
	return nil, errNotPrivateKey
}

// derive is the ECDH shared secret with a peer's public key, checked by
// peerPublicKey to be on the key's curve.
func (k *agreementKey) derive(peer *ecdsa.PublicKey) ([]byte, error) {
	if k.sm2 != nil {
		p, err := sm2PeerKey(peer)
		if err != nil {
			return nil, err
		}
		return k.sm2.ECDH(p)
	}
	p, err := peer.ECDH()
	if err != nil {
		return nil, err
	}
	return k.ecdh.ECDH(p)
}

// curveNames names the curves a peer's public key may be on, as key specs.
var curveNames = map[elliptic.Curve]string{
	elliptic.P256(): "ECC_NIST_P256",
	elliptic.P384(): "ECC_NIST_P384",
	elliptic.P521(): "ECC_NIST_P521",
	sm2.P256():      specSM2,
}

// peerPublicKey parses DeriveSharedSecret's PublicKey (DER
// SubjectPublicKeyInfo) for a key of spec: ValidationException when it is
// not an elliptic curve public key or is on another curve.
func peerPublicKey(der []byte, spec string) (*ecdsa.PublicKey, error) {
	pub, err := x509.ParsePKIXPublicKey(der)
	if err != nil {
		// crypto/x509 does not know the SM2 curve.
		if pub, err = parsePKIXAny(der); err != nil || !isSM2Public(pub) {
			return nil, errValidation("PublicKey must be a DER-encoded X.509 SubjectPublicKeyInfo of an elliptic curve public key on the curve of the KMS key (%s).", spec)
		}
	}
	ec, ok := pub.(*ecdsa.PublicKey)
	if !ok {
		return nil, errValidation("PublicKey is not an elliptic curve public key: it must be on the curve of the KMS key (%s).", spec)
	}
	if got := curveNames[ec.Curve]; got != spec {
		return nil, errValidation("PublicKey is on the curve of %s, the KMS key on that of %s: both key pairs must be on the same curve.", got, spec)
	}
	valid := func() error { _, err := ec.ECDH(); return err }
	if spec == specSM2 {
		valid = func() error { _, err := sm2PeerKey(ec); return err }
	}
	if valid() != nil {
		return nil, errValidation("PublicKey is not a valid point of the curve of %s.", spec)
	}
	return ec, nil
}

// agreementAccess is the access of DeriveSharedSecret, with its condition key
// kms:KeyAgreementAlgorithm.
func agreementAccess(action string, alg kmsapi.KeyAgreementAlgorithmSpec, tokens []string) *access {
	return &access{action: action, tokens: tokens, extra: iam.MapContext{"kms:keyagreementalgorithm": {string(alg)}}}
}

// deriveSharedSecret derives the ECDH shared secret of a key agreement key
// and a peer's public key.
func (s *Service) deriveSharedSecret(ctx context.Context, in *kmsapi.DeriveSharedSecretInput) (*kmsapi.DeriveSharedSecretOutput, error) {
	scope, _, err := scopeOf(ctx)
	if err != nil {
		return nil, err
	}
	if err := refuseRecipient(in.Recipient); err != nil {
		return nil, err
	}
	acc := agreementAccess(in.IAMAction(), in.KeyAgreementAlgorithm, in.GrantTokens)
	k, err := s.lookupKey(ctx, scope, deref(in.KeyId), refAliasOK|refCrossAccount, acc)
	if err != nil {
		return nil, err
	}
	if err := checkEnabled(k); err != nil {
		return nil, err
	}
	if k.meta.Usage != usageKeyAgreement {
		return nil, errKeyUsage(k, acc)
	}
	_, _, _, agree := specOf(k).algorithms(k.meta.Usage)
	offered := false
	for _, a := range agree {
		offered = offered || a == string(in.KeyAgreementAlgorithm)
	}
	if !offered {
		return nil, awserr.Newf(codeInvalidKeyUsage, "Algorithm %s is incompatible with key spec %s.", in.KeyAgreementAlgorithm, k.meta.Spec)
	}
	peer, err := peerPublicKey(in.PublicKey, k.meta.Spec)
	if err != nil {
		return nil, err
	}
	if deref(in.DryRun) {
		return nil, errDryRun()
	}
	v, err := s.opened(ctx, k, k.meta.Material, parseAgreementKey)
	if err != nil {
		return nil, err
	}
	priv, ok := v.(*agreementKey)
	if !ok {
		return nil, wrap("material of "+k.rec.ID, errNotPrivateKey)
	}
	secret, err := priv.derive(peer)
	if err != nil {
		// crypto/ecdh refuses only a product that is the point at
		// infinity, which a valid peer key of a prime-order curve cannot
		// give; answer it as a bad public key all the same.
		return nil, errValidation("PublicKey gives no shared secret with the KMS key.")
	}
	return &kmsapi.DeriveSharedSecretOutput{
		KeyId:                 ptr(k.arn),
		SharedSecret:          secret,
		KeyAgreementAlgorithm: in.KeyAgreementAlgorithm,
		KeyOrigin:             kmsapi.OriginType(k.meta.Origin),
	}, nil
}
