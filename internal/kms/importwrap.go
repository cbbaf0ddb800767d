package kms

// Imported key material: the import token, the unwrapping of the material
// a client sends, and the checks that the material fits the key.
//
// GetParametersForImport makes a fresh RSA wrapping key pair for every
// call. Keyfort keeps nothing of it: the private key travels inside the
// import token, sealed under the root key with the key's identity as AAD
// (envelope.Sealer), next to the wrapping algorithm and the token's end of
// validity. A token therefore opens only for the key it was made for, on
// any node that holds the root key, and only until a root key rotation
// retires the key it was sealed under.

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/rsa"
	"crypto/sha1" //nolint:gosec // RSAES_OAEP_SHA_1 and RSA_AES_KEY_WRAP_SHA_1 are AWS's wrapping algorithms
	"crypto/sha256"
	"crypto/x509"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"hash"
	"time"

	"github.com/emmansun/gmsm/sm2"

	"github.com/keyfort/keyfort/internal/envelope"
	"github.com/keyfort/keyfort/internal/keymaterial"
	"github.com/keyfort/keyfort/internal/keywrap"
	"github.com/keyfort/keyfort/internal/storage"
)

// Wrapping algorithms (kmsapi.AlgorithmSpec) and wrapping key specs
// (kmsapi.WrappingKeySpec).
const (
	wrapPKCS1     = "RSAES_PKCS1_V1_5"
	wrapOAEPSHA1  = "RSAES_OAEP_SHA_1"
	wrapOAEP256   = "RSAES_OAEP_SHA_256"
	wrapAESSHA1   = "RSA_AES_KEY_WRAP_SHA_1"
	wrapAESSHA256 = "RSA_AES_KEY_WRAP_SHA_256"
	wrapSM2PKE    = "SM2PKE"
	wrapSpecSM2   = "SM2"

	// importTokenLifetime is how long a wrapping key and import token
	// stay valid (ParametersValidTo).
	importTokenLifetime = 24 * time.Hour

	kindImportToken = "kms.importtoken"
	tokenVersion    = 1
)

var wrappingBits = map[string]int{"RSA_2048": 2048, "RSA_3072": 3072, "RSA_4096": 4096}

// importToken is what an import token carries.
type importToken struct {
	algorithm string
	keySpec   string
	validTo   time.Time
	// priv is the wrapping private key: *rsa.PrivateKey, or
	// *sm2.PrivateKey for SM2PKE.
	priv crypto.Signer
}

func tokenAAD(scope storage.Scope, keyID string) envelope.AAD {
	return envelope.AAD{Kind: kindImportToken, Account: scope.Account, Region: scope.Region, ID: keyID, Version: tokenVersion, Column: "token"}
}

// sealToken encodes t for the key keyID of scope and seals it: version (1)
// | validTo (8, Unix nanoseconds) | algorithm and key spec (each a length
// byte and the name) | the private key as PKCS#8 DER.
func (s *Service) sealToken(scope storage.Scope, keyID string, t *importToken) ([]byte, error) {
	der, err := marshalPKCS8(t.priv)
	if err != nil {
		return nil, wrap("encode wrapping key", err)
	}
	defer clear(der)
	b := make([]byte, 0, 1+8+2+len(t.algorithm)+len(t.keySpec)+len(der))
	b = append(b, tokenVersion)
	b = binary.BigEndian.AppendUint64(b, uint64(t.validTo.UnixNano()))
	b = append(b, byte(len(t.algorithm)))
	b = append(b, t.algorithm...)
	b = append(b, byte(len(t.keySpec)))
	b = append(b, t.keySpec...)
	b = append(b, der...)
	defer clear(b)
	sealed, err := s.sealer.Seal(tokenAAD(scope, keyID), b)
	if err != nil {
		return nil, wrap("seal import token", err)
	}
	return sealed, nil
}

// openToken opens an import token made for the key keyID of scope; ok is
// false for anything else (another key's token, a token sealed under a
// root key no longer held, bytes that are not a token).
func (s *Service) openToken(scope storage.Scope, keyID string, token []byte) (t *importToken, ok bool) {
	b, err := s.sealer.Open(tokenAAD(scope, keyID), token)
	if err != nil {
		return nil, false
	}
	defer clear(b)
	if len(b) < 1+8+1 || b[0] != tokenVersion {
		return nil, false
	}
	t = &importToken{validTo: time.Unix(0, int64(binary.BigEndian.Uint64(b[1:9]))).UTC()}
	rest := b[9:]
	for _, field := range []*string{&t.algorithm, &t.keySpec} {
		if len(rest) < 1 || len(rest) < 1+int(rest[0]) {
			return nil, false
		}
		*field = string(rest[1 : 1+int(rest[0])])
		rest = rest[1+int(rest[0]):]
	}
	v, err := parseSigner(rest)
	if err != nil {
		return nil, false
	}
	t.priv = v.(crypto.Signer)
	return t, true
}

// newWrappingKey makes the wrapping key pair of a GetParametersForImport
// call.
func (s *Service) newWrappingKey(spec string) (crypto.Signer, error) {
	if spec == wrapSpecSM2 {
		k, err := generateSM2(s.rand)
		if err != nil {
			return nil, wrap("new SM2 wrapping key", err)
		}
		return k, nil
	}
	k, err := rsa.GenerateKey(s.rand, wrappingBits[spec])
	if err != nil {
		return nil, wrap("new RSA wrapping key", err)
	}
	return k, nil
}

// errUnwrap is returned by unwrapMaterial for anything that does not
// decrypt under the token's key and algorithm.
var errUnwrap = errors.New("kms: the key material does not unwrap")

