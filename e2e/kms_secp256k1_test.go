package e2e

import (
	"bytes"
	"crypto/sha256"
	"crypto/x509/pkix"
	"encoding/asn1"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/decred/dcrd/dcrec/secp256k1/v4"
	secpecdsa "github.com/decred/dcrd/dcrec/secp256k1/v4/ecdsa"

	"github.com/keyfort/keyfort/internal/keyfortest"
)

// parseSecp256k1SPKI checks that der is a SubjectPublicKeyInfo of
// id-ecPublicKey on the named curve secp256k1 (RFC 5480) with an
// uncompressed point, and returns the key.
func parseSecp256k1SPKI(t *testing.T, der []byte) *secp256k1.PublicKey {
	t.Helper()
	var spki struct {
		Algo      pkix.AlgorithmIdentifier
		PublicKey asn1.BitString
	}
	rest, err := asn1.Unmarshal(der, &spki)
	if err != nil || len(rest) > 0 {
		t.Fatalf("public key is not one SubjectPublicKeyInfo: %v (%d bytes after it)", err, len(rest))
	}
	var curve asn1.ObjectIdentifier
	if _, err := asn1.Unmarshal(spki.Algo.Parameters.FullBytes, &curve); err != nil ||
		!spki.Algo.Algorithm.Equal(asn1.ObjectIdentifier{1, 2, 840, 10045, 2, 1}) || !curve.Equal(asn1.ObjectIdentifier{1, 3, 132, 0, 10}) {
		t.Fatalf("public key algorithm %v curve %v, want id-ecPublicKey secp256k1", spki.Algo.Algorithm, curve)
	}
	if len(spki.PublicKey.Bytes) != 65 || spki.PublicKey.Bytes[0] != 4 {
		t.Fatalf("public key point of %d bytes, want 65 uncompressed", len(spki.PublicKey.Bytes))
	}
	pub, err := secp256k1.ParsePubKey(spki.PublicKey.Bytes)
	mustNoErr(t, err, "secp256k1.ParsePubKey")
	return pub
}

