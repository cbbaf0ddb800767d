package e2e

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"

	"github.com/keyfort/keyfort/internal/keyfortest"
)

func TestEncryptDecrypt(t *testing.T) {
	srv := keyfortest.Start(t)
	c := srv.KMS()
	md := createKey(t, c, nil)
	_, err := c.CreateAlias(ctxT(t), &kms.CreateAliasInput{AliasName: aws.String("alias/enc"), TargetKeyId: md.KeyId})
	mustNoErr(t, err, "CreateAlias")
	ec := map[string]string{"purpose": "test", "tenant": "42"}
	for _, ref := range []string{aws.ToString(md.KeyId), aws.ToString(md.Arn), "alias/enc", "arn:aws:kms:us-east-1:123456789012:alias/enc"} {
		pt := []byte("hello " + ref)
		enc, err := c.Encrypt(ctxT(t), &kms.EncryptInput{KeyId: aws.String(ref), Plaintext: pt, EncryptionContext: ec})
		mustNoErr(t, err, "Encrypt "+ref)
		if aws.ToString(enc.KeyId) != aws.ToString(md.Arn) || enc.EncryptionAlgorithm != types.EncryptionAlgorithmSpecSymmetricDefault {
			t.Errorf("Encrypt(%s) KeyId=%s alg=%s", ref, aws.ToString(enc.KeyId), enc.EncryptionAlgorithm)
		}
		if bytes.Contains(enc.CiphertextBlob, pt) {
			t.Fatalf("ciphertext contains the plaintext")
		}
		dec, err := c.Decrypt(ctxT(t), &kms.DecryptInput{CiphertextBlob: enc.CiphertextBlob, EncryptionContext: map[string]string{"tenant": "42", "purpose": "test"}})
		mustNoErr(t, err, "Decrypt")
		if !bytes.Equal(dec.Plaintext, pt) || aws.ToString(dec.KeyId) != aws.ToString(md.Arn) {
			t.Errorf("Decrypt = %q key %s", dec.Plaintext, aws.ToString(dec.KeyId))
		}
		if len(aws.ToString(dec.KeyMaterialId)) != 64 {
			t.Errorf("Decrypt KeyMaterialId = %q", aws.ToString(dec.KeyMaterialId))
		}
		// KeyId given explicitly (as an alias) must match.
		_, err = c.Decrypt(ctxT(t), &kms.DecryptInput{CiphertextBlob: enc.CiphertextBlob, EncryptionContext: ec, KeyId: aws.String("alias/enc")})
		mustNoErr(t, err, "Decrypt with KeyId")
	}
}

func TestDecryptFailures(t *testing.T) {
	srv := keyfortest.Start(t)
	c := srv.KMS()
	md := createKey(t, c, nil)
	other := createKey(t, c, nil)
	enc, err := c.Encrypt(ctxT(t), &kms.EncryptInput{KeyId: md.KeyId, Plaintext: []byte("secret"), EncryptionContext: map[string]string{"a": "bc"}})
	mustNoErr(t, err, "Encrypt")
	blob := enc.CiphertextBlob

	flipped := bytes.Clone(blob)
	flipped[len(flipped)-1] ^= 1
	cases := []struct {
		name string
		in   *kms.DecryptInput
		code string
	}{
		{"no context", &kms.DecryptInput{CiphertextBlob: blob}, "InvalidCiphertextException"},
		{"ambiguous context", &kms.DecryptInput{CiphertextBlob: blob, EncryptionContext: map[string]string{"ab": "c"}}, "InvalidCiphertextException"},
		{"extra context", &kms.DecryptInput{CiphertextBlob: blob, EncryptionContext: map[string]string{"a": "bc", "x": "y"}}, "InvalidCiphertextException"},
		{"tampered", &kms.DecryptInput{CiphertextBlob: flipped, EncryptionContext: map[string]string{"a": "bc"}}, "InvalidCiphertextException"},
		{"truncated", &kms.DecryptInput{CiphertextBlob: blob[:len(blob)/2], EncryptionContext: map[string]string{"a": "bc"}}, "InvalidCiphertextException"},
		{"garbage", &kms.DecryptInput{CiphertextBlob: []byte("definitely not a ciphertext blob at all")}, "InvalidCiphertextException"},
		{"one byte", &kms.DecryptInput{CiphertextBlob: []byte{1}}, "InvalidCiphertextException"},
		{"wrong key id", &kms.DecryptInput{CiphertextBlob: blob, EncryptionContext: map[string]string{"a": "bc"}, KeyId: other.KeyId}, "IncorrectKeyException"},
		{"asymmetric algorithm", &kms.DecryptInput{CiphertextBlob: blob, EncryptionContext: map[string]string{"a": "bc"}, EncryptionAlgorithm: types.EncryptionAlgorithmSpecRsaesOaepSha256}, "InvalidKeyUsageException"},
		{"too long", &kms.DecryptInput{CiphertextBlob: make([]byte, 6145)}, "ValidationException"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := c.Decrypt(ctxT(t), tc.in)
			wantAPIError(t, err, tc.code, "")
		})
	}
	_, err = c.Decrypt(ctxT(t), &kms.DecryptInput{CiphertextBlob: blob, EncryptionContext: map[string]string{"a": "bc"}, DryRun: aws.Bool(true)})
	wantAPIError(t, err, "DryRunOperationException", "")
	_, err = c.DisableKey(ctxT(t), &kms.DisableKeyInput{KeyId: md.KeyId})
	mustNoErr(t, err, "DisableKey")
	_, err = c.Decrypt(ctxT(t), &kms.DecryptInput{CiphertextBlob: blob, EncryptionContext: map[string]string{"a": "bc"}})
	wantAPIError(t, err, "DisabledException", "")
}

