package e2e

import (
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"

	"github.com/keyfort/keyfort/internal/keyfortest"
	"github.com/keyfort/keyfort/internal/storage/postgres/pgtest"
)

// TestKMSOnPostgres drives the KMS core through the SDK on the PostgreSQL
// store (no read cache there): keys, aliases, tags, crypto, rotation,
// restart and the deletion job.
func TestKMSOnPostgres(t *testing.T) {
	dsn := pgtest.DSN(t)
	clock := keyfortest.NewClock(time.Now())
	srv := keyfortest.Start(t, keyfortest.WithStore(dsn), keyfortest.WithClock(clock))
	c := srv.KMS()
	md := createKey(t, c, &kms.CreateKeyInput{Description: aws.String("pg"), Tags: []types.Tag{tg("team", "db")}})
	_, err := c.CreateAlias(ctxT(t), &kms.CreateAliasInput{AliasName: aws.String("alias/pg"), TargetKeyId: md.KeyId})
	mustNoErr(t, err, "CreateAlias")
	enc, err := c.Encrypt(ctxT(t), &kms.EncryptInput{KeyId: aws.String("alias/pg"), Plaintext: []byte("on postgres"), EncryptionContext: map[string]string{"k": "v"}})
	mustNoErr(t, err, "Encrypt")
	_, err = c.TagResource(ctxT(t), &kms.TagResourceInput{KeyId: md.KeyId, Tags: []types.Tag{tg("team", "platform")}})
	mustNoErr(t, err, "TagResource")
	_, err = c.RotateKeyOnDemand(ctxT(t), &kms.RotateKeyOnDemandInput{KeyId: md.KeyId})
	mustNoErr(t, err, "RotateKeyOnDemand")
	_, err = c.DisableKey(ctxT(t), &kms.DisableKeyInput{KeyId: md.KeyId})
	mustNoErr(t, err, "DisableKey")
	_, err = c.Encrypt(ctxT(t), &kms.EncryptInput{KeyId: md.KeyId, Plaintext: []byte("x")})
	wantAPIError(t, err, "DisabledException", "") // no stale cached state on the shared store
	_, err = c.EnableKey(ctxT(t), &kms.EnableKeyInput{KeyId: md.KeyId})
	mustNoErr(t, err, "EnableKey")

	srv.Restart(t)
	c = srv.KMS()
	dec, err := c.Decrypt(ctxT(t), &kms.DecryptInput{CiphertextBlob: enc.CiphertextBlob, EncryptionContext: map[string]string{"k": "v"}})
	mustNoErr(t, err, "Decrypt after restart")
	if string(dec.Plaintext) != "on postgres" {
		t.Errorf("Decrypt = %q", dec.Plaintext)
	}
	if got := listTags(t, c, md.KeyId); got["team"] != "platform" {
		t.Errorf("tags after restart = %v", got)
	}
	_, err = c.ScheduleKeyDeletion(ctxT(t), &kms.ScheduleKeyDeletionInput{KeyId: md.KeyId, PendingWindowInDays: aws.Int32(7)})
	mustNoErr(t, err, "ScheduleKeyDeletion")
	clock.Advance(8 * 24 * time.Hour)
	srv.RunJobs(t)
	_, err = c.DescribeKey(ctxT(t), &kms.DescribeKeyInput{KeyId: md.KeyId})
	wantAPIError(t, err, "NotFoundException", "does not exist")
	_, err = c.DescribeKey(ctxT(t), &kms.DescribeKeyInput{KeyId: aws.String("alias/pg")})
	wantAPIError(t, err, "NotFoundException", "")
}

// TestCacheSeesStateChanges checks, on the embedded store with its read
// cache, that every state change is visible to the very next request.
func TestCacheSeesStateChanges(t *testing.T) {
	srv := keyfortest.Start(t)
	c := srv.KMS()
	a := createKey(t, c, nil)
	b := createKey(t, c, nil)
	_, err := c.CreateAlias(ctxT(t), &kms.CreateAliasInput{AliasName: aws.String("alias/moving"), TargetKeyId: a.KeyId})
	mustNoErr(t, err, "CreateAlias")
	for i := range 20 {
		enc, err := c.Encrypt(ctxT(t), &kms.EncryptInput{KeyId: aws.String("alias/moving"), Plaintext: []byte("x")})
		mustNoErr(t, err, "Encrypt")
		want := a.Arn
		if i%2 == 1 {
			want = b.Arn
		}
		if aws.ToString(enc.KeyId) != aws.ToString(want) {
			t.Fatalf("round %d: alias resolved to %s, want %s (stale cache)", i, aws.ToString(enc.KeyId), aws.ToString(want))
		}
		next := b.KeyId
		if i%2 == 1 {
			next = a.KeyId
		}
		_, err = c.UpdateAlias(ctxT(t), &kms.UpdateAliasInput{AliasName: aws.String("alias/moving"), TargetKeyId: next})
		mustNoErr(t, err, "UpdateAlias")
		_, err = c.DisableKey(ctxT(t), &kms.DisableKeyInput{KeyId: a.KeyId})
		mustNoErr(t, err, "DisableKey")
		_, err = c.Encrypt(ctxT(t), &kms.EncryptInput{KeyId: a.KeyId, Plaintext: []byte("x")})
		wantAPIError(t, err, "DisabledException", "")
		_, err = c.EnableKey(ctxT(t), &kms.EnableKeyInput{KeyId: a.KeyId})
		mustNoErr(t, err, "EnableKey")
	}
}

