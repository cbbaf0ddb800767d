package e2e

import (
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"

	"github.com/keyfort/keyfort/internal/keyfortest"
)

func TestAliases(t *testing.T) {
	srv := keyfortest.Start(t)
	c := srv.KMS()
	k1 := createKey(t, c, nil)
	k2 := createKey(t, c, nil)

	_, err := c.CreateAlias(ctxT(t), &kms.CreateAliasInput{AliasName: aws.String("alias/app"), TargetKeyId: k1.Arn})
	mustNoErr(t, err, "CreateAlias by key ARN")
	_, err = c.CreateAlias(ctxT(t), &kms.CreateAliasInput{AliasName: aws.String("alias/app"), TargetKeyId: k2.KeyId})
	wantAPIError(t, err, "AlreadyExistsException", "arn:aws:kms:us-east-1:123456789012:alias/app")

	aliasARN := "arn:aws:kms:us-east-1:123456789012:alias/app"
	for _, ref := range []string{"alias/app", aliasARN} {
		out, err := c.DescribeKey(ctxT(t), &kms.DescribeKeyInput{KeyId: aws.String(ref)})
		mustNoErr(t, err, "DescribeKey "+ref)
		if aws.ToString(out.KeyMetadata.KeyId) != aws.ToString(k1.KeyId) {
			t.Errorf("DescribeKey(%s) = key %s, want %s", ref, aws.ToString(out.KeyMetadata.KeyId), aws.ToString(k1.KeyId))
		}
	}

	// Aliases are refused where AWS refuses them.
	for _, target := range []string{"alias/app", aliasARN} {
		_, err = c.CreateAlias(ctxT(t), &kms.CreateAliasInput{AliasName: aws.String("alias/other"), TargetKeyId: aws.String(target)})
		wantAPIError(t, err, "ValidationException", "Aliases must refer to keys. Not aliases")
		_, err = c.UpdateAlias(ctxT(t), &kms.UpdateAliasInput{AliasName: aws.String("alias/app"), TargetKeyId: aws.String(target)})
		wantAPIError(t, err, "ValidationException", "Aliases must refer to keys. Not aliases")
	}
	_, err = c.TagResource(ctxT(t), &kms.TagResourceInput{KeyId: aws.String("alias/app"), Tags: []types.Tag{{TagKey: aws.String("a"), TagValue: aws.String("b")}}})
	wantAPIError(t, err, "InvalidArnException", "Key Aliases are not supported for this operation.")

	_, err = c.UpdateAlias(ctxT(t), &kms.UpdateAliasInput{AliasName: aws.String("alias/app"), TargetKeyId: k2.KeyId})
	mustNoErr(t, err, "UpdateAlias")
	out, err := c.DescribeKey(ctxT(t), &kms.DescribeKeyInput{KeyId: aws.String("alias/app")})
	mustNoErr(t, err, "DescribeKey after UpdateAlias")
	if aws.ToString(out.KeyMetadata.KeyId) != aws.ToString(k2.KeyId) {
		t.Errorf("alias points at %s after UpdateAlias, want %s", aws.ToString(out.KeyMetadata.KeyId), aws.ToString(k2.KeyId))
	}
	_, err = c.UpdateAlias(ctxT(t), &kms.UpdateAliasInput{AliasName: aws.String("alias/missing"), TargetKeyId: k2.KeyId})
	wantAPIError(t, err, "NotFoundException", "alias/missing")

	_, err = c.CreateAlias(ctxT(t), &kms.CreateAliasInput{AliasName: aws.String("alias/second"), TargetKeyId: k2.KeyId})
	mustNoErr(t, err, "CreateAlias second")
	list, err := c.ListAliases(ctxT(t), &kms.ListAliasesInput{KeyId: k2.KeyId})
	mustNoErr(t, err, "ListAliases by key")
	var names []string
	for _, a := range list.Aliases {
		names = append(names, aws.ToString(a.AliasName))
		if aws.ToString(a.TargetKeyId) != aws.ToString(k2.KeyId) || !strings.HasPrefix(aws.ToString(a.AliasArn), "arn:aws:kms:us-east-1:123456789012:alias/") || a.CreationDate == nil || a.LastUpdatedDate == nil {
			t.Errorf("ListAliases entry = %+v", a)
		}
	}
	if strings.Join(names, ",") != "alias/app,alias/second" {
		t.Errorf("ListAliases(KeyId=k2) = %v, want [alias/app alias/second]", names)
	}
	list, err = c.ListAliases(ctxT(t), &kms.ListAliasesInput{KeyId: k1.KeyId})
	mustNoErr(t, err, "ListAliases by key 1")
	if len(list.Aliases) != 0 {
		t.Errorf("ListAliases(KeyId=k1) = %d aliases, want 0", len(list.Aliases))
	}
	page, err := c.ListAliases(ctxT(t), &kms.ListAliasesInput{Limit: aws.Int32(1)})
	mustNoErr(t, err, "ListAliases page 1")
	if len(page.Aliases) != 1 || !page.Truncated || page.NextMarker == nil {
		t.Fatalf("ListAliases Limit 1 = %d entries, truncated %v", len(page.Aliases), page.Truncated)
	}
	page2, err := c.ListAliases(ctxT(t), &kms.ListAliasesInput{Limit: aws.Int32(1), Marker: page.NextMarker})
	mustNoErr(t, err, "ListAliases page 2")
	if len(page2.Aliases) != 1 || aws.ToString(page2.Aliases[0].AliasName) == aws.ToString(page.Aliases[0].AliasName) {
		t.Errorf("second page = %+v", page2.Aliases)
	}

	_, err = c.DeleteAlias(ctxT(t), &kms.DeleteAliasInput{AliasName: aws.String("alias/app")})
	mustNoErr(t, err, "DeleteAlias")
	_, err = c.DeleteAlias(ctxT(t), &kms.DeleteAliasInput{AliasName: aws.String("alias/app")})
	wantAPIError(t, err, "NotFoundException", "alias/app")
	if _, err := c.DescribeKey(ctxT(t), &kms.DescribeKeyInput{KeyId: k2.KeyId}); err != nil {
		t.Errorf("key gone after DeleteAlias: %v", err)
	}
}

