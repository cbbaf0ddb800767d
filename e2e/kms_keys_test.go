package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"

	"github.com/keyfort/keyfort/internal/keyfortest"
)

func createKey(t *testing.T, c *kms.Client, in *kms.CreateKeyInput) *types.KeyMetadata {
	t.Helper()
	if in == nil {
		in = &kms.CreateKeyInput{}
	}
	out, err := c.CreateKey(ctxT(t), in)
	mustNoErr(t, err, "CreateKey")
	return out.KeyMetadata
}

func TestCreateAndDescribeKey(t *testing.T) {
	srv := keyfortest.Start(t)
	c := srv.KMS()
	before := time.Now().Add(-2 * time.Second)
	md := createKey(t, c, &kms.CreateKeyInput{Description: aws.String("my key")})

	if !uuidLike(aws.ToString(md.KeyId)) {
		t.Errorf("KeyId = %q, want a UUID", aws.ToString(md.KeyId))
	}
	wantARN := "arn:aws:kms:us-east-1:123456789012:key/" + aws.ToString(md.KeyId)
	checks := []struct {
		name      string
		got, want any
	}{
		{"Arn", aws.ToString(md.Arn), wantARN},
		{"AWSAccountId", aws.ToString(md.AWSAccountId), "123456789012"},
		{"Description", aws.ToString(md.Description), "my key"},
		{"Enabled", md.Enabled, true},
		{"KeyState", md.KeyState, types.KeyStateEnabled},
		{"KeyUsage", md.KeyUsage, types.KeyUsageTypeEncryptDecrypt},
		{"KeySpec", md.KeySpec, types.KeySpecSymmetricDefault},
		{"CustomerMasterKeySpec", md.CustomerMasterKeySpec, types.CustomerMasterKeySpecSymmetricDefault},
		{"Origin", md.Origin, types.OriginTypeAwsKms},
		{"KeyManager", md.KeyManager, types.KeyManagerTypeCustomer},
		{"EncryptionAlgorithms", fmt.Sprint(md.EncryptionAlgorithms), "[SYMMETRIC_DEFAULT]"},
		{"MultiRegion", aws.ToBool(md.MultiRegion), false},
		{"CurrentKeyMaterialId length", len(aws.ToString(md.CurrentKeyMaterialId)), 64},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("CreateKey KeyMetadata.%s = %v, want %v", c.name, c.got, c.want)
		}
	}
	if md.CreationDate == nil || md.CreationDate.Before(before) || md.CreationDate.After(time.Now().Add(2*time.Second)) {
		t.Errorf("CreationDate = %v, want about now", md.CreationDate)
	}

	for _, ref := range []string{aws.ToString(md.KeyId), wantARN} {
		out, err := c.DescribeKey(ctxT(t), &kms.DescribeKeyInput{KeyId: aws.String(ref)})
		mustNoErr(t, err, "DescribeKey "+ref)
		if aws.ToString(out.KeyMetadata.Arn) != wantARN || aws.ToString(out.KeyMetadata.Description) != "my key" {
			t.Errorf("DescribeKey(%q) = %+v, want the created key", ref, out.KeyMetadata)
		}
	}
}

func uuidLike(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i, r := range s {
		switch i {
		case 8, 13, 18, 23:
			if r != '-' {
				return false
			}
		default:
			if !strings.ContainsRune("0123456789abcdef", r) {
				return false
			}
		}
	}
	return true
}

func TestDescribeKeyErrors(t *testing.T) {
	srv := keyfortest.Start(t)
	c := srv.KMS()
	md := createKey(t, c, nil)
	missing := "11111111-2222-4333-8444-555555555555"
	cases := []struct {
		name, keyID, code, msg string
	}{
		{"unknown key id", missing, "NotFoundException", "Key 'arn:aws:kms:us-east-1:123456789012:key/" + missing + "' does not exist"},
		{"malformed key id", "not-a-key", "NotFoundException", "Invalid keyId 'not-a-key'"},
		{"unknown alias", "alias/nope", "NotFoundException", "Alias arn:aws:kms:us-east-1:123456789012:alias/nope is not found."},
		{"other region ARN", "arn:aws:kms:eu-west-1:123456789012:key/" + aws.ToString(md.KeyId), "NotFoundException", "Invalid arn eu-west-1"},
		{"other account ARN", "arn:aws:kms:us-east-1:210987654321:key/" + aws.ToString(md.KeyId), "AccessDeniedException",
			"User: arn:aws:iam::123456789012:root is not authorized to perform: kms:DescribeKey on this resource because the resource does not exist in this Region, no resource-based policies allow access, or a resource-based policy explicitly denies access"},
		{"malformed ARN", "arn:aws:kms:us-east-1", "InvalidArnException", ""},
		{"empty", "", "ValidationException", "Value '' at 'keyId' failed to satisfy constraint: Member must have length greater than or equal to 1"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := c.DescribeKey(ctxT(t), &kms.DescribeKeyInput{KeyId: aws.String(tc.keyID)})
			wantAPIError(t, err, tc.code, tc.msg)
		})
	}
}

