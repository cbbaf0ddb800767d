package e2e

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"

	"github.com/keyfort/keyfort/internal/keyfortest"
)

// pairSpecs are the KeyPairSpecs Keyfort makes, with the size of the key
// (bits; 255 for Ed25519).
var pairSpecs = []struct {
	spec types.DataKeyPairSpec
	bits int
}{
	{types.DataKeyPairSpecRsa2048, 2048},
	{types.DataKeyPairSpecRsa3072, 3072},
	{types.DataKeyPairSpecRsa4096, 4096},
	{types.DataKeyPairSpecEccNistP256, 256},
	{types.DataKeyPairSpecEccNistP384, 384},
	{types.DataKeyPairSpecEccNistP521, 521},
	{types.DataKeyPairSpecEccNistEdwards25519, 255},
}

// checkPair parses a data key pair (PKCS#8 private key, SubjectPublicKeyInfo
// public key), checks that they belong together and are of spec's size, and
// signs and verifies with them.
func checkPair(t *testing.T, spec types.DataKeyPairSpec, bits int, privDER, pubDER []byte) {
	t.Helper()
	priv, err := x509.ParsePKCS8PrivateKey(privDER)
	mustNoErr(t, err, string(spec)+" ParsePKCS8PrivateKey")
	pub, err := x509.ParsePKIXPublicKey(pubDER)
	mustNoErr(t, err, string(spec)+" ParsePKIXPublicKey")
	signer, ok := priv.(crypto.Signer)
	if !ok {
		t.Fatalf("%s private key is %T", spec, priv)
	}
	if !signer.Public().(interface{ Equal(crypto.PublicKey) bool }).Equal(pub) {
		t.Fatalf("%s: the public key is not the private key's", spec)
	}
	digest := sha256.Sum256([]byte("signed with a data key pair"))
	size := 0
	switch k := priv.(type) {
	case *rsa.PrivateKey:
		size = k.N.BitLen()
		sig, err := rsa.SignPKCS1v15(rand.Reader, k, crypto.SHA256, digest[:])
		mustNoErr(t, err, "SignPKCS1v15")
		mustNoErr(t, rsa.VerifyPKCS1v15(pub.(*rsa.PublicKey), crypto.SHA256, digest[:], sig), "VerifyPKCS1v15")
	case *ecdsa.PrivateKey:
		size = k.Curve.Params().BitSize
		sig, err := ecdsa.SignASN1(rand.Reader, k, digest[:])
		mustNoErr(t, err, "SignASN1")
		if !ecdsa.VerifyASN1(pub.(*ecdsa.PublicKey), digest[:], sig) {
			t.Fatalf("%s: ECDSA signature does not verify", spec)
		}
	case ed25519.PrivateKey:
		size = 255
		if !ed25519.Verify(pub.(ed25519.PublicKey), digest[:], ed25519.Sign(k, digest[:])) {
			t.Fatalf("%s: Ed25519 signature does not verify", spec)
		}
	}
	if size != bits {
		t.Fatalf("%s key pair %T of %d bits, want %d", spec, priv, size, bits)
	}
}