func TestEncryptLimits(t *testing.T) {
	srv := keyfortest.Start(t)
	c := srv.KMS()
	md := createKey(t, c, nil)
	_, err := c.Encrypt(ctxT(t), &kms.EncryptInput{KeyId: md.KeyId, Plaintext: make([]byte, 4096)})
	mustNoErr(t, err, "Encrypt 4096 bytes")
	_, err = c.Encrypt(ctxT(t), &kms.EncryptInput{KeyId: md.KeyId, Plaintext: make([]byte, 4097)})
	wantAPIError(t, err, "ValidationException", "Value at 'plaintext' failed to satisfy constraint: Member must have length less than or equal to 4096")
	_, err = c.Encrypt(ctxT(t), &kms.EncryptInput{KeyId: md.KeyId, Plaintext: []byte("x"), DryRun: aws.Bool(true)})
	wantAPIError(t, err, "DryRunOperationException", "")
	_, err = c.Encrypt(ctxT(t), &kms.EncryptInput{KeyId: md.KeyId, Plaintext: []byte("x"), EncryptionAlgorithm: types.EncryptionAlgorithmSpecRsaesOaepSha1})
	wantAPIError(t, err, "InvalidKeyUsageException", "")
}

func TestGenerateDataKey(t *testing.T) {
	srv := keyfortest.Start(t)
	c := srv.KMS()
	md := createKey(t, c, nil)
	ec := map[string]string{"file": "a.txt"}
	for _, tc := range []struct {
		in   *kms.GenerateDataKeyInput
		size int
	}{
		{&kms.GenerateDataKeyInput{KeyId: md.KeyId, KeySpec: types.DataKeySpecAes256, EncryptionContext: ec}, 32},
		{&kms.GenerateDataKeyInput{KeyId: md.KeyId, KeySpec: types.DataKeySpecAes128, EncryptionContext: ec}, 16},
		{&kms.GenerateDataKeyInput{KeyId: md.KeyId, NumberOfBytes: aws.Int32(1024), EncryptionContext: ec}, 1024},
	} {
		out, err := c.GenerateDataKey(ctxT(t), tc.in)
		mustNoErr(t, err, "GenerateDataKey")
		if len(out.Plaintext) != tc.size || aws.ToString(out.KeyId) != aws.ToString(md.Arn) {
			t.Errorf("GenerateDataKey plaintext %d bytes, want %d", len(out.Plaintext), tc.size)
		}
		dec, err := c.Decrypt(ctxT(t), &kms.DecryptInput{CiphertextBlob: out.CiphertextBlob, EncryptionContext: ec})
		mustNoErr(t, err, "Decrypt data key")
		if !bytes.Equal(dec.Plaintext, out.Plaintext) {
			t.Errorf("decrypted data key differs")
		}
	}
	wo, err := c.GenerateDataKeyWithoutPlaintext(ctxT(t), &kms.GenerateDataKeyWithoutPlaintextInput{KeyId: md.KeyId, KeySpec: types.DataKeySpecAes256})
	mustNoErr(t, err, "GenerateDataKeyWithoutPlaintext")
	dec, err := c.Decrypt(ctxT(t), &kms.DecryptInput{CiphertextBlob: wo.CiphertextBlob})
	mustNoErr(t, err, "Decrypt")
	if len(dec.Plaintext) != 32 {
		t.Errorf("data key without plaintext decrypts to %d bytes", len(dec.Plaintext))
	}
	_, err = c.GenerateDataKey(ctxT(t), &kms.GenerateDataKeyInput{KeyId: md.KeyId})
	wantAPIError(t, err, "ValidationException", "")
	_, err = c.GenerateDataKey(ctxT(t), &kms.GenerateDataKeyInput{KeyId: md.KeyId, KeySpec: types.DataKeySpecAes256, NumberOfBytes: aws.Int32(32)})
	wantAPIError(t, err, "ValidationException", "")
	_, err = c.GenerateDataKey(ctxT(t), &kms.GenerateDataKeyInput{KeyId: md.KeyId, NumberOfBytes: aws.Int32(1025)})
	wantAPIError(t, err, "ValidationException", "Value '1025' at 'numberOfBytes'")
}