func TestAliasNameRules(t *testing.T) {
	srv := keyfortest.Start(t)
	c := srv.KMS()
	k := createKey(t, c, nil)
	cases := []struct {
		name, alias, code string
	}{
		{"missing prefix", "app", "ValidationException"},
		{"reserved aws prefix", "alias/aws/mine", "InvalidAliasNameException"},
		{"bad characters", "alias/has space", "ValidationException"},
		{"colon (model pattern allows it, AWS does not)", "alias/my:alias", "ValidationException"},
		{"too long", "alias/" + strings.Repeat("a", 251), "ValidationException"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := c.CreateAlias(ctxT(t), &kms.CreateAliasInput{AliasName: aws.String(tc.alias), TargetKeyId: k.KeyId})
			wantAPIError(t, err, tc.code, "")
		})
	}
	_, err := c.CreateAlias(ctxT(t), &kms.CreateAliasInput{AliasName: aws.String("alias/my:alias"), TargetKeyId: k.KeyId})
	wantAPIError(t, err, "ValidationException", "alias/my:alias contains invalid characters for an alias")
	_, err = c.ScheduleKeyDeletion(ctxT(t), &kms.ScheduleKeyDeletionInput{KeyId: k.KeyId, PendingWindowInDays: aws.Int32(7)})
	mustNoErr(t, err, "ScheduleKeyDeletion")
	_, err = c.CreateAlias(ctxT(t), &kms.CreateAliasInput{AliasName: aws.String("alias/late"), TargetKeyId: k.KeyId})
	wantAPIError(t, err, "KMSInvalidStateException", "pending deletion")
}

func TestAWSManagedKeyCreatedOnFirstUse(t *testing.T) {
	srv := keyfortest.Start(t)
	c := srv.KMS()
	out, err := c.DescribeKey(ctxT(t), &kms.DescribeKeyInput{KeyId: aws.String("alias/aws/secretsmanager")})
	mustNoErr(t, err, "DescribeKey alias/aws/secretsmanager")
	md := out.KeyMetadata
	if md.KeyManager != types.KeyManagerTypeAws || md.KeyState != types.KeyStateEnabled {
		t.Errorf("managed key = manager %s state %s, want AWS Enabled", md.KeyManager, md.KeyState)
	}
	again, err := c.DescribeKey(ctxT(t), &kms.DescribeKeyInput{KeyId: aws.String("alias/aws/secretsmanager")})
	mustNoErr(t, err, "DescribeKey again")
	if aws.ToString(again.KeyMetadata.KeyId) != aws.ToString(md.KeyId) {
		t.Errorf("second DescribeKey created another managed key")
	}
	list, err := c.ListAliases(ctxT(t), &kms.ListAliasesInput{})
	mustNoErr(t, err, "ListAliases")
	found := false
	for _, a := range list.Aliases {
		if aws.ToString(a.AliasName) == "alias/aws/secretsmanager" && aws.ToString(a.TargetKeyId) == aws.ToString(md.KeyId) {
			found = true
		}
	}
	if !found {
		t.Errorf("ListAliases does not show alias/aws/secretsmanager -> %s", aws.ToString(md.KeyId))
	}
	_, err = c.TagResource(ctxT(t), &kms.TagResourceInput{KeyId: md.KeyId, Tags: []types.Tag{{TagKey: aws.String("a"), TagValue: aws.String("b")}}})
	wantAPIError(t, err, "AccessDeniedException", "")
	_, err = c.DeleteAlias(ctxT(t), &kms.DeleteAliasInput{AliasName: aws.String("alias/aws/secretsmanager")})
	wantAPIError(t, err, "AccessDeniedException", "")
	_, err = c.ScheduleKeyDeletion(ctxT(t), &kms.ScheduleKeyDeletionInput{KeyId: md.KeyId})
	wantAPIError(t, err, "AccessDeniedException", "")
	rot, err := c.GetKeyRotationStatus(ctxT(t), &kms.GetKeyRotationStatusInput{KeyId: md.KeyId})
	mustNoErr(t, err, "GetKeyRotationStatus managed")
	if !rot.KeyRotationEnabled || aws.ToInt32(rot.RotationPeriodInDays) != 365 {
		t.Errorf("managed key rotation = %v every %d days, want on, 365", rot.KeyRotationEnabled, aws.ToInt32(rot.RotationPeriodInDays))
	}
	// An AWS managed key is used only through its service: its policy lets
	// the account read its metadata, not use it directly.
	_, err = c.Encrypt(ctxT(t), &kms.EncryptInput{KeyId: aws.String("alias/aws/secretsmanager"), Plaintext: []byte("direct")})
	wantAPIError(t, err, "AccessDeniedException", "User: arn:aws:iam::123456789012:root is not authorized to perform: kms:Encrypt on resource: "+aws.ToString(md.Arn)+" because no resource-based policy allows the kms:Encrypt action")
}

