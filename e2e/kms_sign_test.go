package e2e

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"

	"github.com/keyfort/keyfort/internal/keyfortest"
)

// signSpecs are the signing key specs Keyfort makes, with their algorithms
// in DescribeKey's order.
var signSpecs = []struct {
	spec types.KeySpec
	algs []types.SigningAlgorithmSpec
}{
	{types.KeySpecEccNistP256, []types.SigningAlgorithmSpec{types.SigningAlgorithmSpecEcdsaSha256}},
	{types.KeySpecEccNistP384, []types.SigningAlgorithmSpec{types.SigningAlgorithmSpecEcdsaSha384}},
	{types.KeySpecEccNistP521, []types.SigningAlgorithmSpec{types.SigningAlgorithmSpecEcdsaSha512}},
	{types.KeySpecEccNistEdwards25519, []types.SigningAlgorithmSpec{types.SigningAlgorithmSpecEd25519Sha512, types.SigningAlgorithmSpecEd25519PhSha512}},
	{types.KeySpecRsa2048, rsaSigningAlgs},
	{types.KeySpecRsa3072, rsaSigningAlgs},
	{types.KeySpecRsa4096, rsaSigningAlgs},
}

// rsaSigningAlgs is in AWS's order, PKCS #1 v1.5 first: cosign signs with
// the first algorithm DescribeKey lists.
var rsaSigningAlgs = []types.SigningAlgorithmSpec{
	types.SigningAlgorithmSpecRsassaPkcs1V15Sha256, types.SigningAlgorithmSpecRsassaPkcs1V15Sha384, types.SigningAlgorithmSpecRsassaPkcs1V15Sha512,
	types.SigningAlgorithmSpecRsassaPssSha256, types.SigningAlgorithmSpecRsassaPssSha384, types.SigningAlgorithmSpecRsassaPssSha512,
}

// TestCreateSigningKeys creates a signing key of every spec Keyfort makes:
// DescribeKey's metadata, rotation refused, symmetric operations refused,
// and the key still there after a restart.
func TestCreateSigningKeys(t *testing.T) {
	srv := keyfortest.Start(t)
	c := srv.KMS()
	ids := map[types.KeySpec]*string{}
	for _, sp := range signSpecs {
		md := createKey(t, c, &kms.CreateKeyInput{KeySpec: sp.spec, KeyUsage: types.KeyUsageTypeSignVerify})
		if md.KeySpec != sp.spec || md.KeyUsage != types.KeyUsageTypeSignVerify || string(md.CustomerMasterKeySpec) != string(sp.spec) ||
			len(md.EncryptionAlgorithms) != 0 || len(md.MacAlgorithms) != 0 || !equalAlgs(md.SigningAlgorithms, sp.algs) {
			t.Fatalf("%s metadata = %+v", sp.spec, md)
		}
		ids[sp.spec] = md.KeyId
		_, err := c.EnableKeyRotation(ctxT(t), &kms.EnableKeyRotationInput{KeyId: md.KeyId})
		wantAPIError(t, err, "UnsupportedOperationException", "")
		_, err = c.Encrypt(ctxT(t), &kms.EncryptInput{KeyId: md.KeyId, Plaintext: []byte("x")})
		wantAPIError(t, err, "InvalidKeyUsageException", "key usage is SIGN_VERIFY which is not valid")
	}
	// The deprecated CustomerMasterKeySpec still creates the key.
	md := createKey(t, c, &kms.CreateKeyInput{CustomerMasterKeySpec: types.CustomerMasterKeySpecEccNistP256, KeyUsage: types.KeyUsageTypeSignVerify})
	if md.KeySpec != types.KeySpecEccNistP256 {
		t.Fatalf("CustomerMasterKeySpec ECC_NIST_P256 made %s", md.KeySpec)
	}
	srv.Restart(t)
	c = srv.KMS()
	for spec, id := range ids {
		d, err := c.DescribeKey(ctxT(t), &kms.DescribeKeyInput{KeyId: id})
		mustNoErr(t, err, "DescribeKey after restart")
		if d.KeyMetadata.KeySpec != spec || aws.ToString(d.KeyMetadata.KeyId) != aws.ToString(id) {
			t.Fatalf("after restart %s = %+v", spec, d.KeyMetadata)
		}
	}
}

func equalAlgs(got, want []types.SigningAlgorithmSpec) bool {
	if len(got) != len(want) {
		return false
	}
	for i := range got {
		if got[i] != want[i] {
			return false
		}
	}
	return true
}

