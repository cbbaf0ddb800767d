package e2e

// Response shapes checked against AWS's recorded answers: LocalStack's
// AWS-validated snapshot tests (tests/aws/services/kms/test_kms.snapshot.json).
// Only facts are taken from them: which members a successful response has,
// and their constant values. Members are checked on the raw JSON body, since
// the SDK cannot tell an absent member from a zero one.

import (
	"encoding/json"
	"io"
	"net/http"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/keyfort/keyfort/internal/keyfortest"
)

// shapeCall sends one raw JSON 1.1 request and returns the decoded 200 body.
func shapeCall(t *testing.T, srv *keyfortest.Server, service, op, body string) map[string]any {
	t.Helper()
	status, raw := rawCall(t, srv, service, op, body)
	if status != http.StatusOK {
		t.Fatalf("%s %s: HTTP %d %s", service, op, status, raw)
	}
	var out map[string]any
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Fatalf("%s %s: decode %q: %v", service, op, raw, err)
	}
	return out
}

// rawCall posts body as operation op of service ("kms" or "secretsmanager")
// with a development-mode SigV4 header, without an SDK (which would fill in
// or check members), and returns the status and body.
func rawCall(t *testing.T, srv *keyfortest.Server, service, op, body string) (int, []byte) {
	t.Helper()
	prefix := "TrentService"
	if service == "secretsmanager" {
		prefix = "secretsmanager"
	}
	req, err := http.NewRequestWithContext(ctxT(t), http.MethodPost, srv.URL, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	req.Header.Set("X-Amz-Target", prefix+"."+op)
	req.Header.Set("X-Amz-Date", "20260101T000000Z")
	req.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential="+keyfortest.DefaultAccessKey+"/20260101/us-east-1/"+service+"/aws4_request, "+
		"SignedHeaders=content-type;host;x-amz-date;x-amz-target, Signature="+strings.Repeat("0", 64))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, raw
}

// wantMembers asserts that m has exactly the members want.
func wantMembers(t *testing.T, what string, m map[string]any, want ...string) {
	t.Helper()
	got := make([]string, 0, len(m))
	for k := range m {
		got = append(got, k)
	}
	sort.Strings(got)
	want = slices.Clone(want)
	sort.Strings(want)
	if !slices.Equal(got, want) {
		t.Errorf("%s members = %v, want %v", what, got, want)
	}
}

// wantValue asserts that member key of m equals want (compared as JSON values).
func wantValue(t *testing.T, what string, m map[string]any, key string, want any) {
	t.Helper()
	wb, _ := json.Marshal(want)
	var w any
	_ = json.Unmarshal(wb, &w)
	if got, ok := m[key]; !ok || !reflect.DeepEqual(got, w) {
		t.Errorf("%s.%s = %v (present %v), want %v", what, key, got, ok, w)
	}
}

func obj(t *testing.T, v any) map[string]any {
	t.Helper()
	m, ok := v.(map[string]any)
	if !ok {
		t.Fatalf("%v is not a JSON object", v)
	}
	return m
}

