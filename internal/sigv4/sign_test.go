package sigv4

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

// xksBody is the body of the Encrypt request example of the XKS Proxy API
// specification, compacted.
const xksBody = `{"requestMetadata":{"awsPrincipalArn":"arn:aws:iam::123456789012:user/Alice",` +
	`"kmsKeyArn":"arn:aws:kms:us-east-2:123456789012:/key/1234abcd-12ab-34cd-56ef-1234567890ab",` +
	`"kmsOperation":"Encrypt","kmsRequestId":"4112f4d6-db54-4af4-ae30-c55a22a8dfae","kmsViaService":"ebs"},` +
	`"additionalAuthenticatedData":"cHJvamVjdD1uaWxlLGRlcGFydG1lbnQ9bWFya2V0aW5n","plaintext":"SGVsbG8gV29ybGQh",` +
	`"encryptionAlgorithm":"AES_GCM","ciphertextDataIntegrityValueAlgorithm":"SHA_256"}`

// Credentials of the specification's curl example (appendix D).
const (
	xksAccessKey = "HGIE2BUAFNDMBCMSQVWLGCEXAMPLE"
	xksSecret    = "VU6W2byoiBrhDqNGbx703oL0syCAmhlQgwNUT123456"
)

// TestSignMatchesSDK checks Sign against aws-sdk-go-v2's signer, an
// independent implementation, given the same signed headers (host and
// x-amz-date: the SDK signs every header of its request, so its request
// carries no other).
func TestSignMatchesSDK(t *testing.T) {
	at := time.Date(2021, 10, 9, 13, 5, 9, 0, time.UTC)
	tests := []struct {
		name, url, body, region, service string
		at                               time.Time
	}{
		{"xks encrypt", "https://xks.example.com/example/kms/xks/v1/keys/k-1.x_y/encrypt", xksBody, "us-east-2", "kms-xks-proxy", at},
		{"xks health with port", "https://127.0.0.1:8443/kms/xks/v1/health", `{"requestMetadata":{"kmsRequestId":"r","kmsOperation":"KmsHealthCheck"}}`, "eu-west-1", "kms-xks-proxy", at},
		{"empty body and root path", "https://h.example", "", "us-east-1", "kms", at.Add(23 * time.Hour)},
		{"escaped path", "https://h.example/a%20b/c%2Fd/%C3%A9", "x", "ap-southeast-4", "kms-xks-proxy", at},
		{"query", "https://h.example/p?b=2&a=1&c=x%20y", "{}", "us-gov-west-1", "kms", at},
		{"non-UTC time", "https://h.example/p", "{}", "us-east-1", "kms-xks-proxy", at.In(time.FixedZone("x", -7*3600))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := http.NewRequest("POST", tt.url, bytes.NewReader([]byte(tt.body)))
			if err != nil {
				t.Fatal(err)
			}
			r.Header.Set("Content-Type", "application/json") // sent unsigned
			Sign(r, []byte(tt.body), xksAccessKey, xksSecret, tt.region, tt.service, tt.at)

			want, err := http.NewRequest("POST", tt.url, nil)
			if err != nil {
				t.Fatal(err)
			}
			sum := sha256.Sum256([]byte(tt.body))
			creds := aws.Credentials{AccessKeyID: xksAccessKey, SecretAccessKey: xksSecret}
			if err := v4.NewSigner().SignHTTP(context.Background(), creds, want, hex.EncodeToString(sum[:]),
				tt.service, tt.region, tt.at); err != nil {
				t.Fatal(err)
			}
			if got, w := r.Header.Get("Authorization"), want.Header.Get("Authorization"); got != w {
				t.Errorf("Sign: Authorization = %q, want (SDK) %q", got, w)
			}
			if got, w := r.Header.Get("X-Amz-Date"), want.Header.Get("X-Amz-Date"); got != w {
				t.Errorf("Sign: X-Amz-Date = %q, want (SDK) %q", got, w)
			}
			if v, ok := r.Header["X-Amz-Content-Sha256"]; ok {
				t.Errorf("Sign set X-Amz-Content-Sha256 = %q, want it unset", v)
			}
			if r.Host != want.Host {
				t.Errorf("Sign: Host = %q, want %q", r.Host, want.Host)
			}
		})
	}
}

// TestSignVector freezes one signature: a request shaped like the
// specification's Encrypt example, signed with its appendix D credentials.
// (The specification's own example signature cannot be checked: its secret
// and request are not given.)
func TestSignVector(t *testing.T) {
	r, err := http.NewRequest("POST", "https://xks.example.com/example/kms/xks/v1/keys/foo/encrypt",
		bytes.NewReader([]byte(xksBody)))
	if err != nil {
		t.Fatal(err)
	}
	Sign(r, []byte(xksBody), xksAccessKey, xksSecret, "us-east-2", "kms-xks-proxy",
		time.Date(2021, 10, 9, 13, 5, 9, 0, time.UTC))
	const want = "AWS4-HMAC-SHA256 Credential=HGIE2BUAFNDMBCMSQVWLGCEXAMPLE/20211009/us-east-2/kms-xks-proxy/aws4_request, " +
		"SignedHeaders=host;x-amz-date, Signature=" + signVectorSignature
	if got := r.Header.Get("Authorization"); got != want {
		t.Errorf("Sign: Authorization = %q, want %q", got, want)
	}
	if got := r.Header.Get("X-Amz-Date"); got != "20211009T130509Z" {
		t.Errorf("Sign: X-Amz-Date = %q, want 20211009T130509Z", got)
	}
}

// signVectorSignature was computed by Sign, by aws-sdk-go-v2's signer and
// by a separate recomputation of the SigV4 steps (Python's hmac/hashlib).
const signVectorSignature = "e6ce4f2414400909a9a6ea1e17a4decc51c087001d570cf628c16ad3f9a901a7"

// TestSignVerifiedByStrict checks that Strict accepts what Sign signs, and
// refuses it once the body changes.
func TestSignVerifiedByStrict(t *testing.T) {
	body := []byte(testBody)
	r := request(t, testBody)
	Sign(r, body, rootKey, rootSecret, "us-east-1", "kms", testNow)
	if _, err := newStrict().Authenticate(r, body, "kms"); err != nil {
		t.Fatalf("Authenticate(Sign(r)) = %v, want nil", err)
	}
	if _, err := newStrict().Authenticate(r, []byte(testBody+" "), "kms"); err == nil {
		t.Fatal("Authenticate(Sign(r)) with another body = nil, want an error")
	}
}
