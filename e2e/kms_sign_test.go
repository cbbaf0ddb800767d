package e2e

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
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

var rsaSigningAlgs = []types.SigningAlgorithmSpec{
	types.SigningAlgorithmSpecRsassaPssSha256, types.SigningAlgorithmSpecRsassaPssSha384, types.SigningAlgorithmSpecRsassaPssSha512,
	types.SigningAlgorithmSpecRsassaPkcs1V15Sha256, types.SigningAlgorithmSpecRsassaPkcs1V15Sha384, types.SigningAlgorithmSpecRsassaPkcs1V15Sha512,
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