// TestKMSShapesSymmetricKey follows test_create_key, test_describe_with_alias_arn,
// test_non_multi_region_keys_should_not_have_multi_region_properties,
// test_encrypt_decrypt_encryption_context, test_re_encrypt,
// TestKMSGenerateKeys::test_generate_data_key(_without_plaintext),
// test_rotate_key_on_demand_*, test_key_enable_rotation_status and test_replicate_key
// (the default key policy).
func TestKMSShapesSymmetricKey(t *testing.T) {
	srv := keyfortest.Start(t)
	kms := func(op, body string) map[string]any { return shapeCall(t, srv, "kms", op, body) }

	metaMembers := []string{"AWSAccountId", "Arn", "CreationDate", "CurrentKeyMaterialId", "CustomerMasterKeySpec",
		"Description", "Enabled", "EncryptionAlgorithms", "KeyId", "KeyManager", "KeySpec", "KeyState", "KeyUsage",
		"MultiRegion", "Origin"}
	checkMeta := func(what string, md map[string]any, enabled bool, state string) {
		t.Helper()
		wantMembers(t, what, md, metaMembers...)
		wantValue(t, what, md, "CustomerMasterKeySpec", "SYMMETRIC_DEFAULT")
		wantValue(t, what, md, "KeySpec", "SYMMETRIC_DEFAULT")
		wantValue(t, what, md, "KeyUsage", "ENCRYPT_DECRYPT")
		wantValue(t, what, md, "EncryptionAlgorithms", []string{"SYMMETRIC_DEFAULT"})
		wantValue(t, what, md, "KeyManager", "CUSTOMER")
		wantValue(t, what, md, "Origin", "AWS_KMS")
		wantValue(t, what, md, "MultiRegion", false)
		wantValue(t, what, md, "Enabled", enabled)
		wantValue(t, what, md, "KeyState", state)
		wantValue(t, what, md, "Description", "test key 123")
	}

	created := kms("CreateKey", `{"Description":"test key 123"}`)
	wantMembers(t, "CreateKey", created, "KeyMetadata")
	md := obj(t, created["KeyMetadata"])
	checkMeta("CreateKey.KeyMetadata", md, true, "Enabled")
	id, arn := md["KeyId"].(string), md["Arn"].(string)
	if !strings.HasSuffix(arn, ":key/"+id) {
		t.Fatalf("Arn %q does not end with the key id %q", arn, id)
	}
	q := func(s string) string { return strings.ReplaceAll(s, "KEY", id) }

	desc := kms("DescribeKey", q(`{"KeyId":"KEY"}`))
	wantMembers(t, "DescribeKey", desc, "KeyMetadata")
	checkMeta("DescribeKey.KeyMetadata", obj(t, desc["KeyMetadata"]), true, "Enabled")

	enc := kms("Encrypt", q(`{"KeyId":"KEY","Plaintext":"aGVsbG8=","EncryptionContext":{"a":"b"}}`))
	wantMembers(t, "Encrypt", enc, "CiphertextBlob", "EncryptionAlgorithm", "KeyId")
	wantValue(t, "Encrypt", enc, "EncryptionAlgorithm", "SYMMETRIC_DEFAULT")
	blob := enc["CiphertextBlob"].(string)

	dec := kms("Decrypt", `{"CiphertextBlob":"`+blob+`","EncryptionContext":{"a":"b"}}`)
	wantMembers(t, "Decrypt", dec, "EncryptionAlgorithm", "KeyId", "KeyMaterialId", "Plaintext")
	wantValue(t, "Decrypt", dec, "EncryptionAlgorithm", "SYMMETRIC_DEFAULT")
	wantValue(t, "Decrypt", dec, "KeyMaterialId", md["CurrentKeyMaterialId"])

	re := kms("ReEncrypt", q(`{"CiphertextBlob":"`+blob+`","SourceEncryptionContext":{"a":"b"},"DestinationKeyId":"KEY"}`))
	for _, m := range []string{"CiphertextBlob", "DestinationEncryptionAlgorithm", "KeyId", "SourceEncryptionAlgorithm", "SourceKeyId"} {
		if _, ok := re[m]; !ok {
			t.Errorf("ReEncrypt has no %s: %v", m, re)
		}
	}
	wantValue(t, "ReEncrypt", re, "SourceEncryptionAlgorithm", "SYMMETRIC_DEFAULT")
	wantValue(t, "ReEncrypt", re, "DestinationEncryptionAlgorithm", "SYMMETRIC_DEFAULT")
	wantValue(t, "ReEncrypt", re, "SourceKeyId", arn)

	gdk := kms("GenerateDataKey", q(`{"KeyId":"KEY","KeySpec":"AES_256"}`))
	for _, m := range []string{"CiphertextBlob", "KeyId", "Plaintext"} {
		if _, ok := gdk[m]; !ok {
			t.Errorf("GenerateDataKey has no %s: %v", m, gdk)
		}
	}
	wantValue(t, "GenerateDataKey", gdk, "KeyId", arn)
	gdkw := kms("GenerateDataKeyWithoutPlaintext", q(`{"KeyId":"KEY","KeySpec":"AES_256"}`))
	if _, ok := gdkw["Plaintext"]; ok {
		t.Errorf("GenerateDataKeyWithoutPlaintext has a Plaintext: %v", gdkw)
	}
	wantValue(t, "GenerateDataKeyWithoutPlaintext", gdkw, "KeyId", arn)

	// Rotation disabled: only KeyId and KeyRotationEnabled, before and after
	// an on-demand rotation.
	st := kms("GetKeyRotationStatus", q(`{"KeyId":"KEY"}`))
	wantMembers(t, "GetKeyRotationStatus(disabled)", st, "KeyId", "KeyRotationEnabled")
	wantValue(t, "GetKeyRotationStatus(disabled)", st, "KeyRotationEnabled", false)
	rot := kms("RotateKeyOnDemand", q(`{"KeyId":"KEY"}`))
	wantMembers(t, "RotateKeyOnDemand", rot, "KeyId")
	st = kms("GetKeyRotationStatus", q(`{"KeyId":"KEY"}`))
	wantMembers(t, "GetKeyRotationStatus(after on-demand)", st, "KeyId", "KeyRotationEnabled")
	wantValue(t, "GetKeyRotationStatus(after on-demand)", st, "KeyRotationEnabled", false)

	// Rotation enabled: the default period is 365 days; an explicit one is kept.
	kms("EnableKeyRotation", q(`{"KeyId":"KEY"}`))
	st = kms("GetKeyRotationStatus", q(`{"KeyId":"KEY"}`))
	wantMembers(t, "GetKeyRotationStatus(enabled)", st, "KeyId", "KeyRotationEnabled", "NextRotationDate", "RotationPeriodInDays")
	wantValue(t, "GetKeyRotationStatus(enabled)", st, "KeyRotationEnabled", true)
	wantValue(t, "GetKeyRotationStatus(enabled)", st, "RotationPeriodInDays", 365)
	kms("EnableKeyRotation", q(`{"KeyId":"KEY","RotationPeriodInDays":90}`))
	st = kms("GetKeyRotationStatus", q(`{"KeyId":"KEY"}`))
	wantValue(t, "GetKeyRotationStatus(90)", st, "RotationPeriodInDays", 90)

	// The default key policy, as AWS returns it with ReplicateKey.
	pol := kms("GetKeyPolicy", q(`{"KeyId":"KEY","PolicyName":"default"}`))
	var doc map[string]any
	if err := json.Unmarshal([]byte(pol["Policy"].(string)), &doc); err != nil {
		t.Fatalf("GetKeyPolicy Policy is not JSON: %v", err)
	}
	wantMembers(t, "default policy", doc, "Version", "Id", "Statement")
	wantValue(t, "default policy", doc, "Version", "2012-10-17")
	wantValue(t, "default policy", doc, "Id", "key-default-1")
	wantValue(t, "default policy", doc, "Statement", []any{map[string]any{
		"Sid": "Enable IAM User Permissions", "Effect": "Allow",
		"Principal": map[string]any{"AWS": "arn:aws:iam::" + md["AWSAccountId"].(string) + ":root"},
		"Action":    "kms:*", "Resource": "*",
	}})
}

