package kms

// SM2 keys (KeySpec SM2, China regions only, as on AWS): SIGN_VERIFY with
// SM2DSA, ENCRYPT_DECRYPT with SM2PKE, KEY_AGREEMENT with ECDH, and SM2
// data key pairs. The standard library has neither the SM2 curve nor SM3,
// so both come from github.com/emmansun/gmsm (pure Go, constant-time
// curve arithmetic, GB/T 32918 conformance vectors), as do the X.509 and
// PKCS#8 encodings of SM2 keys (id-ecPublicKey with the named curve
// sm2p256v1, 1.2.156.10197.1.301), which crypto/x509 refuses.
//
//   - SM2DSA: with MessageType RAW the message is hashed as GB/T 32918.2
//     says, e = SM3(Z_A || M), Z_A made with AWS's default distinguishing
//     ID 1234567812345678 (GM/T 0009-2012); with DIGEST the caller passes e
//     (32 bytes), having computed Z_A with any ID. Signatures are ASN.1 DER.
//   - SM2PKE: the ciphertext is GM/T 0009-2012's ASN.1 DER SM2Cipher (C1
//     coordinates, C3 hash, C2), the only form AWS decrypts (its developer
//     guide has callers convert raw C1C2C3/C1C3C2 output to it; OpenSSL 3
//     writes it). AWS limits the plaintext to 1,024 bytes.
//   - ECDH: the x-coordinate of the product on the SM2 curve, as for the
//     NIST curves.

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"errors"
	"io"

	gmecdh "github.com/emmansun/gmsm/ecdh"
	"github.com/emmansun/gmsm/sm2"
	"github.com/emmansun/gmsm/sm3"
	"github.com/emmansun/gmsm/smx509"

	"github.com/keyfort/keyfort/internal/awserr"
	"github.com/keyfort/keyfort/internal/kms/kmsapi"
	"github.com/keyfort/keyfort/internal/partition"
)

const (
	specSM2 = "SM2"
	algSM2  = "SM2DSA"
	// sm2MaxPlaintext is AWS's limit on SM2PKE plaintext.
	sm2MaxPlaintext = 1024
)

// errSM2Region is AWS's refusal of SM2 outside the China regions.
func errSM2Region() error {
	return awserr.New(codeUnsupported, "KeySpec SM2 is not supported in this Region")
}

// sm2Allowed reports whether SM2 keys and key pairs exist in region.
func sm2Allowed(region string) bool { return partition.IsChina(region) }

func generateSM2(rnd io.Reader) (*sm2.PrivateKey, error) { return sm2.GenerateKey(rnd) }

// isSM2Public reports whether pub is a public key on the SM2 curve.
func isSM2Public(pub crypto.PublicKey) bool { return sm2.IsSM2PublicKey(pub) }

// marshalSM2PKCS8 and marshalSM2PKIX encode SM2 keys (RFC 5915 / RFC 5480
// forms with the sm2p256v1 curve).
func marshalSM2PKCS8(k *sm2.PrivateKey) ([]byte, error) { return smx509.MarshalPKCS8PrivateKey(k) }
func marshalSM2PKIX(pub *ecdsa.PublicKey) ([]byte, error) {
	return smx509.MarshalPKIXPublicKey(pub)
}

var errNotSM2 = errors.New("not an SM2 private key")

// parseSM2PKCS8 decodes a PKCS#8 SM2 private key; any other key is
// errNotSM2.
func parseSM2PKCS8(der []byte) (*sm2.PrivateKey, error) {
	k, err := smx509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, errNotSM2
	}
	priv, ok := k.(*sm2.PrivateKey)
	if !ok {
		return nil, errNotSM2
	}
	return priv, nil
}

