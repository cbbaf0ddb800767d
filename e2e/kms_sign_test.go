package e2e

import (
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
