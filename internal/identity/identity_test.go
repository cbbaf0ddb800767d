package identity

import (
	"reflect"
	"testing"

	"github.com/keyfort/keyfort/internal/iam"
)

// TestRoot checks Root and SetRoot against the caller Root returned before
// SetRoot existed (frozen), in two partitions.
func TestRoot(t *testing.T) {
	for _, tt := range []struct{ account, region, akid, arn string }{
		{"111122223333", "eu-west-1", "AKIAEXAMPLE", "arn:aws:iam::111122223333:root"},
		{"123456789012", "cn-north-1", "", "arn:aws-cn:iam::123456789012:root"},
	} {
		want := &Caller{
			Account: tt.account, Region: tt.region, AccessKeyID: tt.akid, ARN: tt.arn, Type: TypeRoot,
			Principal: iam.Principal{ARN: tt.arn, PrincipalARN: tt.arn, Account: tt.account, Root: true, UserID: tt.account},
		}
		if got := Root(tt.account, tt.region, tt.akid); !reflect.DeepEqual(got, want) {
			t.Errorf("Root = %+v, want %+v", got, want)
		}
		got := &Caller{SourceIP: "192.0.2.1", Tags: map[string]string{"a": "b"}, RequestID: "r"}
		SetRoot(got, tt.account, tt.region, tt.akid)
		if !reflect.DeepEqual(got, want) {
			t.Errorf("SetRoot over a used Caller = %+v, want %+v", got, want)
		}
	}
}
