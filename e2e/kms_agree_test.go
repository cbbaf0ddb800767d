package e2e

import (
	"bytes"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
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

// agreeSpecs are the key agreement specs Keyfort makes, with their curves.
var agreeSpecs = []struct {
	spec  types.KeySpec
	curve ecdh.Curve
	size  int // bytes of a shared secret
}{
	{types.KeySpecEccNistP256, ecdh.P256(), 32},
	{types.KeySpecEccNistP384, ecdh.P384(), 48},
	{types.KeySpecEccNistP521, ecdh.P521(), 66},
}

// peerSPKI makes a key pair on curve outside KMS and returns it with its
// public key as DER SubjectPublicKeyInfo.
func peerSPKI(t *testing.T, curve ecdh.Curve) (*ecdh.PrivateKey, []byte) {
	t.Helper()
	priv, err := curve.GenerateKey(rand.Reader)
	mustNoErr(t, err, "GenerateKey")
	der, err := x509.MarshalPKIXPublicKey(priv.PublicKey())
	mustNoErr(t, err, "MarshalPKIXPublicKey")
	return priv, der
}

// TestKeyAgreementKeys creates a KEY_AGREEMENT key of every NIST curve:
// DescribeKey's and GetPublicKey's metadata, DeriveSharedSecret between two
// KMS keys and with a key pair made by Go's crypto/ecdh (same secret both
// ways, the curve's size), rotation and other usages refused, the secret
// the same after a restart, and GetKeyLastUsage naming DeriveSharedSecret.
func TestKeyAgreementKeys(t *testing.T) {
	srv := keyfortest.Start(t)
	c := srv.KMS()
	type made struct {
		id     *string
		peer   []byte
		secret []byte
	}
	keys := map[types.KeySpec]made{}
	for _, sp := range agreeSpecs {
		md := createKey(t, c, &kms.CreateKeyInput{KeySpec: sp.spec, KeyUsage: types.KeyUsageTypeKeyAgreement})
		if md.KeySpec != sp.spec || md.KeyUsage != types.KeyUsageTypeKeyAgreement || string(md.CustomerMasterKeySpec) != string(sp.spec) ||
			len(md.KeyAgreementAlgorithms) != 1 || md.KeyAgreementAlgorithms[0] != types.KeyAgreementAlgorithmSpecEcdh ||
			len(md.SigningAlgorithms)+len(md.EncryptionAlgorithms)+len(md.MacAlgorithms) != 0 || md.CurrentKeyMaterialId != nil {
			t.Fatalf("%s KEY_AGREEMENT metadata = %+v", sp.spec, md)
		}
		d, err := c.DescribeKey(ctxT(t), &kms.DescribeKeyInput{KeyId: md.KeyId})
		mustNoErr(t, err, "DescribeKey")
		if d.KeyMetadata.KeyUsage != types.KeyUsageTypeKeyAgreement || len(d.KeyMetadata.KeyAgreementAlgorithms) != 1 {
			t.Fatalf("%s DescribeKey = %+v", sp.spec, d.KeyMetadata)
		}
		pk, err := c.GetPublicKey(ctxT(t), &kms.GetPublicKeyInput{KeyId: md.KeyId})
		mustNoErr(t, err, "GetPublicKey")
		if aws.ToString(pk.KeyId) != aws.ToString(md.Arn) || pk.KeySpec != sp.spec || pk.KeyUsage != types.KeyUsageTypeKeyAgreement ||
			len(pk.KeyAgreementAlgorithms) != 1 || pk.KeyAgreementAlgorithms[0] != types.KeyAgreementAlgorithmSpecEcdh ||
			len(pk.SigningAlgorithms)+len(pk.EncryptionAlgorithms) != 0 {
			t.Fatalf("%s GetPublicKey = %+v", sp.spec, pk)
		}
		pub, err := x509.ParsePKIXPublicKey(pk.PublicKey)
		mustNoErr(t, err, "ParsePKIXPublicKey")
		ecPub, ok := pub.(*ecdsa.PublicKey)
		if !ok {
			t.Fatalf("%s public key is %T", sp.spec, pub)
		}
		kmsPub, err := ecPub.ECDH()
		mustNoErr(t, err, "ECDH public key")

		peer, peerDER := peerSPKI(t, sp.curve)
		out, err := c.DeriveSharedSecret(ctxT(t), &kms.DeriveSharedSecretInput{KeyId: md.KeyId, KeyAgreementAlgorithm: types.KeyAgreementAlgorithmSpecEcdh, PublicKey: peerDER})
		mustNoErr(t, err, "DeriveSharedSecret")
		want, err := peer.ECDH(kmsPub)
		mustNoErr(t, err, "ECDH with the KMS public key")
		if !bytes.Equal(out.SharedSecret, want) || len(want) != sp.size {
			t.Fatalf("%s DeriveSharedSecret = %x, Go's crypto/ecdh = %x (%d bytes, want %d)", sp.spec, out.SharedSecret, want, len(want), sp.size)
		}
		if aws.ToString(out.KeyId) != aws.ToString(md.Arn) || out.KeyAgreementAlgorithm != types.KeyAgreementAlgorithmSpecEcdh ||
			out.KeyOrigin != types.OriginTypeAwsKms || out.CiphertextForRecipient != nil {
			t.Fatalf("%s DeriveSharedSecret = KeyId %s, algorithm %s, origin %s", sp.spec, aws.ToString(out.KeyId), out.KeyAgreementAlgorithm, out.KeyOrigin)
		}
		keys[sp.spec] = made{id: md.KeyId, peer: peerDER, secret: out.SharedSecret}

		// Two KMS keys agree on one secret, each with the other's public key.
		other := createKey(t, c, &kms.CreateKeyInput{KeySpec: sp.spec, KeyUsage: types.KeyUsageTypeKeyAgreement})
		opk, err := c.GetPublicKey(ctxT(t), &kms.GetPublicKeyInput{KeyId: other.KeyId})
		mustNoErr(t, err, "GetPublicKey")
		ab, err := c.DeriveSharedSecret(ctxT(t), &kms.DeriveSharedSecretInput{KeyId: md.Arn, KeyAgreementAlgorithm: types.KeyAgreementAlgorithmSpecEcdh, PublicKey: opk.PublicKey})
		mustNoErr(t, err, "DeriveSharedSecret A with B")
		ba, err := c.DeriveSharedSecret(ctxT(t), &kms.DeriveSharedSecretInput{KeyId: other.KeyId, KeyAgreementAlgorithm: types.KeyAgreementAlgorithmSpecEcdh, PublicKey: pk.PublicKey})
		mustNoErr(t, err, "DeriveSharedSecret B with A")
		if !bytes.Equal(ab.SharedSecret, ba.SharedSecret) {
			t.Fatalf("%s: the two KMS keys derive different secrets", sp.spec)
		}

		_, err = c.EnableKeyRotation(ctxT(t), &kms.EnableKeyRotationInput{KeyId: md.KeyId})
		wantAPIError(t, err, "UnsupportedOperationException", "")
		_, err = c.Sign(ctxT(t), &kms.SignInput{KeyId: md.KeyId, Message: []byte("m"), SigningAlgorithm: types.SigningAlgorithmSpecEcdsaSha256})
		wantAPIError(t, err, "InvalidKeyUsageException", "key usage is KEY_AGREEMENT which is not valid for Sign.")
		_, err = c.Encrypt(ctxT(t), &kms.EncryptInput{KeyId: md.KeyId, Plaintext: []byte("x")})
		wantAPIError(t, err, "InvalidKeyUsageException", "key usage is KEY_AGREEMENT which is not valid")
	}
	last, err := c.GetKeyLastUsage(ctxT(t), &kms.GetKeyLastUsageInput{KeyId: keys[types.KeySpecEccNistP256].id})
	mustNoErr(t, err, "GetKeyLastUsage")
	if last.KeyLastUsage == nil || last.KeyLastUsage.Operation != types.KeyLastUsageTrackingOperationDeriveSharedSecret {
		t.Fatalf("GetKeyLastUsage after DeriveSharedSecret = %+v", last.KeyLastUsage)
	}
	srv.Restart(t)
	c = srv.KMS()
	for spec, m := range keys {
		out, err := c.DeriveSharedSecret(ctxT(t), &kms.DeriveSharedSecretInput{KeyId: m.id, KeyAgreementAlgorithm: types.KeyAgreementAlgorithmSpecEcdh, PublicKey: m.peer})
		mustNoErr(t, err, "DeriveSharedSecret after restart")
		if !bytes.Equal(out.SharedSecret, m.secret) {
			t.Fatalf("%s: the shared secret changed after a restart", spec)
		}
	}
}

// TestDeriveSharedSecretErrors checks AWS's answers: a key of another usage
// (InvalidKeyUsageException in AWS's words), a malformed public key, one on
// another curve or of another algorithm (ValidationException), an unknown
// algorithm, DryRun, a disabled key and one pending deletion, Recipient,
// an unknown key; and CreateKey's refusals for KEY_AGREEMENT.
func TestDeriveSharedSecretErrors(t *testing.T) {
	srv := keyfortest.Start(t)
	c := srv.KMS()
	ecdhAlg := types.KeyAgreementAlgorithmSpecEcdh
	p256 := createKey(t, c, &kms.CreateKeyInput{KeySpec: types.KeySpecEccNistP256, KeyUsage: types.KeyUsageTypeKeyAgreement})
	_, peer256 := peerSPKI(t, ecdh.P256())
	_, peer384 := peerSPKI(t, ecdh.P384())
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	mustNoErr(t, err, "rsa.GenerateKey")
	rsaDER, err := x509.MarshalPKIXPublicKey(&rsaKey.PublicKey)
	mustNoErr(t, err, "MarshalPKIXPublicKey")
	x25519, err := ecdh.X25519().GenerateKey(rand.Reader)
	mustNoErr(t, err, "X25519")
	xDER, err := x509.MarshalPKIXPublicKey(x25519.PublicKey())
	mustNoErr(t, err, "MarshalPKIXPublicKey X25519")
	// A P-256 SubjectPublicKeyInfo whose point is not on the curve.
	offCurve := bytes.Clone(peer256)
	offCurve[len(offCurve)-1] ^= 1
	sign := createKey(t, c, &kms.CreateKeyInput{KeySpec: types.KeySpecEccNistP256, KeyUsage: types.KeyUsageTypeSignVerify})
	sym := createKey(t, c, nil)

	derive := func(id *string, pub []byte) error {
		_, err := c.DeriveSharedSecret(ctxT(t), &kms.DeriveSharedSecretInput{KeyId: id, KeyAgreementAlgorithm: ecdhAlg, PublicKey: pub})
		return err
	}
	wantAPIError(t, derive(sign.KeyId, peer256), "InvalidKeyUsageException", aws.ToString(sign.Arn)+" key usage is SIGN_VERIFY which is not valid for DeriveSharedSecret.")
	wantAPIError(t, derive(sym.KeyId, peer256), "InvalidKeyUsageException", aws.ToString(sym.Arn)+" key usage is ENCRYPT_DECRYPT which is not valid for DeriveSharedSecret.")
	wantAPIError(t, derive(p256.KeyId, []byte("InvalidPublicKey")), "ValidationException", "DER-encoded X.509 SubjectPublicKeyInfo")
	wantAPIError(t, derive(p256.KeyId, offCurve), "ValidationException", "DER-encoded X.509 SubjectPublicKeyInfo")
	wantAPIError(t, derive(p256.KeyId, peer384), "ValidationException", "PublicKey is on the curve of ECC_NIST_P384, the KMS key on that of ECC_NIST_P256")
	wantAPIError(t, derive(p256.KeyId, rsaDER), "ValidationException", "PublicKey is not an elliptic curve public key")
	wantAPIError(t, derive(p256.KeyId, xDER), "ValidationException", "PublicKey is not an elliptic curve public key")
	wantAPIError(t, derive(aws.String("alias/none"), peer256), "NotFoundException", "")
	_, err = c.DeriveSharedSecret(ctxT(t), &kms.DeriveSharedSecretInput{KeyId: p256.KeyId, KeyAgreementAlgorithm: "INVALID", PublicKey: peer256})
	wantAPIError(t, err, "ValidationException", "Value 'INVALID' at 'keyAgreementAlgorithm' failed to satisfy constraint: Member must satisfy enum value set: [ECDH]")
	_, err = c.DeriveSharedSecret(ctxT(t), &kms.DeriveSharedSecretInput{KeyId: p256.KeyId, KeyAgreementAlgorithm: ecdhAlg, PublicKey: peer256, DryRun: aws.Bool(true)})
	wantAPIError(t, err, "DryRunOperationException", "The request would have succeeded, but the DryRun option is set.")
	// DryRun checks the public key too: the request would not succeed.
	_, err = c.DeriveSharedSecret(ctxT(t), &kms.DeriveSharedSecretInput{KeyId: p256.KeyId, KeyAgreementAlgorithm: ecdhAlg, PublicKey: peer384, DryRun: aws.Bool(true)})
	wantAPIError(t, err, "ValidationException", "same curve")
	_, err = c.DeriveSharedSecret(ctxT(t), &kms.DeriveSharedSecretInput{KeyId: p256.KeyId, KeyAgreementAlgorithm: ecdhAlg, PublicKey: peer256,
		Recipient: &types.RecipientInfo{KeyEncryptionAlgorithm: types.KeyEncryptionMechanismRsaesOaepSha256, AttestationDocument: []byte("not an attestation document")}})
	wantAPIError(t, err, "ValidationException", "attestation document")

	_, err = c.DisableKey(ctxT(t), &kms.DisableKeyInput{KeyId: p256.KeyId})
	mustNoErr(t, err, "DisableKey")
	wantAPIError(t, derive(p256.KeyId, peer256), "DisabledException", aws.ToString(p256.Arn)+" is disabled.")
	_, err = c.ScheduleKeyDeletion(ctxT(t), &kms.ScheduleKeyDeletionInput{KeyId: p256.KeyId, PendingWindowInDays: aws.Int32(7)})
	mustNoErr(t, err, "ScheduleKeyDeletion")
	wantAPIError(t, derive(p256.KeyId, peer256), "KMSInvalidStateException", "is pending deletion.")

	for _, tc := range []struct {
		spec types.KeySpec
		code string
		msg  string
	}{
		{types.KeySpecRsa2048, "ValidationException", "KeyUsage KEY_AGREEMENT is not compatible with KeySpec RSA_2048"},
		{types.KeySpecEccSecgP256k1, "ValidationException", "KeyUsage KEY_AGREEMENT is not compatible with KeySpec ECC_SECG_P256K1"},
		{types.KeySpecEccNistEdwards25519, "ValidationException", "KeyUsage KEY_AGREEMENT is not compatible with KeySpec ECC_NIST_EDWARDS25519"},
		{types.KeySpecHmac256, "ValidationException", "KeyUsage KEY_AGREEMENT is not compatible with KeySpec HMAC_256"},
		{types.KeySpecSm2, "UnsupportedOperationException", "SM2"},
	} {
		_, err := c.CreateKey(ctxT(t), &kms.CreateKeyInput{KeySpec: tc.spec, KeyUsage: types.KeyUsageTypeKeyAgreement})
		wantAPIError(t, err, tc.code, tc.msg)
	}
}

// TestDeriveSharedSecretGrants: DeriveSharedSecret is a grant operation of a
// key agreement key, and only of such keys; another account derives through
// a grant and its token.
func TestDeriveSharedSecretGrants(t *testing.T) {
	srv := keyfortest.Start(t)
	a := srv.KMSAs(acctA, "us-east-1")
	md := createKey(t, a, &kms.CreateKeyInput{KeySpec: types.KeySpecEccNistP384, KeyUsage: types.KeyUsageTypeKeyAgreement})
	grantee := aws.String("arn:aws:iam::" + acctB + ":root")
	for _, op := range []types.GrantOperation{types.GrantOperationSign, types.GrantOperationEncrypt, types.GrantOperationGenerateDataKeyPair} {
		_, err := a.CreateGrant(ctxT(t), &kms.CreateGrantInput{KeyId: md.KeyId, GranteePrincipal: grantee, Operations: []types.GrantOperation{op}})
		wantAPIError(t, err, "ValidationException", "cannot allow the "+string(op)+" operation")
	}
	sign := createKey(t, a, &kms.CreateKeyInput{KeySpec: types.KeySpecEccNistP384, KeyUsage: types.KeyUsageTypeSignVerify})
	_, err := a.CreateGrant(ctxT(t), &kms.CreateGrantInput{KeyId: sign.KeyId, GranteePrincipal: grantee, Operations: []types.GrantOperation{types.GrantOperationDeriveSharedSecret}})
	wantAPIError(t, err, "ValidationException", "cannot allow the DeriveSharedSecret operation")

	b := srv.KMSAs(acctB, "us-east-1")
	_, peer := peerSPKI(t, ecdh.P384())
	in := &kms.DeriveSharedSecretInput{KeyId: md.Arn, KeyAgreementAlgorithm: types.KeyAgreementAlgorithmSpecEcdh, PublicKey: peer}
	_, err = b.DeriveSharedSecret(ctxT(t), in)
	wantAPIError(t, err, "AccessDeniedException", "kms:DeriveSharedSecret")
	g, err := a.CreateGrant(ctxT(t), &kms.CreateGrantInput{KeyId: md.KeyId, GranteePrincipal: grantee,
		Operations: []types.GrantOperation{types.GrantOperationDeriveSharedSecret, types.GrantOperationGetPublicKey, types.GrantOperationDescribeKey}})
	mustNoErr(t, err, "CreateGrant")
	in.GrantTokens = []string{aws.ToString(g.GrantToken)}
	got, err := b.DeriveSharedSecret(ctxT(t), in)
	mustNoErr(t, err, "DeriveSharedSecret through a grant")
	own, err := a.DeriveSharedSecret(ctxT(t), &kms.DeriveSharedSecretInput{KeyId: md.KeyId, KeyAgreementAlgorithm: types.KeyAgreementAlgorithmSpecEcdh, PublicKey: peer})
	mustNoErr(t, err, "DeriveSharedSecret by the owner")
	if !bytes.Equal(got.SharedSecret, own.SharedSecret) {
		t.Fatal("the grantee derives another secret than the key's owner")
	}
	_, err = b.GetPublicKey(ctxT(t), &kms.GetPublicKeyInput{KeyId: md.Arn, GrantTokens: in.GrantTokens})
	mustNoErr(t, err, "GetPublicKey through a grant")
}

// TestDeriveSharedSecretConditionKey: a key policy lets another account
// derive only with kms:KeyAgreementAlgorithm ECDH; a policy that names
// another value denies it.
func TestDeriveSharedSecretConditionKey(t *testing.T) {
	srv := keyfortest.Start(t)
	a := srv.KMSAs(acctA, "us-east-1")
	b := srv.KMSAs(acctB, "us-east-1")
	policy := func(alg string) *string {
		return aws.String(`{"Version":"2012-10-17","Statement":[
{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::` + acctA + `:root"},"Action":"kms:*","Resource":"*"},
{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::` + acctB + `:root"},"Action":"kms:DeriveSharedSecret","Resource":"*",
 "Condition":{"StringEquals":{"kms:KeyAgreementAlgorithm":"` + alg + `"}}}]}`)
	}
	_, peer := peerSPKI(t, ecdh.P256())
	allowed := createKey(t, a, &kms.CreateKeyInput{KeySpec: types.KeySpecEccNistP256, KeyUsage: types.KeyUsageTypeKeyAgreement, Policy: policy("ECDH")})
	_, err := b.DeriveSharedSecret(ctxT(t), &kms.DeriveSharedSecretInput{KeyId: allowed.Arn, KeyAgreementAlgorithm: types.KeyAgreementAlgorithmSpecEcdh, PublicKey: peer})
	mustNoErr(t, err, "DeriveSharedSecret with kms:KeyAgreementAlgorithm ECDH allowed")
	denied := createKey(t, a, &kms.CreateKeyInput{KeySpec: types.KeySpecEccNistP256, KeyUsage: types.KeyUsageTypeKeyAgreement, Policy: policy("OTHER")})
	_, err = b.DeriveSharedSecret(ctxT(t), &kms.DeriveSharedSecretInput{KeyId: denied.Arn, KeyAgreementAlgorithm: types.KeyAgreementAlgorithmSpecEcdh, PublicKey: peer})
	wantAPIError(t, err, "AccessDeniedException", "kms:DeriveSharedSecret")
}

// TestDeriveSharedSecretOpenSSL derives a secret with DeriveSharedSecret
// from a peer key made by the openssl command, and the same secret with
// `openssl pkeyutl -derive` from that peer key and GetPublicKey's key, on
// every NIST curve.
func TestDeriveSharedSecretOpenSSL(t *testing.T) {
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Skip("no openssl command")
	}
	srv := keyfortest.Start(t)
	c := srv.KMS()
	dir := t.TempDir()
	run := func(args ...string) {
		t.Helper()
		if b, err := exec.Command("openssl", args...).CombinedOutput(); err != nil {
			t.Fatalf("openssl %v: %v\n%s", args, err, b)
		}
	}
	for i, tc := range []struct {
		spec  types.KeySpec
		curve string
	}{
		{types.KeySpecEccNistP256, "P-256"},
		{types.KeySpecEccNistP384, "P-384"},
		{types.KeySpecEccNistP521, "P-521"},
	} {
		md := createKey(t, c, &kms.CreateKeyInput{KeySpec: tc.spec, KeyUsage: types.KeyUsageTypeKeyAgreement})
		pk, err := c.GetPublicKey(ctxT(t), &kms.GetPublicKeyInput{KeyId: md.KeyId})
		mustNoErr(t, err, "GetPublicKey")
		kmsPEM := writePEM(t, dir, fmt.Sprintf("kms%d.pem", i), pk.PublicKey)
		peerKey := filepath.Join(dir, fmt.Sprintf("peer%d.key", i))
		peerDER := filepath.Join(dir, fmt.Sprintf("peer%d.der", i))
		secretFile := filepath.Join(dir, fmt.Sprintf("secret%d", i))
		run("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:"+tc.curve, "-out", peerKey)
		run("pkey", "-in", peerKey, "-pubout", "-outform", "DER", "-out", peerDER)
		run("pkeyutl", "-derive", "-inkey", peerKey, "-peerkey", kmsPEM, "-out", secretFile)
		der, err := os.ReadFile(peerDER)
		mustNoErr(t, err, "read peer public key")
		want, err := os.ReadFile(secretFile)
		mustNoErr(t, err, "read openssl secret")
		out, err := c.DeriveSharedSecret(ctxT(t), &kms.DeriveSharedSecretInput{KeyId: md.KeyId, KeyAgreementAlgorithm: types.KeyAgreementAlgorithmSpecEcdh, PublicKey: der})
		mustNoErr(t, err, "DeriveSharedSecret with openssl's key")
		if len(want) == 0 || !bytes.Equal(out.SharedSecret, want) {
			t.Fatalf("%s: DeriveSharedSecret = %x, openssl pkeyutl -derive = %x", tc.spec, out.SharedSecret, want)
		}
	}
}
