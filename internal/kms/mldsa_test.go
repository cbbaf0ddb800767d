package kms

import (
	"bytes"
	"crypto/rand"
	"testing"
)

// TestMLDSAPKCS8 round-trips each ML-DSA key through its PKCS#8 seed form
// and refuses what is not one: truncations, another variant's OID length,
// trailing bytes, a secp256k1 key.
func TestMLDSAPKCS8(t *testing.T) {
	for _, v := range mldsaVariants {
		k, err := generateMLDSA(rand.Reader, v.spec)
		if err != nil {
			t.Fatal(err)
		}
		der, err := marshalPKCS8(k)
		if err != nil {
			t.Fatal(err)
		}
		signer, err := parseSigner(der)
		if err != nil {
			t.Fatalf("%s: parseSigner(PKCS#8) = %v", v.spec, err)
		}
		back, ok := signer.(*mldsaKey)
		if !ok || back.v != v || !bytes.Equal(back.seed, k.seed) {
			t.Fatalf("%s: round trip gave %T", v.spec, signer)
		}
		sig, err := back.Sign(nil, []byte("m"), nil)
		if err != nil || !k.pub.verify([]byte("m"), sig) || k.pub.verify([]byte("n"), sig) {
			t.Fatalf("%s: sign/verify after a round trip: %v", v.spec, err)
		}
		for n := 0; n < len(der); n += 5 {
			if _, err := parseMLDSAPKCS8(der[:n]); err == nil {
				t.Errorf("%s: parseMLDSAPKCS8 accepts %d of %d bytes", v.spec, n, len(der))
			}
		}
		if _, err := parseMLDSAPKCS8(append(bytes.Clone(der), 0)); err == nil {
			t.Errorf("%s: parseMLDSAPKCS8 accepts trailing bytes", v.spec)
		}
	}
	k1, err := newPrivateKey(rand.Reader, "ECC_SECG_P256K1")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := parseMLDSAPKCS8(k1); err == nil {
		t.Error("parseMLDSAPKCS8 accepts a secp256k1 key")
	}
}