func TestKeysAreRegionAndAccountScoped(t *testing.T) {
	srv := keyfortest.Start(t)
	md := createKey(t, srv.KMS(), nil)
	_, err := srv.KMS("eu-west-1").DescribeKey(ctxT(t), &kms.DescribeKeyInput{KeyId: md.KeyId})
	wantAPIError(t, err, "NotFoundException", "does not exist")

	other := srv.KMSAs("210987654321", "us-east-1")
	_, err = other.DescribeKey(ctxT(t), &kms.DescribeKeyInput{KeyId: md.KeyId})
	wantAPIError(t, err, "NotFoundException", "does not exist")
	md2 := createKey(t, other, nil)
	if !strings.Contains(aws.ToString(md2.Arn), ":210987654321:key/") {
		t.Errorf("key created with a 12-digit access key has ARN %s, want account 210987654321", aws.ToString(md2.Arn))
	}
	list, err := srv.KMS().ListKeys(ctxT(t), &kms.ListKeysInput{})
	mustNoErr(t, err, "ListKeys")
	if len(list.Keys) != 1 || aws.ToString(list.Keys[0].KeyId) != aws.ToString(md.KeyId) {
		t.Errorf("ListKeys in account 123456789012 = %d keys, want only its own", len(list.Keys))
	}
}

func TestCreateKeyUnsupportedAndInvalid(t *testing.T) {
	srv := keyfortest.Start(t)
	c := srv.KMS()
	cases := []struct {
		name string
		in   *kms.CreateKeyInput
		code string
	}{
		{"SM2 outside the China regions", &kms.CreateKeyInput{KeySpec: types.KeySpecSm2, KeyUsage: types.KeyUsageTypeKeyAgreement}, "UnsupportedOperationException"},
		{"bad usage for symmetric", &kms.CreateKeyInput{KeyUsage: types.KeyUsageTypeSignVerify}, "ValidationException"},
		{"HMAC without its usage", &kms.CreateKeyInput{KeySpec: types.KeySpecHmac256}, "ValidationException"},
		{"ML-DSA only signs", &kms.CreateKeyInput{KeySpec: types.KeySpecMlDsa44}, "ValidationException"},
		{"RSA cannot agree keys", &kms.CreateKeyInput{KeySpec: types.KeySpecRsa2048, KeyUsage: types.KeyUsageTypeKeyAgreement}, "ValidationException"},
		{"secp256k1 only signs", &kms.CreateKeyInput{KeySpec: types.KeySpecEccSecgP256k1, KeyUsage: types.KeyUsageTypeEncryptDecrypt}, "ValidationException"},
		{"both specs", &kms.CreateKeyInput{KeySpec: types.KeySpecSymmetricDefault, CustomerMasterKeySpec: types.CustomerMasterKeySpecSymmetricDefault}, "ValidationException"},
		{"bad enum", &kms.CreateKeyInput{KeySpec: "NOPE"}, "ValidationException"},
		{"custom key store", &kms.CreateKeyInput{CustomKeyStoreId: aws.String("cks-1234567890abcdef0")}, "CustomKeyStoreNotFoundException"},
		{"malformed policy", &kms.CreateKeyInput{Policy: aws.String("{not json")}, "MalformedPolicyDocumentException"},
		{"description too long", &kms.CreateKeyInput{Description: aws.String(strings.Repeat("d", 8193))}, "ValidationException"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := c.CreateKey(ctxT(t), tc.in)
			wantAPIError(t, err, tc.code, "")
		})
	}
	list, err := c.ListKeys(ctxT(t), &kms.ListKeysInput{})
	mustNoErr(t, err, "ListKeys")
	if len(list.Keys) != 0 {
		t.Errorf("after refused CreateKey calls ListKeys has %d keys, want 0", len(list.Keys))
	}
}

