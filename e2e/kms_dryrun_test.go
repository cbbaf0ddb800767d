package e2e

import (
	"encoding/json"
	"os"
	"slices"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"

	"github.com/keyfort/keyfort/internal/keyfortest"
)

// TestDryRunEveryOperation calls every KMS operation that has DryRun (the
// model's list) with DryRun set, where the request would succeed: each
// answers DryRunOperationException with AWS's message, and the grant
// operations change nothing.
func TestDryRunEveryOperation(t *testing.T) {
	srv := keyfortest.Start(t)
	c := srv.KMS()
	ctx := ctxT(t)
	sym := createKey(t, c, &kms.CreateKeyInput{})
	sym2 := createKey(t, c, &kms.CreateKeyInput{})
	hmacKey := createKey(t, c, &kms.CreateKeyInput{KeySpec: types.KeySpecHmac256, KeyUsage: types.KeyUsageTypeGenerateVerifyMac})
	signKey := createKey(t, c, &kms.CreateKeyInput{KeySpec: types.KeySpecEccNistP256, KeyUsage: types.KeyUsageTypeSignVerify})
	agreeKey := createKey(t, c, &kms.CreateKeyInput{KeySpec: types.KeySpecEccNistP256, KeyUsage: types.KeyUsageTypeKeyAgreement})
	peer, err := c.GetPublicKey(ctx, &kms.GetPublicKeyInput{KeyId: agreeKey.KeyId})
	mustNoErr(t, err, "GetPublicKey")
	enc, err := c.Encrypt(ctx, &kms.EncryptInput{KeyId: sym.KeyId, Plaintext: []byte("x")})
	mustNoErr(t, err, "Encrypt")
	msg := []byte("dry run")
	mac, err := c.GenerateMac(ctx, &kms.GenerateMacInput{KeyId: hmacKey.KeyId, Message: msg, MacAlgorithm: types.MacAlgorithmSpecHmacSha256})
	mustNoErr(t, err, "GenerateMac")
	sig, err := c.Sign(ctx, &kms.SignInput{KeyId: signKey.KeyId, Message: msg, SigningAlgorithm: types.SigningAlgorithmSpecEcdsaSha256})
	mustNoErr(t, err, "Sign")
	grantee := aws.String("arn:aws:iam::123456789012:root") // the default access key's account
	grant, err := c.CreateGrant(ctx, &kms.CreateGrantInput{KeyId: sym.KeyId, GranteePrincipal: grantee,
		RetiringPrincipal: grantee, Operations: []types.GrantOperation{types.GrantOperationDecrypt}})
	mustNoErr(t, err, "CreateGrant")

	dry := aws.Bool(true)
	calls := map[string]func() error{
		"CreateGrant": func() error {
			_, err := c.CreateGrant(ctx, &kms.CreateGrantInput{KeyId: sym.KeyId, GranteePrincipal: grantee,
				Operations: []types.GrantOperation{types.GrantOperationEncrypt}, DryRun: dry})
			return err
		},
		"Decrypt": func() error {
			_, err := c.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: enc.CiphertextBlob, DryRun: dry})
			return err
		},
		"DeriveSharedSecret": func() error {
			_, err := c.DeriveSharedSecret(ctx, &kms.DeriveSharedSecretInput{KeyId: agreeKey.KeyId,
				KeyAgreementAlgorithm: types.KeyAgreementAlgorithmSpecEcdh, PublicKey: peer.PublicKey, DryRun: dry})
			return err
		},
		"Encrypt": func() error {
			_, err := c.Encrypt(ctx, &kms.EncryptInput{KeyId: sym.KeyId, Plaintext: msg, DryRun: dry})
			return err
		},
		"GenerateDataKey": func() error {
			_, err := c.GenerateDataKey(ctx, &kms.GenerateDataKeyInput{KeyId: sym.KeyId, KeySpec: types.DataKeySpecAes256, DryRun: dry})
			return err
		},
		"GenerateDataKeyPair": func() error {
			_, err := c.GenerateDataKeyPair(ctx, &kms.GenerateDataKeyPairInput{KeyId: sym.KeyId,
				KeyPairSpec: types.DataKeyPairSpecEccNistP256, DryRun: dry})
			return err
		},
		"GenerateDataKeyPairWithoutPlaintext": func() error {
			_, err := c.GenerateDataKeyPairWithoutPlaintext(ctx, &kms.GenerateDataKeyPairWithoutPlaintextInput{KeyId: sym.KeyId,
				KeyPairSpec: types.DataKeyPairSpecEccNistP256, DryRun: dry})
			return err
		},
		"GenerateDataKeyWithoutPlaintext": func() error {
			_, err := c.GenerateDataKeyWithoutPlaintext(ctx, &kms.GenerateDataKeyWithoutPlaintextInput{KeyId: sym.KeyId,
				NumberOfBytes: aws.Int32(32), DryRun: dry})
			return err
		},
		"GenerateMac": func() error {
			_, err := c.GenerateMac(ctx, &kms.GenerateMacInput{KeyId: hmacKey.KeyId, Message: msg,
				MacAlgorithm: types.MacAlgorithmSpecHmacSha256, DryRun: dry})
			return err
		},
		"ReEncrypt": func() error {
			_, err := c.ReEncrypt(ctx, &kms.ReEncryptInput{CiphertextBlob: enc.CiphertextBlob, DestinationKeyId: sym2.KeyId, DryRun: dry})
			return err
		},
		"RetireGrant": func() error {
			_, err := c.RetireGrant(ctx, &kms.RetireGrantInput{KeyId: sym.Arn, GrantId: grant.GrantId, DryRun: dry})
			return err
		},
		"RevokeGrant": func() error {
			_, err := c.RevokeGrant(ctx, &kms.RevokeGrantInput{KeyId: sym.KeyId, GrantId: grant.GrantId, DryRun: dry})
			return err
		},
		"Sign": func() error {
			_, err := c.Sign(ctx, &kms.SignInput{KeyId: signKey.KeyId, Message: msg,
				SigningAlgorithm: types.SigningAlgorithmSpecEcdsaSha256, DryRun: dry})
			return err
		},
		"Verify": func() error {
			_, err := c.Verify(ctx, &kms.VerifyInput{KeyId: signKey.KeyId, Message: msg, Signature: sig.Signature,
				SigningAlgorithm: types.SigningAlgorithmSpecEcdsaSha256, DryRun: dry})
			return err
		},
		"VerifyMac": func() error {
			_, err := c.VerifyMac(ctx, &kms.VerifyMacInput{KeyId: hmacKey.KeyId, Message: msg, Mac: mac.Mac,
				MacAlgorithm: types.MacAlgorithmSpecHmacSha256, DryRun: dry})
			return err
		},
	}
	// Every operation of the pinned model with a DryRun member.
	b, err := os.ReadFile("../tools/apigen/models/kms/2014-11-01/service-2.json")
	mustNoErr(t, err, "read the pinned KMS model")
	var model struct {
		Operations map[string]struct {
			Input struct{ Shape string } `json:"input"`
		} `json:"operations"`
		Shapes map[string]struct {
			Members map[string]json.RawMessage `json:"members"`
		} `json:"shapes"`
	}
	mustNoErr(t, json.Unmarshal(b, &model), "parse the pinned KMS model")
	var want []string
	for name, op := range model.Operations {
		if _, ok := model.Shapes[op.Input.Shape].Members["DryRun"]; ok {
			want = append(want, name)
		}
	}
	slices.Sort(want)
	if len(want) < 15 || len(calls) != len(want) {
		t.Fatalf("%d calls for the model's %d operations with DryRun: %v", len(calls), len(want), want)
	}
	for _, op := range want {
		t.Run(op, func(t *testing.T) {
			call, ok := calls[op]
			if !ok {
				t.Fatalf("no call for %s", op)
			}
			wantAPIError(t, call(), "DryRunOperationException", "The request would have succeeded, but the DryRun option is set.")
		})
	}
	// The grant operations changed nothing: the one grant is still there.
	grants, err := c.ListGrants(ctx, &kms.ListGrantsInput{KeyId: sym.KeyId})
	mustNoErr(t, err, "ListGrants")
	if len(grants.Grants) != 1 || aws.ToString(grants.Grants[0].GrantId) != aws.ToString(grant.GrantId) {
		t.Errorf("grants after the dry runs = %+v, want only %s", grants.Grants, aws.ToString(grant.GrantId))
	}
}
