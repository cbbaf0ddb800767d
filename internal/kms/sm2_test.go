package kms

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/rand"
	"testing"

	"github.com/emmansun/gmsm/sm2"
	"github.com/emmansun/gmsm/sm3"
	"github.com/emmansun/gmsm/smx509"
)

// TestSM2Primitives: SM2DSA RAW signatures are over SM3(Z_A || M) with the
// default ID 1234567812345678 (so gmsm's GB/T 32918 verification of the
// message accepts them), DIGEST signatures over the e given; SM2PKE
// ciphertexts are ASN.1 and malformed ones fail without panicking; the
// encodings round-trip through gmsm's smx509.
func TestSM2Primitives(t *testing.T) {
	signer, err := generatePrivateKey(rand.Reader, specSM2)
	if err != nil {
		t.Fatal(err)
	}
	priv := signer.(*sm2.PrivateKey)
	pub := &priv.PublicKey
	msg := []byte("message to sign")

	sig, err := signSM2(rand.Reader, signer, msg, msgRaw)
	if err != nil {
		t.Fatal(err)
	}
	if !sm2.VerifyASN1WithSM2(pub, []byte("1234567812345678"), msg, sig) || !verifySM2(pub, msg, sig, msgRaw) {
		t.Error("RAW signature does not verify with the default distinguishing ID")
	}
	if sm2.VerifyASN1WithSM2(pub, []byte("another id"), msg, sig) {
		t.Error("RAW signature verifies with another distinguishing ID")
	}
	za, err := sm2.CalculateZA(pub, []byte("alice@example"))
	if err != nil {
		t.Fatal(err)
	}
	h := sm3.New()
	h.Write(za)
	h.Write(msg)
	e := h.Sum(nil)
	dsig, err := signSM2(rand.Reader, signer, e, msgDigest)
	if err != nil {
		t.Fatal(err)
	}
	if !sm2.VerifyASN1WithSM2(pub, []byte("alice@example"), msg, dsig) || !verifySM2(pub, e, dsig, msgDigest) {
		t.Error("DIGEST signature does not verify")
	}
	if verifySM2(pub, msg, dsig, msgRaw) {
		t.Error("DIGEST signature verifies as RAW")
	}

	der, err := marshalPKIX(signer.Public())
	if err != nil {
		t.Fatal(err)
	}
	parsed, err := smx509.ParsePKIXPublicKey(der)
	if err != nil || !parsed.(*ecdsa.PublicKey).Equal(pub) {
		t.Fatalf("SPKI does not parse back: %v", err)
	}
	p8, err := marshalPKCS8(signer)
	if err != nil {
		t.Fatal(err)
	}
	back, err := parseSigner(p8)
	if err != nil || !back.(*sm2.PrivateKey).Equal(priv) {
		t.Fatalf("PKCS#8 does not parse back: %v", err)
	}

	pt := []byte("secret")
	asn1CT, err := sm2.Encrypt(rand.Reader, pub, pt, sm2.ASN1EncrypterOpts)
	if err != nil {
		t.Fatal(err)
	}
	if asn1CT[0] != 0x30 {
		t.Fatalf("ciphertext is not ASN.1: %x", asn1CT[:4])
	}
	got, err := priv.Decrypt(nil, asn1CT, sm2.ASN1DecrypterOpts)
	if err != nil || !bytes.Equal(got, pt) {
		t.Errorf("ASN.1 ciphertext: %q, %v", got, err)
	}
	// Malformed ASN.1: truncated, trailing bytes, negative or huge
	// coordinates, empty and random bodies; every one an error.
	bad := [][]byte{asn1CT[:len(asn1CT)-1], append(bytes.Clone(asn1CT), 0), {0x30, 0x00},
		append([]byte{0x30, 0x46, 0x02, 0x01, 0xff, 0x02, 0x01, 0x01, 0x04, 0x20}, make([]byte, 32+2+3)...),
		append([]byte{0x30, 0x81, 0x90, 0x02, 0x41, 0x01}, make([]byte, 200)...)}
	for i := 0; i < 200; i++ {
		b := make([]byte, 1+i%150)
		_, _ = rand.Read(b)
		b[0] = 0x30
		bad = append(bad, b)
	}
	for _, b := range bad {
		if _, err := priv.Decrypt(nil, b, sm2.ASN1DecrypterOpts); err == nil {
			t.Errorf("malformed ciphertext %x decrypts", b)
		}
	}

	ak, err := parseAgreementKey(p8)
	if err != nil {
		t.Fatal(err)
	}
	peer, _ := sm2.GenerateKey(rand.Reader)
	peerDER, _ := smx509.MarshalPKIXPublicKey(&peer.PublicKey)
	pk, err := peerPublicKey(peerDER, specSM2)
	if err != nil {
		t.Fatal(err)
	}
	secret, err := ak.(*agreementKey).derive(pk)
	if err != nil {
		t.Fatal(err)
	}
	theirs, _ := sm2AgreementKey(peer)
	ours, _ := sm2PeerKey(pub)
	want, err := theirs.ECDH(ours)
	if err != nil || !bytes.Equal(secret, want) || len(secret) != 32 {
		t.Errorf("ECDH secrets differ: %x, %x (%v)", secret, want, err)
	}
	if _, err := peerPublicKey(der, "ECC_NIST_P256"); err == nil {
		t.Error("an SM2 peer key is accepted for ECC_NIST_P256")
	}
}
