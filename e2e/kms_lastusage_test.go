package e2e

import (
	"slices"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/keyfort/keyfort/internal/keyfortest"
	"github.com/keyfort/keyfort/internal/storage/postgres/pgtest"
)

// TestGetKeyLastUsage checks GetKeyLastUsage as AWS documents it: nothing
// for a key never used, then the last successful cryptographic operation
// with its time, request id and the id of the audit event that recorded it
// (both keys of a ReEncrypt; Secrets Manager's calls on a caller's behalf);
// failed operations leave it unchanged; it survives a restart. On SQLite and
// on PostgreSQL.
func TestGetKeyLastUsage(t *testing.T) {
	t.Run("sqlite", func(t *testing.T) { testGetKeyLastUsage(t) })
	t.Run("postgres", func(t *testing.T) {
		dsn := pgtest.DSN(t)
		testGetKeyLastUsage(t, keyfortest.WithStore(dsn))
	})
}

func testGetKeyLastUsage(t *testing.T, opts ...keyfortest.Option) {
	srv := startAudited(t, opts...)
	ctx := ctxT(t)
	c := srv.KMS()
	before := time.Now().Add(-time.Second)
	k1, err := c.CreateKey(ctx, &kms.CreateKeyInput{})
	mustNoErr(t, err, "CreateKey")
	k2, err := c.CreateKey(ctx, &kms.CreateKeyInput{})
	mustNoErr(t, err, "CreateKey")
	arn1, arn2 := aws.ToString(k1.KeyMetadata.Arn), aws.ToString(k2.KeyMetadata.Arn)

	got, err := c.GetKeyLastUsage(ctx, &kms.GetKeyLastUsageInput{KeyId: k1.KeyMetadata.KeyId})
	mustNoErr(t, err, "GetKeyLastUsage")
	if aws.ToString(got.KeyId) != arn1 || got.KeyLastUsage != nil || got.KeyCreationDate == nil || got.TrackingStartDate == nil ||
		!got.KeyCreationDate.Equal(aws.ToTime(k1.KeyMetadata.CreationDate)) || got.TrackingStartDate.After(*got.KeyCreationDate) || got.TrackingStartDate.Before(before) {
		t.Fatalf("GetKeyLastUsage of an unused key = KeyId %v, KeyLastUsage %+v, KeyCreationDate %v, TrackingStartDate %v; want the ARN, no usage, the key's creation date, tracking started before it",
			aws.ToString(got.KeyId), got.KeyLastUsage, got.KeyCreationDate, got.TrackingStartDate)
	}

	// lastUse returns the key's last use and checks it against the audit
	// event it names.
	lastUse := func(keyID, wantOp string) string {
		t.Helper()
		out, err := c.GetKeyLastUsage(ctx, &kms.GetKeyLastUsageInput{KeyId: aws.String(keyID)})
		mustNoErr(t, err, "GetKeyLastUsage")
		u := out.KeyLastUsage
		if u == nil {
			t.Fatalf("GetKeyLastUsage(%s): no KeyLastUsage, want %s", keyID, wantOp)
		}
		if string(u.Operation) != wantOp || u.Timestamp == nil || u.Timestamp.Before(before) || u.Timestamp.After(time.Now().Add(time.Second)) {
			t.Errorf("GetKeyLastUsage(%s) = %s at %v, want %s now", keyID, u.Operation, u.Timestamp, wantOp)
		}
		var found *auditEvent
		events := readAudit(t, srv)
		for i := range events {
			if events[i].EventID == aws.ToString(u.CloudTrailEventId) {
				found = &events[i]
			}
		}
		if found == nil || found.EventName != wantOp || found.EventSource != "kms.amazonaws.com" || found.RequestID != aws.ToString(u.KmsRequestId) || found.ErrorCode != "" {
			t.Errorf("GetKeyLastUsage(%s) names event %q, request %q; the trail has %+v", keyID, aws.ToString(u.CloudTrailEventId), aws.ToString(u.KmsRequestId), found)
		}
		return aws.ToString(u.CloudTrailEventId)
	}

	enc, err := c.Encrypt(ctx, &kms.EncryptInput{KeyId: k1.KeyMetadata.KeyId, Plaintext: []byte("last usage")})
	mustNoErr(t, err, "Encrypt")
	lastUse(arn1, "Encrypt")
	// A failed operation is not a use.
	_, err = c.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: enc.CiphertextBlob, EncryptionContext: map[string]string{"wrong": "context"}})
	wantAPIError(t, err, "InvalidCiphertextException", "")
	lastUse(arn1, "Encrypt")
	// ReEncrypt is a use of both keys, by the same event.
	_, err = c.ReEncrypt(ctx, &kms.ReEncryptInput{CiphertextBlob: enc.CiphertextBlob, DestinationKeyId: k2.KeyMetadata.KeyId})
	mustNoErr(t, err, "ReEncrypt")
	if a, b := lastUse(arn1, "ReEncrypt"), lastUse(arn2, "ReEncrypt"); a != b {
		t.Errorf("ReEncrypt's uses name events %s and %s, want the same", a, b)
	}
	// Secrets Manager's data key is a use of the secret's key, by the KMS
	// event recorded for it.
	_, err = srv.SecretsManager().CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String("usage"), KmsKeyId: aws.String(arn2), SecretString: aws.String("v")})
	mustNoErr(t, err, "CreateSecret")
	id := lastUse(arn2, "GenerateDataKey")
	events := readAudit(t, srv)
	if i := slices.IndexFunc(events, func(e auditEvent) bool { return e.EventID == id }); i < 0 || events[i].UserIdentity.InvokedBy != "secretsmanager.amazonaws.com" {
		t.Errorf("the GenerateDataKey use names event %s, want Secrets Manager's KMS event", id)
	}

	// What was noted in memory is written at shutdown and read back.
	srv.Restart(t)
	c = srv.KMS()
	lastUse(arn1, "ReEncrypt")
	lastUse(arn2, "GenerateDataKey")
	after, err := c.GetKeyLastUsage(ctx, &kms.GetKeyLastUsageInput{KeyId: aws.String(arn1)})
	mustNoErr(t, err, "GetKeyLastUsage")
	if !after.TrackingStartDate.Equal(*got.TrackingStartDate) {
		t.Errorf("TrackingStartDate after a restart = %v, want %v (when tracking began)", after.TrackingStartDate, got.TrackingStartDate)
	}

	_, err = c.GetKeyLastUsage(ctx, &kms.GetKeyLastUsageInput{KeyId: aws.String("1234abcd-12ab-34cd-56ef-1234567890ab")})
	wantAPIError(t, err, "NotFoundException", "")
}