// TestGenerateDataKeyPair makes a pair of every KeyPairSpec Keyfort makes
// with both operations: the pair belongs together and signs; the private
// key's ciphertext decrypts through Decrypt to the private key only with the
// same encryption context; KeyId, KeyPairSpec and KeyMaterialId are AWS's;
// GetKeyLastUsage names the operations.
func TestGenerateDataKeyPair(t *testing.T) {
	srv := keyfortest.Start(t)
	c := srv.KMS()
	md := createKey(t, c, nil)
	ec := map[string]string{"purpose": "data key pair"}
	for _, sp := range pairSpecs {
		out, err := c.GenerateDataKeyPair(ctxT(t), &kms.GenerateDataKeyPairInput{KeyId: md.KeyId, KeyPairSpec: sp.spec, EncryptionContext: ec})
		mustNoErr(t, err, "GenerateDataKeyPair "+string(sp.spec))
		if aws.ToString(out.KeyId) != aws.ToString(md.Arn) || out.KeyPairSpec != sp.spec || out.CiphertextForRecipient != nil ||
			aws.ToString(out.KeyMaterialId) != aws.ToString(md.CurrentKeyMaterialId) {
			t.Fatalf("%s GenerateDataKeyPair = KeyId %s, KeyPairSpec %s, KeyMaterialId %s", sp.spec, aws.ToString(out.KeyId), out.KeyPairSpec, aws.ToString(out.KeyMaterialId))
		}
		checkPair(t, sp.spec, sp.bits, out.PrivateKeyPlaintext, out.PublicKey)
		dec, err := c.Decrypt(ctxT(t), &kms.DecryptInput{CiphertextBlob: out.PrivateKeyCiphertextBlob, EncryptionContext: ec})
		mustNoErr(t, err, "Decrypt the private key")
		if !bytes.Equal(dec.Plaintext, out.PrivateKeyPlaintext) || aws.ToString(dec.KeyId) != aws.ToString(md.Arn) {
			t.Fatalf("%s: Decrypt of PrivateKeyCiphertextBlob is not PrivateKeyPlaintext", sp.spec)
		}
		_, err = c.Decrypt(ctxT(t), &kms.DecryptInput{CiphertextBlob: out.PrivateKeyCiphertextBlob})
		wantAPIError(t, err, "InvalidCiphertextException", "")

		if sp.spec == types.DataKeyPairSpecRsa4096 {
			continue // slow to make; the RSA path is the same as RSA_2048's
		}
		wo, err := c.GenerateDataKeyPairWithoutPlaintext(ctxT(t), &kms.GenerateDataKeyPairWithoutPlaintextInput{KeyId: md.KeyId, KeyPairSpec: sp.spec, EncryptionContext: ec})
		mustNoErr(t, err, "GenerateDataKeyPairWithoutPlaintext "+string(sp.spec))
		if aws.ToString(wo.KeyId) != aws.ToString(md.Arn) || wo.KeyPairSpec != sp.spec || aws.ToString(wo.KeyMaterialId) != aws.ToString(md.CurrentKeyMaterialId) {
			t.Fatalf("%s GenerateDataKeyPairWithoutPlaintext = KeyId %s, KeyPairSpec %s", sp.spec, aws.ToString(wo.KeyId), wo.KeyPairSpec)
		}
		dec, err = c.Decrypt(ctxT(t), &kms.DecryptInput{KeyId: md.KeyId, CiphertextBlob: wo.PrivateKeyCiphertextBlob, EncryptionContext: ec})
		mustNoErr(t, err, "Decrypt the private key without plaintext")
		checkPair(t, sp.spec, sp.bits, dec.Plaintext, wo.PublicKey)
		if bytes.Equal(wo.PublicKey, out.PublicKey) {
			t.Fatalf("%s: two calls returned the same key pair", sp.spec)
		}
	}
	last, err := c.GetKeyLastUsage(ctxT(t), &kms.GetKeyLastUsageInput{KeyId: md.KeyId})
	mustNoErr(t, err, "GetKeyLastUsage")
	if last.KeyLastUsage == nil || last.KeyLastUsage.Operation != types.KeyLastUsageTrackingOperationDecrypt {
		t.Fatalf("GetKeyLastUsage = %+v, want Decrypt", last.KeyLastUsage)
	}
	_, err = c.GenerateDataKeyPairWithoutPlaintext(ctxT(t), &kms.GenerateDataKeyPairWithoutPlaintextInput{KeyId: md.KeyId, KeyPairSpec: types.DataKeyPairSpecEccNistP256})
	mustNoErr(t, err, "GenerateDataKeyPairWithoutPlaintext")
	last, err = c.GetKeyLastUsage(ctxT(t), &kms.GetKeyLastUsageInput{KeyId: md.KeyId})
	mustNoErr(t, err, "GetKeyLastUsage")
	if last.KeyLastUsage == nil || last.KeyLastUsage.Operation != types.KeyLastUsageTrackingOperationGenerateDataKeyPairWithoutPlaintext {
		t.Fatalf("GetKeyLastUsage = %+v, want GenerateDataKeyPairWithoutPlaintext", last.KeyLastUsage)
	}
	_, err = c.GenerateDataKeyPair(ctxT(t), &kms.GenerateDataKeyPairInput{KeyId: md.KeyId, KeyPairSpec: types.DataKeyPairSpecEccNistP256})
	mustNoErr(t, err, "GenerateDataKeyPair")
	last, err = c.GetKeyLastUsage(ctxT(t), &kms.GetKeyLastUsageInput{KeyId: md.KeyId})
	mustNoErr(t, err, "GetKeyLastUsage")
	if last.KeyLastUsage == nil || last.KeyLastUsage.Operation != types.KeyLastUsageTrackingOperationGenerateDataKeyPair {
		t.Fatalf("GetKeyLastUsage = %+v, want GenerateDataKeyPair", last.KeyLastUsage)
	}
}