// TestListAliasesShowsPredefinedAWSAliases checks AWS's behaviour of listing
// the aliases of AWS managed keys before the keys exist (no TargetKeyId),
// merged in name order with the account's own aliases across pages.
func TestListAliasesShowsPredefinedAWSAliases(t *testing.T) {
	srv := keyfortest.Start(t)
	c := srv.KMS()
	all := func() []types.AliasListEntry {
		var out []types.AliasListEntry
		var marker *string
		for range 100 {
			page, err := c.ListAliases(ctxT(t), &kms.ListAliasesInput{Limit: aws.Int32(3), Marker: marker})
			mustNoErr(t, err, "ListAliases")
			out = append(out, page.Aliases...)
			if !page.Truncated {
				return out
			}
			marker = page.NextMarker
		}
		t.Fatal("ListAliases did not end")
		return nil
	}
	find := func(list []types.AliasListEntry, name string) []types.AliasListEntry {
		var hits []types.AliasListEntry
		for _, a := range list {
			if aws.ToString(a.AliasName) == name {
				hits = append(hits, a)
			}
		}
		return hits
	}
	before := all()
	sm := find(before, "alias/aws/secretsmanager")
	if len(sm) != 1 || sm[0].TargetKeyId != nil || aws.ToString(sm[0].AliasArn) != "arn:aws:kms:us-east-1:123456789012:alias/aws/secretsmanager" {
		t.Fatalf("before first use, alias/aws/secretsmanager = %+v, want one entry without TargetKeyId", sm)
	}
	k := createKey(t, c, nil)
	for _, name := range []string{"alias/a-first", "alias/aws-not-reserved", "alias/zz-last"} {
		_, err := c.CreateAlias(ctxT(t), &kms.CreateAliasInput{AliasName: aws.String(name), TargetKeyId: k.KeyId})
		mustNoErr(t, err, "CreateAlias "+name)
	}
	managed, err := c.DescribeKey(ctxT(t), &kms.DescribeKeyInput{KeyId: aws.String("alias/aws/secretsmanager")})
	mustNoErr(t, err, "DescribeKey alias/aws/secretsmanager")
	after := all()
	var names []string
	for _, a := range after {
		names = append(names, aws.ToString(a.AliasName))
	}
	if !slices.IsSorted(names) || len(slices.Compact(slices.Clone(names))) != len(names) {
		t.Errorf("paged ListAliases is not sorted and unique: %v", names)
	}
	if len(after) != len(before)+3 {
		t.Errorf("ListAliases has %d entries after adding 3 aliases, want %d", len(after), len(before)+3)
	}
	sm = find(after, "alias/aws/secretsmanager")
	if len(sm) != 1 || aws.ToString(sm[0].TargetKeyId) != aws.ToString(managed.KeyMetadata.KeyId) || sm[0].CreationDate == nil {
		t.Errorf("after first use, alias/aws/secretsmanager = %+v, want its key %s", sm, aws.ToString(managed.KeyMetadata.KeyId))
	}
	for _, name := range []string{"alias/a-first", "alias/aws-not-reserved", "alias/zz-last"} {
		if hits := find(after, name); len(hits) != 1 || aws.ToString(hits[0].TargetKeyId) != aws.ToString(k.KeyId) {
			t.Errorf("ListAliases entry for %s = %+v", name, hits)
		}
	}
}