func TestReEncrypt(t *testing.T) {
	srv := keyfortest.Start(t)
	c := srv.KMS()
	a := createKey(t, c, nil)
	b := createKey(t, c, nil)
	enc, err := c.Encrypt(ctxT(t), &kms.EncryptInput{KeyId: a.KeyId, Plaintext: []byte("move me"), EncryptionContext: map[string]string{"v": "1"}})
	mustNoErr(t, err, "Encrypt")
	re, err := c.ReEncrypt(ctxT(t), &kms.ReEncryptInput{
		CiphertextBlob: enc.CiphertextBlob, SourceEncryptionContext: map[string]string{"v": "1"},
		DestinationKeyId: b.Arn, DestinationEncryptionContext: map[string]string{"v": "2"},
	})
	mustNoErr(t, err, "ReEncrypt")
	if aws.ToString(re.SourceKeyId) != aws.ToString(a.Arn) || aws.ToString(re.KeyId) != aws.ToString(b.Arn) {
		t.Errorf("ReEncrypt source %s dest %s", aws.ToString(re.SourceKeyId), aws.ToString(re.KeyId))
	}
	dec, err := c.Decrypt(ctxT(t), &kms.DecryptInput{CiphertextBlob: re.CiphertextBlob, EncryptionContext: map[string]string{"v": "2"}})
	mustNoErr(t, err, "Decrypt re-encrypted")
	if string(dec.Plaintext) != "move me" || aws.ToString(dec.KeyId) != aws.ToString(b.Arn) {
		t.Errorf("Decrypt = %q under %s", dec.Plaintext, aws.ToString(dec.KeyId))
	}
	_, err = c.ReEncrypt(ctxT(t), &kms.ReEncryptInput{CiphertextBlob: enc.CiphertextBlob, SourceEncryptionContext: map[string]string{"v": "1"}, SourceKeyId: b.KeyId, DestinationKeyId: b.KeyId})
	wantAPIError(t, err, "IncorrectKeyException", "")
	_, err = c.ReEncrypt(ctxT(t), &kms.ReEncryptInput{CiphertextBlob: enc.CiphertextBlob, DestinationKeyId: b.KeyId})
	wantAPIError(t, err, "InvalidCiphertextException", "")
}

func TestGenerateRandom(t *testing.T) {
	srv := keyfortest.Start(t)
	c := srv.KMS()
	a, err := c.GenerateRandom(ctxT(t), &kms.GenerateRandomInput{NumberOfBytes: aws.Int32(64)})
	mustNoErr(t, err, "GenerateRandom")
	b, err := c.GenerateRandom(ctxT(t), &kms.GenerateRandomInput{NumberOfBytes: aws.Int32(64)})
	mustNoErr(t, err, "GenerateRandom")
	if len(a.Plaintext) != 64 || bytes.Equal(a.Plaintext, b.Plaintext) {
		t.Errorf("GenerateRandom gave %d bytes, equal twice: %v", len(a.Plaintext), bytes.Equal(a.Plaintext, b.Plaintext))
	}
	_, err = c.GenerateRandom(ctxT(t), &kms.GenerateRandomInput{NumberOfBytes: aws.Int32(1025)})
	wantAPIError(t, err, "ValidationException", "Member must have value less than or equal to 1024")
	_, err = c.GenerateRandom(ctxT(t), &kms.GenerateRandomInput{NumberOfBytes: aws.Int32(8), CustomKeyStoreId: aws.String("cks-1")})
	wantAPIError(t, err, "CustomKeyStoreNotFoundException", "")
}

