package kms

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"testing"

	"github.com/emmansun/gmsm/sm2"
)

// TestNewPrivateKey makes a private key of every asymmetric spec Keyfort
// makes and opens it again as a crypto.Signer of the right type and size.
func TestNewPrivateKey(t *testing.T) {
	for spec, row := range keySpecs {
		if !row.makes(usageSignVerify) || privateKeyKind(spec) == "" {
			continue
		}
		raw, err := newPrivateKey(rand.Reader, spec)
		if err != nil {
			t.Fatalf("newPrivateKey(%s) error = %v", spec, err)
		}
		v, err := parseSigner(raw)
		if err != nil {
			t.Fatalf("parseSigner(%s) error = %v", spec, err)
		}
		switch k := v.(type) {
		case *rsa.PrivateKey:
			if k.N.BitLen() != rsaBits[spec] {
				t.Errorf("%s: RSA key of %d bits", spec, k.N.BitLen())
			}
		case *ecdsa.PrivateKey:
			if k.Curve != ecCurves[spec] {
				t.Errorf("%s: curve %s", spec, k.Curve.Params().Name)
			}
		case ed25519.PrivateKey:
			if spec != "ECC_NIST_EDWARDS25519" {
				t.Errorf("%s: Ed25519 key", spec)
			}
		case *mldsaKey:
			if k.v.spec != spec {
				t.Errorf("%s: ML-DSA key of %s", spec, k.v.spec)
			}
		case *secp256k1Key:
			if spec != "ECC_SECG_P256K1" {
				t.Errorf("%s: secp256k1 key", spec)
			}
		case *sm2.PrivateKey:
			if spec != specSM2 || !isSM2Public(k.Public()) {
				t.Errorf("%s: SM2 key", spec)
			}
		default:
			t.Errorf("%s: signer of type %T", spec, v)
		}
		if row.rotatable {
			t.Errorf("%s is rotatable; AWS does not rotate asymmetric keys", spec)
		}
	}
	if _, err := newPrivateKey(rand.Reader, specSymmetric); err == nil {
		t.Error("newPrivateKey(SYMMETRIC_DEFAULT) = nil error")
	}
	if _, err := parseSigner([]byte("not DER")); err == nil {
		t.Error("parseSigner(garbage) = nil error")
	}
}