// TestGetPublicKey reads the public key of every signing spec (DER
// SubjectPublicKeyInfo of the right type and size, and the metadata), by
// key id and by alias, and its refusals: symmetric and HMAC keys, a
// disabled key.
func TestGetPublicKey(t *testing.T) {
	srv := keyfortest.Start(t)
	c := srv.KMS()
	for _, sp := range signSpecs {
		md := createKey(t, c, &kms.CreateKeyInput{KeySpec: sp.spec, KeyUsage: types.KeyUsageTypeSignVerify})
		pk, err := c.GetPublicKey(ctxT(t), &kms.GetPublicKeyInput{KeyId: md.KeyId})
		mustNoErr(t, err, "GetPublicKey")
		if aws.ToString(pk.KeyId) != aws.ToString(md.Arn) || pk.KeySpec != sp.spec || string(pk.CustomerMasterKeySpec) != string(sp.spec) ||
			pk.KeyUsage != types.KeyUsageTypeSignVerify || !equalAlgs(pk.SigningAlgorithms, sp.algs) ||
			len(pk.EncryptionAlgorithms) != 0 || len(pk.KeyAgreementAlgorithms) != 0 {
			t.Fatalf("%s GetPublicKey = %+v", sp.spec, pk)
		}
		pub, err := x509.ParsePKIXPublicKey(pk.PublicKey)
		mustNoErr(t, err, "ParsePKIXPublicKey")
		size := 0
		switch k := pub.(type) {
		case *rsa.PublicKey:
			size = k.N.BitLen()
		case *ecdsa.PublicKey:
			size = k.Curve.Params().BitSize
		case ed25519.PublicKey:
			size = 255
		}
		want := map[types.KeySpec]int{"RSA_2048": 2048, "RSA_3072": 3072, "RSA_4096": 4096, "ECC_NIST_P256": 256,
			"ECC_NIST_P384": 384, "ECC_NIST_P521": 521, "ECC_NIST_EDWARDS25519": 255}[sp.spec]
		if size != want {
			t.Fatalf("%s public key %T of %d bits, want %d", sp.spec, pub, size, want)
		}
		alias := "alias/pub-" + strings.ToLower(string(sp.spec))
		_, err = c.CreateAlias(ctxT(t), &kms.CreateAliasInput{AliasName: aws.String(alias), TargetKeyId: md.KeyId})
		mustNoErr(t, err, "CreateAlias")
		again, err := c.GetPublicKey(ctxT(t), &kms.GetPublicKeyInput{KeyId: aws.String(alias)})
		mustNoErr(t, err, "GetPublicKey by alias")
		if !bytes.Equal(again.PublicKey, pk.PublicKey) {
			t.Fatalf("%s: the public key differs by alias", sp.spec)
		}
	}
	sym := createKey(t, c, nil)
	_, err := c.GetPublicKey(ctxT(t), &kms.GetPublicKeyInput{KeyId: sym.KeyId})
	wantAPIError(t, err, "UnsupportedOperationException", "GetPublicKey is not supported for symmetric keys.")
	hm := createKey(t, c, &kms.CreateKeyInput{KeySpec: types.KeySpecHmac256, KeyUsage: types.KeyUsageTypeGenerateVerifyMac})
	_, err = c.GetPublicKey(ctxT(t), &kms.GetPublicKeyInput{KeyId: hm.KeyId})
	wantAPIError(t, err, "UnsupportedOperationException", "GetPublicKey is not supported for symmetric keys.")
	p256 := createKey(t, c, &kms.CreateKeyInput{KeySpec: types.KeySpecEccNistP256, KeyUsage: types.KeyUsageTypeSignVerify})
	_, err = c.DisableKey(ctxT(t), &kms.DisableKeyInput{KeyId: p256.KeyId})
	mustNoErr(t, err, "DisableKey")
	_, err = c.GetPublicKey(ctxT(t), &kms.GetPublicKeyInput{KeyId: p256.KeyId})
	wantAPIError(t, err, "DisabledException", "is disabled.")
	_, err = c.GetPublicKey(ctxT(t), &kms.GetPublicKeyInput{KeyId: aws.String("alias/none")})
	wantAPIError(t, err, "NotFoundException", "")
}