func TestRotation(t *testing.T) {
	clock := keyfortest.NewClock(time.Now())
	srv := keyfortest.Start(t, keyfortest.WithClock(clock))
	c := srv.KMS()
	md := createKey(t, c, nil)
	st, err := c.GetKeyRotationStatus(ctxT(t), &kms.GetKeyRotationStatusInput{KeyId: md.KeyId})
	mustNoErr(t, err, "GetKeyRotationStatus")
	if st.KeyRotationEnabled || st.NextRotationDate != nil {
		t.Fatalf("new key rotation = %+v, want off", st)
	}
	_, err = c.EnableKeyRotation(ctxT(t), &kms.EnableKeyRotationInput{KeyId: md.KeyId, RotationPeriodInDays: aws.Int32(89)})
	wantAPIError(t, err, "ValidationException", "Value '89' at 'rotationPeriodInDays' failed to satisfy constraint: Member must have value greater than or equal to 90")
	_, err = c.EnableKeyRotation(ctxT(t), &kms.EnableKeyRotationInput{KeyId: md.KeyId, RotationPeriodInDays: aws.Int32(2561)})
	wantAPIError(t, err, "ValidationException", "Member must have value less than or equal to 2560")
	_, err = c.EnableKeyRotation(ctxT(t), &kms.EnableKeyRotationInput{KeyId: md.KeyId, RotationPeriodInDays: aws.Int32(90)})
	mustNoErr(t, err, "EnableKeyRotation")
	st, err = c.GetKeyRotationStatus(ctxT(t), &kms.GetKeyRotationStatusInput{KeyId: md.Arn})
	mustNoErr(t, err, "GetKeyRotationStatus")
	want := clock.Now().Add(90 * 24 * time.Hour)
	if !st.KeyRotationEnabled || aws.ToInt32(st.RotationPeriodInDays) != 90 || st.NextRotationDate == nil || st.NextRotationDate.Sub(want).Abs() > time.Minute {
		t.Fatalf("rotation status = %+v, want on, 90 days, next %v", st, want)
	}

	old, err := c.Encrypt(ctxT(t), &kms.EncryptInput{KeyId: md.KeyId, Plaintext: []byte("before")})
	mustNoErr(t, err, "Encrypt before rotation")
	clock.Advance(91 * 24 * time.Hour)
	srv.RunJobs(t)
	rots, err := c.ListKeyRotations(ctxT(t), &kms.ListKeyRotationsInput{KeyId: md.KeyId})
	mustNoErr(t, err, "ListKeyRotations")
	if len(rots.Rotations) != 1 || rots.Rotations[0].RotationType != types.RotationTypeAutomatic || rots.Rotations[0].KeyMaterialState != types.KeyMaterialStateCurrent {
		t.Fatalf("rotations after 91 days = %+v, want one AUTOMATIC CURRENT", rots.Rotations)
	}

	// AWS answers the key's ARN in KeyId, whatever identified the key
	// (LocalStack's AWS-validated test_rotate_on_demand_returns_arn_for_key_id).
	od, err := c.RotateKeyOnDemand(ctxT(t), &kms.RotateKeyOnDemandInput{KeyId: md.KeyId})
	mustNoErr(t, err, "RotateKeyOnDemand")
	if got := aws.ToString(od.KeyId); got != aws.ToString(md.Arn) {
		t.Fatalf("RotateKeyOnDemand KeyId = %q, want the key ARN %q", got, aws.ToString(md.Arn))
	}
	newer, err := c.Encrypt(ctxT(t), &kms.EncryptInput{KeyId: md.KeyId, Plaintext: []byte("after")})
	mustNoErr(t, err, "Encrypt after rotation")
	for _, tc := range []struct {
		blob []byte
		want string
	}{{old.CiphertextBlob, "before"}, {newer.CiphertextBlob, "after"}} {
		dec, err := c.Decrypt(ctxT(t), &kms.DecryptInput{CiphertextBlob: tc.blob})
		mustNoErr(t, err, "Decrypt across rotations")
		if string(dec.Plaintext) != tc.want {
			t.Errorf("Decrypt = %q, want %q", dec.Plaintext, tc.want)
		}
	}
	all, err := c.ListKeyRotations(ctxT(t), &kms.ListKeyRotationsInput{KeyId: md.KeyId, IncludeKeyMaterial: types.IncludeKeyMaterialAllKeyMaterial})
	mustNoErr(t, err, "ListKeyRotations ALL")
	if len(all.Rotations) != 3 {
		t.Errorf("ALL_KEY_MATERIAL lists %d materials, want 3", len(all.Rotations))
	}
	desc, err := c.DescribeKey(ctxT(t), &kms.DescribeKeyInput{KeyId: md.KeyId})
	mustNoErr(t, err, "DescribeKey")
	if cur := aws.ToString(desc.KeyMetadata.CurrentKeyMaterialId); cur != aws.ToString(all.Rotations[2].KeyMaterialId) {
		t.Errorf("CurrentKeyMaterialId %s is not the newest material %s", cur, aws.ToString(all.Rotations[2].KeyMaterialId))
	}
	page, err := c.ListKeyRotations(ctxT(t), &kms.ListKeyRotationsInput{KeyId: md.KeyId, Limit: aws.Int32(1)})
	mustNoErr(t, err, "ListKeyRotations page")
	if !page.Truncated || len(page.Rotations) != 1 {
		t.Errorf("ListKeyRotations Limit 1 = %d entries truncated=%v", len(page.Rotations), page.Truncated)
	}

	// AWS allows 25 on-demand rotations per key (the quota was 10 until
	// 2025); one was done above.
	for i := range 24 {
		_, err = c.RotateKeyOnDemand(ctxT(t), &kms.RotateKeyOnDemandInput{KeyId: md.KeyId})
		mustNoErr(t, err, fmt.Sprintf("RotateKeyOnDemand %d", i+2))
	}
	_, err = c.RotateKeyOnDemand(ctxT(t), &kms.RotateKeyOnDemandInput{KeyId: md.KeyId})
	wantExactAPIError(t, err, "LimitExceededException", "The on-demand rotations limit has been reached for the given keyId. No more on-demand rotations can be performed for this key: "+aws.ToString(md.Arn))

	_, err = c.DisableKeyRotation(ctxT(t), &kms.DisableKeyRotationInput{KeyId: md.KeyId})
	mustNoErr(t, err, "DisableKeyRotation")
	st, err = c.GetKeyRotationStatus(ctxT(t), &kms.GetKeyRotationStatusInput{KeyId: md.KeyId})
	mustNoErr(t, err, "GetKeyRotationStatus")
	if st.KeyRotationEnabled {
		t.Errorf("rotation still enabled after DisableKeyRotation")
	}
	_, err = c.DisableKey(ctxT(t), &kms.DisableKeyInput{KeyId: md.KeyId})
	mustNoErr(t, err, "DisableKey")
	_, err = c.EnableKeyRotation(ctxT(t), &kms.EnableKeyRotationInput{KeyId: md.KeyId})
	wantAPIError(t, err, "DisabledException", "")
	_, err = c.RotateKeyOnDemand(ctxT(t), &kms.RotateKeyOnDemandInput{KeyId: md.KeyId})
	wantExactAPIError(t, err, "DisabledException", aws.ToString(md.Arn)+" is disabled.")
}