// TestSecp256k1Keys: ECC_SECG_P256K1 SIGN_VERIFY keys as AWS makes them
// (blockchain signing): DescribeKey and GetPublicKey (SubjectPublicKeyInfo
// with the secp256k1 OID), Sign RAW and DIGEST with ECDSA_SHA_256 (DER
// signatures that the decred implementation and openssl verify), Verify
// (also a high-S signature, which ECDSA allows; a tampered one is
// KMSInvalidSignatureException), the algorithm and usage refusals, and the
// key after a restart.
func TestSecp256k1Keys(t *testing.T) {
	srv := keyfortest.Start(t)
	c := srv.KMS()
	md := createKey(t, c, &kms.CreateKeyInput{KeySpec: types.KeySpecEccSecgP256k1, KeyUsage: types.KeyUsageTypeSignVerify})
	if md.KeySpec != types.KeySpecEccSecgP256k1 || md.KeyUsage != types.KeyUsageTypeSignVerify ||
		!equalAlgs(md.SigningAlgorithms, []types.SigningAlgorithmSpec{types.SigningAlgorithmSpecEcdsaSha256}) ||
		len(md.EncryptionAlgorithms)+len(md.KeyAgreementAlgorithms)+len(md.MacAlgorithms) != 0 {
		t.Fatalf("ECC_SECG_P256K1 metadata = %+v", md)
	}
	pk, err := c.GetPublicKey(ctxT(t), &kms.GetPublicKeyInput{KeyId: md.KeyId})
	mustNoErr(t, err, "GetPublicKey")
	if pk.KeySpec != types.KeySpecEccSecgP256k1 || pk.KeyUsage != types.KeyUsageTypeSignVerify ||
		!equalAlgs(pk.SigningAlgorithms, []types.SigningAlgorithmSpec{types.SigningAlgorithmSpecEcdsaSha256}) {
		t.Fatalf("GetPublicKey = %+v", pk)
	}
	pub := parseSecp256k1SPKI(t, pk.PublicKey)

	msg := []byte("transaction 0x1234 to be signed")
	digest := sha256.Sum256(msg)
	alg := types.SigningAlgorithmSpecEcdsaSha256
	raw, err := c.Sign(ctxT(t), &kms.SignInput{KeyId: md.KeyId, Message: msg, SigningAlgorithm: alg})
	mustNoErr(t, err, "Sign RAW")
	dig, err := c.Sign(ctxT(t), &kms.SignInput{KeyId: md.KeyId, Message: digest[:], MessageType: types.MessageTypeDigest, SigningAlgorithm: alg})
	mustNoErr(t, err, "Sign DIGEST")
	for _, sig := range [][]byte{raw.Signature, dig.Signature} {
		s, err := secpecdsa.ParseDERSignature(sig)
		mustNoErr(t, err, "ParseDERSignature")
		if !s.Verify(digest[:], pub) {
			t.Fatal("the secp256k1 signature does not verify with the public key")
		}
		v, err := c.Verify(ctxT(t), &kms.VerifyInput{KeyId: md.KeyId, Message: msg, SigningAlgorithm: alg, Signature: sig})
		mustNoErr(t, err, "Verify")
		if !v.SignatureValid || aws.ToString(v.KeyId) != aws.ToString(md.Arn) {
			t.Fatalf("Verify = %+v", v)
		}
	}
	// The same signature with S replaced by n - S (high S) is a valid ECDSA
	// signature too.
	s, _ := secpecdsa.ParseDERSignature(raw.Signature)
	r, sv := s.R(), s.S()
	sv.Negate()
	high := secpecdsa.NewSignature(&r, &sv).Serialize()
	_, err = c.Verify(ctxT(t), &kms.VerifyInput{KeyId: md.KeyId, Message: msg, SigningAlgorithm: alg, Signature: high})
	mustNoErr(t, err, "Verify a high-S signature")

	tampered := bytes.Clone(raw.Signature)
	tampered[len(tampered)-3] ^= 1
	for _, bad := range [][]byte{tampered, []byte("not a signature"), dig.Signature[:10]} {
		_, err = c.Verify(ctxT(t), &kms.VerifyInput{KeyId: md.KeyId, Message: msg, SigningAlgorithm: alg, Signature: bad})
		wantAPIError(t, err, "KMSInvalidSignatureException", "")
	}
	_, err = c.Verify(ctxT(t), &kms.VerifyInput{KeyId: md.KeyId, Message: append(bytes.Clone(msg), '!'), SigningAlgorithm: alg, Signature: raw.Signature})
	wantAPIError(t, err, "KMSInvalidSignatureException", "")
	_, err = c.Sign(ctxT(t), &kms.SignInput{KeyId: md.KeyId, Message: msg, SigningAlgorithm: types.SigningAlgorithmSpecEcdsaSha384})
	wantAPIError(t, err, "InvalidKeyUsageException", "Algorithm ECDSA_SHA_384 is incompatible with key spec ECC_SECG_P256K1.")
	_, err = c.Sign(ctxT(t), &kms.SignInput{KeyId: md.KeyId, Message: digest[:31], MessageType: types.MessageTypeDigest, SigningAlgorithm: alg})
	wantAPIError(t, err, "ValidationException", "Digest is invalid length for algorithm ECDSA_SHA_256.")
	_, err = c.Encrypt(ctxT(t), &kms.EncryptInput{KeyId: md.KeyId, Plaintext: []byte("x")})
	wantAPIError(t, err, "InvalidKeyUsageException", "key usage is SIGN_VERIFY")
	_, err = c.EnableKeyRotation(ctxT(t), &kms.EnableKeyRotationInput{KeyId: md.KeyId})
	wantAPIError(t, err, "UnsupportedOperationException", "")

	if _, err := exec.LookPath("openssl"); err == nil {
		dir := t.TempDir()
		pemFile := writePEM(t, dir, "k1.pem", pk.PublicKey)
		msgFile, sigFile := filepath.Join(dir, "msg"), filepath.Join(dir, "sig")
		if err := os.WriteFile(msgFile, msg, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(sigFile, raw.Signature, 0o600); err != nil {
			t.Fatal(err)
		}
		args := []string{"dgst", "-sha256", "-verify", pemFile, "-signature", sigFile, msgFile}
		if b, err := exec.Command("openssl", args...).CombinedOutput(); err != nil || !strings.Contains(string(b), "Verified OK") {
			t.Fatalf("openssl %v: %v\n%s", args, err, b)
		}
	}

	srv.Restart(t)
	c = srv.KMS()
	_, err = c.Verify(ctxT(t), &kms.VerifyInput{KeyId: md.KeyId, Message: msg, SigningAlgorithm: alg, Signature: raw.Signature})
	mustNoErr(t, err, "Verify after restart")
	again, err := c.GetPublicKey(ctxT(t), &kms.GetPublicKeyInput{KeyId: md.KeyId})
	mustNoErr(t, err, "GetPublicKey after restart")
	if !bytes.Equal(again.PublicKey, pk.PublicKey) {
		t.Fatal("the public key changed after a restart")
	}
}

// TestSecp256k1DataKeyPairOpenSSL: an ECC_SECG_P256K1 data key pair; openssl
// reads its PKCS#8 private key and derives the same SubjectPublicKeyInfo,
// and the private key's ciphertext decrypts to it.
func TestSecp256k1DataKeyPairOpenSSL(t *testing.T) {
	srv := keyfortest.Start(t)
	c := srv.KMS()
	md := createKey(t, c, nil)
	out, err := c.GenerateDataKeyPair(ctxT(t), &kms.GenerateDataKeyPairInput{KeyId: md.KeyId, KeyPairSpec: types.DataKeyPairSpecEccSecgP256k1})
	mustNoErr(t, err, "GenerateDataKeyPair ECC_SECG_P256K1")
	if out.KeyPairSpec != types.DataKeyPairSpecEccSecgP256k1 {
		t.Fatalf("KeyPairSpec = %s", out.KeyPairSpec)
	}
	pub := parseSecp256k1SPKI(t, out.PublicKey)
	dec, err := c.Decrypt(ctxT(t), &kms.DecryptInput{CiphertextBlob: out.PrivateKeyCiphertextBlob})
	mustNoErr(t, err, "Decrypt the private key")
	if !bytes.Equal(dec.Plaintext, out.PrivateKeyPlaintext) {
		t.Fatal("Decrypt of the private key's ciphertext is not the private key")
	}
	wo, err := c.GenerateDataKeyPairWithoutPlaintext(ctxT(t), &kms.GenerateDataKeyPairWithoutPlaintextInput{KeyId: md.KeyId, KeyPairSpec: types.DataKeyPairSpecEccSecgP256k1})
	mustNoErr(t, err, "GenerateDataKeyPairWithoutPlaintext ECC_SECG_P256K1")
	parseSecp256k1SPKI(t, wo.PublicKey)
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Skip("no openssl command")
	}
	dir := t.TempDir()
	privFile, pubFile := filepath.Join(dir, "priv.der"), filepath.Join(dir, "pub.der")
	if err := os.WriteFile(privFile, out.PrivateKeyPlaintext, 0o600); err != nil {
		t.Fatal(err)
	}
	args := []string{"pkey", "-inform", "DER", "-in", privFile, "-pubout", "-outform", "DER", "-out", pubFile}
	if b, err := exec.Command("openssl", args...).CombinedOutput(); err != nil {
		t.Fatalf("openssl %v: %v\n%s", args, err, b)
	}
	got, err := os.ReadFile(pubFile)
	mustNoErr(t, err, "read openssl public key")
	if !bytes.Equal(got, out.PublicKey) {
		t.Fatalf("openssl derives %x from the private key, the operation returned %x", got, out.PublicKey)
	}
	// openssl signs with the private key; the public key verifies it.
	msgFile, sigFile := filepath.Join(dir, "msg"), filepath.Join(dir, "sig")
	if err := os.WriteFile(msgFile, []byte("signed by openssl"), 0o600); err != nil {
		t.Fatal(err)
	}
	args = []string{"dgst", "-sha256", "-keyform", "DER", "-sign", privFile, "-out", sigFile, msgFile}
	if b, err := exec.Command("openssl", args...).CombinedOutput(); err != nil {
		t.Fatalf("openssl %v: %v\n%s", args, err, b)
	}
	sig, err := os.ReadFile(sigFile)
	mustNoErr(t, err, "read openssl signature")
	s, err := secpecdsa.ParseDERSignature(sig)
	mustNoErr(t, err, "ParseDERSignature")
	d := sha256.Sum256([]byte("signed by openssl"))
	if !s.Verify(d[:], pub) {
		t.Fatal("openssl's signature with the private key does not verify with the public key")
	}
}