func TestListKeysPaging(t *testing.T) {
	srv := keyfortest.Start(t)
	c := srv.KMS()
	want := map[string]bool{}
	for range 7 {
		want[aws.ToString(createKey(t, c, nil).KeyId)] = true
	}
	got := map[string]bool{}
	var marker *string
	pages := 0
	for {
		out, err := c.ListKeys(ctxT(t), &kms.ListKeysInput{Limit: aws.Int32(3), Marker: marker})
		mustNoErr(t, err, "ListKeys")
		pages++
		if len(out.Keys) > 3 {
			t.Fatalf("page has %d keys, want <= 3", len(out.Keys))
		}
		for _, k := range out.Keys {
			if got[aws.ToString(k.KeyId)] {
				t.Fatalf("key %s listed twice", aws.ToString(k.KeyId))
			}
			got[aws.ToString(k.KeyId)] = true
			if aws.ToString(k.KeyArn) != "arn:aws:kms:us-east-1:123456789012:key/"+aws.ToString(k.KeyId) {
				t.Errorf("KeyArn = %s", aws.ToString(k.KeyArn))
			}
		}
		if !out.Truncated {
			if out.NextMarker != nil {
				t.Errorf("last page has NextMarker %q", aws.ToString(out.NextMarker))
			}
			break
		}
		marker = out.NextMarker
	}
	if pages != 3 || len(got) != 7 {
		t.Errorf("paging gave %d pages and %d keys, want 3 and 7", pages, len(got))
	}
	_, err := c.ListKeys(ctxT(t), &kms.ListKeysInput{Marker: aws.String("forged-marker")})
	wantAPIError(t, err, "InvalidMarkerException", "")
	_, err = c.ListKeys(ctxT(t), &kms.ListKeysInput{Limit: aws.Int32(1001)})
	wantAPIError(t, err, "ValidationException", "Member must have value less than or equal to 1000")
	_, err = c.ListKeys(ctxT(t), &kms.ListKeysInput{Limit: aws.Int32(0)})
	wantAPIError(t, err, "ValidationException", "Member must have value greater than or equal to 1")
}

func TestEnableDisableKey(t *testing.T) {
	srv := keyfortest.Start(t)
	c := srv.KMS()
	id := createKey(t, c, nil).KeyId
	state := func() types.KeyState {
		out, err := c.DescribeKey(ctxT(t), &kms.DescribeKeyInput{KeyId: id})
		mustNoErr(t, err, "DescribeKey")
		return out.KeyMetadata.KeyState
	}
	_, err := c.DisableKey(ctxT(t), &kms.DisableKeyInput{KeyId: id})
	mustNoErr(t, err, "DisableKey")
	if s := state(); s != types.KeyStateDisabled {
		t.Fatalf("state after DisableKey = %s", s)
	}
	_, err = c.Encrypt(ctxT(t), &kms.EncryptInput{KeyId: id, Plaintext: []byte("x")})
	wantAPIError(t, err, "DisabledException", "is disabled.")
	_, err = c.DisableKey(ctxT(t), &kms.DisableKeyInput{KeyId: id})
	mustNoErr(t, err, "DisableKey twice")
	_, err = c.EnableKey(ctxT(t), &kms.EnableKeyInput{KeyId: id})
	mustNoErr(t, err, "EnableKey")
	if s := state(); s != types.KeyStateEnabled {
		t.Fatalf("state after EnableKey = %s", s)
	}
}

