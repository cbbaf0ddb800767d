package sigv4

import (
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"time"
)

// signSignedHeaders are the headers [Sign] signs, as AWS KMS signs its
// requests to an external key store proxy (XKS Proxy API specification v1,
// appendix A: SignedHeaders=host;x-amz-date).
const signSignedHeaders = "host;x-amz-date"

// Sign signs r with AWS Signature Version 4 (AWS4-HMAC-SHA256) for the
// credential scope <date>/region/service/aws4_request: it sets X-Amz-Date
// to t (in UTC) and Authorization. The signature covers the method, the
// path, the query, the host and x-amz-date headers and the SHA-256 of body,
// which must be the whole body r sends; other headers (Content-Type,
// Content-Length) are sent unsigned, and X-Amz-Content-Sha256 is not set.
// This is how AWS KMS signs its requests to an external key store proxy.
//
// The signed host is r.Host, or r.URL.Host when r.Host is empty (Sign then
// sets r.Host to it, which is the Host the client sends anyway). Sign
// keeps neither body nor secret.
func Sign(r *http.Request, body []byte, accessKeyID, secret, region, service string, t time.Time) {
	if r.Header == nil {
		r.Header = make(http.Header)
	}
	if r.Host == "" {
		r.Host = r.URL.Host
	}
	stamp := t.UTC().Format(AmzDateLayout)
	r.Header.Set("X-Amz-Date", stamp)
	sum := sha256.Sum256(body)
	canonical := canonicalRequest(r, signSignedHeaders, hex.EncodeToString(sum[:]), false)
	scope := stamp[:8] + "/" + region + "/" + service + "/" + Terminator
	key := DeriveSigningKey(secret, stamp[:8], region, service)
	sig := hmacSHA256(key, []byte(stringToSign(stamp, scope, canonical)))
	r.Header.Set("Authorization", Algorithm+" Credential="+accessKeyID+"/"+scope+
		", SignedHeaders="+signSignedHeaders+", Signature="+hex.EncodeToString(sig))
}
