package e2e

import (
	"bufio"
	"bytes"
	"io"
	"log/slog"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/keyfort/keyfort/internal/config"
	"github.com/keyfort/keyfort/internal/keyfortest"
)

// scrape reads the text exposition at url: each sample line's name and
// labels, as written, to its value.
func scrape(t *testing.T, url string) map[string]float64 {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s = %d", url, resp.StatusCode)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "text/plain; version=0.0.4; charset=utf-8" {
		t.Errorf("Content-Type = %q", ct)
	}
	out := make(map[string]float64)
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") || line == "" {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("sample %q: %v", line, err)
		}
		out[line[:i]] = v
	}
	return out
}

// syncWriter is a log destination tests read while the server writes.
type syncWriter struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (w *syncWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func (w *syncWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}

func TestMetricsAndReady(t *testing.T) {
	var logs syncWriter
	srv := keyfortest.Start(t,
		keyfortest.WithConfig(func(c *config.Config) {
			c.MetricsListen = "127.0.0.1:0"
			c.LogRequests = true
		}),
		keyfortest.WithLogger(slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo}))))
	ctx := ctxT(t)
	// Asked for port 0, the app logs where it listens: the one way an
	// operator learns the address.
	listening := regexp.MustCompile(`msg="metrics listening" addr=(\S+)`).FindStringSubmatch(logs.String())
	if listening == nil || listening[1] == "127.0.0.1:0" {
		t.Fatalf("no metrics listening line with the bound address in the log:\n%s", logs.String())
	}
	addr := listening[1]
	metricsURL := "http://" + addr + "/metrics"

	// GET /ready on the main port.
	resp, err := srv.HTTPClient().Get(srv.URL + "/ready")
	mustNoErr(t, err, "GET /ready")
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || string(body) != `{"status":"ready"}` {
		t.Fatalf("GET /ready = %d %s, want 200 {\"status\":\"ready\"}", resp.StatusCode, body)
	}

	k, sm := srv.KMS(), srv.SecretsManager()
	key, err := k.CreateKey(ctx, &kms.CreateKeyInput{})
	mustNoErr(t, err, "CreateKey")
	_, err = k.CreateAlias(ctx, &kms.CreateAliasInput{AliasName: aws.String("alias/metrics"), TargetKeyId: key.KeyMetadata.KeyId})
	mustNoErr(t, err, "CreateAlias")
	for range 3 {
		_, err = k.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String("alias/metrics"), Plaintext: []byte("metrics-plaintext")})
		mustNoErr(t, err, "Encrypt")
	}
	_, err = k.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: []byte("not a ciphertext blob at all, just bytes")})
	wantAPIError(t, err, "InvalidCiphertextException", "")
	_, err = k.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String("alias/none")})
	wantAPIError(t, err, "NotFoundException", "")
	_, err = sm.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String("metrics/s"), SecretString: aws.String("metrics-secret-value")})
	mustNoErr(t, err, "CreateSecret")
	for range 3 { // the first read notes the access date (a write): the later ones hit the cache
		_, err = sm.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String("metrics/s")})
		mustNoErr(t, err, "GetSecretValue")
	}
	_, err = sm.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String("metrics/none")})
	wantAPIError(t, err, "ResourceNotFoundException", "")
	mustNoErr(t, srv.App.RunJobs(ctx), "RunJobs")

	m := scrape(t, metricsURL)
	exact := map[string]float64{
		`keyfort_requests_total{service="kms",operation="CreateKey",code="OK"}`:                                        1,
		`keyfort_requests_total{service="kms",operation="Encrypt",code="OK"}`:                                          3,
		`keyfort_requests_total{service="kms",operation="Decrypt",code="InvalidCiphertextException"}`:                  1,
		`keyfort_requests_total{service="kms",operation="DescribeKey",code="NotFoundException"}`:                       1,
		`keyfort_requests_total{service="kms",operation="Decrypt",code="OK"}`:                                          0,
		`keyfort_requests_total{service="secretsmanager",operation="GetSecretValue",code="OK"}`:                        3,
		`keyfort_requests_total{service="secretsmanager",operation="GetSecretValue",code="ResourceNotFoundException"}`: 1,
		`keyfort_request_duration_seconds_count{service="kms",operation="Encrypt"}`:                                    3,
		`keyfort_request_duration_seconds_bucket{service="kms",operation="Encrypt",le="+Inf"}`:                         3,
		`keyfort_request_duration_seconds_count{service="secretsmanager",operation="GetSecretValue"}`:                  4,
	}
	for series, want := range exact {
		if got, ok := m[series]; !ok || got != want {
			t.Errorf("%s = %v (present %v), want %v", series, got, ok, want)
		}
	}
	atLeast := map[string]float64{
		`go_goroutines`: 1,
		`keyfort_store_commit_duration_seconds_count{store="sqlite"}`:  3, // CreateKey, CreateAlias, CreateSecret
		`keyfort_store_commit_batch_size_count{store="sqlite"}`:        3,
		`keyfort_store_commit_batch_size_sum{store="sqlite"}`:          3,
		`keyfort_cache_requests_total{cache="kms_key",result="hit"}`:   1, // the second and third Encrypt
		`keyfort_cache_requests_total{cache="kms_alias",result="hit"}`: 1,
		`keyfort_cache_requests_total{cache="sm_secret",result="hit"}`: 1, // the third GetSecretValue
		`keyfort_audit_writes_total{result="ok"}`:                      10,
		`keyfort_job_runs_total{job="kms"}`:                            1,
		`keyfort_job_runs_total{job="secretsmanager"}`:                 1,
		`keyfort_job_runs_total{job="audit"}`:                          1,
		`keyfort_job_duration_seconds_count{job="audit"}`:              1,
	}
	for series, want := range atLeast {
		if got := m[series]; got < want {
			t.Errorf("%s = %v, want at least %v", series, got, want)
		}
	}
	if got := m[`keyfort_job_failures_total{job="audit"}`]; got != 0 {
		t.Errorf("audit job failures = %v, want 0", got)
	}
	if got := m[`keyfort_audit_writes_total{result="error"}`]; got != 0 {
		t.Errorf("audit write errors = %v, want 0", got)
	}
	// Buckets are cumulative and end with the count.
	var prev float64
	for _, le := range []string{"0.0001", "0.00025", "0.0005", "0.001", "0.0025", "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "10", "+Inf"} {
		v := m[`keyfort_request_duration_seconds_bucket{service="kms",operation="Encrypt",le="`+le+`"}`]
		if v < prev {
			t.Errorf("Encrypt bucket le=%s = %v, below the previous %v", le, v, prev)
		}
		prev = v
	}

	// The metrics listener serves GET /metrics only; the main port does
	// not serve metrics.
	for _, tc := range []struct {
		method, url string
		want        int
	}{
		{http.MethodPost, metricsURL, http.StatusMethodNotAllowed},
		{http.MethodGet, "http://" + addr + "/ready", http.StatusNotFound},
		{http.MethodGet, srv.URL + "/metrics", http.StatusNotFound},
	} {
		req, _ := http.NewRequestWithContext(ctx, tc.method, tc.url, nil)
		resp, err := srv.HTTPClient().Do(req)
		mustNoErr(t, err, tc.method+" "+tc.url)
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("%s %s = %d, want %d", tc.method, tc.url, resp.StatusCode, tc.want)
		}
	}

	// --log-requests: one info line per request, without values.
	logged := logs.String()
	if !strings.Contains(logged, "level=INFO msg=request op=TrentService.Encrypt status=200") {
		t.Errorf("no info request line for Encrypt in the log:\n%s", logged)
	}
	if !strings.Contains(logged, "op=secretsmanager.GetSecretValue status=400") {
		t.Errorf("no info request line for the failed GetSecretValue in the log:\n%s", logged)
	}
	for _, v := range []string{"metrics-plaintext", "metrics-secret-value"} {
		if strings.Contains(logged, v) {
			t.Errorf("the request log holds the value %q", v)
		}
	}

	// Not ready once Close has begun (here: ended; the listener is gone,
	// so App.Ready answers what /ready would).
	mustNoErr(t, srv.App.Ready(ctx), "Ready before Close")
	mustNoErr(t, srv.App.Close(), "Close")
	if err := srv.App.Ready(ctx); err == nil {
		t.Error("Ready after Close = nil, want an error")
	}
	if _, err := http.Get(metricsURL); err == nil {
		t.Error("the metrics listener still answers after Close")
	}
}

