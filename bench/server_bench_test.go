// Package bench holds go test -bench drivers for the whole server (HTTP,
// codec, auth, service, store) and the SDK load generator in loadgen/.
package bench

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"

	"github.com/keyfort/keyfort/internal/keyfortest"
)

const authHeader = "AWS4-HMAC-SHA256 Credential=AKIDBENCH/20260101/us-east-1/kms/aws4_request, SignedHeaders=content-type;host;x-amz-date;x-amz-target, Signature=0000000000000000000000000000000000000000000000000000000000000000"

// rawCall posts a pre-built AWS JSON 1.1 request: a cheap client, so the
// profile of these benchmarks is mostly the server.
func rawCall(b *testing.B, c *http.Client, url, target string, body []byte) {
	req, _ := http.NewRequest("POST", url, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	req.Header.Set("X-Amz-Target", target)
	req.Header.Set("X-Amz-Date", "20260101T000000Z")
	req.Header.Set("Authorization", authHeader)
	resp, err := c.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		b.Fatalf("%s: HTTP %d", target, resp.StatusCode)
	}
}

func setup(b *testing.B) (*keyfortest.Server, string, []byte) {
	srv := keyfortest.Start(b)
	c := srv.KMS()
	ctx := context.Background()
	out, err := c.CreateKey(ctx, &kms.CreateKeyInput{})
	if err != nil {
		b.Fatal(err)
	}
	id := aws.ToString(out.KeyMetadata.KeyId)
	enc, err := c.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String(id), Plaintext: make([]byte, 64)})
	if err != nil {
		b.Fatal(err)
	}
	return srv, id, enc.CiphertextBlob
}

func benchOp(b *testing.B, target string, body []byte, srv *keyfortest.Server) {
	benchOpFunc(b, target, srv, func() []byte { return body })
}

// benchOpFunc is benchOp with the request body chosen per call.
func benchOpFunc(b *testing.B, target string, srv *keyfortest.Server, body func() []byte) {
	tr := &http.Transport{MaxIdleConnsPerHost: 64}
	c := &http.Client{Transport: tr}
	b.SetParallelism(4) // 8 clients on 2 cores, as bench/loadgen runs
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			rawCall(b, c, srv.URL, target, body())
		}
	})
}

func BenchmarkServerEncrypt(b *testing.B) {
	srv, id, _ := setup(b)
	body := fmt.Appendf(nil, `{"KeyId":%q,"Plaintext":%q}`, id, base64.StdEncoding.EncodeToString(make([]byte, 64)))
	benchOp(b, "TrentService.Encrypt", body, srv)
}

func BenchmarkServerDecrypt(b *testing.B) {
	srv, _, blob := setup(b)
	body := fmt.Appendf(nil, `{"CiphertextBlob":%q}`, base64.StdEncoding.EncodeToString(blob))
	benchOp(b, "TrentService.Decrypt", body, srv)
}

func BenchmarkServerDescribeKey(b *testing.B) {
	srv, id, _ := setup(b)
	benchOp(b, "TrentService.DescribeKey", fmt.Appendf(nil, `{"KeyId":%q}`, id), srv)
}

func BenchmarkServerTagResource(b *testing.B) {
	srv, id, _ := setup(b)
	benchOp(b, "TrentService.TagResource", fmt.Appendf(nil, `{"KeyId":%q,"Tags":[{"TagKey":"a","TagValue":"b"}]}`, id), srv)
}

// benchKeys is how many keys BenchmarkServerTagResourceManyKeys tags in
// turn (KEYFORT_BENCH_KEYS overrides it: loadgen uses 10,000).
var benchKeys = func() int {
	if n, err := strconv.Atoi(os.Getenv("KEYFORT_BENCH_KEYS")); err == nil && n > 0 {
		return n
	}
	return 256
}()

// BenchmarkServerTagResourceManyKeys tags benchKeys keys in turn, as loadgen
// does: concurrent callers seldom touch the same key.
func BenchmarkServerTagResourceManyKeys(b *testing.B) {
	srv, _, _ := setup(b)
	c := srv.KMS()
	bodies := make([][]byte, benchKeys)
	for i := range bodies {
		out, err := c.CreateKey(context.Background(), &kms.CreateKeyInput{})
		if err != nil {
			b.Fatal(err)
		}
		bodies[i] = fmt.Appendf(nil, `{"KeyId":%q,"Tags":[{"TagKey":"a","TagValue":"%d"}]}`, aws.ToString(out.KeyMetadata.KeyId), i)
	}
	var next atomic.Uint64
	benchOpFunc(b, "TrentService.TagResource", srv, func() []byte { return bodies[next.Add(1)%uint64(len(bodies))] })
}

func BenchmarkServerListKeys(b *testing.B) {
	srv, _, _ := setup(b)
	c := srv.KMS()
	for i := range 300 {
		out, err := c.CreateKey(context.Background(), &kms.CreateKeyInput{})
		if err != nil {
			b.Fatal(err)
		}
		if i < 150 {
			if _, err := c.CreateAlias(context.Background(), &kms.CreateAliasInput{AliasName: aws.String(fmt.Sprintf("alias/a%03d", i)), TargetKeyId: out.KeyMetadata.KeyId}); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.Run("ListKeys", func(b *testing.B) { benchOp(b, "TrentService.ListKeys", []byte(`{"Limit":100}`), srv) })
	b.Run("ListAliases", func(b *testing.B) { benchOp(b, "TrentService.ListAliases", []byte(`{"Limit":100}`), srv) })
}