// TestSignVerify signs with every spec and algorithm through the SDK (RAW
// and DIGEST), verifies with Verify and with Go's crypto against
// GetPublicKey's key, and checks the refusals: tampered message or
// signature, wrong algorithm, wrong message type or digest length, a key of
// another usage, DryRun, a disabled key; the keys survive a restart.
func TestSignVerify(t *testing.T) {
	srv := keyfortest.Start(t)
	c := srv.KMS()
	msg := []byte("release v1.2.3 sha256:0123456789abcdef")
	type signed struct {
		key *string
		alg types.SigningAlgorithmSpec
		sig []byte
	}
	var all []signed
	for _, sp := range signSpecs {
		md := createKey(t, c, &kms.CreateKeyInput{KeySpec: sp.spec, KeyUsage: types.KeyUsageTypeSignVerify})
		pk, err := c.GetPublicKey(ctxT(t), &kms.GetPublicKeyInput{KeyId: md.KeyId})
		mustNoErr(t, err, "GetPublicKey")
		if aws.ToString(pk.KeyId) != aws.ToString(md.Arn) || pk.KeySpec != sp.spec || string(pk.CustomerMasterKeySpec) != string(sp.spec) ||
			pk.KeyUsage != types.KeyUsageTypeSignVerify || !equalAlgs(pk.SigningAlgorithms, sp.algs) || len(pk.EncryptionAlgorithms) != 0 {
			t.Fatalf("%s GetPublicKey = %+v", sp.spec, pk)
		}
		pub, err := x509.ParsePKIXPublicKey(pk.PublicKey)
		mustNoErr(t, err, "ParsePKIXPublicKey")
		for _, alg := range sp.algs {
			for _, mt := range []types.MessageType{types.MessageTypeRaw, types.MessageTypeDigest} {
				in := msg
				h := algHash(alg)
				if mt == "DIGEST" {
					if alg == "ED25519_SHA_512" {
						continue
					}
					d := h.New()
					d.Write(msg)
					in = d.Sum(nil)
				} else if alg == "ED25519_PH_SHA_512" {
					continue
				}
				out, err := c.Sign(ctxT(t), &kms.SignInput{KeyId: md.KeyId, Message: in, MessageType: mt, SigningAlgorithm: alg})
				mustNoErr(t, err, "Sign "+string(alg))
				if aws.ToString(out.KeyId) != aws.ToString(md.Arn) || out.SigningAlgorithm != alg {
					t.Fatalf("Sign = %+v", out)
				}
				if err := goVerify(pub, alg, msg, out.Signature); err != nil {
					t.Fatalf("%s %s %s: Go's crypto rejects the signature: %v", sp.spec, alg, mt, err)
				}
				v, err := c.Verify(ctxT(t), &kms.VerifyInput{KeyId: md.KeyId, Message: in, MessageType: mt, SigningAlgorithm: alg, Signature: out.Signature})
				mustNoErr(t, err, "Verify "+string(alg))
				if !v.SignatureValid || v.SigningAlgorithm != alg || aws.ToString(v.KeyId) != aws.ToString(md.Arn) {
					t.Fatalf("Verify = %+v", v)
				}
				if mt == "DIGEST" && h != 0 {
					_, err = c.Sign(ctxT(t), &kms.SignInput{KeyId: md.KeyId, Message: in[1:], MessageType: mt, SigningAlgorithm: alg})
					wantAPIError(t, err, "ValidationException", "Digest is invalid length for algorithm "+string(alg)+".")
					_, err = c.Verify(ctxT(t), &kms.VerifyInput{KeyId: md.KeyId, Message: append(bytes.Clone(in), 0), MessageType: mt, SigningAlgorithm: alg, Signature: out.Signature})
					wantAPIError(t, err, "ValidationException", "Digest is invalid length for algorithm "+string(alg)+".")
				}
				if mt == "RAW" {
					all = append(all, signed{md.KeyId, alg, out.Signature})
				}
			}
		}
	}
	// Refusals, on each key's RAW signature.
	for _, s := range all {
		tampered := bytes.Clone(s.sig)
		tampered[len(tampered)/2] ^= 1
		mt := types.MessageTypeRaw
		m := msg
		if s.alg == "ED25519_PH_SHA_512" {
			mt = types.MessageTypeDigest
			d := sha512.Sum512(msg)
			m = d[:]
		}
		_, err := c.Verify(ctxT(t), &kms.VerifyInput{KeyId: s.key, Message: m, MessageType: mt, SigningAlgorithm: s.alg, Signature: tampered})
		wantAPIError(t, err, "KMSInvalidSignatureException", "")
		other := append(bytes.Clone(m), '!')
		if mt == types.MessageTypeDigest {
			other = bytes.Clone(m)
			other[0] ^= 1
		}
		_, err = c.Verify(ctxT(t), &kms.VerifyInput{KeyId: s.key, Message: other, MessageType: mt, SigningAlgorithm: s.alg, Signature: s.sig})
		wantAPIError(t, err, "KMSInvalidSignatureException", "")
	}
	p256, rsa2048, ed := all[0].key, all[4].key, all[3].key
	_, err := c.Sign(ctxT(t), &kms.SignInput{KeyId: p256, Message: msg, SigningAlgorithm: types.SigningAlgorithmSpecEcdsaSha384})
	wantAPIError(t, err, "InvalidKeyUsageException", "Algorithm ECDSA_SHA_384 is incompatible with key spec ECC_NIST_P256.")
	_, err = c.Verify(ctxT(t), &kms.VerifyInput{KeyId: rsa2048, Message: msg, SigningAlgorithm: types.SigningAlgorithmSpecEcdsaSha256, Signature: all[4].sig})
	wantAPIError(t, err, "InvalidKeyUsageException", "Algorithm ECDSA_SHA_256 is incompatible with key spec RSA_2048.")
	// A signature of one RSA padding does not verify as the other.
	other := types.SigningAlgorithmSpecRsassaPkcs1V15Sha256
	if all[4].alg == other {
		other = types.SigningAlgorithmSpecRsassaPssSha256
	}
	_, err = c.Verify(ctxT(t), &kms.VerifyInput{KeyId: rsa2048, Message: msg, SigningAlgorithm: other, Signature: all[4].sig})
	wantAPIError(t, err, "KMSInvalidSignatureException", "")
	_, err = c.Sign(ctxT(t), &kms.SignInput{KeyId: ed, Message: msg, MessageType: types.MessageTypeDigest, SigningAlgorithm: types.SigningAlgorithmSpecEd25519Sha512})
	wantAPIError(t, err, "ValidationException", "Message type DIGEST is incompatible with algorithm ED25519_SHA_512.")
	_, err = c.Sign(ctxT(t), &kms.SignInput{KeyId: ed, Message: msg, SigningAlgorithm: types.SigningAlgorithmSpecEd25519PhSha512})
	wantAPIError(t, err, "ValidationException", "Message type RAW is incompatible with algorithm ED25519_PH_SHA_512.")
	_, err = c.Sign(ctxT(t), &kms.SignInput{KeyId: p256, Message: bytes.Repeat([]byte("m"), 4097), SigningAlgorithm: types.SigningAlgorithmSpecEcdsaSha256})
	wantAPIError(t, err, "ValidationException", "")
	_, err = c.Sign(ctxT(t), &kms.SignInput{KeyId: p256, Message: bytes.Repeat([]byte("m"), 4096), SigningAlgorithm: types.SigningAlgorithmSpecEcdsaSha256})
	mustNoErr(t, err, "Sign 4096 bytes")
	sym := createKey(t, c, nil)
	_, err = c.Sign(ctxT(t), &kms.SignInput{KeyId: sym.KeyId, Message: msg, SigningAlgorithm: types.SigningAlgorithmSpecEcdsaSha256})
	wantAPIError(t, err, "InvalidKeyUsageException", "key usage is ENCRYPT_DECRYPT which is not valid for Sign.")
	_, err = c.Verify(ctxT(t), &kms.VerifyInput{KeyId: sym.KeyId, Message: msg, SigningAlgorithm: types.SigningAlgorithmSpecEcdsaSha256, Signature: all[0].sig})
	wantAPIError(t, err, "InvalidKeyUsageException", "key usage is ENCRYPT_DECRYPT which is not valid for Verify.")
	_, err = c.GetPublicKey(ctxT(t), &kms.GetPublicKeyInput{KeyId: sym.KeyId})
	wantAPIError(t, err, "UnsupportedOperationException", "")
	hm := createKey(t, c, &kms.CreateKeyInput{KeySpec: types.KeySpecHmac256, KeyUsage: types.KeyUsageTypeGenerateVerifyMac})
	_, err = c.GetPublicKey(ctxT(t), &kms.GetPublicKeyInput{KeyId: hm.KeyId})
	wantAPIError(t, err, "UnsupportedOperationException", "")
	_, err = c.GenerateMac(ctxT(t), &kms.GenerateMacInput{KeyId: p256, Message: msg, MacAlgorithm: types.MacAlgorithmSpecHmacSha256})
	wantAPIError(t, err, "InvalidKeyUsageException", "key usage is SIGN_VERIFY which is not valid for GenerateMac.")
	_, err = c.Sign(ctxT(t), &kms.SignInput{KeyId: p256, Message: msg, SigningAlgorithm: types.SigningAlgorithmSpecEcdsaSha256, DryRun: aws.Bool(true)})
	wantAPIError(t, err, "DryRunOperationException", "")
	_, err = c.Verify(ctxT(t), &kms.VerifyInput{KeyId: p256, Message: msg, SigningAlgorithm: types.SigningAlgorithmSpecEcdsaSha256, Signature: all[0].sig, DryRun: aws.Bool(true)})
	wantAPIError(t, err, "DryRunOperationException", "")
	_, err = c.DisableKey(ctxT(t), &kms.DisableKeyInput{KeyId: p256})
	mustNoErr(t, err, "DisableKey")
	_, err = c.Sign(ctxT(t), &kms.SignInput{KeyId: p256, Message: msg, SigningAlgorithm: types.SigningAlgorithmSpecEcdsaSha256})
	wantAPIError(t, err, "DisabledException", "is disabled.")
	_, err = c.GetPublicKey(ctxT(t), &kms.GetPublicKeyInput{KeyId: p256})
	wantAPIError(t, err, "DisabledException", "is disabled.")
	_, err = c.EnableKey(ctxT(t), &kms.EnableKeyInput{KeyId: p256})
	mustNoErr(t, err, "EnableKey")

	// After a restart every key still verifies what it signed before.
	srv.Restart(t)
	c = srv.KMS()
	for _, s := range all {
		mt, m := types.MessageTypeRaw, msg
		if s.alg == "ED25519_PH_SHA_512" {
			d := sha512.Sum512(msg)
			mt, m = types.MessageTypeDigest, d[:]
		}
		_, err := c.Verify(ctxT(t), &kms.VerifyInput{KeyId: s.key, Message: m, MessageType: mt, SigningAlgorithm: s.alg, Signature: s.sig})
		mustNoErr(t, err, "Verify after restart "+string(s.alg))
	}

	// A grant of Sign lets another account sign; Verify stays denied.
	g, err := c.CreateGrant(ctxT(t), &kms.CreateGrantInput{KeyId: p256, GranteePrincipal: aws.String("arn:aws:iam::" + acctB + ":root"),
		Operations: []types.GrantOperation{types.GrantOperationSign, types.GrantOperationGetPublicKey}})
	mustNoErr(t, err, "CreateGrant Sign")
	d, _ := c.DescribeKey(ctxT(t), &kms.DescribeKeyInput{KeyId: p256})
	b := srv.KMSAs(acctB, "us-east-1")
	tok := []string{aws.ToString(g.GrantToken)}
	bs, err := b.Sign(ctxT(t), &kms.SignInput{KeyId: d.KeyMetadata.Arn, Message: msg, SigningAlgorithm: types.SigningAlgorithmSpecEcdsaSha256, GrantTokens: tok})
	mustNoErr(t, err, "Sign through a grant")
	_, err = b.GetPublicKey(ctxT(t), &kms.GetPublicKeyInput{KeyId: d.KeyMetadata.Arn, GrantTokens: tok})
	mustNoErr(t, err, "GetPublicKey through a grant")
	_, err = b.Verify(ctxT(t), &kms.VerifyInput{KeyId: d.KeyMetadata.Arn, Message: msg, SigningAlgorithm: types.SigningAlgorithmSpecEcdsaSha256, Signature: bs.Signature})
	wantAPIError(t, err, "AccessDeniedException", "kms:Verify")
	_, err = c.CreateGrant(ctxT(t), &kms.CreateGrantInput{KeyId: p256, GranteePrincipal: aws.String("arn:aws:iam::" + acctB + ":root"),
		Operations: []types.GrantOperation{types.GrantOperationEncrypt}})
	wantAPIError(t, err, "ValidationException", "cannot allow the Encrypt operation")
}

