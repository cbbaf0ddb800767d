package e2e

import (
	"crypto/rand"
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudtrail"
	cttypes "github.com/aws/aws-sdk-go-v2/service/cloudtrail/types"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/keyfort/keyfort/internal/keyfortest"
	"github.com/keyfort/keyfort/internal/storage/postgres/pgtest"
)

// TestLookupEventsFindsEveryCall makes KMS and Secrets Manager calls and
// finds them with CloudTrail's LookupEvents through the SDK, by every
// lookup attribute, page by page, newest first, each with its CloudTrail
// event; and GetKeyLastUsage's event id finds its Encrypt. On PostgreSQL,
// two servers sharing the store each see the other's events.
func TestLookupEventsFindsEveryCall(t *testing.T) {
	t.Run("sqlite", func(t *testing.T) {
		srv := keyfortest.Start(t)
		testLookupEvents(t, srv, srv)
	})
	t.Run("postgres", func(t *testing.T) {
		dsn := pgtest.DSN(t)
		key := make([]byte, 32)
		_, _ = rand.Read(key)
		a := keyfortest.Start(t, keyfortest.WithStore(dsn), keyfortest.WithRootKey(key))
		b := keyfortest.Start(t, keyfortest.WithNodeOf(a), keyfortest.WithRootKey(key))
		testLookupEvents(t, a, b)
	})
}

// lookupAll pages through LookupEvents with pages of size and returns the
// events, checking that they come newest first.
func lookupAll(t *testing.T, ct *cloudtrail.Client, in cloudtrail.LookupEventsInput, size int32) []cttypes.Event {
	t.Helper()
	in.MaxResults = aws.Int32(size)
	var out []cttypes.Event
	for page := 0; ; page++ {
		res, err := ct.LookupEvents(ctxT(t), &in)
		mustNoErr(t, err, "LookupEvents")
		if len(res.Events) > int(size) {
			t.Fatalf("page of %d events, MaxResults %d", len(res.Events), size)
		}
		out = append(out, res.Events...)
		if res.NextToken == nil {
			break
		}
		if page > 1000 {
			t.Fatal("LookupEvents pages never end")
		}
		in.NextToken = res.NextToken
	}
	for i := 1; i < len(out); i++ {
		if out[i].EventTime.After(*out[i-1].EventTime) {
			t.Fatalf("event %d (%v) is newer than event %d (%v): not newest first", i, out[i].EventTime, i-1, out[i-1].EventTime)
		}
	}
	return out
}

func names(evs []cttypes.Event) []string {
	var out []string
	for _, e := range evs {
		out = append(out, aws.ToString(e.EventName))
	}
	return out
}