// TestKeyOnlyOperationsRefuseAliases checks AWS's answer when an operation
// that takes only a key id or key ARN is given an alias name or alias ARN
// (existing or not): InvalidArnException "Key Aliases are not supported for
// this operation.".
func TestKeyOnlyOperationsRefuseAliases(t *testing.T) {
	srv := keyfortest.Start(t)
	c := srv.KMS()
	md := createKey(t, c, nil)
	_, err := c.CreateAlias(ctxT(t), &kms.CreateAliasInput{AliasName: aws.String("alias/present"), TargetKeyId: md.KeyId})
	mustNoErr(t, err, "CreateAlias")
	refs := []string{
		"alias/present",
		"alias/absent",
		"arn:aws:kms:us-east-1:123456789012:alias/present",
	}
	ops := []struct {
		name string
		call func(ref *string) error
	}{
		{"EnableKey", func(r *string) error { _, err := c.EnableKey(ctxT(t), &kms.EnableKeyInput{KeyId: r}); return err }},
		{"DisableKey", func(r *string) error { _, err := c.DisableKey(ctxT(t), &kms.DisableKeyInput{KeyId: r}); return err }},
		{"ScheduleKeyDeletion", func(r *string) error {
			_, err := c.ScheduleKeyDeletion(ctxT(t), &kms.ScheduleKeyDeletionInput{KeyId: r})
			return err
		}},
		{"CancelKeyDeletion", func(r *string) error {
			_, err := c.CancelKeyDeletion(ctxT(t), &kms.CancelKeyDeletionInput{KeyId: r})
			return err
		}},
		{"UpdateKeyDescription", func(r *string) error {
			_, err := c.UpdateKeyDescription(ctxT(t), &kms.UpdateKeyDescriptionInput{KeyId: r, Description: aws.String("d")})
			return err
		}},
		{"GetKeyPolicy", func(r *string) error { _, err := c.GetKeyPolicy(ctxT(t), &kms.GetKeyPolicyInput{KeyId: r}); return err }},
		{"ListKeyPolicies", func(r *string) error {
			_, err := c.ListKeyPolicies(ctxT(t), &kms.ListKeyPoliciesInput{KeyId: r})
			return err
		}},
		{"ListResourceTags", func(r *string) error {
			_, err := c.ListResourceTags(ctxT(t), &kms.ListResourceTagsInput{KeyId: r})
			return err
		}},
		{"GetKeyRotationStatus", func(r *string) error {
			_, err := c.GetKeyRotationStatus(ctxT(t), &kms.GetKeyRotationStatusInput{KeyId: r})
			return err
		}},
		{"EnableKeyRotation", func(r *string) error {
			_, err := c.EnableKeyRotation(ctxT(t), &kms.EnableKeyRotationInput{KeyId: r})
			return err
		}},
		{"RotateKeyOnDemand", func(r *string) error {
			_, err := c.RotateKeyOnDemand(ctxT(t), &kms.RotateKeyOnDemandInput{KeyId: r})
			return err
		}},
		{"ListKeyRotations", func(r *string) error {
			_, err := c.ListKeyRotations(ctxT(t), &kms.ListKeyRotationsInput{KeyId: r})
			return err
		}},
	}
	for _, op := range ops {
		for _, ref := range refs {
			t.Run(op.name+" "+ref, func(t *testing.T) {
				wantAPIError(t, op.call(aws.String(ref)), "InvalidArnException", "Key Aliases are not supported for this operation.")
			})
		}
	}
	desc, err := c.DescribeKey(ctxT(t), &kms.DescribeKeyInput{KeyId: md.KeyId})
	mustNoErr(t, err, "DescribeKey")
	if desc.KeyMetadata.KeyState != types.KeyStateEnabled || aws.ToString(desc.KeyMetadata.Description) != "" {
		t.Errorf("key changed by refused calls: state %s, description %q", desc.KeyMetadata.KeyState, aws.ToString(desc.KeyMetadata.Description))
	}
}

