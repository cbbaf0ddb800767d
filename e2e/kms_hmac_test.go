package e2e

import (
	"bytes"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"

	"github.com/keyfort/keyfort/internal/keyfortest"
)

// TestHMACKeys creates an HMAC key of every size and uses it: GenerateMac,
// VerifyMac (valid, tampered), the algorithm and usage checks, DescribeKey,
// rotation refused, and a restart.
func TestHMACKeys(t *testing.T) {
	srv := keyfortest.Start(t)
	c := srv.KMS()
	specs := []struct {
		spec types.KeySpec
		alg  types.MacAlgorithmSpec
		size int
	}{
		{types.KeySpecHmac224, types.MacAlgorithmSpecHmacSha224, 28},
		{types.KeySpecHmac256, types.MacAlgorithmSpecHmacSha256, 32},
		{types.KeySpecHmac384, types.MacAlgorithmSpecHmacSha384, 48},
		{types.KeySpecHmac512, types.MacAlgorithmSpecHmacSha512, 64},
	}
	msg := []byte("webhook body to authenticate")
	macs := map[string][]byte{}
	keys := map[string]*string{}
	for _, sp := range specs {
		md := createKey(t, c, &kms.CreateKeyInput{KeySpec: sp.spec, KeyUsage: types.KeyUsageTypeGenerateVerifyMac})
		if md.KeySpec != sp.spec || md.KeyUsage != types.KeyUsageTypeGenerateVerifyMac ||
			len(md.MacAlgorithms) != 1 || md.MacAlgorithms[0] != sp.alg || len(md.EncryptionAlgorithms) != 0 {
			t.Fatalf("%s metadata = %+v", sp.spec, md)
		}
		out, err := c.GenerateMac(ctxT(t), &kms.GenerateMacInput{KeyId: md.KeyId, Message: msg, MacAlgorithm: sp.alg})
		mustNoErr(t, err, "GenerateMac")
		if len(out.Mac) != sp.size || out.MacAlgorithm != sp.alg || aws.ToString(out.KeyId) != aws.ToString(md.Arn) {
			t.Fatalf("%s GenerateMac = %d bytes, %s, %s", sp.spec, len(out.Mac), out.MacAlgorithm, aws.ToString(out.KeyId))
		}
		again, err := c.GenerateMac(ctxT(t), &kms.GenerateMacInput{KeyId: md.Arn, Message: msg, MacAlgorithm: sp.alg})
		mustNoErr(t, err, "GenerateMac again")
		if !bytes.Equal(again.Mac, out.Mac) {
			t.Fatalf("%s: the same message MACs differently", sp.spec)
		}
		v, err := c.VerifyMac(ctxT(t), &kms.VerifyMacInput{KeyId: md.KeyId, Message: msg, MacAlgorithm: sp.alg, Mac: out.Mac})
		mustNoErr(t, err, "VerifyMac")
		if !v.MacValid || v.MacAlgorithm != sp.alg || aws.ToString(v.KeyId) != aws.ToString(md.Arn) {
			t.Fatalf("VerifyMac = %+v", v)
		}
		tampered := bytes.Clone(out.Mac)
		tampered[0] ^= 1
		_, err = c.VerifyMac(ctxT(t), &kms.VerifyMacInput{KeyId: md.KeyId, Message: msg, MacAlgorithm: sp.alg, Mac: tampered})
		wantAPIError(t, err, "KMSInvalidMacException", "")
		_, err = c.VerifyMac(ctxT(t), &kms.VerifyMacInput{KeyId: md.KeyId, Message: append(bytes.Clone(msg), '!'), MacAlgorithm: sp.alg, Mac: out.Mac})
		wantAPIError(t, err, "KMSInvalidMacException", "")
		macs[string(sp.spec)], keys[string(sp.spec)] = out.Mac, md.KeyId
	}
	// Two keys of the same spec have different material.
	other := createKey(t, c, &kms.CreateKeyInput{KeySpec: types.KeySpecHmac256, KeyUsage: types.KeyUsageTypeGenerateVerifyMac})
	o, err := c.GenerateMac(ctxT(t), &kms.GenerateMacInput{KeyId: other.KeyId, Message: msg, MacAlgorithm: types.MacAlgorithmSpecHmacSha256})
	mustNoErr(t, err, "GenerateMac other key")
	if bytes.Equal(o.Mac, macs["HMAC_256"]) {
		t.Fatal("two HMAC_256 keys give the same MAC")
	}

	k256 := keys["HMAC_256"]
	_, err = c.GenerateMac(ctxT(t), &kms.GenerateMacInput{KeyId: k256, Message: msg, MacAlgorithm: types.MacAlgorithmSpecHmacSha384})
	wantAPIError(t, err, "InvalidKeyUsageException", "Algorithm HMAC_SHA_384 is incompatible with key spec HMAC_256.")
	_, err = c.Encrypt(ctxT(t), &kms.EncryptInput{KeyId: k256, Plaintext: []byte("x")})
	wantAPIError(t, err, "InvalidKeyUsageException", "key usage is GENERATE_VERIFY_MAC which is not valid")
	sym := createKey(t, c, nil)
	_, err = c.GenerateMac(ctxT(t), &kms.GenerateMacInput{KeyId: sym.KeyId, Message: msg, MacAlgorithm: types.MacAlgorithmSpecHmacSha256})
	wantAPIError(t, err, "InvalidKeyUsageException", "key usage is ENCRYPT_DECRYPT which is not valid for GenerateMac.")
	_, err = c.EnableKeyRotation(ctxT(t), &kms.EnableKeyRotationInput{KeyId: k256})
	wantAPIError(t, err, "UnsupportedOperationException", "")
	_, err = c.GenerateMac(ctxT(t), &kms.GenerateMacInput{KeyId: k256, Message: msg, MacAlgorithm: types.MacAlgorithmSpecHmacSha256, DryRun: aws.Bool(true)})
	wantAPIError(t, err, "DryRunOperationException", "")
	_, err = c.DisableKey(ctxT(t), &kms.DisableKeyInput{KeyId: k256})
	mustNoErr(t, err, "DisableKey")
	_, err = c.GenerateMac(ctxT(t), &kms.GenerateMacInput{KeyId: k256, Message: msg, MacAlgorithm: types.MacAlgorithmSpecHmacSha256})
	wantAPIError(t, err, "DisabledException", "is disabled.")
	_, err = c.EnableKey(ctxT(t), &kms.EnableKeyInput{KeyId: k256})
	mustNoErr(t, err, "EnableKey")

	// The MAC of a key survives a restart: the material is stored sealed.
	srv.Restart(t)
	c = srv.KMS()
	v, err := c.VerifyMac(ctxT(t), &kms.VerifyMacInput{KeyId: k256, Message: msg, MacAlgorithm: types.MacAlgorithmSpecHmacSha256, Mac: macs["HMAC_256"]})
	mustNoErr(t, err, "VerifyMac after restart")
	if !v.MacValid {
		t.Fatal("MacValid false after restart")
	}
	// A grant of GenerateMac lets another account use the key.
	g, err := c.CreateGrant(ctxT(t), &kms.CreateGrantInput{KeyId: k256, GranteePrincipal: aws.String("arn:aws:iam::" + acctB + ":root"),
		Operations: []types.GrantOperation{types.GrantOperationGenerateMac}})
	mustNoErr(t, err, "CreateGrant GenerateMac")
	d, _ := c.DescribeKey(ctxT(t), &kms.DescribeKeyInput{KeyId: k256})
	b := srv.KMSAs(acctB, "us-east-1")
	bm, err := b.GenerateMac(ctxT(t), &kms.GenerateMacInput{KeyId: d.KeyMetadata.Arn, Message: msg, MacAlgorithm: types.MacAlgorithmSpecHmacSha256, GrantTokens: []string{aws.ToString(g.GrantToken)}})
	mustNoErr(t, err, "GenerateMac through a grant")
	if !bytes.Equal(bm.Mac, macs["HMAC_256"]) {
		t.Fatal("the grantee's MAC differs")
	}
	_, err = b.VerifyMac(ctxT(t), &kms.VerifyMacInput{KeyId: d.KeyMetadata.Arn, Message: msg, MacAlgorithm: types.MacAlgorithmSpecHmacSha256, Mac: bm.Mac})
	wantAPIError(t, err, "AccessDeniedException", "kms:VerifyMac")
	_, err = c.CreateGrant(ctxT(t), &kms.CreateGrantInput{KeyId: k256, GranteePrincipal: aws.String("arn:aws:iam::" + acctB + ":root"),
		Operations: []types.GrantOperation{types.GrantOperationEncrypt}})
	wantAPIError(t, err, "ValidationException", "cannot allow the Encrypt operation")
}
