package kmsapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/keyfort/keyfort/internal/awserr"
	"github.com/keyfort/keyfort/internal/kms/kmsapi"
	"github.com/keyfort/keyfort/internal/operation"
	"github.com/keyfort/keyfort/internal/sensitive"
)

func str(s string) *string { return &s }

func TestValidate(t *testing.T) {
	long := strings.Repeat("k", 2049)
	tests := []struct {
		name string
		in   operation.Input
		want string // "" means valid
	}{
		{
			name: "valid encrypt",
			in:   &kmsapi.EncryptInput{KeyId: str("alias/a"), Plaintext: sensitive.Bytes("x"), EncryptionAlgorithm: kmsapi.EncryptionAlgorithmSpecSymmetricDefault},
		},
		{
			name: "missing required members",
			in:   &kmsapi.EncryptInput{},
			want: "2 validation errors detected: " +
				"Value null at 'keyId' failed to satisfy constraint: Member must not be null; " +
				"Value null at 'plaintext' failed to satisfy constraint: Member must not be null",
		},
		{
			name: "too long",
			in:   &kmsapi.DescribeKeyInput{KeyId: str(long)},
			want: "1 validation error detected: Value '" + long[:1024] + "...' at 'keyId' failed to satisfy constraint: Member must have length less than or equal to 2048",
		},
		{
			name: "length counts characters, not bytes",
			in:   &kmsapi.DescribeKeyInput{KeyId: str(strings.Repeat("é", 2048))},
		},
		{
			name: "sensitive blob is not echoed",
			in:   &kmsapi.EncryptInput{KeyId: str("k"), Plaintext: make(sensitive.Bytes, 4097)},
			want: "1 validation error detected: Value at 'plaintext' failed to satisfy constraint: Member must have length less than or equal to 4096",
		},
		{
			name: "empty blob",
			in:   &kmsapi.DecryptInput{CiphertextBlob: []byte{}},
			want: "1 validation error detected: Value at 'ciphertextBlob' failed to satisfy constraint: Member must have length greater than or equal to 1",
		},
		{
			name: "bad enum",
			in:   &kmsapi.CreateKeyInput{KeyUsage: "ENCRYPT"},
			want: "1 validation error detected: Value 'ENCRYPT' at 'keyUsage' failed to satisfy constraint: Member must satisfy enum value set: [SIGN_VERIFY, ENCRYPT_DECRYPT, GENERATE_VERIFY_MAC, KEY_AGREEMENT]",
		},
		{
			name: "pattern",
			in:   &kmsapi.CreateAliasInput{AliasName: str("alias/bad name"), TargetKeyId: str("k")},
			want: "1 validation error detected: Value 'alias/bad name' at 'aliasName' failed to satisfy constraint: Member must satisfy regular expression pattern: ^[a-zA-Z0-9:/_-]+$",
		},
		{
			name: "integer range",
			in:   &kmsapi.GenerateDataKeyInput{KeyId: str("k"), NumberOfBytes: ptr(int32(1025))},
			want: "1 validation error detected: Value '1025' at 'numberOfBytes' failed to satisfy constraint: Member must have value less than or equal to 1024",
		},
		{
			name: "nested list path",
			in:   &kmsapi.CreateKeyInput{Tags: []kmsapi.Tag{{TagKey: str("ok"), TagValue: str("v")}, {TagKey: str("")}}},
			want: "2 validation errors detected: " +
				"Value '' at 'tags.2.member.tagKey' failed to satisfy constraint: Member must have length greater than or equal to 1; " +
				"Value null at 'tags.2.member.tagValue' failed to satisfy constraint: Member must not be null",
		},
		{
			name: "list of enums",
			in:   &kmsapi.CreateGrantInput{KeyId: str("k"), GranteePrincipal: str("p"), Operations: []kmsapi.GrantOperation{"Encrypt", "Nope"}},
			want: "1 validation error detected: Value '[Encrypt, Nope]' at 'operations' failed to satisfy constraint: Member must satisfy constraint: [Member must satisfy enum value set: [Decrypt, Encrypt, GenerateDataKey, GenerateDataKeyWithoutPlaintext, ReEncryptFrom, ReEncryptTo, Sign, Verify, GetPublicKey, CreateGrant, RetireGrant, DescribeKey, GenerateDataKeyPair, GenerateDataKeyPairWithoutPlaintext, GenerateMac, VerifyMac, DeriveSharedSecret]]",
		},
		{
			name: "list length and element length",
			in:   &kmsapi.EncryptInput{KeyId: str("k"), Plaintext: sensitive.Bytes("x"), GrantTokens: make([]string, 11)},
			want: "2 validation errors detected: " +
				"Value at 'grantTokens' failed to satisfy constraint: Member must have length less than or equal to 10; " +
				"Value '[, , , , , , , , , , ]' at 'grantTokens' failed to satisfy constraint: Member must satisfy constraint: [Member must have length greater than or equal to 1]",
		},
		{
			name: "nested structure and sensitive string",
			in: &kmsapi.CreateCustomKeyStoreInput{
				CustomKeyStoreName:               str("s"),
				KeyStorePassword:                 ptr(sensitive.String("short")),
				XksProxyAuthenticationCredential: &kmsapi.XksProxyAuthenticationCredentialType{AccessKeyId: ptr(sensitive.String("lowercase-is-not-base32"))},
			},
			want: "3 validation errors detected: " +
				"Value at 'keyStorePassword' failed to satisfy constraint: Member must have length greater than or equal to 7; " +
				"Value at 'xksProxyAuthenticationCredential.accessKeyId' failed to satisfy constraint: Member must satisfy regular expression pattern: ^[A-Z2-7]+$; " +
				"Value null at 'xksProxyAuthenticationCredential.rawSecretAccessKey' failed to satisfy constraint: Member must not be null",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.in.Validate()
			if tt.want == "" {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			e, ok := awserr.As(err)
			if !ok {
				t.Fatalf("Validate() = %v, want an *awserr.Error", err)
			}
			if e.Code != awserr.CodeValidation || e.Status != http.StatusBadRequest {
				t.Errorf("Validate() code, status = %s, %d, want %s, 400", e.Code, e.Status, awserr.CodeValidation)
			}
			if e.Message != tt.want {
				t.Errorf("Validate() message =\n%s\nwant\n%s", e.Message, tt.want)
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }

func TestValidateNilInput(t *testing.T) {
	var in *kmsapi.DescribeKeyInput
	if err := in.Validate(); err == nil || !strings.Contains(err.Error(), "Value null at 'keyId'") {
		t.Errorf("(*DescribeKeyInput)(nil).Validate() = %v, want keyId null", err)
	}
}

func TestAppendJSON(t *testing.T) {
	created := time.Unix(1700000000, 123_000_000).UTC()
	deleted := time.Unix(1700000100, 0).UTC()
	tests := []struct {
		name string
		out  operation.Output
		want string
	}{
		{
			name: "empty output",
			out:  &kmsapi.CreateAliasOutput{},
			want: `{}`,
		},
		{
			name: "nil output",
			out:  (*kmsapi.EncryptOutput)(nil),
			want: `{}`,
		},
		{
			name: "blob, string and enum",
			out: &kmsapi.EncryptOutput{
				CiphertextBlob:      []byte{0, 1, 2, 0xfe, 0xff},
				KeyId:               str("arn:aws:kms:us-east-1:111122223333:key/1"),
				EncryptionAlgorithm: kmsapi.EncryptionAlgorithmSpecSymmetricDefault,
			},
			want: `{"CiphertextBlob":"AAEC/v8=","KeyId":"arn:aws:kms:us-east-1:111122223333:key/1","EncryptionAlgorithm":"SYMMETRIC_DEFAULT"}`,
		},
		{
			name: "sensitive blob is revealed",
			out:  &kmsapi.GenerateDataKeyOutput{Plaintext: sensitive.Bytes("secret")},
			want: `{"Plaintext":"c2VjcmV0"}`,
		},
		{
			name: "escaping",
			out:  &kmsapi.EncryptOutput{KeyId: str("q\"b\\s/\n\r\t\x00\x1f\u00e9\u2028\U0001F600<>&\xff")},
			want: `{"KeyId":"q\"b\\s/\n\r\t\u0000\u001fé\u2028😀<>&\ufffd"}`,
		},
		{
			name: "nested structure, timestamps, lists, empty list, booleans, numbers",
			out: &kmsapi.DescribeKeyOutput{KeyMetadata: &kmsapi.KeyMetadata{
				KeyId:                       str("1"),
				CreationDate:                &created,
				Enabled:                     ptr(false),
				KeyState:                    kmsapi.KeyStatePendingDeletion,
				DeletionDate:                &deleted,
				EncryptionAlgorithms:        []kmsapi.EncryptionAlgorithmSpec{"SYMMETRIC_DEFAULT"},
				SigningAlgorithms:           []kmsapi.SigningAlgorithmSpec{},
				MultiRegion:                 ptr(true),
				MultiRegionConfiguration:    &kmsapi.MultiRegionConfiguration{ReplicaKeys: []kmsapi.MultiRegionKey{{Arn: str("a"), Region: str("eu-west-1")}, {}}},
				PendingDeletionWindowInDays: ptr(int32(7)),
			}},
			want: `{"KeyMetadata":{"KeyId":"1","CreationDate":1700000000.123,"Enabled":false,"KeyState":"PendingDeletion",` +
				`"DeletionDate":1700000100,"EncryptionAlgorithms":["SYMMETRIC_DEFAULT"],"SigningAlgorithms":[],"MultiRegion":true,` +
				`"MultiRegionConfiguration":{"ReplicaKeys":[{"Arn":"a","Region":"eu-west-1"},{}]},"PendingDeletionWindowInDays":7}}`,
		},
		{
			name: "map with sorted keys and empty map",
			out: &kmsapi.ListGrantsOutput{Grants: []kmsapi.GrantListEntry{
				{Constraints: &kmsapi.GrantConstraints{EncryptionContextSubset: map[string]string{"b": "2", "a": "\"1\""}, EncryptionContextEquals: map[string]string{}}},
			}},
			want: `{"Grants":[{"Constraints":{"EncryptionContextSubset":{"a":"\"1\"","b":"2"},"EncryptionContextEquals":{}}}]}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := string(tt.out.AppendJSON([]byte("prefix")))
			if got != "prefix"+tt.want {
				t.Errorf("AppendJSON() =\n%s\nwant\n%s", got, "prefix"+tt.want)
			}
			if !json.Valid([]byte(tt.want)) {
				t.Errorf("AppendJSON() is not valid JSON: %s", tt.want)
			}
		})
	}
}

// TestAppendJSONMatchesEncodingJSON checks the string escaper against
// encoding/json (without HTML escaping) on awkward strings.
func TestAppendJSONMatchesEncodingJSON(t *testing.T) {
	var all strings.Builder
	for r := rune(0); r < 0x80; r++ {
		all.WriteRune(r)
	}
	for _, s := range []string{all.String(), "\u2028\u2029\u00a0\ufeff", "\xed\xa0\x80", "a\xc3", "日本語", "\U0010FFFF"} {
		var want bytes.Buffer
		enc := json.NewEncoder(&want)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(map[string]string{"KeyId": s}); err != nil {
			t.Fatal(err)
		}
		got := (&kmsapi.EncryptOutput{KeyId: &s}).AppendJSON(nil)
		if string(got) != strings.TrimSuffix(want.String(), "\n") {
			t.Errorf("AppendJSON(%q) = %s, want %s", s, got, want.String())
		}
	}
}

func TestAppendJSONRoundTrip(t *testing.T) {
	created := time.Unix(1700000000, 123_000_000).UTC()
	in := &kmsapi.GenerateDataKeyPairOutput{
		PrivateKeyCiphertextBlob: []byte{1, 2, 3},
		PrivateKeyPlaintext:      sensitive.Bytes{4, 5, 6},
		PublicKey:                []byte{7},
		KeyId:                    str("k\u00e9\n\"y\""),
		KeyPairSpec:              kmsapi.DataKeyPairSpecEccNistP256,
	}
	var back kmsapi.GenerateDataKeyPairOutput
	if err := json.Unmarshal(in.AppendJSON(nil), &back); err != nil {
		t.Fatalf("Unmarshal(AppendJSON()) = %v", err)
	}
	if !reflect.DeepEqual(&back, in) {
		t.Errorf("round trip = %#v, want %#v", back, *in)
	}
	md := &kmsapi.DescribeKeyOutput{KeyMetadata: &kmsapi.KeyMetadata{KeyId: str("1"), CreationDate: &created, ValidTo: &created}}
	var mdBack kmsapi.DescribeKeyOutput
	if err := json.Unmarshal(md.AppendJSON(nil), &mdBack); err != nil {
		t.Fatalf("Unmarshal(AppendJSON()) = %v", err)
	}
	if !reflect.DeepEqual(&mdBack, md) {
		t.Errorf("round trip = %s, want %s", mdBack.AppendJSON(nil), md.AppendJSON(nil))
	}
}

func TestUnmarshalTimestamp(t *testing.T) {
	tests := []struct {
		name    string
		body    string
		want    *time.Time
		wantErr bool
	}{
		{name: "integer seconds", body: `{"KeyId":"k","ValidTo":1700000000}`, want: ptr(time.Unix(1700000000, 0).UTC())},
		{name: "fractional seconds", body: `{"ValidTo":1700000000.125}`, want: ptr(time.Unix(1700000000, 125_000_000).UTC())},
		{name: "exponent", body: `{"ValidTo":1.7e9}`, want: ptr(time.Unix(1700000000, 0).UTC())},
		{name: "RFC 3339", body: `{"ValidTo":"2023-11-14T22:13:20.5Z"}`, want: ptr(time.Unix(1700000000, 500_000_000).UTC())},
		{name: "null", body: `{"ValidTo":null}`},
		{name: "absent", body: `{"KeyId":"k"}`},
		{name: "bad string", body: `{"ValidTo":"yesterday"}`, wantErr: true},
		{name: "wrong type", body: `{"ValidTo":true}`, wantErr: true},
		{name: "huge", body: `{"ValidTo":1e300}`, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var in kmsapi.ImportKeyMaterialInput
			err := json.NewDecoder(strings.NewReader(tt.body)).Decode(&in)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("Decode(%s) = nil error, want an error", tt.body)
				}
				return
			}
			if err != nil {
				t.Fatalf("Decode(%s) = %v", tt.body, err)
			}
			if !reflect.DeepEqual(in.ValidTo, tt.want) {
				t.Errorf("Decode(%s).ValidTo = %v, want %v", tt.body, in.ValidTo, tt.want)
			}
		})
	}
	var in kmsapi.ImportKeyMaterialInput
	if err := json.Unmarshal([]byte(`{"KeyId":"k","ImportToken":"AQID","ExpirationModel":"KEY_MATERIAL_EXPIRES"}`), &in); err != nil {
		t.Fatal(err)
	}
	if *in.KeyId != "k" || !bytes.Equal(in.ImportToken, []byte{1, 2, 3}) || in.ExpirationModel != kmsapi.ExpirationModelTypeKeyMaterialExpires {
		t.Errorf("Unmarshal kept other members wrong: %+v", in)
	}
}

func TestOperations(t *testing.T) {
	ops := kmsapi.Operations(kmsapi.UnimplementedService{})
	if len(ops) != 54 {
		t.Fatalf("len(Operations()) = %d, want 54", len(ops))
	}
	seen := map[string]bool{}
	for _, op := range ops {
		if op.Service != "TrentService" || op.MaxBody != 128<<10 || op.NewInput == nil || op.Invoke == nil {
			t.Errorf("operation %s = %+v, want service TrentService, 128 KiB, functions set", op.Name, op)
		}
		if seen[op.Name] {
			t.Errorf("operation %s listed twice", op.Name)
		}
		seen[op.Name] = true
		for _, e := range op.Errors {
			if _, ok := kmsapi.Errors[e]; !ok {
				t.Errorf("operation %s: error %s is not in Errors", op.Name, e)
			}
		}
	}
	// CloudTrail records the cryptographic operations as read-only (the KMS
	// developer guide's log entry examples).
	readOnly := map[string]bool{"DescribeKey": true, "ListKeys": true, "GetKeyPolicy": true, "Encrypt": true, "Verify": true, "GenerateRandom": true, "CreateKey": false, "TagResource": false}
	for _, op := range ops {
		if want, ok := readOnly[op.Name]; ok && op.ReadOnly != want {
			t.Errorf("operation %s ReadOnly = %t, want %t", op.Name, op.ReadOnly, want)
		}
	}
}

func TestUnimplementedService(t *testing.T) {
	_, err := kmsapi.UnimplementedService{}.Encrypt(context.Background(), &kmsapi.EncryptInput{})
	e, ok := awserr.As(err)
	if !ok || e.Code != awserr.CodeNotImplemented || e.Status != http.StatusNotImplemented || !strings.Contains(e.Message, "KMS.Encrypt") {
		t.Fatalf("Encrypt() error = %#v, want NotImplementedException 501 naming KMS.Encrypt", err)
	}
	for _, op := range kmsapi.Operations(kmsapi.UnimplementedService{}) {
		out, err := op.Invoke(t.Context(), op.NewInput())
		if out != nil {
			t.Errorf("%s: Invoke() output = %#v, want a nil interface", op.Name, out)
		}
		if e, ok := awserr.As(err); !ok || e.Status != http.StatusNotImplemented {
			t.Errorf("%s: Invoke() error = %v, want 501", op.Name, err)
		}
	}
	for _, op := range kmsapi.Operations(kmsapi.UnimplementedService{}) {
		if op.Name != "DescribeKey" {
			continue
		}
		if out, err := op.Invoke(t.Context(), &kmsapi.EncryptInput{}); out != nil || err == nil || strings.Contains(err.Error(), "NotImplemented") {
			t.Errorf("DescribeKey: Invoke(*EncryptInput) = %v, %v, want a type error", out, err)
		}
	}
}

func TestErrorsAndEnums(t *testing.T) {
	tests := []struct {
		code string
		want operation.ErrorShape
	}{
		{"NotFoundException", operation.ErrorShape{Code: "NotFoundException", Status: 400, MessageField: "message"}},
		{"KMSInternalException", operation.ErrorShape{Code: "KMSInternalException", Status: 500, Fault: true, MessageField: "message"}},
	}
	for _, tt := range tests {
		if got := kmsapi.Errors[tt.code]; got != tt.want {
			t.Errorf("Errors[%q] = %+v, want %+v", tt.code, got, tt.want)
		}
	}
	if vals := kmsapi.KeyState("").Values(); len(vals) == 0 || vals[0] != kmsapi.KeyStateCreating {
		t.Errorf("KeyState.Values() = %v, want Creating first", vals)
	}
	if kmsapi.KeySpecRsa2048 != "RSA_2048" || kmsapi.KeyStateEnabled != "Enabled" {
		t.Errorf("enum constants = %q, %q", kmsapi.KeySpecRsa2048, kmsapi.KeyStateEnabled)
	}
}

// TestHotPathAllocations keeps Validate and AppendJSON of the hot
// operations free of allocations when the input is valid.
func TestHotPathAllocations(t *testing.T) {
	in := &kmsapi.EncryptInput{
		KeyId:               str("arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"),
		Plaintext:           make(sensitive.Bytes, 64),
		EncryptionContext:   map[string]string{"purpose": "test"},
		GrantTokens:         []string{"token"},
		EncryptionAlgorithm: kmsapi.EncryptionAlgorithmSpecSymmetricDefault,
	}
	if n := testing.AllocsPerRun(100, func() { _ = in.Validate() }); n != 0 {
		t.Errorf("EncryptInput.Validate() allocates %v times, want 0", n)
	}
	out := &kmsapi.EncryptOutput{CiphertextBlob: make([]byte, 128), KeyId: in.KeyId, EncryptionAlgorithm: in.EncryptionAlgorithm}
	buf := make([]byte, 0, 1024)
	if n := testing.AllocsPerRun(100, func() { buf = out.AppendJSON(buf[:0]) }); n != 0 {
		t.Errorf("EncryptOutput.AppendJSON() allocates %v times, want 0", n)
	}
}

// TestAppendAuditJSON pins CloudTrail's form of a request: lower-case
// member names, and no plaintext or ciphertext at all.
func TestAppendAuditJSON(t *testing.T) {
	in := &kmsapi.EncryptInput{KeyId: ptr("alias/a"), Plaintext: sensitive.Bytes("top secret"),
		EncryptionContext: map[string]string{"b": "2", "a": "1"}, EncryptionAlgorithm: kmsapi.EncryptionAlgorithmSpecSymmetricDefault}
	if got, want := string(in.AppendAuditJSON(nil)), `{"keyId":"alias/a","encryptionContext":{"a":"1","b":"2"},"encryptionAlgorithm":"SYMMETRIC_DEFAULT"}`; got != want {
		t.Errorf("kmsapi.EncryptInput.AppendAuditJSON = %s, want %s", got, want)
	}
	out := &kmsapi.DecryptOutput{KeyId: ptr("k"), Plaintext: sensitive.Bytes("top secret"), CiphertextForRecipient: []byte("c")}
	if got, want := string(out.AppendAuditJSON(nil)), `{"keyId":"k"}`; got != want {
		t.Errorf("kmsapi.DecryptOutput.AppendAuditJSON = %s, want %s", got, want)
	}
	md := &kmsapi.CreateKeyOutput{KeyMetadata: &kmsapi.KeyMetadata{AWSAccountId: ptr("1"), KeyId: ptr("k"), EncryptionAlgorithms: []kmsapi.EncryptionAlgorithmSpec{kmsapi.EncryptionAlgorithmSpecSymmetricDefault}}}
	if got, want := string(md.AppendAuditJSON(nil)), `{"keyMetadata":{"aWSAccountId":"1","keyId":"k","encryptionAlgorithms":["SYMMETRIC_DEFAULT"]}}`; got != want {
		t.Errorf("kmsapi.CreateKeyOutput.AppendAuditJSON = %s, want %s", got, want)
	}
}