// TestMetricsBinary runs the keyfort binary with --metrics-listen (through
// KEYFORT_METRICS_LISTEN) and --log-requests, scrapes it after a call, and
// checks that the metrics address is refused when it is --listen's.
func TestMetricsBinary(t *testing.T) {
	same := freePort(t)
	_, errOut, status := runKeyfort(t, "serve", "--data", t.TempDir(), "--listen", same, "--metrics-listen", same)
	if want := "keyfort: config: metrics-listen: " + same + " is the address of --listen (" + same +
		"); metrics need a listener of their own\n"; status != 2 || errOut != want {
		t.Errorf("serve with --metrics-listen = --listen: exit %d, stderr %q; want 2, %q", status, errOut, want)
	}

	maddr := freePort(t)
	p := startBinary(t, t.TempDir(), "KEYFORT_METRICS_LISTEN="+maddr, "KEYFORT_LOG_REQUESTS=true")
	ctx := ctxT(t)
	_, err := p.kms().ListKeys(ctx, &kms.ListKeysInput{})
	mustNoErr(t, err, "ListKeys")
	m := scrape(t, "http://"+maddr+"/metrics")
	if got := m[`keyfort_requests_total{service="kms",operation="ListKeys",code="OK"}`]; got != 1 {
		t.Errorf("ListKeys OK = %v, want 1", got)
	}
	// The Go runtime's figures: the default memory limit (40 MiB), the
	// live heap under it (0 until the first collection), collections,
	// goroutines and resident memory.
	if got := m["go_gc_gomemlimit_bytes"]; got != 40<<20 {
		t.Errorf("go_gc_gomemlimit_bytes = %v, want %d (the default --memory-limit)", got, 40<<20)
	}
	for _, name := range []string{"go_gc_heap_live_bytes", "go_gc_cycles_total_gc_cycles_total"} {
		if v, ok := m[name]; !ok || v < 0 || v >= 40<<20 {
			t.Errorf("%s = %v (present %v), want 0 or more and under the limit", name, v, ok)
		}
	}
	for _, name := range []string{"go_goroutines", "go_gc_heap_goal_bytes", "go_gc_gogc_percent", "go_memory_classes_total_bytes"} {
		if m[name] <= 0 {
			t.Errorf("%s = %v, want above 0", name, m[name])
		}
	}
	if rss := m["process_resident_memory_bytes"]; rss < 1<<20 {
		t.Errorf("process_resident_memory_bytes = %v, want at least 1 MiB", rss)
	}
	p.stop(t)
	if !strings.Contains(p.logs.String(), "metrics listening") {
		t.Errorf("no metrics listener line in the log:\n%s", p.logs.String())
	}
}