func TestScheduleAndCancelKeyDeletion(t *testing.T) {
	srv := keyfortest.Start(t)
	c := srv.KMS()
	md := createKey(t, c, nil)
	id := md.KeyId

	for _, days := range []int32{6, 31} {
		_, err := c.ScheduleKeyDeletion(ctxT(t), &kms.ScheduleKeyDeletionInput{KeyId: id, PendingWindowInDays: aws.Int32(days)})
		wantAPIError(t, err, "ValidationException", fmt.Sprintf("Value '%d' at 'pendingWindowInDays'", days))
	}
	now := time.Now()
	out, err := c.ScheduleKeyDeletion(ctxT(t), &kms.ScheduleKeyDeletionInput{KeyId: id})
	mustNoErr(t, err, "ScheduleKeyDeletion")
	if out.KeyState != types.KeyStatePendingDeletion || aws.ToInt32(out.PendingWindowInDays) != 30 || aws.ToString(out.KeyId) != aws.ToString(md.Arn) {
		t.Errorf("ScheduleKeyDeletion = %+v", out)
	}
	if d := out.DeletionDate.Sub(now); d < 30*24*time.Hour-time.Minute || d > 30*24*time.Hour+time.Minute {
		t.Errorf("DeletionDate is %v from now, want 30 days", d)
	}
	desc, err := c.DescribeKey(ctxT(t), &kms.DescribeKeyInput{KeyId: id})
	mustNoErr(t, err, "DescribeKey")
	if desc.KeyMetadata.KeyState != types.KeyStatePendingDeletion || desc.KeyMetadata.DeletionDate == nil || desc.KeyMetadata.Enabled {
		t.Errorf("DescribeKey of pending key = %+v", desc.KeyMetadata)
	}
	// AWS returns PendingDeletionWindowInDays only for a multi-Region
	// primary key in PendingReplicaDeletion, and CurrentKeyMaterialId for
	// every symmetric AWS_KMS key whatever its state.
	if w := desc.KeyMetadata.PendingDeletionWindowInDays; w != nil {
		t.Errorf("DescribeKey of pending key has PendingDeletionWindowInDays %d, want none", *w)
	}
	if got := aws.ToString(desc.KeyMetadata.CurrentKeyMaterialId); got != aws.ToString(md.CurrentKeyMaterialId) {
		t.Errorf("DescribeKey of pending key CurrentKeyMaterialId = %q, want %q", got, aws.ToString(md.CurrentKeyMaterialId))
	}
	_, err = c.Encrypt(ctxT(t), &kms.EncryptInput{KeyId: id, Plaintext: []byte("x")})
	wantAPIError(t, err, "KMSInvalidStateException", "is pending deletion.")
	_, err = c.ScheduleKeyDeletion(ctxT(t), &kms.ScheduleKeyDeletionInput{KeyId: id})
	wantAPIError(t, err, "KMSInvalidStateException", "is pending deletion.")
	_, err = c.EnableKey(ctxT(t), &kms.EnableKeyInput{KeyId: id})
	wantAPIError(t, err, "KMSInvalidStateException", "")

	cancel, err := c.CancelKeyDeletion(ctxT(t), &kms.CancelKeyDeletionInput{KeyId: id})
	mustNoErr(t, err, "CancelKeyDeletion")
	if aws.ToString(cancel.KeyId) != aws.ToString(md.Arn) {
		t.Errorf("CancelKeyDeletion KeyId = %s, want the ARN", aws.ToString(cancel.KeyId))
	}
	desc, err = c.DescribeKey(ctxT(t), &kms.DescribeKeyInput{KeyId: id})
	mustNoErr(t, err, "DescribeKey")
	if desc.KeyMetadata.KeyState != types.KeyStateDisabled || desc.KeyMetadata.DeletionDate != nil {
		t.Errorf("after CancelKeyDeletion state = %s, DeletionDate = %v; want Disabled and none", desc.KeyMetadata.KeyState, desc.KeyMetadata.DeletionDate)
	}
	_, err = c.CancelKeyDeletion(ctxT(t), &kms.CancelKeyDeletionInput{KeyId: id})
	wantAPIError(t, err, "KMSInvalidStateException", "is not pending deletion")
}