func testLookupEvents(t *testing.T, writer, reader *keyfortest.Server) {
	ctx := ctxT(t)
	start := time.Now().Add(-time.Second)
	c := writer.KMS()
	k1 := createKey(t, c, &kms.CreateKeyInput{Description: aws.String("looked up")})
	k2 := createKey(t, c, &kms.CreateKeyInput{})
	_, err := c.TagResource(ctx, &kms.TagResourceInput{KeyId: k1.KeyId, Tags: []types.Tag{tg("team", "audit")}})
	mustNoErr(t, err, "TagResource")
	_, err = c.Encrypt(ctx, &kms.EncryptInput{KeyId: k1.KeyId, Plaintext: []byte("x")})
	mustNoErr(t, err, "Encrypt")
	_, err = c.ScheduleKeyDeletion(ctx, &kms.ScheduleKeyDeletionInput{KeyId: k2.KeyId, PendingWindowInDays: aws.Int32(7)})
	mustNoErr(t, err, "ScheduleKeyDeletion")
	sm := writer.SecretsManager()
	sec := createSecret(t, sm, "looked/up", "v")
	_, err = sm.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: sec.ARN})
	mustNoErr(t, err, "GetSecretValue")
	_, err = c.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String("alias/none")})
	wantAPIError(t, err, "NotFoundException", "")

	ct := reader.CloudTrail()
	// Another node's reads reach the shared store a moment after their
	// response (its shipper gathers them for a few milliseconds).
	var all []cttypes.Event
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		all = lookupAll(t, ct, cloudtrail.LookupEventsInput{StartTime: aws.Time(start)}, 50)
		if slices.Contains(names(all), "DescribeKey") || time.Now().After(deadline) {
			break
		}
	}
	var kept []cttypes.Event
	for _, e := range all {
		if aws.ToString(e.EventName) != "LookupEvents" {
			kept = append(kept, e)
		}
	}
	all = kept
	paged := lookupAll(t, ct, cloudtrail.LookupEventsInput{StartTime: aws.Time(start)}, 2)
	// The lookups' own events come after: compare what both saw.
	var allIDs, pagedIDs []string
	for _, e := range all {
		allIDs = append(allIDs, aws.ToString(e.EventId))
	}
	for _, e := range paged {
		if aws.ToString(e.EventName) != "LookupEvents" {
			pagedIDs = append(pagedIDs, aws.ToString(e.EventId))
		}
	}
	if !slices.Equal(allIDs, pagedIDs) {
		t.Errorf("pages of 2 found %d events, one page %d: %v vs %v", len(pagedIDs), len(allIDs), names(paged), names(all))
	}
	for _, want := range []string{"CreateKey", "TagResource", "Encrypt", "ScheduleKeyDeletion", "CreateSecret", "GetSecretValue", "DescribeKey", "GenerateDataKey", "Decrypt"} {
		if !slices.Contains(names(all), want) {
			t.Errorf("LookupEvents finds no %s event; it found %v", want, names(all))
		}
	}

	// Each event's CloudTrailEvent is the event, as the files hold it.
	var createKey1 *cttypes.Event
	for i, e := range all {
		var ev struct {
			EventID          string `json:"eventID"`
			EventName        string `json:"eventName"`
			EventSource      string `json:"eventSource"`
			ReadOnly         bool   `json:"readOnly"`
			ErrorCode        string `json:"errorCode"`
			ResponseElements *struct {
				KeyMetadata *struct {
					KeyID string `json:"keyId"`
				} `json:"keyMetadata"`
			} `json:"responseElements"`
		}
		if err := json.Unmarshal([]byte(aws.ToString(e.CloudTrailEvent)), &ev); err != nil {
			t.Fatalf("CloudTrailEvent of %s is not JSON: %v", aws.ToString(e.EventName), err)
		}
		if ev.EventID != aws.ToString(e.EventId) || ev.EventName != aws.ToString(e.EventName) ||
			ev.EventSource != aws.ToString(e.EventSource) || (ev.ReadOnly != (aws.ToString(e.ReadOnly) == "true")) {
			t.Errorf("CloudTrailEvent %+v disagrees with the event's fields %+v", ev, e)
		}
		if aws.ToString(e.Username) != "root" || aws.ToString(e.AccessKeyId) != keyfortest.DefaultAccessKey {
			t.Errorf("%s: Username %q, AccessKeyId %q", ev.EventName, aws.ToString(e.Username), aws.ToString(e.AccessKeyId))
		}
		if ev.EventName == "CreateKey" && ev.ResponseElements != nil && ev.ResponseElements.KeyMetadata != nil &&
			ev.ResponseElements.KeyMetadata.KeyID == aws.ToString(k1.KeyId) {
			createKey1 = &all[i]
		}
		if ev.EventName == "DescribeKey" && ev.ErrorCode != "NotFoundException" {
			t.Errorf("the failed DescribeKey's event has errorCode %q", ev.ErrorCode)
		}
	}
	if createKey1 == nil {
		t.Fatal("no CreateKey event whose responseElements name the key it made")
	}

	attr := func(k cttypes.LookupAttributeKey, v string) cloudtrail.LookupEventsInput {
		return cloudtrail.LookupEventsInput{StartTime: aws.Time(start),
			LookupAttributes: []cttypes.LookupAttribute{{AttributeKey: k, AttributeValue: aws.String(v)}}}
	}
	arn1 := aws.ToString(k1.Arn)
	tests := []struct {
		name string
		in   cloudtrail.LookupEventsInput
		want []string // event names (CloudTrail times are whole seconds: order within one is not checked)
	}{
		{"EventId", attr(cttypes.LookupAttributeKeyEventId, aws.ToString(createKey1.EventId)), []string{"CreateKey"}},
		{"EventName", attr(cttypes.LookupAttributeKeyEventName, "CreateKey"), []string{"CreateKey", "CreateKey"}},
		{"ResourceName", attr(cttypes.LookupAttributeKeyResourceName, arn1), []string{"Encrypt", "TagResource", "CreateKey"}},
		{"ResourceType", attr(cttypes.LookupAttributeKeyResourceType, "AWS::KMS::Key"), nil},
		{"ResourceName of a secret", attr(cttypes.LookupAttributeKeyResourceName, aws.ToString(sec.ARN)), []string{"GetSecretValue", "CreateSecret"}},
		{"EventSource", attr(cttypes.LookupAttributeKeyEventSource, "secretsmanager.amazonaws.com"), []string{"GetSecretValue", "CreateSecret"}},
		{"ReadOnly false", attr(cttypes.LookupAttributeKeyReadOnly, "false"), []string{"CreateSecret", "ScheduleKeyDeletion", "TagResource", "CreateKey", "CreateKey"}},
		{"Username", attr(cttypes.LookupAttributeKeyUsername, "root"), nil},
		{"AccessKeyId", attr(cttypes.LookupAttributeKeyAccessKeyId, keyfortest.DefaultAccessKey), nil},
		{"AccessKeyId of no one", attr(cttypes.LookupAttributeKeyAccessKeyId, "AKIANOBODY"), []string{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := lookupAll(t, ct, tc.in, 50)
			var gotNames []string
			for _, e := range got {
				if aws.ToString(e.EventName) != "LookupEvents" {
					gotNames = append(gotNames, aws.ToString(e.EventName))
				}
			}
			if tc.want == nil {
				if len(gotNames) < 5 {
					t.Errorf("found %v, want the calls' events", gotNames)
				}
				return
			}
			if len(tc.want) == 0 && len(gotNames) == 0 {
				return
			}
			slices.Sort(gotNames)
			want := slices.Sorted(slices.Values(tc.want))
			if !slices.Equal(gotNames, want) {
				t.Errorf("found %v, want %v", gotNames, want)
			}
		})
	}

	// GetKeyLastUsage names the Encrypt event that LookupEvents finds.
	u, err := c.GetKeyLastUsage(ctx, &kms.GetKeyLastUsageInput{KeyId: k1.KeyId})
	mustNoErr(t, err, "GetKeyLastUsage")
	if u.KeyLastUsage == nil {
		t.Fatal("GetKeyLastUsage: no last usage after Encrypt")
	}
	got := lookupAll(t, ct, attr(cttypes.LookupAttributeKeyEventId, aws.ToString(u.KeyLastUsage.CloudTrailEventId)), 50)
	if len(got) != 1 || aws.ToString(got[0].EventName) != "Encrypt" {
		t.Errorf("LookupEvents(EventId of GetKeyLastUsage) = %v, want the Encrypt", names(got))
	}

	// The writer sees the reader's lookups (on PostgreSQL, another node's).
	var seen []cttypes.Event
	for deadline := time.Now().Add(5 * time.Second); len(seen) == 0 && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		seen = lookupAll(t, writer.CloudTrail(), attr(cttypes.LookupAttributeKeyEventName, "LookupEvents"), 50)
	}
	if len(seen) == 0 {
		t.Error("the writer finds none of the reader's LookupEvents events")
	}

	// Another account sees none of it.
	other := lookupAll(t, reader.CloudTrailAs("444455556666", keyfortest.DefaultRegion), cloudtrail.LookupEventsInput{StartTime: aws.Time(start)}, 50)
	for _, e := range other {
		if aws.ToString(e.EventName) != "LookupEvents" {
			t.Errorf("account 444455556666 sees %s of another account", aws.ToString(e.EventName))
		}
	}
}
