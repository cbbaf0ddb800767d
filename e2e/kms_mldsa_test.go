package e2e

import (
	"bytes"
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
	"github.com/cloudflare/circl/sign"
	"github.com/cloudflare/circl/sign/mldsa/mldsa44"
	"github.com/cloudflare/circl/sign/mldsa/mldsa65"
	"github.com/cloudflare/circl/sign/mldsa/mldsa87"

	"github.com/keyfort/keyfort/internal/keyfortest"
)

var mldsaSpecs = []struct {
	spec   types.KeySpec
	oid    asn1.ObjectIdentifier
	scheme sign.Scheme
}{
	{types.KeySpecMlDsa44, asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 3, 17}, mldsa44.Scheme()},
	{types.KeySpecMlDsa65, asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 3, 18}, mldsa65.Scheme()},
	{types.KeySpecMlDsa87, asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 3, 19}, mldsa87.Scheme()},
}

// pythonMLDSAVerify verifies a signature with Python's cryptography package
// (its own ML-DSA, not circl), from the DER SubjectPublicKeyInfo; it reports
// false when that package has no ML-DSA.
func pythonMLDSAVerify(t *testing.T, spki, msg, sig []byte) (checked bool) {
	t.Helper()
	if _, err := exec.LookPath("python3"); err != nil {
		return false
	}
	if exec.Command("python3", "-c", "from cryptography.hazmat.primitives.asymmetric import mldsa").Run() != nil {
		return false
	}
	dir := t.TempDir()
	for name, b := range map[string][]byte{"pub.der": spki, "msg": msg, "sig": sig} {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	script := `import sys
from cryptography.hazmat.primitives.serialization import load_der_public_key
d = sys.argv[1]
pub = load_der_public_key(open(d + "/pub.der", "rb").read())
pub.verify(open(d + "/sig", "rb").read(), open(d + "/msg", "rb").read())
print("verified", type(pub).__name__)`
	out, err := exec.Command("python3", "-c", script, dir).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "verified") {
		t.Fatalf("python cryptography rejects the ML-DSA signature: %v\n%s", err, out)
	}
	return true
}