func TestKeyPolicies(t *testing.T) {
	srv := keyfortest.Start(t)
	c := srv.KMS()
	md := createKey(t, c, nil)
	pol, err := c.GetKeyPolicy(ctxT(t), &kms.GetKeyPolicyInput{KeyId: md.KeyId})
	mustNoErr(t, err, "GetKeyPolicy")
	if aws.ToString(pol.PolicyName) != "default" || !strings.Contains(aws.ToString(pol.Policy), `"AWS" : "arn:aws:iam::123456789012:root"`) || !strings.Contains(aws.ToString(pol.Policy), `"Action" : "kms:*"`) {
		t.Errorf("default policy = %s", aws.ToString(pol.Policy))
	}
	names, err := c.ListKeyPolicies(ctxT(t), &kms.ListKeyPoliciesInput{KeyId: md.KeyId})
	mustNoErr(t, err, "ListKeyPolicies")
	if len(names.PolicyNames) != 1 || names.PolicyNames[0] != "default" || names.Truncated {
		t.Errorf("ListKeyPolicies = %+v", names)
	}
	_, err = c.GetKeyPolicy(ctxT(t), &kms.GetKeyPolicyInput{KeyId: md.KeyId, PolicyName: aws.String("other")})
	wantAPIError(t, err, "NotFoundException", "")

	good := `{"Version":"2012-10-17","Statement":[{"Sid":"root","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::123456789012:root"},"Action":"kms:*","Resource":"*"},{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::123456789012:role/app"},"Action":["kms:Encrypt","kms:Decrypt"],"Resource":"*"}]}`
	_, err = c.PutKeyPolicy(ctxT(t), &kms.PutKeyPolicyInput{KeyId: md.KeyId, Policy: aws.String(good)})
	mustNoErr(t, err, "PutKeyPolicy")
	pol, err = c.GetKeyPolicy(ctxT(t), &kms.GetKeyPolicyInput{KeyId: md.Arn, PolicyName: aws.String("default")})
	mustNoErr(t, err, "GetKeyPolicy")
	if aws.ToString(pol.Policy) != good {
		t.Errorf("GetKeyPolicy after Put = %s", aws.ToString(pol.Policy))
	}
	lockout := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::123456789012:role/app"},"Action":"kms:Encrypt","Resource":"*"}]}`
	bad := []struct{ name, doc string }{
		{"not json", "{"},
		{"no statement", `{"Version":"2012-10-17"}`},
		{"bad effect", `{"Statement":[{"Effect":"Maybe","Principal":"*","Action":"kms:*","Resource":"*"}]}`},
		{"no principal", `{"Statement":[{"Effect":"Allow","Action":"kms:*","Resource":"*"}]}`},
		{"lockout", lockout},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			_, err := c.PutKeyPolicy(ctxT(t), &kms.PutKeyPolicyInput{KeyId: md.KeyId, Policy: aws.String(tc.doc)})
			wantAPIError(t, err, "MalformedPolicyDocumentException", "")
		})
	}
	_, err = c.PutKeyPolicy(ctxT(t), &kms.PutKeyPolicyInput{KeyId: md.KeyId, Policy: aws.String(good), PolicyName: aws.String("custom")})
	wantAPIError(t, err, "NotFoundException", "")
	_, err = c.PutKeyPolicy(ctxT(t), &kms.PutKeyPolicyInput{KeyId: md.KeyId, Policy: aws.String("{\u0001}")})
	wantAPIError(t, err, "ValidationException", "")
	_, err = c.PutKeyPolicy(ctxT(t), &kms.PutKeyPolicyInput{KeyId: md.KeyId, Policy: aws.String(lockout), BypassPolicyLockoutSafetyCheck: true})
	mustNoErr(t, err, "PutKeyPolicy with bypass")
	// The bypass did what the check guards against: the account root can
	// no longer change (or read) the key policy, nor use the key.
	_, err = c.PutKeyPolicy(ctxT(t), &kms.PutKeyPolicyInput{KeyId: md.KeyId, Policy: aws.String(good)})
	wantAPIError(t, err, "AccessDeniedException", "User: arn:aws:iam::123456789012:root is not authorized to perform: kms:PutKeyPolicy on resource: "+aws.ToString(md.Arn)+" because no resource-based policy allows the kms:PutKeyPolicy action")
	_, err = c.GetKeyPolicy(ctxT(t), &kms.GetKeyPolicyInput{KeyId: md.KeyId})
	wantAPIError(t, err, "AccessDeniedException", "kms:GetKeyPolicy")
	_, err = c.Encrypt(ctxT(t), &kms.EncryptInput{KeyId: md.KeyId, Plaintext: []byte("x")})
	wantAPIError(t, err, "AccessDeniedException", "kms:Encrypt")
	withPolicy := createKey(t, c, &kms.CreateKeyInput{Policy: aws.String(good)})
	pol, err = c.GetKeyPolicy(ctxT(t), &kms.GetKeyPolicyInput{KeyId: withPolicy.KeyId})
	mustNoErr(t, err, "GetKeyPolicy of key created with a policy")
	if aws.ToString(pol.Policy) != good {
		t.Errorf("CreateKey policy not stored: %s", aws.ToString(pol.Policy))
	}
}