// TestKMSShapesResourceTags follows test_update_and_add_tags_on_tagged_key,
// test_untag_key_partially and test_tag_existing_key_and_untag.
func TestKMSShapesResourceTags(t *testing.T) {
	srv := keyfortest.Start(t)
	kms := func(op, body string) map[string]any { return shapeCall(t, srv, "kms", op, body) }
	id := obj(t, kms("CreateKey", `{}`)["KeyMetadata"])["KeyId"].(string)
	q := func(s string) string { return strings.ReplaceAll(s, "KEY", id) }
	tag := func(k, v string) map[string]string { return map[string]string{"TagKey": k, "TagValue": v} }

	kms("TagResource", q(`{"KeyId":"KEY","Tags":[{"TagKey":"tag1","TagValue":"value1"},{"TagKey":"tag2","TagValue":"value2"},{"TagKey":"tag3","TagValue":"value3"}]}`))
	kms("TagResource", q(`{"KeyId":"KEY","Tags":[{"TagKey":"tag2","TagValue":"updated_value2"},{"TagKey":"tag4","TagValue":"value4"},{"TagKey":"tag5","TagValue":"value5"}]}`))
	l := kms("ListResourceTags", q(`{"KeyId":"KEY"}`))
	wantValue(t, "ListResourceTags", l, "Tags", []map[string]string{
		tag("tag1", "value1"), tag("tag2", "updated_value2"), tag("tag3", "value3"), tag("tag4", "value4"), tag("tag5", "value5")})
	kms("UntagResource", q(`{"KeyId":"KEY","TagKeys":["tag2","tag4","tag5"]}`))
	wantValue(t, "ListResourceTags(partially untagged)", kms("ListResourceTags", q(`{"KeyId":"KEY"}`)), "Tags",
		[]map[string]string{tag("tag1", "value1"), tag("tag3", "value3")})
	kms("UntagResource", q(`{"KeyId":"KEY","TagKeys":["tag1","tag3"]}`))
	wantValue(t, "ListResourceTags(all untagged)", kms("ListResourceTags", q(`{"KeyId":"KEY"}`)), "Tags", []string{})
}