// TestMLDSAKeys: ML_DSA_44/65/87 SIGN_VERIFY keys: DescribeKey and
// GetPublicKey (SubjectPublicKeyInfo with the FIPS 204 OID), Sign of a RAW
// message with ML_DSA_SHAKE_256 (pure ML-DSA, empty context) that circl and
// Python's cryptography verify, Verify (a tampered signature or message is
// KMSInvalidSignatureException), the refusals (DIGEST, EXTERNAL_MU, another
// algorithm, rotation), a 4096-byte message, and the key after a restart.
func TestMLDSAKeys(t *testing.T) {
	srv := keyfortest.Start(t)
	c := srv.KMS()
	msg := []byte("release v2.0.0 signed post-quantum")
	alg := types.SigningAlgorithmSpecMlDsaShake256
	type signed struct {
		id  *string
		sig []byte
	}
	var all []signed
	for _, sp := range mldsaSpecs {
		md := createKey(t, c, &kms.CreateKeyInput{KeySpec: sp.spec, KeyUsage: types.KeyUsageTypeSignVerify})
		if md.KeySpec != sp.spec || !equalAlgs(md.SigningAlgorithms, []types.SigningAlgorithmSpec{alg}) ||
			len(md.EncryptionAlgorithms)+len(md.KeyAgreementAlgorithms)+len(md.MacAlgorithms) != 0 {
			t.Fatalf("%s metadata = %+v", sp.spec, md)
		}
		pk, err := c.GetPublicKey(ctxT(t), &kms.GetPublicKeyInput{KeyId: md.KeyId})
		mustNoErr(t, err, "GetPublicKey")
		if pk.KeySpec != sp.spec || pk.KeyUsage != types.KeyUsageTypeSignVerify || !equalAlgs(pk.SigningAlgorithms, []types.SigningAlgorithmSpec{alg}) {
			t.Fatalf("%s GetPublicKey = %+v", sp.spec, pk)
		}
		var spki struct {
			Algo      pkix.AlgorithmIdentifier
			PublicKey asn1.BitString
		}
		if rest, err := asn1.Unmarshal(pk.PublicKey, &spki); err != nil || len(rest) > 0 || !spki.Algo.Algorithm.Equal(sp.oid) ||
			len(spki.Algo.Parameters.FullBytes) != 0 || len(spki.PublicKey.Bytes) != sp.scheme.PublicKeySize() {
			t.Fatalf("%s public key: %v, algorithm %v, %d bytes of key", sp.spec, err, spki.Algo.Algorithm, len(spki.PublicKey.Bytes))
		}
		pub, err := sp.scheme.UnmarshalBinaryPublicKey(spki.PublicKey.Bytes)
		mustNoErr(t, err, "UnmarshalBinaryPublicKey")

		out, err := c.Sign(ctxT(t), &kms.SignInput{KeyId: md.KeyId, Message: msg, MessageType: types.MessageTypeRaw, SigningAlgorithm: alg})
		mustNoErr(t, err, "Sign "+string(sp.spec))
		if len(out.Signature) != sp.scheme.SignatureSize() || out.SigningAlgorithm != alg || aws.ToString(out.KeyId) != aws.ToString(md.Arn) {
			t.Fatalf("%s Sign: %d-byte signature, %s", sp.spec, len(out.Signature), out.SigningAlgorithm)
		}
		if !sp.scheme.Verify(pub, msg, out.Signature, nil) {
			t.Fatalf("%s: circl rejects the signature", sp.spec)
		}
		if !pythonMLDSAVerify(t, pk.PublicKey, msg, out.Signature) {
			t.Logf("python cryptography without ML-DSA: %s checked with circl only", sp.spec)
		}
		v, err := c.Verify(ctxT(t), &kms.VerifyInput{KeyId: md.KeyId, Message: msg, SigningAlgorithm: alg, Signature: out.Signature})
		mustNoErr(t, err, "Verify")
		if !v.SignatureValid {
			t.Fatalf("Verify = %+v", v)
		}
		tampered := bytes.Clone(out.Signature)
		tampered[100] ^= 1
		for _, bad := range [][]byte{tampered, out.Signature[:100], []byte("x")} {
			_, err = c.Verify(ctxT(t), &kms.VerifyInput{KeyId: md.KeyId, Message: msg, SigningAlgorithm: alg, Signature: bad})
			wantAPIError(t, err, "KMSInvalidSignatureException", "")
		}
		_, err = c.Verify(ctxT(t), &kms.VerifyInput{KeyId: md.KeyId, Message: append(bytes.Clone(msg), '!'), SigningAlgorithm: alg, Signature: out.Signature})
		wantAPIError(t, err, "KMSInvalidSignatureException", "")
		all = append(all, signed{md.KeyId, out.Signature})
	}
	id := all[1].id
	_, err := c.Sign(ctxT(t), &kms.SignInput{KeyId: id, Message: bytes.Repeat([]byte{7}, 4096), SigningAlgorithm: alg})
	mustNoErr(t, err, "Sign 4096 bytes")
	_, err = c.Sign(ctxT(t), &kms.SignInput{KeyId: id, Message: make([]byte, 64), MessageType: types.MessageTypeDigest, SigningAlgorithm: alg})
	wantAPIError(t, err, "ValidationException", "Message type DIGEST is incompatible with algorithm ML_DSA_SHAKE_256.")
	_, err = c.Sign(ctxT(t), &kms.SignInput{KeyId: id, Message: make([]byte, 64), MessageType: types.MessageTypeExternalMu, SigningAlgorithm: alg})
	wantAPIError(t, err, "ValidationException", "EXTERNAL_MU")
	_, err = c.Sign(ctxT(t), &kms.SignInput{KeyId: id, Message: msg, SigningAlgorithm: types.SigningAlgorithmSpecEcdsaSha256})
	wantAPIError(t, err, "InvalidKeyUsageException", "Algorithm ECDSA_SHA_256 is incompatible with key spec ML_DSA_65.")
	_, err = c.EnableKeyRotation(ctxT(t), &kms.EnableKeyRotationInput{KeyId: id})
	wantAPIError(t, err, "UnsupportedOperationException", "")
	_, err = c.CreateKey(ctxT(t), &kms.CreateKeyInput{KeySpec: types.KeySpecMlDsa44, KeyUsage: types.KeyUsageTypeEncryptDecrypt})
	wantAPIError(t, err, "ValidationException", "KeyUsage ENCRYPT_DECRYPT is not compatible with KeySpec ML_DSA_44")

	srv.Restart(t)
	c = srv.KMS()
	for _, s := range all {
		_, err := c.Verify(ctxT(t), &kms.VerifyInput{KeyId: s.id, Message: msg, SigningAlgorithm: alg, Signature: s.sig})
		mustNoErr(t, err, "Verify after restart")
	}
}