// TestRotationStatusWhilePendingDeletion checks AWS's documented behaviour:
// while a key is pending deletion its rotation status is false; cancelling
// the deletion restores it.
func TestRotationStatusWhilePendingDeletion(t *testing.T) {
	srv := keyfortest.Start(t)
	c := srv.KMS()
	md := createKey(t, c, nil)
	_, err := c.EnableKeyRotation(ctxT(t), &kms.EnableKeyRotationInput{KeyId: md.KeyId, RotationPeriodInDays: aws.Int32(180)})
	mustNoErr(t, err, "EnableKeyRotation")
	_, err = c.ScheduleKeyDeletion(ctxT(t), &kms.ScheduleKeyDeletionInput{KeyId: md.KeyId, PendingWindowInDays: aws.Int32(7)})
	mustNoErr(t, err, "ScheduleKeyDeletion")
	st, err := c.GetKeyRotationStatus(ctxT(t), &kms.GetKeyRotationStatusInput{KeyId: md.KeyId})
	mustNoErr(t, err, "GetKeyRotationStatus pending deletion")
	if st.KeyRotationEnabled || st.RotationPeriodInDays != nil || st.NextRotationDate != nil {
		t.Errorf("GetKeyRotationStatus of a key pending deletion = enabled %v, period %v, next %v; want false and neither", st.KeyRotationEnabled, st.RotationPeriodInDays, st.NextRotationDate)
	}
	if aws.ToString(st.KeyId) != aws.ToString(md.Arn) {
		t.Errorf("GetKeyRotationStatus KeyId = %q, want %q", aws.ToString(st.KeyId), aws.ToString(md.Arn))
	}
	_, err = c.CancelKeyDeletion(ctxT(t), &kms.CancelKeyDeletionInput{KeyId: md.KeyId})
	mustNoErr(t, err, "CancelKeyDeletion")
	st, err = c.GetKeyRotationStatus(ctxT(t), &kms.GetKeyRotationStatusInput{KeyId: md.KeyId})
	mustNoErr(t, err, "GetKeyRotationStatus after cancel")
	if !st.KeyRotationEnabled || aws.ToInt32(st.RotationPeriodInDays) != 180 || st.NextRotationDate == nil {
		t.Errorf("GetKeyRotationStatus after CancelKeyDeletion = enabled %v, period %d, next %v; want true, 180, a date", st.KeyRotationEnabled, aws.ToInt32(st.RotationPeriodInDays), st.NextRotationDate)
	}
}