// signSM2 signs with SM2DSA: message is M (RAW, hashed with Z_A of the
// default ID) or e (DIGEST).
func signSM2(rnd io.Reader, signer crypto.Signer, message []byte, msgType string) ([]byte, error) {
	priv, ok := signer.(*sm2.PrivateKey)
	if !ok {
		return nil, errNotSM2
	}
	var opts crypto.SignerOpts = crypto.Hash(0)
	if msgType == msgRaw {
		opts = sm2.NewSM2SignerOption(true, nil)
	}
	return priv.Sign(rnd, message, opts)
}

// verifySM2 checks an SM2DSA signature of message (RAW) or e (DIGEST).
func verifySM2(pub *ecdsa.PublicKey, message, sig []byte, msgType string) bool {
	if msgType == msgRaw {
		return sm2.VerifyASN1WithSM2(pub, nil, message, sig)
	}
	return sm2.VerifyASN1(pub, message, sig)
}

// sm2DigestSize is the length of an SM2DSA DIGEST message (SM3's).
const sm2DigestSize = sm3.Size

// isAsymmetricEncryption reports whether k is an RSA or SM2 key for
// encryption, whose ciphertexts are raw (no Keyfort blob).
func isAsymmetricEncryption(k *key) bool {
	switch privateKeyKind(k.meta.Spec) {
	case "rsa", "sm2":
		return k.meta.Usage == usageEncrypt
	}
	return false
}

func (s *Service) sm2Key(ctx context.Context, k *key) (*sm2.PrivateKey, error) {
	signer, err := s.signer(ctx, k)
	if err != nil {
		return nil, err
	}
	priv, ok := signer.(*sm2.PrivateKey)
	if !ok {
		return nil, wrap("material of "+k.rec.ID, errNotPrivateKey)
	}
	return priv, nil
}

// encryptSM2 encrypts plaintext with SM2PKE under k's public key.
func (s *Service) encryptSM2(ctx context.Context, k *key, alg kmsapi.EncryptionAlgorithmSpec, plaintext []byte) ([]byte, error) {
	if len(plaintext) > sm2MaxPlaintext {
		return nil, errValidation("Plaintext is too long for %s with key spec %s: at most %d bytes.", alg, k.meta.Spec, sm2MaxPlaintext)
	}
	priv, err := s.sm2Key(ctx, k)
	if err != nil {
		return nil, err
	}
	ct, err := sm2.Encrypt(s.rand, &priv.PublicKey, plaintext, sm2.ASN1EncrypterOpts)
	if err != nil {
		return nil, wrap("encrypt with "+k.rec.ID, err)
	}
	return ct, nil
}

// decryptSM2 decrypts an SM2PKE ciphertext in the ASN.1 form;
// InvalidCiphertextException when it is not one or does not open.
func (s *Service) decryptSM2(ctx context.Context, k *key, blob []byte) ([]byte, error) {
	priv, err := s.sm2Key(ctx, k)
	if err != nil {
		return nil, err
	}
	if len(blob) == 0 || blob[0] != 0x30 { // a DER SEQUENCE, not a raw point
		return nil, errInvalidCiphertext()
	}
	pt, err := priv.Decrypt(nil, blob, sm2.ASN1DecrypterOpts)
	if err != nil {
		return nil, errInvalidCiphertext()
	}
	return pt, nil
}

// sm2AgreementKey converts an SM2 private key to gmsm's ECDH key.
func sm2AgreementKey(priv *sm2.PrivateKey) (*gmecdh.PrivateKey, error) {
	return gmecdh.P256().NewPrivateKey(priv.D.FillBytes(make([]byte, 32)))
}

// sm2PeerKey converts a peer's SM2 public key for ECDH.
func sm2PeerKey(pub *ecdsa.PublicKey) (*gmecdh.PublicKey, error) {
	return gmecdh.P256().NewPublicKey(elliptic.Marshal(pub.Curve, pub.X, pub.Y)) //nolint:staticcheck // the SM2 curve has no crypto/ecdh form
}

// parsePKIXAny parses a SubjectPublicKeyInfo of the standard library's
// types or an SM2 key.
func parsePKIXAny(der []byte) (crypto.PublicKey, error) {
	return smx509.ParsePKIXPublicKey(der)
}