// TestGenerateDataKeyPairErrors checks the refusals of both operations: SM2
// (China regions only) is UnsupportedOperationException; an unknown spec
// ValidationException; a key that is not a symmetric encryption key
// InvalidKeyUsageException; DryRun; Recipient; a disabled key; an unknown
// key.
func TestGenerateDataKeyPairErrors(t *testing.T) {
	srv := keyfortest.Start(t)
	c := srv.KMS()
	sym := createKey(t, c, nil)
	rsaEnc := createKey(t, c, &kms.CreateKeyInput{KeySpec: types.KeySpecRsa2048, KeyUsage: types.KeyUsageTypeEncryptDecrypt})
	sign := createKey(t, c, &kms.CreateKeyInput{KeySpec: types.KeySpecEccNistP256, KeyUsage: types.KeyUsageTypeSignVerify})
	hmac := createKey(t, c, &kms.CreateKeyInput{KeySpec: types.KeySpecHmac256, KeyUsage: types.KeyUsageTypeGenerateVerifyMac})
	type call func(id *string, spec types.DataKeyPairSpec, dryRun bool) error
	ops := map[string]call{
		"GenerateDataKeyPair": func(id *string, spec types.DataKeyPairSpec, dryRun bool) error {
			_, err := c.GenerateDataKeyPair(ctxT(t), &kms.GenerateDataKeyPairInput{KeyId: id, KeyPairSpec: spec, DryRun: aws.Bool(dryRun)})
			return err
		},
		"GenerateDataKeyPairWithoutPlaintext": func(id *string, spec types.DataKeyPairSpec, dryRun bool) error {
			_, err := c.GenerateDataKeyPairWithoutPlaintext(ctxT(t), &kms.GenerateDataKeyPairWithoutPlaintextInput{KeyId: id, KeyPairSpec: spec, DryRun: aws.Bool(dryRun)})
			return err
		},
	}
	for name, op := range ops {
		t.Run(name, func(t *testing.T) {
			p256 := types.DataKeyPairSpecEccNistP256
			wantAPIError(t, op(sym.KeyId, types.DataKeyPairSpecSm2, false), "UnsupportedOperationException", "KeyPairSpec SM2 is supported only in the AWS China regions.")
			wantAPIError(t, op(sym.KeyId, "RSA_1024", false), "ValidationException", "Value 'RSA_1024' at 'keyPairSpec' failed to satisfy constraint: Member must satisfy enum value set")
			wantAPIError(t, op(rsaEnc.KeyId, p256, false), "InvalidKeyUsageException", "SYMMETRIC_DEFAULT is not supported")
			wantAPIError(t, op(sign.KeyId, p256, false), "InvalidKeyUsageException", "key usage is SIGN_VERIFY")
			wantAPIError(t, op(hmac.KeyId, p256, false), "InvalidKeyUsageException", "key usage is GENERATE_VERIFY_MAC")
			wantAPIError(t, op(aws.String("alias/none"), p256, false), "NotFoundException", "")
			wantAPIError(t, op(sym.KeyId, p256, true), "DryRunOperationException", "The request would have succeeded, but the DryRun option is set.")
			// DryRun still answers what the request would.
			wantAPIError(t, op(sym.KeyId, types.DataKeyPairSpecSm2, true), "UnsupportedOperationException", "SM2")
		})
	}
	_, err := c.GenerateDataKeyPair(ctxT(t), &kms.GenerateDataKeyPairInput{KeyId: sym.KeyId, KeyPairSpec: types.DataKeyPairSpecEccNistP256,
		Recipient: &types.RecipientInfo{KeyEncryptionAlgorithm: types.KeyEncryptionMechanismRsaesOaepSha256, AttestationDocument: []byte("not an attestation document")}})
	wantAPIError(t, err, "ValidationException", "The attestation document in Recipient could not be verified")
	_, err = c.DisableKey(ctxT(t), &kms.DisableKeyInput{KeyId: sym.KeyId})
	mustNoErr(t, err, "DisableKey")
	for _, op := range ops {
		wantAPIError(t, op(sym.KeyId, types.DataKeyPairSpecEccNistP256, false), "DisabledException", "is disabled.")
	}
}

