package kms

// RSA encryption keys (KeyUsage ENCRYPT_DECRYPT): Encrypt, Decrypt and
// ReEncrypt with RSAES_OAEP_SHA_1 and RSAES_OAEP_SHA_256. The
// CiphertextBlob is the raw OAEP output, as on AWS, so that a ciphertext
// made offline with GetPublicKey's key decrypts; it names no key, and
// Decrypt therefore needs KeyId.

import (
	"context"
	"crypto"
	"crypto/rsa"
	_ "crypto/sha1" // RSAES_OAEP_SHA_1
	"errors"

	"github.com/keyfort/keyfort/internal/kms/kmsapi"
	"github.com/keyfort/keyfort/internal/storage"
)

var oaepHash = map[string]crypto.Hash{
	"RSAES_OAEP_SHA_1":   crypto.SHA1,
	"RSAES_OAEP_SHA_256": crypto.SHA256,
}

// usedAlgorithm is the EncryptionAlgorithm a response names.
func usedAlgorithm(alg kmsapi.EncryptionAlgorithmSpec) kmsapi.EncryptionAlgorithmSpec {
	if alg == "" {
		return algSymmetric
	}
	return alg
}

func refuseContext(ec map[string]string) error {
	if len(ec) > 0 {
		return errValidation("EncryptionContext is not supported with asymmetric KMS keys.")
	}
	return nil
}

func (s *Service) rsaKey(ctx context.Context, k *key) (*rsa.PrivateKey, error) {
	signer, err := s.signer(ctx, k)
	if err != nil {
		return nil, err
	}
	priv, ok := signer.(*rsa.PrivateKey)
	if !ok {
		return nil, wrap("material of "+k.rec.ID, errNotPrivateKey)
	}
	return priv, nil
}

// encryptFor encrypts under k with alg: AES-GCM in a Keyfort blob for
// symmetric keys, raw RSAES-OAEP for RSA keys, SM2PKE for SM2 keys.
func (s *Service) encryptFor(ctx context.Context, k *key, op string, alg kmsapi.EncryptionAlgorithmSpec, ec map[string]string, plaintext []byte) ([]byte, error) {
	if !isAsymmetricEncryption(k) {
		return s.encryptWith(ctx, k, op, ec, plaintext)
	}
	if err := refuseContext(ec); err != nil {
		return nil, err
	}
	if privateKeyKind(k.meta.Spec) == "sm2" {
		return s.encryptSM2(ctx, k, alg, plaintext)
	}
	priv, err := s.rsaKey(ctx, k)
	if err != nil {
		return nil, err
	}
	h := oaepHash[string(alg)]
	ct, err := rsa.EncryptOAEP(h.New(), s.rand, &priv.PublicKey, plaintext, nil)
	if errors.Is(err, rsa.ErrMessageTooLong) {
		return nil, errValidation("Plaintext is too long for %s with key spec %s: at most %d bytes.", alg, k.meta.Spec, priv.Size()-2*h.Size()-2)
	}
	if err != nil {
		return nil, wrap("encrypt with "+k.rec.ID, err)
	}
	return ct, nil
}

// decryptAny decrypts a ciphertext: raw RSAES-OAEP or SM2PKE when keyID
// names an RSA or SM2 encryption key, else a Keyfort blob (decryptBlob).
// The material id is empty for those keys.
func (s *Service) decryptAny(ctx context.Context, scope storage.Scope, blob []byte, ec map[string]string, keyID *string, alg kmsapi.EncryptionAlgorithmSpec, a *access) (*key, []byte, string, error) {
	// The key keyID names is looked up once, for both kinds of ciphertext.
	var want *key
	var wantAlias string
	var wantErr error
	if keyID != nil {
		if want, wantAlias, wantErr = s.lookupKeyAlias(ctx, scope, *keyID, refAliasOK|refCrossAccount, nil); wantErr == nil && isAsymmetricEncryption(want) {
			k, err := s.usableKey(ctx, scope, *keyID, alg, a)
			if err != nil {
				return nil, nil, "", err
			}
			if err := refuseContext(ec); err != nil {
				return nil, nil, "", err
			}
			if privateKeyKind(k.meta.Spec) == "sm2" {
				pt, err := s.decryptSM2(ctx, k, blob)
				if err != nil {
					return nil, nil, "", err
				}
				return k, pt, "", nil
			}
			priv, err := s.rsaKey(ctx, k)
			if err != nil {
				return nil, nil, "", err
			}
			pt, err := rsa.DecryptOAEP(oaepHash[string(alg)].New(), nil, priv, blob, nil)
			if err != nil {
				return nil, nil, "", errInvalidCiphertext()
			}
			return k, pt, "", nil
		}
	}
	k, pt, matID, err := s.decryptBlob(ctx, scope, blob, ec, keyID, want, wantAlias, wantErr, alg, a)
	return k, pt, matID, err
}

// materialIDOf is the KeyMaterialId of a response: none for RSA keys.
func materialIDOf(matID string) *string {
	if matID == "" {
		return nil
	}
	return ptr(displayMaterialID(matID))
}
