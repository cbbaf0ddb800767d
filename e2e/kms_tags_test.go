package e2e

import (
	"fmt"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"

	"github.com/keyfort/keyfort/internal/keyfortest"
)

func tg(k, v string) types.Tag { return types.Tag{TagKey: aws.String(k), TagValue: aws.String(v)} }

func listTags(t *testing.T, c *kms.Client, id *string) map[string]string {
	t.Helper()
	out, err := c.ListResourceTags(ctxT(t), &kms.ListResourceTagsInput{KeyId: id})
	mustNoErr(t, err, "ListResourceTags")
	m := map[string]string{}
	for _, x := range out.Tags {
		m[aws.ToString(x.TagKey)] = aws.ToString(x.TagValue)
	}
	return m
}

func TestTagging(t *testing.T) {
	srv := keyfortest.Start(t)
	c := srv.KMS()
	md := createKey(t, c, &kms.CreateKeyInput{Tags: []types.Tag{tg("env", "dev"), tg("Env", "Dev")}})
	if got := listTags(t, c, md.KeyId); len(got) != 2 || got["env"] != "dev" || got["Env"] != "Dev" {
		t.Fatalf("tags from CreateKey = %v (keys are case-sensitive)", got)
	}
	_, err := c.TagResource(ctxT(t), &kms.TagResourceInput{KeyId: md.Arn, Tags: []types.Tag{tg("env", "prod"), tg("empty", "")}})
	mustNoErr(t, err, "TagResource by ARN")
	got := listTags(t, c, md.KeyId)
	if got["env"] != "prod" || got["Env"] != "Dev" || len(got) != 3 {
		t.Errorf("after TagResource tags = %v, want env replaced and empty value kept", got)
	}
	if v, ok := got["empty"]; !ok || v != "" {
		t.Errorf("empty tag value not kept: %v", got)
	}
	_, err = c.UntagResource(ctxT(t), &kms.UntagResourceInput{KeyId: md.KeyId, TagKeys: []string{"Env", "not-there"}})
	mustNoErr(t, err, "UntagResource")
	if got := listTags(t, c, md.KeyId); len(got) != 2 || got["env"] != "prod" {
		t.Errorf("after UntagResource tags = %v", got)
	}
}

func TestTagRefusals(t *testing.T) {
	srv := keyfortest.Start(t)
	c := srv.KMS()
	md := createKey(t, c, &kms.CreateKeyInput{Tags: []types.Tag{tg("keep", "me")}})
	cases := []struct {
		name string
		tags []types.Tag
		code string
		msg  string
	}{
		{"reserved prefix", []types.Tag{tg("aws:owner", "x")}, "TagException", ""},
		{"reserved prefix any case", []types.Tag{tg("AWS:Owner", "x")}, "TagException", ""},
		{"duplicate keys", []types.Tag{tg("a", "1"), tg("a", "2")}, "TagException", ""},
		{"key too long", []types.Tag{tg(strings.Repeat("k", 129), "v")}, "ValidationException", "tags.1.member.tagKey"},
		{"value too long", []types.Tag{tg("k", strings.Repeat("v", 257))}, "ValidationException", "tags.1.member.tagValue"},
		{"empty key", []types.Tag{tg("", "v")}, "ValidationException", "Member must have length greater than or equal to 1"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := c.TagResource(ctxT(t), &kms.TagResourceInput{KeyId: md.KeyId, Tags: tc.tags})
			wantAPIError(t, err, tc.code, tc.msg)
			if got := listTags(t, c, md.KeyId); len(got) != 1 || got["keep"] != "me" {
				t.Errorf("refused TagResource changed tags: %v", got)
			}
			_, err = c.CreateKey(ctxT(t), &kms.CreateKeyInput{Tags: tc.tags})
			wantAPIError(t, err, tc.code, "")
		})
	}
	_, err := c.UntagResource(ctxT(t), &kms.UntagResourceInput{KeyId: md.KeyId, TagKeys: []string{"aws:x"}})
	wantAPIError(t, err, "TagException", "")
}

