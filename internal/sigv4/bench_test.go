package sigv4

import (
	"net/http"
	"testing"

	"github.com/keyfort/keyfort/internal/identity"
)

const benchAuth = "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20240102/us-east-1/kms/aws4_request, SignedHeaders=amz-sdk-invocation-id;amz-sdk-request;content-length;content-type;host;x-amz-date;x-amz-target, Signature=5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7"

func BenchmarkParseAuthorization(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseAuthorization(benchAuth); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDevAuthenticate(b *testing.B) {
	r, _ := http.NewRequest("POST", "http://127.0.0.1/", nil)
	r.Header.Set("Authorization", benchAuth)
	r.Header.Set("X-Amz-Date", "20240102T030405Z")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := (Dev{}).Authenticate(r, nil, "kms"); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDevAuthenticateInto(b *testing.B) {
	r, _ := http.NewRequest("POST", "http://127.0.0.1/", nil)
	r.Header.Set("Authorization", benchAuth)
	r.Header.Set("X-Amz-Date", "20240102T030405Z")
	var c identity.Caller
	b.ReportAllocs()
	for b.Loop() {
		if err := (Dev{}).AuthenticateInto(r, nil, "kms", &c); err != nil {
			b.Fatal(err)
		}
	}
}