// TestSignVerifyOpenSSL checks signatures made by Sign with the openssl
// command line against GetPublicKey's key (PEM): ECDSA P-256/P-384,
// RSA PKCS#1 v1.5 and PSS (salt = hash length), pure Ed25519; a tampered
// signature fails there too.
func TestSignVerifyOpenSSL(t *testing.T) {
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Skip("no openssl command")
	}
	srv := keyfortest.Start(t)
	c := srv.KMS()
	dir := t.TempDir()
	msg := []byte("artifact bytes checked by openssl")
	msgFile := filepath.Join(dir, "msg")
	if err := os.WriteFile(msgFile, msg, 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		spec types.KeySpec
		alg  types.SigningAlgorithmSpec
		args []string // openssl dgst options beyond -verify/-signature
	}{
		{types.KeySpecEccNistP256, types.SigningAlgorithmSpecEcdsaSha256, []string{"-sha256"}},
		{types.KeySpecEccNistP384, types.SigningAlgorithmSpecEcdsaSha384, []string{"-sha384"}},
		{types.KeySpecRsa2048, types.SigningAlgorithmSpecRsassaPkcs1V15Sha256, []string{"-sha256"}},
		{types.KeySpecRsa2048, types.SigningAlgorithmSpecRsassaPssSha256, []string{"-sha256", "-sigopt", "rsa_padding_mode:pss", "-sigopt", "rsa_pss_saltlen:32"}},
		{types.KeySpecRsa3072, types.SigningAlgorithmSpecRsassaPssSha512, []string{"-sha512", "-sigopt", "rsa_padding_mode:pss", "-sigopt", "rsa_pss_saltlen:64"}},
	}
	for i, tc := range cases {
		md := createKey(t, c, &kms.CreateKeyInput{KeySpec: tc.spec, KeyUsage: types.KeyUsageTypeSignVerify})
		pk, err := c.GetPublicKey(ctxT(t), &kms.GetPublicKeyInput{KeyId: md.KeyId})
		mustNoErr(t, err, "GetPublicKey")
		out, err := c.Sign(ctxT(t), &kms.SignInput{KeyId: md.KeyId, Message: msg, SigningAlgorithm: tc.alg})
		mustNoErr(t, err, "Sign")
		pem := writePEM(t, dir, fmt.Sprintf("pub%d.pem", i), pk.PublicKey)
		sigFile := filepath.Join(dir, fmt.Sprintf("sig%d", i))
		if err := os.WriteFile(sigFile, out.Signature, 0o600); err != nil {
			t.Fatal(err)
		}
		args := append([]string{"dgst"}, tc.args...)
		args = append(args, "-verify", pem, "-signature", sigFile, msgFile)
		if b, err := exec.Command("openssl", args...).CombinedOutput(); err != nil || !strings.Contains(string(b), "Verified OK") {
			t.Fatalf("openssl %v (%s %s): %v\n%s", args, tc.spec, tc.alg, err, b)
		}
		// openssl rejects a tampered signature.
		bad := bytes.Clone(out.Signature)
		bad[len(bad)/2] ^= 1
		if err := os.WriteFile(sigFile, bad, 0o600); err != nil {
			t.Fatal(err)
		}
		if b, err := exec.Command("openssl", args...).CombinedOutput(); err == nil {
			t.Fatalf("openssl verifies a tampered %s signature:\n%s", tc.alg, b)
		}
	}
	// Ed25519 (pure) with pkeyutl -rawin.
	md := createKey(t, c, &kms.CreateKeyInput{KeySpec: types.KeySpecEccNistEdwards25519, KeyUsage: types.KeyUsageTypeSignVerify})
	pk, err := c.GetPublicKey(ctxT(t), &kms.GetPublicKeyInput{KeyId: md.KeyId})
	mustNoErr(t, err, "GetPublicKey Ed25519")
	out, err := c.Sign(ctxT(t), &kms.SignInput{KeyId: md.KeyId, Message: msg, SigningAlgorithm: types.SigningAlgorithmSpecEd25519Sha512})
	mustNoErr(t, err, "Sign Ed25519")
	pem := writePEM(t, dir, "ed.pem", pk.PublicKey)
	sigFile := filepath.Join(dir, "ed.sig")
	if err := os.WriteFile(sigFile, out.Signature, 0o600); err != nil {
		t.Fatal(err)
	}
	args := []string{"pkeyutl", "-verify", "-pubin", "-inkey", pem, "-rawin", "-in", msgFile, "-sigfile", sigFile}
	if b, err := exec.Command("openssl", args...).CombinedOutput(); err != nil || !strings.Contains(string(b), "Signature Verified Successfully") {
		t.Fatalf("openssl %v: %v\n%s", args, err, b)
	}
}

