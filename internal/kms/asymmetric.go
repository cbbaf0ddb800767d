package kms

// Asymmetric keys: their material is the private key as PKCS#8 DER, made
// with the service's randomness and sealed like symmetric material; opened,
// it is cached as a crypto.Signer.

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"fmt"
	"io"
)

// privateKeyKind says how a spec's private key is made; "" means the
// material is random bytes.
func privateKeyKind(spec string) string {
	switch spec {
	case "RSA_2048", "RSA_3072", "RSA_4096":
		return "rsa"
	case "ECC_NIST_P256", "ECC_NIST_P384", "ECC_NIST_P521":
		return "ecdsa"
	case "ECC_NIST_EDWARDS25519":
		return "ed25519"
	case "ECC_SECG_P256K1":
		return "secp256k1"
	case "ML_DSA_44", "ML_DSA_65", "ML_DSA_87":
		return "mldsa"
	case specSM2:
		return "sm2"
	}
	return ""
}

var rsaBits = map[string]int{"RSA_2048": 2048, "RSA_3072": 3072, "RSA_4096": 4096}

var ecCurves = map[string]elliptic.Curve{
	"ECC_NIST_P256": elliptic.P256(),
	"ECC_NIST_P384": elliptic.P384(),
	"ECC_NIST_P521": elliptic.P521(),
}

// generatePrivateKey makes a private key of spec (a KeySpec or a
// DataKeyPairSpec of the same name) from rnd.
func generatePrivateKey(rnd io.Reader, spec string) (crypto.Signer, error) {
	switch privateKeyKind(spec) {
	case "rsa":
		return rsa.GenerateKey(rnd, rsaBits[spec])
	case "ecdsa":
		return ecdsa.GenerateKey(ecCurves[spec], rnd)
	case "ed25519":
		_, priv, err := ed25519.GenerateKey(rnd)
		return priv, err
	case "secp256k1":
		return generateSecp256k1(rnd)
	case "mldsa":
		return generateMLDSA(rnd, spec)
	case "sm2":
		return generateSM2(rnd)
	}
	return nil, fmt.Errorf("kms: key spec %s has no private key", spec)
}

// newPrivateKey makes a private key of spec from rnd and returns it as
// PKCS#8 DER.
func newPrivateKey(rnd io.Reader, spec string) ([]byte, error) {
	priv, err := generatePrivateKey(rnd, spec)
	if err != nil {
		return nil, err
	}
	return marshalPKCS8(priv)
}

// parseSigner is the build function of opened for asymmetric material.
func parseSigner(raw []byte) (any, error) {
	priv, err := x509.ParsePKCS8PrivateKey(raw)
	if err != nil {
		// crypto/x509 knows neither secp256k1, ML-DSA nor SM2.
		if k, kerr := parseSecp256k1PKCS8(raw); kerr == nil {
			return k, nil
		}
		if k, kerr := parseMLDSAPKCS8(raw); kerr == nil {
			return k, nil
		}
		if k, kerr := parseSM2PKCS8(raw); kerr == nil {
			return k, nil
		}
		return nil, err
	}
	signer, ok := priv.(crypto.Signer)
	if !ok {
		return nil, errNotPrivateKey
	}
	return signer, nil
}

var errNotPrivateKey = errorString("not a private key's material")