// TestKMSImportAndMultiRegionOnPostgres: imported material and a
// multi-Region key's replicas on the PostgreSQL store (transactions that
// write several regions; the job that deletes replicas one after another
// in one batch and expires material).
func TestKMSImportAndMultiRegionOnPostgres(t *testing.T) {
	dsn := pgtest.DSN(t)
	clock := keyfortest.NewClock(time.Now())
	srv := keyfortest.Start(t, keyfortest.WithStore(dsn), keyfortest.WithClock(clock))
	use1, euw1, usw2 := srv.KMS("us-east-1"), srv.KMS("eu-west-1"), srv.KMS("us-west-2")
	ctx := ctxT(t)

	imp := createKey(t, use1, &kms.CreateKeyInput{Origin: types.OriginTypeExternal})
	validTo := clock.Now().Add(48 * time.Hour)
	_, err := importMaterial(t, use1, aws.ToString(imp.KeyId), types.AlgorithmSpecRsaAesKeyWrapSha256, types.WrappingKeySpecRsa2048, randomBytes(t, 32),
		&kms.ImportKeyMaterialInput{ExpirationModel: types.ExpirationModelTypeKeyMaterialExpires, ValidTo: aws.Time(validTo)})
	mustNoErr(t, err, "ImportKeyMaterial")

	md := createKey(t, use1, &kms.CreateKeyInput{MultiRegion: aws.Bool(true)})
	for _, r := range []string{"eu-west-1", "us-west-2"} {
		_, err = use1.ReplicateKey(ctx, &kms.ReplicateKeyInput{KeyId: md.KeyId, ReplicaRegion: aws.String(r)})
		mustNoErr(t, err, "ReplicateKey "+r)
	}
	_, err = use1.RotateKeyOnDemand(ctx, &kms.RotateKeyOnDemandInput{KeyId: md.KeyId})
	mustNoErr(t, err, "RotateKeyOnDemand")
	enc, err := use1.Encrypt(ctx, &kms.EncryptInput{KeyId: md.KeyId, Plaintext: []byte("pg mrk")})
	mustNoErr(t, err, "Encrypt")
	srv.Restart(t)
	use1, euw1, usw2 = srv.KMS("us-east-1"), srv.KMS("eu-west-1"), srv.KMS("us-west-2")
	for _, c := range []*kms.Client{euw1, usw2} {
		dec, err := c.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: enc.CiphertextBlob})
		mustNoErr(t, err, "Decrypt in a replica region")
		if string(dec.Plaintext) != "pg mrk" {
			t.Fatalf("Decrypt = %q", dec.Plaintext)
		}
	}
	_, err = use1.ScheduleKeyDeletion(ctx, &kms.ScheduleKeyDeletionInput{KeyId: md.KeyId, PendingWindowInDays: aws.Int32(7)})
	mustNoErr(t, err, "ScheduleKeyDeletion of the primary")
	for _, c := range []*kms.Client{euw1, usw2} {
		_, err = c.ScheduleKeyDeletion(ctx, &kms.ScheduleKeyDeletionInput{KeyId: md.KeyId, PendingWindowInDays: aws.Int32(7)})
		mustNoErr(t, err, "ScheduleKeyDeletion of a replica")
	}
	clock.Advance(8 * 24 * time.Hour)
	srv.RunJobs(t)
	if d := describe(t, use1, aws.ToString(md.KeyId)); d.KeyState != types.KeyStatePendingDeletion || len(d.MultiRegionConfiguration.ReplicaKeys) != 0 {
		t.Fatalf("primary after its replicas were deleted: %s, %d replicas", d.KeyState, len(d.MultiRegionConfiguration.ReplicaKeys))
	}
	if d := describe(t, use1, aws.ToString(imp.KeyId)); d.KeyState != types.KeyStatePendingImport {
		t.Fatalf("imported key after its ValidTo: %s", d.KeyState)
	}
}