// unwrapMaterial decrypts the EncryptedKeyMaterial of ImportKeyMaterial
// with the token's private key and algorithm. RSAES_OAEP_SHA_*: the
// material itself, RSA-OAEP encrypted (MGF1 with the same hash).
// RSA_AES_KEY_WRAP_SHA_*: an AES-256 key RSA-OAEP encrypted (as long as
// the modulus), then the material wrapped under it with AES key wrap with
// padding (RFC 5649), as PKCS#11's CKM_RSA_AES_KEY_WRAP. SM2PKE: the
// material SM2-encrypted (C1C3C2, ASN.1).
func unwrapMaterial(t *importToken, wrapped []byte) ([]byte, error) {
	if t.algorithm == wrapSM2PKE {
		priv, ok := t.priv.(*sm2.PrivateKey)
		if !ok {
			return nil, errUnwrap
		}
		pt, err := priv.Decrypt(nil, wrapped, sm2.ASN1DecrypterOpts)
		if err != nil || len(pt) == 0 {
			return nil, errUnwrap
		}
		return pt, nil
	}
	priv, ok := t.priv.(*rsa.PrivateKey)
	if !ok {
		return nil, errUnwrap
	}
	var h hash.Hash
	switch t.algorithm {
	case wrapOAEPSHA1, wrapAESSHA1:
		h = sha1.New() //nolint:gosec // AWS's algorithm
	case wrapOAEP256, wrapAESSHA256:
		h = sha256.New()
	default:
		return nil, errUnwrap
	}
	if t.algorithm == wrapOAEPSHA1 || t.algorithm == wrapOAEP256 {
		pt, err := rsa.DecryptOAEP(h, nil, priv, wrapped, nil)
		if err != nil || len(pt) == 0 {
			return nil, errUnwrap
		}
		return pt, nil
	}
	n := priv.Size()
	if len(wrapped) <= n {
		return nil, errUnwrap
	}
	kek, err := rsa.DecryptOAEP(h, nil, priv, wrapped[:n], nil)
	if err != nil {
		return nil, errUnwrap
	}
	defer clear(kek)
	if len(kek) != 32 {
		return nil, errUnwrap
	}
	pt, err := keywrap.Unwrap(kek, wrapped[n:])
	if err != nil || len(pt) == 0 {
		return nil, errUnwrap
	}
	return pt, nil
}

// importedMaterial checks that raw is key material for spec and returns it
// in the form Keyfort stores: the bytes themselves for symmetric and HMAC
// keys, the private key re-encoded as Keyfort's PKCS#8 DER for asymmetric
// keys (so that the same key imported in another DER form is the same
// material), with its public key as DER SubjectPublicKeyInfo. ok is false
// for material that does not fit the spec.
func importedMaterial(spec string, raw []byte) (material, public []byte, ok bool) {
	if privateKeyKind(spec) == "" {
		// 256 bits for a symmetric key (AWS takes 128-bit material only
		// for SM4 keys in the China Regions, which Keyfort does not make);
		// an HMAC key's hmacSizes.
		ok := spec == specSymmetric && len(raw) == keymaterial.MaterialSize
		if r, hmac := hmacSizes[spec]; hmac {
			ok = len(raw) >= r[0] && len(raw) <= r[1]
		}
		if !ok {
			return nil, nil, false
		}
		return append([]byte(nil), raw...), nil, true
	}
	v, err := parseSigner(raw)
	if err != nil {
		return nil, nil, false
	}
	priv := v.(crypto.Signer)
	if !privateKeyFits(spec, priv) {
		return nil, nil, false
	}
	der, err := marshalPKCS8(priv)
	if err != nil {
		return nil, nil, false
	}
	pub, err := marshalPKIX(priv.Public())
	if err != nil {
		return nil, nil, false
	}
	return der, pub, true
}

// privateKeyFits reports whether priv is a valid private key of spec.
func privateKeyFits(spec string, priv crypto.Signer) bool {
	switch p := priv.(type) {
	case *rsa.PrivateKey:
		return privateKeyKind(spec) == "rsa" && p.N.BitLen() == rsaBits[spec] && p.Validate() == nil
	case *sm2.PrivateKey:
		return spec == specSM2
	case *ecdsa.PrivateKey:
		return privateKeyKind(spec) == "ecdsa" && p.Curve == ecCurves[spec]
	case ed25519.PrivateKey:
		return spec == "ECC_NIST_EDWARDS25519"
	case *secp256k1Key:
		return spec == "ECC_SECG_P256K1"
	case *mldsaKey:
		return p.v.spec == spec
	}
	return false
}

// importedMaterialID is the material id (32 hex characters) of imported
// material: the first 16 bytes of HMAC-SHA256 keyed by the material over
// the key id. The same material imported into the same key again has the
// same id (AWS's KeyMaterialId, derived from it, is "based on the KMS key
// ID and the imported key material"), so that ciphertexts made under it
// before it was deleted decrypt again; the id tells nothing of the
// material.
func importedMaterialID(keyID string, material []byte) string {
	m := hmac.New(sha256.New, material)
	m.Write([]byte("keyfort imported material\x00"))
	m.Write([]byte(keyID))
	sum := m.Sum(nil)
	return hex.EncodeToString(sum[:16])
}

// publicKeyDER is the wrapping public key as DER SubjectPublicKeyInfo.
func publicKeyDER(priv crypto.Signer) ([]byte, error) {
	if sm2Key, ok := priv.(*sm2.PrivateKey); ok {
		return marshalSM2PKIX(&sm2Key.PublicKey)
	}
	return x509.MarshalPKIXPublicKey(priv.Public())
}