func TestKeyIsDeletedWhenWindowPasses(t *testing.T) {
	clock := keyfortest.NewClock(time.Now())
	srv := keyfortest.Start(t, keyfortest.WithClock(clock))
	c := srv.KMS()
	md := createKey(t, c, nil)
	keep := createKey(t, c, nil)
	_, err := c.CreateAlias(ctxT(t), &kms.CreateAliasInput{AliasName: aws.String("alias/doomed"), TargetKeyId: md.KeyId})
	mustNoErr(t, err, "CreateAlias")
	ct, err := c.Encrypt(ctxT(t), &kms.EncryptInput{KeyId: md.KeyId, Plaintext: []byte("bye")})
	mustNoErr(t, err, "Encrypt")
	_, err = c.ScheduleKeyDeletion(ctxT(t), &kms.ScheduleKeyDeletionInput{KeyId: md.KeyId, PendingWindowInDays: aws.Int32(7)})
	mustNoErr(t, err, "ScheduleKeyDeletion")

	clock.Advance(6 * 24 * time.Hour)
	srv.RunJobs(t)
	if _, err := c.DescribeKey(ctxT(t), &kms.DescribeKeyInput{KeyId: md.KeyId}); err != nil {
		t.Fatalf("key deleted before its window passed: %v", err)
	}
	clock.Advance(24*time.Hour + time.Minute)
	srv.RunJobs(t)
	_, err = c.DescribeKey(ctxT(t), &kms.DescribeKeyInput{KeyId: md.KeyId})
	wantAPIError(t, err, "NotFoundException", "does not exist")
	aliases, err := c.ListAliases(ctxT(t), &kms.ListAliasesInput{})
	mustNoErr(t, err, "ListAliases")
	for _, a := range aliases.Aliases {
		if aws.ToString(a.AliasName) == "alias/doomed" {
			t.Errorf("alias of the deleted key is still listed")
		}
	}
	_, err = c.Decrypt(ctxT(t), &kms.DecryptInput{CiphertextBlob: ct.CiphertextBlob})
	if err == nil {
		t.Errorf("Decrypt under a deleted key succeeded")
	}
	if _, err := c.DescribeKey(ctxT(t), &kms.DescribeKeyInput{KeyId: keep.KeyId}); err != nil {
		t.Errorf("other key affected by deletion: %v", err)
	}
}

func TestUpdateKeyDescription(t *testing.T) {
	srv := keyfortest.Start(t)
	c := srv.KMS()
	id := createKey(t, c, &kms.CreateKeyInput{Description: aws.String("old")}).KeyId
	_, err := c.UpdateKeyDescription(ctxT(t), &kms.UpdateKeyDescriptionInput{KeyId: id, Description: aws.String("new")})
	mustNoErr(t, err, "UpdateKeyDescription")
	out, err := c.DescribeKey(ctxT(t), &kms.DescribeKeyInput{KeyId: id})
	mustNoErr(t, err, "DescribeKey")
	if got := aws.ToString(out.KeyMetadata.Description); got != "new" {
		t.Errorf("Description = %q, want new", got)
	}
	_, err = c.UpdateKeyDescription(ctxT(t), &kms.UpdateKeyDescriptionInput{KeyId: id, Description: aws.String(strings.Repeat("d", 8193))})
	wantAPIError(t, err, "ValidationException", "at 'description' failed to satisfy constraint: Member must have length less than or equal to 8192")
}

func TestKeysSurviveRestart(t *testing.T) {
	srv := keyfortest.Start(t)
	c := srv.KMS()
	md := createKey(t, c, &kms.CreateKeyInput{Description: aws.String("durable"), Tags: []types.Tag{{TagKey: aws.String("team"), TagValue: aws.String("core")}}})
	_, err := c.CreateAlias(ctxT(t), &kms.CreateAliasInput{AliasName: aws.String("alias/durable"), TargetKeyId: md.KeyId})
	mustNoErr(t, err, "CreateAlias")
	ct, err := c.Encrypt(ctxT(t), &kms.EncryptInput{KeyId: aws.String("alias/durable"), Plaintext: []byte("persist me")})
	mustNoErr(t, err, "Encrypt")

	srv.Restart(t)
	c = srv.KMS()
	out, err := c.DescribeKey(ctxT(t), &kms.DescribeKeyInput{KeyId: aws.String("alias/durable")})
	mustNoErr(t, err, "DescribeKey after restart")
	if aws.ToString(out.KeyMetadata.Description) != "durable" {
		t.Errorf("Description after restart = %q", aws.ToString(out.KeyMetadata.Description))
	}
	pt, err := c.Decrypt(ctxT(t), &kms.DecryptInput{CiphertextBlob: ct.CiphertextBlob})
	mustNoErr(t, err, "Decrypt after restart")
	if string(pt.Plaintext) != "persist me" {
		t.Errorf("Decrypt after restart = %q", pt.Plaintext)
	}
	tags, err := c.ListResourceTags(ctxT(t), &kms.ListResourceTagsInput{KeyId: md.KeyId})
	mustNoErr(t, err, "ListResourceTags after restart")
	if len(tags.Tags) != 1 || aws.ToString(tags.Tags[0].TagKey) != "team" {
		t.Errorf("tags after restart = %+v", tags.Tags)
	}
}