// TestGenerateDataKeyPairGrantsAndConditions: both operations are grant
// operations of a symmetric key, under the grant's encryption context
// constraint; kms:DataKeyPairSpec in a key policy limits the specs another
// account may ask for.
func TestGenerateDataKeyPairGrantsAndConditions(t *testing.T) {
	srv := keyfortest.Start(t)
	a := srv.KMSAs(acctA, "us-east-1")
	b := srv.KMSAs(acctB, "us-east-1")
	md := createKey(t, a, nil)
	ec := map[string]string{"tenant": "b"}
	g, err := a.CreateGrant(ctxT(t), &kms.CreateGrantInput{KeyId: md.KeyId, GranteePrincipal: aws.String("arn:aws:iam::" + acctB + ":root"),
		Operations:  []types.GrantOperation{types.GrantOperationGenerateDataKeyPair, types.GrantOperationDecrypt},
		Constraints: &types.GrantConstraints{EncryptionContextEquals: ec}})
	mustNoErr(t, err, "CreateGrant")
	tok := []string{aws.ToString(g.GrantToken)}
	out, err := b.GenerateDataKeyPair(ctxT(t), &kms.GenerateDataKeyPairInput{KeyId: md.Arn, KeyPairSpec: types.DataKeyPairSpecEccNistP384, EncryptionContext: ec, GrantTokens: tok})
	mustNoErr(t, err, "GenerateDataKeyPair through a grant")
	dec, err := b.Decrypt(ctxT(t), &kms.DecryptInput{KeyId: md.Arn, CiphertextBlob: out.PrivateKeyCiphertextBlob, EncryptionContext: ec, GrantTokens: tok})
	mustNoErr(t, err, "Decrypt through a grant")
	if !bytes.Equal(dec.Plaintext, out.PrivateKeyPlaintext) {
		t.Fatal("Decrypt through a grant is not the private key")
	}
	_, err = b.GenerateDataKeyPair(ctxT(t), &kms.GenerateDataKeyPairInput{KeyId: md.Arn, KeyPairSpec: types.DataKeyPairSpecEccNistP384,
		EncryptionContext: map[string]string{"tenant": "c"}, GrantTokens: tok})
	wantAPIError(t, err, "AccessDeniedException", "kms:GenerateDataKeyPair")
	_, err = b.GenerateDataKeyPairWithoutPlaintext(ctxT(t), &kms.GenerateDataKeyPairWithoutPlaintextInput{KeyId: md.Arn, KeyPairSpec: types.DataKeyPairSpecEccNistP384,
		EncryptionContext: ec, GrantTokens: tok})
	wantAPIError(t, err, "AccessDeniedException", "kms:GenerateDataKeyPairWithoutPlaintext")

	policy := `{"Version":"2012-10-17","Statement":[
{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::` + acctA + `:root"},"Action":"kms:*","Resource":"*"},
{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::` + acctB + `:root"},"Action":["kms:GenerateDataKeyPair","kms:GenerateDataKeyPairWithoutPlaintext"],"Resource":"*",
 "Condition":{"StringEquals":{"kms:DataKeyPairSpec":"ECC_NIST_P256","kms:EncryptionAlgorithm":"SYMMETRIC_DEFAULT"}}}]}`
	limited := createKey(t, a, &kms.CreateKeyInput{Policy: aws.String(policy)})
	_, err = b.GenerateDataKeyPairWithoutPlaintext(ctxT(t), &kms.GenerateDataKeyPairWithoutPlaintextInput{KeyId: limited.Arn, KeyPairSpec: types.DataKeyPairSpecEccNistP256})
	mustNoErr(t, err, "GenerateDataKeyPairWithoutPlaintext with kms:DataKeyPairSpec ECC_NIST_P256")
	_, err = b.GenerateDataKeyPair(ctxT(t), &kms.GenerateDataKeyPairInput{KeyId: limited.Arn, KeyPairSpec: types.DataKeyPairSpecRsa2048})
	wantAPIError(t, err, "AccessDeniedException", "kms:GenerateDataKeyPair")
}

// TestGenerateDataKeyPairOpenSSL: openssl reads the private key
// (PKCS#8 DER) of a data key pair and derives from it exactly the public key
// (SubjectPublicKeyInfo DER) the operation returned.
func TestGenerateDataKeyPairOpenSSL(t *testing.T) {
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Skip("no openssl command")
	}
	srv := keyfortest.Start(t)
	c := srv.KMS()
	md := createKey(t, c, nil)
	dir := t.TempDir()
	for i, spec := range []types.DataKeyPairSpec{types.DataKeyPairSpecRsa2048, types.DataKeyPairSpecEccNistP256,
		types.DataKeyPairSpecEccNistP521, types.DataKeyPairSpecEccNistEdwards25519} {
		out, err := c.GenerateDataKeyPair(ctxT(t), &kms.GenerateDataKeyPairInput{KeyId: md.KeyId, KeyPairSpec: spec})
		mustNoErr(t, err, "GenerateDataKeyPair")
		privFile := filepath.Join(dir, fmt.Sprintf("priv%d.der", i))
		pubFile := filepath.Join(dir, fmt.Sprintf("pub%d.der", i))
		if err := os.WriteFile(privFile, out.PrivateKeyPlaintext, 0o600); err != nil {
			t.Fatal(err)
		}
		args := []string{"pkey", "-inform", "DER", "-in", privFile, "-pubout", "-outform", "DER", "-out", pubFile}
		if b, err := exec.Command("openssl", args...).CombinedOutput(); err != nil {
			t.Fatalf("openssl %v (%s): %v\n%s", args, spec, err, b)
		}
		pub, err := os.ReadFile(pubFile)
		mustNoErr(t, err, "read openssl public key")
		if !bytes.Equal(pub, out.PublicKey) {
			t.Fatalf("%s: openssl derives public key %x from the private key, the operation returned %x", spec, pub, out.PublicKey)
		}
	}
}
