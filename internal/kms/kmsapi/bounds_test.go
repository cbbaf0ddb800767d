package kmsapi_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/keyfort/keyfort/internal/awserr"
	"github.com/keyfort/keyfort/internal/kms/kmsapi"
)

// TestEchoIsBounded sends 1 MB values through the generated Validate and
// AppendAuditJSON: what they echo stays small, whatever the request's size.
func TestEchoIsBounded(t *testing.T) {
	huge := strings.Repeat("a", 1<<20)

	t.Run("validation message", func(t *testing.T) {
		err := (&kmsapi.CreateAliasInput{AliasName: str(huge), TargetKeyId: str(huge)}).Validate()
		var ae *awserr.Error
		if !errors.As(err, &ae) || ae.Code != "ValidationException" {
			t.Fatalf("Validate() = %v, want a ValidationException", err)
		}
		if len(ae.Message) > 4<<10 {
			t.Errorf("message is %d bytes for two 1 MB values, want at most 4 KiB", len(ae.Message))
		}
		want := "Value '" + huge[:1024] + "...' at 'aliasName' failed to satisfy constraint: Member must have length less than or equal to 256"
		if !strings.Contains(ae.Message, want) {
			t.Errorf("message %.200q... does not echo the first 1,024 bytes then ...", ae.Message)
		}
	})

	t.Run("validation message of many violations", func(t *testing.T) {
		tags := make([]kmsapi.Tag, 10000)
		for i := range tags {
			tags[i] = kmsapi.Tag{TagKey: str(""), TagValue: str("v")}
		}
		err := (&kmsapi.CreateKeyInput{Tags: tags}).Validate()
		var ae *awserr.Error
		if !errors.As(err, &ae) {
			t.Fatalf("Validate() = %v, want a ValidationException", err)
		}
		if !strings.HasPrefix(ae.Message, "10000 validation errors detected: ") {
			t.Errorf("message starts %.60q, want the count of every violation", ae.Message)
		}
		if n := strings.Count(ae.Message, "failed to satisfy constraint"); n != 100 {
			t.Errorf("message lists %d violations, want the first 100", n)
		}
		if len(ae.Message) > 16<<10 {
			t.Errorf("message is %d bytes, want at most 16 KiB", len(ae.Message))
		}
	})

	t.Run("list of strings in a validation message", func(t *testing.T) {
		// Lists of strings are echoed once, as [a, b]: 1,000 long elements
		// make one clipped value.
		ids := make([]string, 1000)
		for i := range ids {
			ids[i] = huge[:10000]
		}
		err := (&kmsapi.CreateGrantInput{KeyId: str("k"), GranteePrincipal: str("p"), Operations: []kmsapi.GrantOperation{"Encrypt"}, GrantTokens: ids}).Validate()
		if err == nil || len(err.Error()) > 4<<10 {
			t.Errorf("Validate() = %d bytes, want an error of at most 4 KiB", len(fmt.Sprint(err)))
		}
	})

	t.Run("audit", func(t *testing.T) {
		tags := make([]kmsapi.Tag, 1000)
		for i := range tags {
			tags[i] = kmsapi.Tag{TagKey: str(fmt.Sprint("k", i)), TagValue: str("v")}
		}
		tags[0].TagValue = str(huge)
		ctx := map[string]string{huge: huge}
		for i := range 1000 {
			ctx[fmt.Sprintf("c%04d", i)] = "v"
		}
		for _, in := range []interface{ AppendAuditJSON([]byte) []byte }{
			&kmsapi.CreateKeyInput{Description: str(huge), Tags: tags},
			&kmsapi.EncryptInput{KeyId: str(huge), EncryptionContext: ctx},
			&kmsapi.CreateGrantInput{KeyId: str("k"), GrantTokens: []string{huge, huge, huge}, Constraints: &kmsapi.GrantConstraints{EncryptionContextEquals: ctx}},
		} {
			b := in.AppendAuditJSON(nil)
			if !json.Valid(b) {
				t.Fatalf("%T: AppendAuditJSON is not JSON: %.300s", in, b)
			}
			if len(b) > 16<<10 {
				t.Errorf("%T: AppendAuditJSON is %d bytes for 1 MB values, want at most 16 KiB", in, len(b))
			}
			if !strings.Contains(string(b), `aaa...[truncated, 1048576 bytes]"`) {
				t.Errorf("%T: no truncation marker in %.300s", in, b)
			}
		}
		b := (&kmsapi.CreateKeyInput{Tags: tags}).AppendAuditJSON(nil)
		var got struct{ Tags []any }
		if err := json.Unmarshal(b, &got); err != nil {
			t.Fatal(err)
		}
		if len(got.Tags) != 101 || got.Tags[100] != "...[900 more entries]" {
			t.Errorf("tags: %d entries, last %v; want 100 and the marker of 900 more", len(got.Tags), got.Tags[len(got.Tags)-1])
		}
		b = (&kmsapi.EncryptInput{EncryptionContext: ctx}).AppendAuditJSON(nil)
		var enc struct{ EncryptionContext map[string]string }
		if err := json.Unmarshal(b, &enc); err != nil {
			t.Fatal(err)
		}
		if len(enc.EncryptionContext) != 101 || enc.EncryptionContext["..."] != "[901 more entries]" {
			t.Errorf("encryptionContext: %d entries, marker %q; want 100 and the marker of 901 more", len(enc.EncryptionContext), enc.EncryptionContext["..."])
		}
	})
}
