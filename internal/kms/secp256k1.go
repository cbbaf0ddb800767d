package kms

// ECC_SECG_P256K1 keys (secp256k1, SIGN_VERIFY with ECDSA_SHA_256, and data
// key pairs). The standard library has no secp256k1, so the curve comes from
// github.com/decred/dcrd/dcrec/secp256k1/v4 (pure Go, constant-time field
// and scalar arithmetic, used by btcd and dcrd), and the X.509 and PKCS#8
// encodings, which crypto/x509 refuses for this curve, are written here in
// the forms RFC 5480 and RFC 5915 give (the named curve's OID 1.3.132.0.10,
// uncompressed points), as AWS and OpenSSL write them.

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"io"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"
	secpecdsa "github.com/decred/dcrd/dcrec/secp256k1/v4/ecdsa"
	"github.com/emmansun/gmsm/sm2"
)

var (
	oidPublicKeyEC = asn1.ObjectIdentifier{1, 2, 840, 10045, 2, 1}
	oidSecp256k1   = asn1.ObjectIdentifier{1, 3, 132, 0, 10}
)

// secp256k1Key is a secp256k1 private key as a crypto.Signer: Sign takes a
// digest and returns an ASN.1 DER ECDSA signature (RFC 6979 nonces, low S).
type secp256k1Key struct {
	priv *secp256k1.PrivateKey
}

// Public returns the *secp256k1.PublicKey.
func (k *secp256k1Key) Public() crypto.PublicKey { return k.priv.PubKey() }

// Sign signs digest; rand and opts are not used (the nonce is RFC 6979's).
func (k *secp256k1Key) Sign(_ io.Reader, digest []byte, _ crypto.SignerOpts) ([]byte, error) {
	return secpecdsa.Sign(k.priv, digest).Serialize(), nil
}

func generateSecp256k1(rnd io.Reader) (*secp256k1Key, error) {
	priv, err := secp256k1.GeneratePrivateKeyFromRand(rnd)
	if err != nil {
		return nil, err
	}
	return &secp256k1Key{priv: priv}, nil
}

// pkcs8 and ecPrivateKey are the ASN.1 forms of RFC 5208 and RFC 5915.
type pkcs8 struct {
	Version    int
	Algo       pkix.AlgorithmIdentifier
	PrivateKey []byte
}

type ecPrivateKey struct {
	Version    int
	PrivateKey []byte
	PublicKey  asn1.BitString `asn1:"optional,explicit,tag:1"`
}

type spki struct {
	Algo      pkix.AlgorithmIdentifier
	PublicKey asn1.BitString
}

func secp256k1AlgorithmID() (pkix.AlgorithmIdentifier, error) {
	curve, err := asn1.Marshal(oidSecp256k1)
	if err != nil {
		return pkix.AlgorithmIdentifier{}, err
	}
	return pkix.AlgorithmIdentifier{Algorithm: oidPublicKeyEC, Parameters: asn1.RawValue{FullBytes: curve}}, nil
}

// marshalPKCS8 encodes a private key as PKCS#8 DER.
func marshalPKCS8(priv crypto.Signer) ([]byte, error) {
	if m, ok := priv.(*mldsaKey); ok {
		return marshalMLDSAPKCS8(m)
	}
	if m, ok := priv.(*sm2.PrivateKey); ok {
		return marshalSM2PKCS8(m)
	}
	k, ok := priv.(*secp256k1Key)
	if !ok {
		return x509.MarshalPKCS8PrivateKey(priv)
	}
	algo, err := secp256k1AlgorithmID()
	if err != nil {
		return nil, err
	}
	scalar := k.priv.Serialize()
	defer clear(scalar)
	pub := k.priv.PubKey().SerializeUncompressed()
	inner, err := asn1.Marshal(ecPrivateKey{Version: 1, PrivateKey: scalar, PublicKey: asn1.BitString{Bytes: pub, BitLength: 8 * len(pub)}})
	if err != nil {
		return nil, err
	}
	defer clear(inner)
	return asn1.Marshal(pkcs8{Algo: algo, PrivateKey: inner})
}

// marshalPKIX encodes a public key as DER SubjectPublicKeyInfo.
func marshalPKIX(pub crypto.PublicKey) ([]byte, error) {
	if m, ok := pub.(*mldsaPublic); ok {
		return marshalMLDSAPKIX(m)
	}
	if isSM2Public(pub) {
		return marshalSM2PKIX(pub.(*ecdsa.PublicKey))
	}
	p, ok := pub.(*secp256k1.PublicKey)
	if !ok {
		return x509.MarshalPKIXPublicKey(pub)
	}
	algo, err := secp256k1AlgorithmID()
	if err != nil {
		return nil, err
	}
	point := p.SerializeUncompressed()
	return asn1.Marshal(spki{Algo: algo, PublicKey: asn1.BitString{Bytes: point, BitLength: 8 * len(point)}})
}

var errNotSecp256k1 = errors.New("not a secp256k1 private key")

// parseSecp256k1PKCS8 decodes a PKCS#8 secp256k1 private key.
func parseSecp256k1PKCS8(der []byte) (*secp256k1Key, error) {
	var p pkcs8
	if rest, err := asn1.Unmarshal(der, &p); err != nil || len(rest) > 0 {
		return nil, errNotSecp256k1
	}
	var curve asn1.ObjectIdentifier
	if !p.Algo.Algorithm.Equal(oidPublicKeyEC) {
		return nil, errNotSecp256k1
	}
	if rest, err := asn1.Unmarshal(p.Algo.Parameters.FullBytes, &curve); err != nil || len(rest) > 0 || !curve.Equal(oidSecp256k1) {
		return nil, errNotSecp256k1
	}
	var ec ecPrivateKey
	if rest, err := asn1.Unmarshal(p.PrivateKey, &ec); err != nil || len(rest) > 0 || ec.Version != 1 || len(ec.PrivateKey) != 32 {
		return nil, errNotSecp256k1
	}
	defer clear(ec.PrivateKey)
	var s secp256k1.ModNScalar
	if overflow := s.SetByteSlice(ec.PrivateKey); overflow || s.IsZero() {
		return nil, errNotSecp256k1
	}
	return &secp256k1Key{priv: secp256k1.NewPrivateKey(&s)}, nil
}

// verifySecp256k1 checks an ASN.1 DER ECDSA signature of digest.
func verifySecp256k1(pub *secp256k1.PublicKey, digest, sig []byte) bool {
	s, err := secpecdsa.ParseDERSignature(sig)
	return err == nil && s.Verify(digest, pub)
}