// TestRecipientRefused: a request with Recipient (an AWS Nitro Enclaves or
// NitroTPM attestation document) is answered as AWS answers a document it
// cannot verify, ValidationException, on every operation that takes one;
// Keyfort verifies none, and no plaintext or CiphertextForRecipient leaves.
func TestRecipientRefused(t *testing.T) {
	srv := keyfortest.Start(t)
	c := srv.KMS()
	md := createKey(t, c, nil)
	ct, err := c.Encrypt(ctxT(t), &kms.EncryptInput{KeyId: md.KeyId, Plaintext: []byte("x")})
	mustNoErr(t, err, "Encrypt")
	r := &types.RecipientInfo{KeyEncryptionAlgorithm: types.KeyEncryptionMechanismRsaesOaepSha256, AttestationDocument: []byte("not an attestation document")}
	calls := map[string]func() error{
		"Decrypt": func() error {
			_, err := c.Decrypt(ctxT(t), &kms.DecryptInput{CiphertextBlob: ct.CiphertextBlob, Recipient: r})
			return err
		},
		"GenerateDataKey": func() error {
			_, err := c.GenerateDataKey(ctxT(t), &kms.GenerateDataKeyInput{KeyId: md.KeyId, KeySpec: types.DataKeySpecAes256, Recipient: r})
			return err
		},
		"GenerateRandom": func() error {
			_, err := c.GenerateRandom(ctxT(t), &kms.GenerateRandomInput{NumberOfBytes: aws.Int32(8), Recipient: r})
			return err
		},
	}
	for name, call := range calls {
		t.Run(name, func(t *testing.T) {
			wantAPIError(t, call(), "ValidationException", "The attestation document in Recipient could not be verified")
		})
	}
}
