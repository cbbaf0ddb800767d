package kms

import (
	"bytes"
	"crypto/rand"
	"testing"
)

// TestSecp256k1PKCS8 round-trips a secp256k1 private key through PKCS#8 and
// refuses what is not one: other curves, truncations, a zero or out-of-range
// scalar, trailing bytes.
func TestSecp256k1PKCS8(t *testing.T) {
	k, err := generateSecp256k1(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := marshalPKCS8(k)
	if err != nil {
		t.Fatal(err)
	}
	back, err := parseSecp256k1PKCS8(der)
	if err != nil {
		t.Fatalf("parseSecp256k1PKCS8(marshalPKCS8(k)) = %v", err)
	}
	if !bytes.Equal(back.priv.Serialize(), k.priv.Serialize()) {
		t.Fatal("the private key changed in a round trip")
	}
	signer, err := parseSigner(der)
	if err != nil {
		t.Fatalf("parseSigner(secp256k1 PKCS#8) = %v", err)
	}
	if _, ok := signer.(*secp256k1Key); !ok {
		t.Fatalf("parseSigner gave %T", signer)
	}
	p256, err := newPrivateKey(rand.Reader, "ECC_NIST_P256")
	if err != nil {
		t.Fatal(err)
	}
	bad := map[string][]byte{
		"P-256 key":      p256,
		"empty":          nil,
		"trailing bytes": append(bytes.Clone(der), 0),
	}
	for n := 1; n < len(der); n += 7 {
		bad["truncated"+string(rune('a'+n%26))] = der[:n]
	}
	// The scalar sits in the last OCTET STRING of 32 bytes before the
	// public key; make it zero and then the group order n.
	i := bytes.Index(der, k.priv.Serialize())
	if i < 0 {
		t.Fatal("scalar not found in the encoding")
	}
	zero := bytes.Clone(der)
	clear(zero[i : i+32])
	bad["zero scalar"] = zero
	order := bytes.Clone(der)
	copy(order[i:], []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe,
		0xba, 0xae, 0xdc, 0xe6, 0xaf, 0x48, 0xa0, 0x3b, 0xbf, 0xd2, 0x5e, 0x8c, 0xd0, 0x36, 0x41, 0x41})
	bad["scalar = n"] = order
	for name, b := range bad {
		if _, err := parseSecp256k1PKCS8(b); err == nil {
			t.Errorf("parseSecp256k1PKCS8(%s) accepted it", name)
		}
	}
	pub, err := marshalPKIX(k.Public())
	if err != nil {
		t.Fatal(err)
	}
	if len(pub) != 88 {
		t.Errorf("secp256k1 SubjectPublicKeyInfo of %d bytes, want 88", len(pub))
	}
}