func writePEM(t *testing.T, dir, name string, der []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestSignConditionKeys: a key policy lets another account sign only with
// kms:SigningAlgorithm ECDSA_SHA_256 and kms:MessageType DIGEST.
func TestSignConditionKeys(t *testing.T) {
	srv := keyfortest.Start(t)
	c := srv.KMSAs(acctA, "us-east-1")
	policy := `{"Version":"2012-10-17","Statement":[
{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::` + acctA + `:root"},"Action":"kms:*","Resource":"*"},
{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::` + acctB + `:root"},"Action":["kms:Sign","kms:Verify"],"Resource":"*",
 "Condition":{"StringEquals":{"kms:SigningAlgorithm":"ECDSA_SHA_256","kms:MessageType":"DIGEST"}}}]}`
	md := createKey(t, c, &kms.CreateKeyInput{KeySpec: types.KeySpecEccNistP256, KeyUsage: types.KeyUsageTypeSignVerify, Policy: aws.String(policy)})
	b := srv.KMSAs(acctB, "us-east-1")
	d := sha256.Sum256([]byte("m"))
	out, err := b.Sign(ctxT(t), &kms.SignInput{KeyId: md.Arn, Message: d[:], MessageType: types.MessageTypeDigest, SigningAlgorithm: types.SigningAlgorithmSpecEcdsaSha256})
	mustNoErr(t, err, "Sign DIGEST as allowed")
	_, err = b.Verify(ctxT(t), &kms.VerifyInput{KeyId: md.Arn, Message: d[:], MessageType: types.MessageTypeDigest, SigningAlgorithm: types.SigningAlgorithmSpecEcdsaSha256, Signature: out.Signature})
	mustNoErr(t, err, "Verify DIGEST as allowed")
	_, err = b.Sign(ctxT(t), &kms.SignInput{KeyId: md.Arn, Message: []byte("m"), SigningAlgorithm: types.SigningAlgorithmSpecEcdsaSha256})
	wantAPIError(t, err, "AccessDeniedException", "kms:Sign")
	_, err = b.Sign(ctxT(t), &kms.SignInput{KeyId: md.Arn, Message: []byte("m"), MessageType: types.MessageTypeRaw, SigningAlgorithm: types.SigningAlgorithmSpecEcdsaSha256})
	wantAPIError(t, err, "AccessDeniedException", "kms:Sign")
}

func algHash(alg types.SigningAlgorithmSpec) crypto.Hash {
	s := string(alg)
	switch {
	case s == "ED25519_SHA_512":
		return 0
	case strings.HasSuffix(s, "256"):
		return crypto.SHA256
	case strings.HasSuffix(s, "384"):
		return crypto.SHA384
	}
	return crypto.SHA512
}

// goVerify checks a signature of msg with Go's standard library.
func goVerify(pub any, alg types.SigningAlgorithmSpec, msg, sig []byte) error {
	h := algHash(alg)
	var digest []byte
	if h != 0 {
		d := h.New()
		d.Write(msg)
		digest = d.Sum(nil)
	}
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		if !ecdsa.VerifyASN1(k, digest, sig) {
			return errors.New("ecdsa.VerifyASN1 false")
		}
		return nil
	case *rsa.PublicKey:
		if strings.HasPrefix(string(alg), "RSASSA_PSS") {
			return rsa.VerifyPSS(k, h, digest, sig, &rsa.PSSOptions{SaltLength: h.Size()})
		}
		return rsa.VerifyPKCS1v15(k, h, digest, sig)
	case ed25519.PublicKey:
		if alg == types.SigningAlgorithmSpecEd25519PhSha512 {
			return ed25519.VerifyWithOptions(k, digest, sig, &ed25519.Options{Hash: crypto.SHA512})
		}
		if !ed25519.Verify(k, msg, sig) {
			return errors.New("ed25519.Verify false")
		}
		return nil
	}
	return fmt.Errorf("public key of type %T", pub)
}

