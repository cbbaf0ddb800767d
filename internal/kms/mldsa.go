package kms

// ML-DSA keys (ML_DSA_44, ML_DSA_65, ML_DSA_87; SIGN_VERIFY with
// ML_DSA_SHAKE_256), FIPS 204, through github.com/cloudflare/circl (pure
// Go). The key material is the 32-byte seed, kept as PKCS#8 in the seed
// form of RFC 9881 (privateKey = [0] IMPLICIT OCTET STRING); the public key
// is a SubjectPublicKeyInfo with the variant's OID and no parameters.
// Signatures are pure ML-DSA with an empty context, hedged (FIPS 204's
// default), over the RAW message. circl has no API to sign or verify an
// external mu, so MessageType EXTERNAL_MU is refused.

import (
	"crypto"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"io"

	"github.com/cloudflare/circl/sign"
	"github.com/cloudflare/circl/sign/mldsa/mldsa44"
	"github.com/cloudflare/circl/sign/mldsa/mldsa65"
	"github.com/cloudflare/circl/sign/mldsa/mldsa87"
)

const msgExternalMu = "EXTERNAL_MU"

// mldsaVariant is one parameter set.
type mldsaVariant struct {
	spec   string
	oid    asn1.ObjectIdentifier // id-ml-dsa-44/65/87 (NIST CSOR)
	scheme sign.Scheme
	// signTo makes a hedged signature of msg with an empty context.
	signTo func(sk sign.PrivateKey, msg []byte) ([]byte, error)
}

var mldsaVariants = []*mldsaVariant{
	{spec: "ML_DSA_44", oid: asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 3, 17}, scheme: mldsa44.Scheme(), signTo: func(sk sign.PrivateKey, msg []byte) ([]byte, error) {
		sig := make([]byte, mldsa44.SignatureSize)
		return sig, mldsa44.SignTo(sk.(*mldsa44.PrivateKey), msg, nil, true, sig)
	}},
	{spec: "ML_DSA_65", oid: asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 3, 18}, scheme: mldsa65.Scheme(), signTo: func(sk sign.PrivateKey, msg []byte) ([]byte, error) {
		sig := make([]byte, mldsa65.SignatureSize)
		return sig, mldsa65.SignTo(sk.(*mldsa65.PrivateKey), msg, nil, true, sig)
	}},
	{spec: "ML_DSA_87", oid: asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 3, 19}, scheme: mldsa87.Scheme(), signTo: func(sk sign.PrivateKey, msg []byte) ([]byte, error) {
		sig := make([]byte, mldsa87.SignatureSize)
		return sig, mldsa87.SignTo(sk.(*mldsa87.PrivateKey), msg, nil, true, sig)
	}},
}

func mldsaVariantOf(spec string) *mldsaVariant {
	for _, v := range mldsaVariants {
		if v.spec == spec {
			return v
		}
	}
	return nil
}

// mldsaKey is an ML-DSA private key as a crypto.Signer over the message
// itself (opts and rand are not used: circl draws the hedge from
// crypto/rand).
type mldsaKey struct {
	v    *mldsaVariant
	seed []byte
	sk   sign.PrivateKey
	pub  *mldsaPublic
}

// mldsaPublic is an ML-DSA public key.
type mldsaPublic struct {
	v  *mldsaVariant
	pk sign.PublicKey
}

func (k *mldsaKey) Public() crypto.PublicKey { return k.pub }

func (k *mldsaKey) Sign(_ io.Reader, msg []byte, _ crypto.SignerOpts) ([]byte, error) {
	return k.v.signTo(k.sk, msg)
}

// verify checks a pure ML-DSA signature of msg with an empty context.
func (p *mldsaPublic) verify(msg, sig []byte) bool {
	return len(sig) == p.v.scheme.SignatureSize() && p.v.scheme.Verify(p.pk, msg, sig, nil)
}

func newMLDSAKey(v *mldsaVariant, seed []byte) *mldsaKey {
	pk, sk := v.scheme.DeriveKey(seed)
	return &mldsaKey{v: v, seed: append([]byte(nil), seed...), sk: sk, pub: &mldsaPublic{v: v, pk: pk}}
}

func generateMLDSA(rnd io.Reader, spec string) (*mldsaKey, error) {
	v := mldsaVariantOf(spec)
	if v == nil {
		return nil, errors.New("kms: not an ML-DSA key spec: " + spec)
	}
	seed := make([]byte, v.scheme.SeedSize())
	defer clear(seed)
	if _, err := io.ReadFull(rnd, seed); err != nil {
		return nil, err
	}
	return newMLDSAKey(v, seed), nil
}

// marshalMLDSAPKCS8 is the PKCS#8 seed form of RFC 9881.
func marshalMLDSAPKCS8(k *mldsaKey) ([]byte, error) {
	inner := append([]byte{0x80, byte(len(k.seed))}, k.seed...)
	defer clear(inner)
	return asn1.Marshal(pkcs8{Algo: pkix.AlgorithmIdentifier{Algorithm: k.v.oid}, PrivateKey: inner})
}

func marshalMLDSAPKIX(p *mldsaPublic) ([]byte, error) {
	raw, err := p.pk.MarshalBinary()
	if err != nil {
		return nil, err
	}
	return asn1.Marshal(spki{Algo: pkix.AlgorithmIdentifier{Algorithm: p.v.oid}, PublicKey: asn1.BitString{Bytes: raw, BitLength: 8 * len(raw)}})
}

var errNotMLDSA = errors.New("not an ML-DSA private key")

// parseMLDSAPKCS8 decodes the PKCS#8 seed form of an ML-DSA private key.
func parseMLDSAPKCS8(der []byte) (*mldsaKey, error) {
	var p pkcs8
	if rest, err := asn1.Unmarshal(der, &p); err != nil || len(rest) > 0 || len(p.Algo.Parameters.FullBytes) > 0 {
		return nil, errNotMLDSA
	}
	for _, v := range mldsaVariants {
		if !p.Algo.Algorithm.Equal(v.oid) {
			continue
		}
		n := v.scheme.SeedSize()
		if len(p.PrivateKey) != 2+n || p.PrivateKey[0] != 0x80 || int(p.PrivateKey[1]) != n {
			return nil, errNotMLDSA
		}
		defer clear(p.PrivateKey)
		return newMLDSAKey(v, p.PrivateKey[2:]), nil
	}
	return nil, errNotMLDSA
}