func TestTagLimit(t *testing.T) {
	srv := keyfortest.Start(t)
	c := srv.KMS()
	md := createKey(t, c, nil)
	var tags []types.Tag
	for i := range 50 {
		tags = append(tags, tg(fmt.Sprintf("k%02d", i), "v"))
	}
	_, err := c.TagResource(ctxT(t), &kms.TagResourceInput{KeyId: md.KeyId, Tags: tags})
	mustNoErr(t, err, "TagResource 50 tags")
	_, err = c.TagResource(ctxT(t), &kms.TagResourceInput{KeyId: md.KeyId, Tags: []types.Tag{tg("k00", "replaced")}})
	mustNoErr(t, err, "replacing a tag at the limit")
	_, err = c.TagResource(ctxT(t), &kms.TagResourceInput{KeyId: md.KeyId, Tags: []types.Tag{tg("one-more", "v")}})
	wantAPIError(t, err, "LimitExceededException", "")
	if got := listTags(t, c, md.KeyId); len(got) != 50 || got["k00"] != "replaced" {
		t.Errorf("after refused 51st tag: %d tags, k00=%q", len(got), got["k00"])
	}
	// AWS answers CreateKey with 51 tags with TagException "Too many tags"
	// (LocalStack's AWS-validated snapshot
	// test_create_key_with_too_many_tags_raises_error).
	_, err = c.CreateKey(ctxT(t), &kms.CreateKeyInput{Tags: append(tags, tg("x", "y"))})
	wantExactAPIError(t, err, "TagException", "Too many tags")

	// Paging through 50 tags, sorted by key.
	var seen []string
	var marker *string
	for {
		out, err := c.ListResourceTags(ctxT(t), &kms.ListResourceTagsInput{KeyId: md.KeyId, Limit: aws.Int32(20), Marker: marker})
		mustNoErr(t, err, "ListResourceTags page")
		for _, x := range out.Tags {
			seen = append(seen, aws.ToString(x.TagKey))
		}
		if !out.Truncated {
			break
		}
		marker = out.NextMarker
	}
	if len(seen) != 50 || seen[0] != "k00" || seen[49] != "k49" {
		t.Errorf("paged tags = %d, first %v", len(seen), seen[:min(3, len(seen))])
	}
}

func TestTaggingKeyStates(t *testing.T) {
	srv := keyfortest.Start(t)
	c := srv.KMS()
	md := createKey(t, c, nil)
	_, err := c.DisableKey(ctxT(t), &kms.DisableKeyInput{KeyId: md.KeyId})
	mustNoErr(t, err, "DisableKey")
	_, err = c.TagResource(ctxT(t), &kms.TagResourceInput{KeyId: md.KeyId, Tags: []types.Tag{tg("a", "b")}})
	mustNoErr(t, err, "TagResource on a disabled key")
	_, err = c.ScheduleKeyDeletion(ctxT(t), &kms.ScheduleKeyDeletionInput{KeyId: md.KeyId, PendingWindowInDays: aws.Int32(7)})
	mustNoErr(t, err, "ScheduleKeyDeletion")
	_, err = c.TagResource(ctxT(t), &kms.TagResourceInput{KeyId: md.KeyId, Tags: []types.Tag{tg("c", "d")}})
	wantAPIError(t, err, "KMSInvalidStateException", "pending deletion")
	_, err = c.UntagResource(ctxT(t), &kms.UntagResourceInput{KeyId: md.KeyId, TagKeys: []string{"a"}})
	wantAPIError(t, err, "KMSInvalidStateException", "pending deletion")
	if got := listTags(t, c, md.KeyId); len(got) != 1 || got["a"] != "b" {
		t.Errorf("ListResourceTags on a pending-deletion key = %v", got)
	}
	_, err = c.TagResource(ctxT(t), &kms.TagResourceInput{KeyId: aws.String("11111111-2222-4333-8444-555555555555"), Tags: []types.Tag{tg("a", "b")}})
	wantAPIError(t, err, "NotFoundException", "")
	_, err = srv.KMS("eu-west-1").TagResource(ctxT(t), &kms.TagResourceInput{KeyId: md.Arn, Tags: []types.Tag{tg("a", "b")}})
	wantAPIError(t, err, "NotFoundException", "")
}