// TestRSAEncryption: RSA ENCRYPT_DECRYPT keys with RSAES_OAEP_SHA_1 and
// RSAES_OAEP_SHA_256 through Encrypt, Decrypt (KeyId required: the blob is
// raw OAEP) and ReEncrypt; a ciphertext made by Go and by openssl from
// GetPublicKey's key decrypts; the plaintext limit, the algorithm checks.
func TestRSAEncryption(t *testing.T) {
	srv := keyfortest.Start(t)
	c := srv.KMS()
	limits := map[types.KeySpec][2]int{"RSA_2048": {214, 190}, "RSA_3072": {342, 318}, "RSA_4096": {470, 446}}
	algs := []types.EncryptionAlgorithmSpec{types.EncryptionAlgorithmSpecRsaesOaepSha1, types.EncryptionAlgorithmSpecRsaesOaepSha256}
	sym := createKey(t, c, nil)
	for spec, lim := range limits {
		md := createKey(t, c, &kms.CreateKeyInput{KeySpec: spec, KeyUsage: types.KeyUsageTypeEncryptDecrypt})
		if len(md.EncryptionAlgorithms) != 2 || len(md.SigningAlgorithms) != 0 {
			t.Fatalf("%s metadata = %+v", spec, md)
		}
		pk, err := c.GetPublicKey(ctxT(t), &kms.GetPublicKeyInput{KeyId: md.KeyId})
		mustNoErr(t, err, "GetPublicKey")
		if len(pk.EncryptionAlgorithms) != 2 || pk.KeyUsage != types.KeyUsageTypeEncryptDecrypt {
			t.Fatalf("%s GetPublicKey = %+v", spec, pk)
		}
		pubAny, err := x509.ParsePKIXPublicKey(pk.PublicKey)
		mustNoErr(t, err, "ParsePKIXPublicKey")
		pub := pubAny.(*rsa.PublicKey)
		for i, alg := range algs {
			pt := bytes.Repeat([]byte{'p'}, lim[i])
			out, err := c.Encrypt(ctxT(t), &kms.EncryptInput{KeyId: md.KeyId, Plaintext: pt, EncryptionAlgorithm: alg})
			mustNoErr(t, err, "Encrypt "+string(alg))
			if len(out.CiphertextBlob) != pub.Size() || out.EncryptionAlgorithm != alg {
				t.Fatalf("%s %s: %d-byte blob, %s", spec, alg, len(out.CiphertextBlob), out.EncryptionAlgorithm)
			}
			d, err := c.Decrypt(ctxT(t), &kms.DecryptInput{KeyId: md.KeyId, CiphertextBlob: out.CiphertextBlob, EncryptionAlgorithm: alg})
			mustNoErr(t, err, "Decrypt "+string(alg))
			if !bytes.Equal(d.Plaintext, pt) || d.EncryptionAlgorithm != alg || aws.ToString(d.KeyId) != aws.ToString(md.Arn) {
				t.Fatalf("%s %s Decrypt = %+v", spec, alg, d)
			}
			_, err = c.Encrypt(ctxT(t), &kms.EncryptInput{KeyId: md.KeyId, Plaintext: append(pt, 'x'), EncryptionAlgorithm: alg})
			wantAPIError(t, err, "ValidationException", "")
			// Made offline with Go's crypto.
			h := sha256.New()
			if alg == types.EncryptionAlgorithmSpecRsaesOaepSha1 {
				h = sha1.New()
			}
			off, err := rsa.EncryptOAEP(h, rand.Reader, pub, []byte("offline"), nil)
			mustNoErr(t, err, "EncryptOAEP")
			d, err = c.Decrypt(ctxT(t), &kms.DecryptInput{KeyId: md.KeyId, CiphertextBlob: off, EncryptionAlgorithm: alg})
			mustNoErr(t, err, "Decrypt offline ciphertext")
			if string(d.Plaintext) != "offline" {
				t.Fatalf("offline plaintext = %q", d.Plaintext)
			}
			// ReEncrypt to the symmetric key and back.
			re, err := c.ReEncrypt(ctxT(t), &kms.ReEncryptInput{CiphertextBlob: off, SourceKeyId: md.KeyId, SourceEncryptionAlgorithm: alg, DestinationKeyId: sym.KeyId})
			mustNoErr(t, err, "ReEncrypt from RSA")
			back, err := c.ReEncrypt(ctxT(t), &kms.ReEncryptInput{CiphertextBlob: re.CiphertextBlob, DestinationKeyId: md.KeyId, DestinationEncryptionAlgorithm: alg})
			mustNoErr(t, err, "ReEncrypt to RSA")
			if back.DestinationEncryptionAlgorithm != alg || back.SourceEncryptionAlgorithm != types.EncryptionAlgorithmSpecSymmetricDefault {
				t.Fatalf("ReEncrypt = %+v", back)
			}
			d, err = c.Decrypt(ctxT(t), &kms.DecryptInput{KeyId: md.KeyId, CiphertextBlob: back.CiphertextBlob, EncryptionAlgorithm: alg})
			mustNoErr(t, err, "Decrypt after ReEncrypt")
			if string(d.Plaintext) != "offline" {
				t.Fatalf("re-encrypted plaintext = %q", d.Plaintext)
			}
		}
		_, err = c.Encrypt(ctxT(t), &kms.EncryptInput{KeyId: md.KeyId, Plaintext: []byte("x")})
		wantAPIError(t, err, "InvalidKeyUsageException", "SYMMETRIC_DEFAULT")
		_, err = c.GenerateDataKey(ctxT(t), &kms.GenerateDataKeyInput{KeyId: md.KeyId, KeySpec: types.DataKeySpecAes256})
		wantAPIError(t, err, "InvalidKeyUsageException", "")
		_, err = c.Encrypt(ctxT(t), &kms.EncryptInput{KeyId: sym.KeyId, Plaintext: []byte("x"), EncryptionAlgorithm: algs[1]})
		wantAPIError(t, err, "InvalidKeyUsageException", "RSAES_OAEP_SHA_256")
		out, err := c.Encrypt(ctxT(t), &kms.EncryptInput{KeyId: md.KeyId, Plaintext: []byte("x"), EncryptionAlgorithm: algs[1]})
		mustNoErr(t, err, "Encrypt")
		_, err = c.Decrypt(ctxT(t), &kms.DecryptInput{CiphertextBlob: out.CiphertextBlob, EncryptionAlgorithm: algs[1]})
		wantAPIError(t, err, "InvalidCiphertextException", "")
		_, err = c.Decrypt(ctxT(t), &kms.DecryptInput{KeyId: md.KeyId, CiphertextBlob: out.CiphertextBlob, EncryptionAlgorithm: algs[0]})
		wantAPIError(t, err, "InvalidCiphertextException", "")
		_, err = c.Encrypt(ctxT(t), &kms.EncryptInput{KeyId: md.KeyId, Plaintext: []byte("x"), EncryptionAlgorithm: algs[1], EncryptionContext: map[string]string{"a": "b"}})
		wantAPIError(t, err, "ValidationException", "")
		_, err = c.Sign(ctxT(t), &kms.SignInput{KeyId: md.KeyId, Message: []byte("m"), SigningAlgorithm: types.SigningAlgorithmSpecRsassaPssSha256})
		wantAPIError(t, err, "InvalidKeyUsageException", "key usage is ENCRYPT_DECRYPT which is not valid for Sign.")
	}

	// A ciphertext made by the openssl command from GetPublicKey's key.
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Skip("no openssl command")
	}
	md := createKey(t, c, &kms.CreateKeyInput{KeySpec: types.KeySpecRsa2048, KeyUsage: types.KeyUsageTypeEncryptDecrypt})
	pk, err := c.GetPublicKey(ctxT(t), &kms.GetPublicKeyInput{KeyId: md.KeyId})
	mustNoErr(t, err, "GetPublicKey")
	dir := t.TempDir()
	pem := writePEM(t, dir, "rsa.pem", pk.PublicKey)
	in := filepath.Join(dir, "pt")
	if err := os.WriteFile(in, []byte("made by openssl"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		alg  types.EncryptionAlgorithmSpec
		hash string
	}{{algs[0], "sha1"}, {algs[1], "sha256"}} {
		ctFile := filepath.Join(dir, "ct-"+tc.hash)
		args := []string{"pkeyutl", "-encrypt", "-pubin", "-inkey", pem, "-in", in, "-out", ctFile,
			"-pkeyopt", "rsa_padding_mode:oaep", "-pkeyopt", "rsa_oaep_md:" + tc.hash, "-pkeyopt", "rsa_mgf1_md:" + tc.hash}
		if b, err := exec.Command("openssl", args...).CombinedOutput(); err != nil {
			t.Fatalf("openssl %v: %v\n%s", args, err, b)
		}
		ct, err := os.ReadFile(ctFile)
		mustNoErr(t, err, "read openssl ciphertext")
		d, err := c.Decrypt(ctxT(t), &kms.DecryptInput{KeyId: md.KeyId, CiphertextBlob: ct, EncryptionAlgorithm: tc.alg})
		mustNoErr(t, err, "Decrypt openssl ciphertext "+string(tc.alg))
		if string(d.Plaintext) != "made by openssl" {
			t.Fatalf("openssl %s plaintext = %q", tc.alg, d.Plaintext)
		}
	}
}

