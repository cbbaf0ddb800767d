package smapi_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/keyfort/keyfort/internal/awserr"
	"github.com/keyfort/keyfort/internal/secretsmanager/smapi"
)

// TestEchoIsBounded sends 1 MB values through the generated Validate and
// AppendAuditJSON: what they echo stays small, whatever the request's size.
func TestEchoIsBounded(t *testing.T) {
	huge := strings.Repeat("é", 1<<19) // 1 MiB of two-byte runes
	in := &smapi.CreateSecretInput{Name: str(huge), Description: str(huge), ClientRequestToken: str(strings.Repeat("t", 64)),
		Tags: []smapi.Tag{{Key: str(huge), Value: str(huge)}}}

	err := in.Validate()
	var ae *awserr.Error
	if !errors.As(err, &ae) || ae.Code != "ValidationException" {
		t.Fatalf("Validate() = %v, want a ValidationException", err)
	}
	if len(ae.Message) > 8<<10 {
		t.Errorf("message is %d bytes for 1 MB values, want at most 8 KiB", len(ae.Message))
	}
	if want := "Value '" + huge[:1024] + "...' at 'name'"; !strings.Contains(ae.Message, want) {
		t.Errorf("message %.200q... does not echo the first 1,024 bytes then ...", ae.Message)
	}

	filters := make([]smapi.Filter, 300)
	for i := range filters {
		filters[i] = smapi.Filter{Key: smapi.FilterNameStringTypeName, Values: []string{huge}}
	}
	for _, x := range []interface{ AppendAuditJSON([]byte) []byte }{in, &smapi.ListSecretsInput{Filters: filters}} {
		b := x.AppendAuditJSON(nil)
		if !json.Valid(b) {
			t.Fatalf("%T: AppendAuditJSON is not JSON: %.300s", x, b)
		}
		if len(b) > 160<<10 {
			t.Errorf("%T: AppendAuditJSON is %d bytes for 1 MB values, want at most 160 KiB", x, len(b))
		}
		if !strings.Contains(string(b), "é...[truncated, 1048576 bytes]") {
			t.Errorf("%T: no truncation marker in %.300s", x, b)
		}
	}
}