// TestRSAEncryptionGrants checks the grant operations of an RSA encryption
// key: Encrypt, Decrypt, ReEncrypt*, GetPublicKey (through a grant of
// another account), but no data keys, which need a symmetric key.
func TestRSAEncryptionGrants(t *testing.T) {
	srv := keyfortest.Start(t)
	c := srv.KMS()
	const acctB = "222233334444"
	md := createKey(t, c, &kms.CreateKeyInput{KeySpec: types.KeySpecRsa2048, KeyUsage: types.KeyUsageTypeEncryptDecrypt})
	grantee := aws.String("arn:aws:iam::" + acctB + ":root")
	for _, op := range []types.GrantOperation{types.GrantOperationGenerateDataKey, types.GrantOperationGenerateDataKeyWithoutPlaintext,
		types.GrantOperationGenerateDataKeyPair, types.GrantOperationSign} {
		_, err := c.CreateGrant(ctxT(t), &kms.CreateGrantInput{KeyId: md.KeyId, GranteePrincipal: grantee, Operations: []types.GrantOperation{op}})
		wantAPIError(t, err, "ValidationException", "cannot allow the "+string(op)+" operation")
	}
	g, err := c.CreateGrant(ctxT(t), &kms.CreateGrantInput{KeyId: md.KeyId, GranteePrincipal: grantee,
		Operations: []types.GrantOperation{types.GrantOperationEncrypt, types.GrantOperationDecrypt, types.GrantOperationReEncryptFrom,
			types.GrantOperationReEncryptTo, types.GrantOperationGetPublicKey, types.GrantOperationDescribeKey}})
	mustNoErr(t, err, "CreateGrant")
	b := srv.KMSAs(acctB, "us-east-1")
	tok := []string{aws.ToString(g.GrantToken)}
	pk, err := b.GetPublicKey(ctxT(t), &kms.GetPublicKeyInput{KeyId: md.Arn, GrantTokens: tok})
	mustNoErr(t, err, "GetPublicKey through a grant")
	if pk.KeyUsage != types.KeyUsageTypeEncryptDecrypt || len(pk.PublicKey) == 0 {
		t.Errorf("GetPublicKey through a grant = %+v", pk)
	}
	enc, err := b.Encrypt(ctxT(t), &kms.EncryptInput{KeyId: md.Arn, Plaintext: []byte("granted"), EncryptionAlgorithm: types.EncryptionAlgorithmSpecRsaesOaepSha256, GrantTokens: tok})
	mustNoErr(t, err, "Encrypt through a grant")
	dec, err := b.Decrypt(ctxT(t), &kms.DecryptInput{KeyId: md.Arn, CiphertextBlob: enc.CiphertextBlob, EncryptionAlgorithm: types.EncryptionAlgorithmSpecRsaesOaepSha256, GrantTokens: tok})
	mustNoErr(t, err, "Decrypt through a grant")
	if string(dec.Plaintext) != "granted" {
		t.Errorf("Decrypt through a grant = %q", dec.Plaintext)
	}
}
