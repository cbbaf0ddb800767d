package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keyfort/keyfort/internal/audit"
	"github.com/keyfort/keyfort/internal/audit/audittest"
	"github.com/keyfort/keyfort/internal/awserr"
	"github.com/keyfort/keyfort/internal/identity"
	"github.com/keyfort/keyfort/internal/jsonread"
	"github.com/keyfort/keyfort/internal/kms/kmsapi"
	"github.com/keyfort/keyfort/internal/metrics"
	"github.com/keyfort/keyfort/internal/operation"
	"github.com/keyfort/keyfort/internal/secretsmanager/smapi"
	"github.com/keyfort/keyfort/internal/sensitive"
)

// fakeInput is an operation input with a sensitive member.
type fakeInput struct {
	KeyId     *string
	Plaintext sensitive.Bytes
	Count     *int32
}

// UnmarshalAWSJSON decodes the body as the generated decoders do.
func (in *fakeInput) UnmarshalAWSJSON(body []byte) error {
	d := jsonread.NewDecoder(body)
	var seen uint64
	for more := d.BeginStruct(); more; more = d.NextMember() {
		switch string(d.Name()) {
		case "KeyId":
			if d.Seen(&seen, 0) || d.Null() {
				continue
			}
			s := d.String()
			in.KeyId = &s
		case "Plaintext":
			if d.Seen(&seen, 1) || d.Null() {
				continue
			}
			in.Plaintext = sensitive.Bytes(d.Blob())
		case "Count":
			if d.Seen(&seen, 2) || d.Null() {
				continue
			}
			n := d.Int32()
			in.Count = &n
		default:
			d.Skip()
		}
	}
	return d.Finish()
}

func (in *fakeInput) Validate() error {
	if in.KeyId != nil && *in.KeyId == "" {
		return awserr.Validation("1 validation error detected: Value '' at 'keyId' failed to satisfy constraint: Member must have length greater than or equal to 1")
	}
	return nil
}

type fakeOutput struct {
	KeyId     string
	Account   string
	Region    string
	Plaintext sensitive.Bytes
}

func (o *fakeOutput) AppendJSON(b []byte) []byte {
	v, _ := json.Marshal(map[string]string{"KeyId": o.KeyId, "Account": o.Account, "Region": o.Region,
		"Plaintext": string(o.Plaintext.Reveal())})
	return append(b, v...)
}

// fakeOps returns a fake operation table whose behaviour is chosen by the
// KeyId of the request.
func fakeOps(prefix string) []operation.Operation {
	invoke := func(ctx context.Context, in operation.Input) (operation.Output, error) {
		x := in.(*fakeInput)
		key := ""
		if x.KeyId != nil {
			key = *x.KeyId
		}
		switch key {
		case "panic":
			panic("boom")
		case "internal":
			return nil, errors.New("database exploded at /var/lib/x")
		case "notfound":
			return nil, awserr.New("NotFoundException", "Key 'k' does not exist")
		case "conflict":
			return nil, &awserr.Error{Code: "ConflictThing", Message: "status from the model"}
		case "undeclared":
			return nil, awserr.New("AccessDeniedException", "denied")
		case "gone": // waits for the client to go away
			<-ctx.Done()
			return nil, fmt.Errorf("store: %w", ctx.Err())
		case "timeout":
			return nil, fmt.Errorf("store: %w", context.DeadlineExceeded)
		}
		c := identity.From(ctx)
		return &fakeOutput{KeyId: key, Account: c.Account, Region: c.Region, Plaintext: x.Plaintext}, nil
	}
	op := func(name string, readOnly bool) operation.Operation {
		return operation.Operation{
			Service: prefix, Name: name, ReadOnly: readOnly, MaxBody: 256,
			NewInput: func() operation.Input { return new(fakeInput) },
			Invoke:   invoke,
		}
	}
	return []operation.Operation{op("CreateKey", false), op("Encrypt", false), op("DescribeKey", true), op("PutSecretValue", false)}
}

var kmsErrors = map[string]operation.ErrorShape{
	"NotFoundException":    {Code: "NotFoundException", Status: 400, MessageField: "message"},
	"KMSInternalException": {Code: "KMSInternalException", Status: 500, Fault: true, MessageField: "message"},
	"ConflictThing":        {Code: "ConflictThing", Status: 409, MessageField: "message"},
}

var smErrors = map[string]operation.ErrorShape{
	"ResourceNotFoundException": {Code: "ResourceNotFoundException", Status: 400, MessageField: "Message"},
	"InternalServiceError":      {Code: "InternalServiceError", Status: 500, Fault: true, MessageField: "Message"},
}

type testServer struct {
	*Server
	audit  *audittest.MemorySink
	logs   *syncBuffer
	health error
	mu     sync.Mutex
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

func newTestServer(t *testing.T, opts ...func(*Config)) *testServer {
	t.Helper()
	ts := &testServer{audit: &audittest.MemorySink{}, logs: &syncBuffer{}}
	cfg := Config{
		Services: []Service{
			kmsService(fakeOps("TrentService"), kmsErrors),
			smService(fakeOps("secretsmanager"), smErrors),
		},
		Audit:  ts.audit,
		Logger: slog.New(slog.NewTextHandler(ts.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Now:    func() time.Time { return time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC) },
		Health: func(context.Context) error { ts.mu.Lock(); defer ts.mu.Unlock(); return ts.health },
	}
	for _, o := range opts {
		o(&cfg)
	}
	srv, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ts.Server = srv
	return ts
}

func authHeader(akid, region, service string) string {
	return "AWS4-HMAC-SHA256 Credential=" + akid + "/20240102/" + region + "/" + service +
		"/aws4_request, SignedHeaders=host;x-amz-date;x-amz-target, Signature=0123abcd"
}

type request struct {
	target string
	body   string
	auth   string // "" = a valid KMS header; "-" = none
}

func (ts *testServer) do(t *testing.T, rq request) *httptest.ResponseRecorder {
	t.Helper()
	r := httptest.NewRequest("POST", "/", strings.NewReader(rq.body))
	r.Header.Set("Content-Type", "application/x-amz-json-1.1")
	if rq.target != "" {
		r.Header.Set("X-Amz-Target", rq.target)
	}
	switch rq.auth {
	case "":
		service := "kms"
		if strings.HasPrefix(rq.target, "secretsmanager.") {
			service = "secretsmanager"
		}
		r.Header.Set("Authorization", authHeader("111122223333", "eu-west-1", service))
	case "-":
	default:
		r.Header.Set("Authorization", rq.auth)
	}
	r.Header.Set("User-Agent", "test-agent/1.0")
	w := httptest.NewRecorder()
	ts.ServeHTTP(w, r)
	return w
}

var uuidRE = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

func TestDispatch(t *testing.T) {
	tests := []struct {
		name       string
		req        request
		wantStatus int
		wantBody   string // exact, or "" to skip
		wantCode   string // X-Amzn-ErrorType, "" for success
		audited    bool
	}{
		{name: "success", req: request{target: "TrentService.CreateKey", body: `{"KeyId":"k1","Plaintext":"aGk="}`},
			wantStatus: 200, wantBody: `{"Account":"111122223333","KeyId":"k1","Plaintext":"hi","Region":"eu-west-1"}`, audited: true},
		{name: "empty body", req: request{target: "TrentService.DescribeKey"},
			wantStatus: 200, wantBody: `{"Account":"111122223333","KeyId":"","Plaintext":"","Region":"eu-west-1"}`, audited: true},
		{name: "unknown operation", req: request{target: "TrentService.Frobnicate", body: "{}"},
			wantStatus: 400, wantCode: "UnknownOperationException",
			wantBody: `{"__type":"UnknownOperationException","message":"The operation named in the X-Amz-Target header is not recognized."}`},
		{name: "unknown secrets manager operation", req: request{target: "secretsmanager.Frobnicate", body: "{}"},
			wantStatus: 400, wantCode: "UnknownOperationException",
			wantBody: `{"__type":"UnknownOperationException","Message":"The operation named in the X-Amz-Target header is not recognized."}`},
		{name: "missing target", req: request{body: "{}"}, wantStatus: 400, wantCode: "UnknownOperationException"},
		{name: "missing auth", req: request{target: "TrentService.CreateKey", body: "{}", auth: "-"},
			wantStatus: 400, wantCode: "MissingAuthenticationTokenException",
			wantBody: `{"__type":"MissingAuthenticationTokenException","message":"Missing Authentication Token"}`, audited: true},
		{name: "wrong service in scope", req: request{target: "TrentService.CreateKey", body: "{}", auth: authHeader("k", "us-east-1", "secretsmanager")},
			wantStatus: 400, wantCode: "InvalidSignatureException",
			wantBody: `{"__type":"InvalidSignatureException","message":"Credential should be scoped to correct service: 'kms'. "}`, audited: true},
		{name: "secrets manager auth error uses Message", req: request{target: "secretsmanager.PutSecretValue", body: "{}", auth: "-"},
			wantStatus: 400, wantCode: "MissingAuthenticationTokenException",
			wantBody: `{"__type":"MissingAuthenticationTokenException","Message":"Missing Authentication Token"}`, audited: true},
		{name: "malformed json", req: request{target: "TrentService.CreateKey", body: `{"KeyId":`},
			wantStatus: 400, wantCode: "SerializationException", audited: true},
		{name: "wrong type", req: request{target: "TrentService.CreateKey", body: `{"Count":"x"}`},
			wantStatus: 400, wantCode: "SerializationException",
			wantBody: `{"__type":"SerializationException","message":"STRING_VALUE can not be converted to an Integer"}`, audited: true},
		{name: "validation", req: request{target: "TrentService.CreateKey", body: `{"KeyId":""}`},
			wantStatus: 400, wantCode: "ValidationException", audited: true},
		{name: "body too large", req: request{target: "TrentService.CreateKey", body: `{"KeyId":"` + strings.Repeat("x", 300) + `"}`},
			wantStatus: 413, wantCode: "RequestEntityTooLargeException", audited: true},
		{name: "service error", req: request{target: "TrentService.CreateKey", body: `{"KeyId":"notfound"}`},
			wantStatus: 400, wantCode: "NotFoundException",
			wantBody: `{"__type":"NotFoundException","message":"Key 'k' does not exist"}`, audited: true},
		{name: "service error uses model status", req: request{target: "TrentService.CreateKey", body: `{"KeyId":"conflict"}`},
			wantStatus: 409, wantCode: "ConflictThing", audited: true},
		{name: "undeclared code uses service message field", req: request{target: "secretsmanager.PutSecretValue", body: `{"KeyId":"undeclared"}`},
			wantStatus: 400, wantCode: "AccessDeniedException", wantBody: `{"__type":"AccessDeniedException","Message":"denied"}`, audited: true},
		{name: "kms internal error", req: request{target: "TrentService.CreateKey", body: `{"KeyId":"internal"}`},
			wantStatus: 500, wantCode: "KMSInternalException",
			wantBody: `{"__type":"KMSInternalException","message":"` + InternalMessage + `"}`, audited: true},
		{name: "secrets manager internal error", req: request{target: "secretsmanager.PutSecretValue", body: `{"KeyId":"internal"}`},
			wantStatus: 500, wantCode: "InternalServiceError",
			wantBody: `{"__type":"InternalServiceError","Message":"` + InternalMessage + `"}`, audited: true},
		{name: "panic", req: request{target: "TrentService.CreateKey", body: `{"KeyId":"panic"}`},
			wantStatus: 500, wantCode: "KMSInternalException", audited: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := newTestServer(t)
			w := ts.do(t, tt.req)
			if w.Code != tt.wantStatus {
				t.Errorf("status = %d, want %d (body %s)", w.Code, tt.wantStatus, w.Body)
			}
			if tt.wantBody != "" && w.Body.String() != tt.wantBody {
				t.Errorf("body = %s\nwant   %s", w.Body, tt.wantBody)
			}
			if got := w.Header().Get("X-Amzn-ErrorType"); got != tt.wantCode {
				t.Errorf("X-Amzn-ErrorType = %q, want %q", got, tt.wantCode)
			}
			if got := w.Header().Get("Content-Type"); got != "application/x-amz-json-1.1" {
				t.Errorf("Content-Type = %q", got)
			}
			reqID := w.Header().Get("X-Amzn-RequestId")
			if !uuidRE.MatchString(reqID) {
				t.Errorf("x-amzn-RequestId = %q, want a v4 UUID", reqID)
			}
			events := ts.audit.Events()
			if !tt.audited {
				if len(events) != 0 {
					t.Errorf("audited %d events, want 0", len(events))
				}
				return
			}
			if len(events) != 1 {
				t.Fatalf("audited %d events, want 1", len(events))
			}
			e := events[0]
			if e.RequestID != reqID || e.ErrorCode != tt.wantCode {
				t.Errorf("event requestID %q errorCode %q, want %q %q", e.RequestID, e.ErrorCode, reqID, tt.wantCode)
			}
		})
	}
}

func TestAuditEvent(t *testing.T) {
	ts := newTestServer(t)
	w := ts.do(t, request{target: "TrentService.CreateKey", body: `{"KeyId":"k1","Plaintext":"aHVudGVyMg=="}`})
	if w.Code != 200 {
		t.Fatalf("status = %d", w.Code)
	}
	w = ts.do(t, request{target: "TrentService.Encrypt", body: `{"KeyId":"k1","Plaintext":"aHVudGVyMg=="}`})
	if w.Code != 200 {
		t.Fatalf("status = %d", w.Code)
	}
	w = ts.do(t, request{target: "TrentService.DescribeKey", body: `{"KeyId":"k1"}`})
	w = ts.do(t, request{target: "secretsmanager.PutSecretValue", body: `{"KeyId":"notfound"}`})
	events := ts.audit.Events()
	if len(events) != 4 {
		t.Fatalf("audited %d events, want 4", len(events))
	}
	create := events[0]
	if create.EventSource != "kms.amazonaws.com" || create.EventName != "CreateKey" || create.AWSRegion != "eu-west-1" ||
		create.RecipientAccountID != "111122223333" || create.UserIdentity.Type != "Root" ||
		create.UserIdentity.ARN != "arn:aws:iam::111122223333:root" || create.UserIdentity.AccessKeyID != "111122223333" ||
		create.SourceIPAddress != "192.0.2.1" || create.UserAgent != "test-agent/1.0" || create.ReadOnly ||
		create.EventType != "AwsApiCall" || !create.EventTime.Equal(time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)) {
		t.Errorf("CreateKey event = %+v", create)
	}
	if got, want := string(create.RequestParameters), `{"KeyId":"k1","Plaintext":"[REDACTED]","Count":null}`; got != want {
		t.Errorf("requestParameters = %s, want %s", got, want)
	}
	if got, want := string(create.ResponseElements), `{"KeyId":"k1","Account":"111122223333","Region":"eu-west-1","Plaintext":"[REDACTED]"}`; got != want {
		t.Errorf("responseElements = %s, want %s", got, want)
	}
	if events[1].ResponseElements != nil {
		t.Errorf("Encrypt responseElements = %s, want null", events[1].ResponseElements)
	}
	if !events[2].ReadOnly || events[2].ResponseElements != nil {
		t.Errorf("DescribeKey readOnly %v responseElements %s, want true, null", events[2].ReadOnly, events[2].ResponseElements)
	}
	sm := events[3]
	if sm.EventSource != "secretsmanager.amazonaws.com" || sm.ErrorCode != "NotFoundException" ||
		sm.ErrorMessage != "Key 'k' does not exist" || sm.ResponseElements != nil {
		t.Errorf("PutSecretValue event = %+v", sm)
	}
	for _, e := range events {
		b, _ := json.Marshal(&e)
		if bytes.Contains(b, []byte("hunter2")) || bytes.Contains(b, []byte("aHVudGVyMg==")) {
			t.Errorf("audit event leaks the plaintext: %s", b)
		}
	}
}

func TestInternalErrorIsLoggedWithRequestID(t *testing.T) {
	ts := newTestServer(t)
	w := ts.do(t, request{target: "TrentService.CreateKey", body: `{"KeyId":"internal"}`})
	reqID := w.Header().Get("X-Amzn-RequestId")
	logs := ts.logs.String()
	if !strings.Contains(logs, "database exploded") || !strings.Contains(logs, reqID) || !strings.Contains(logs, "level=ERROR") {
		t.Errorf("logs = %s, want the cause at error level with request id %s", logs, reqID)
	}
	if strings.Contains(w.Body.String(), "exploded") {
		t.Errorf("response %s reveals the cause", w.Body)
	}
}

func TestDebugLogLine(t *testing.T) {
	ts := newTestServer(t)
	w := ts.do(t, request{target: "TrentService.CreateKey", body: `{"KeyId":"k","Plaintext":"aHVudGVyMg=="}`})
	logs := ts.logs.String()
	for _, want := range []string{"level=DEBUG", "msg=request", "op=TrentService.CreateKey", "status=200", "duration=", "request_id=" + w.Header().Get("X-Amzn-RequestId")} {
		if !strings.Contains(logs, want) {
			t.Errorf("logs = %s, want %q", logs, want)
		}
	}
	if strings.Contains(logs, "aHVudGVyMg==") || strings.Contains(logs, "hunter2") {
		t.Errorf("logs contain the body: %s", logs)
	}
}

func TestPanicKeepsServing(t *testing.T) {
	ts := newTestServer(t)
	hs := httptest.NewServer(ts)
	defer hs.Close()
	post := func(key string) *http.Response {
		r, _ := http.NewRequest("POST", hs.URL+"/", strings.NewReader(`{"KeyId":"`+key+`"}`))
		r.Header.Set("X-Amz-Target", "TrentService.CreateKey")
		r.Header.Set("Authorization", authHeader("k", "us-east-1", "kms"))
		resp, err := hs.Client().Do(r)
		if err != nil {
			t.Fatalf("POST: %v", err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp
	}
	if resp := post("panic"); resp.StatusCode != 500 || resp.Header.Get("X-Amzn-ErrorType") != "KMSInternalException" {
		t.Errorf("panic: status %d %q, want 500 KMSInternalException", resp.StatusCode, resp.Header.Get("X-Amzn-ErrorType"))
	}
	if resp := post("ok"); resp.StatusCode != 200 {
		t.Errorf("after panic: status %d, want 200", resp.StatusCode)
	}
	if !strings.Contains(ts.logs.String(), "boom") {
		t.Errorf("panic value not logged: %s", ts.logs.String())
	}
}

func TestAuditFailClosed(t *testing.T) {
	ts := newTestServer(t)
	ts.audit.SetError(errors.New("disk full"))
	w := ts.do(t, request{target: "TrentService.CreateKey", body: `{"KeyId":"k1","Plaintext":"aHVudGVyMg=="}`})
	if w.Code != 500 || w.Header().Get("X-Amzn-ErrorType") != "KMSInternalException" {
		t.Errorf("status %d %q, want 500 KMSInternalException", w.Code, w.Header().Get("X-Amzn-ErrorType"))
	}
	if strings.Contains(w.Body.String(), "k1") || strings.Contains(w.Body.String(), "hunter2") {
		t.Errorf("body %s carries the output although the audit failed", w.Body)
	}
	if !strings.Contains(ts.logs.String(), "disk full") {
		t.Errorf("audit failure not logged: %s", ts.logs.String())
	}
	ts.audit.SetError(nil)
	if w := ts.do(t, request{target: "TrentService.CreateKey", body: `{}`}); w.Code != 200 {
		t.Errorf("after audit recovered: status %d, want 200", w.Code)
	}
}

func TestHealth(t *testing.T) {
	ts := newTestServer(t)
	get := func() *httptest.ResponseRecorder {
		w := httptest.NewRecorder()
		ts.ServeHTTP(w, httptest.NewRequest("GET", "/health", nil))
		return w
	}
	if w := get(); w.Code != 200 || w.Body.String() != `{"status":"ok"}` {
		t.Errorf("GET /health = %d %s, want 200 {\"status\":\"ok\"}", w.Code, w.Body)
	}
	ts.mu.Lock()
	ts.health = errors.New("store closed")
	ts.mu.Unlock()
	if w := get(); w.Code != 503 || w.Body.String() != `{"status":"unavailable"}` {
		t.Errorf("GET /health = %d %s, want 503 {\"status\":\"unavailable\"}", w.Code, w.Body)
	}
	if n := len(ts.audit.Events()); n != 0 {
		t.Errorf("health checks audited %d events, want 0", n)
	}
}

func TestOtherPaths(t *testing.T) {
	ts := newTestServer(t)
	for _, rq := range []struct{ method, path string }{{"GET", "/"}, {"POST", "/x"}, {"PUT", "/"}, {"POST", "/health"}} {
		w := httptest.NewRecorder()
		ts.ServeHTTP(w, httptest.NewRequest(rq.method, rq.path, nil))
		if w.Code != 404 || w.Header().Get("X-Amzn-ErrorType") != "UnknownOperationException" || w.Header().Get("X-Amzn-RequestId") == "" {
			t.Errorf("%s %s = %d %q, want 404 UnknownOperationException", rq.method, rq.path, w.Code, w.Header().Get("X-Amzn-ErrorType"))
		}
	}
}

func TestCheckListener(t *testing.T) {
	mk := func(insecure bool) *Server {
		s, err := New(Config{Audit: audit.Discard, InsecureDevAuth: insecure})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	tests := []struct {
		name     string
		addr     net.Addr
		insecure bool
		wantErr  bool
	}{
		{"ipv4 loopback", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 4599}, false, false},
		{"ipv6 loopback", &net.TCPAddr{IP: net.IPv6loopback, Port: 4599}, false, false},
		{"all interfaces", &net.TCPAddr{IP: net.IPv4zero, Port: 4599}, false, true},
		{"public", &net.TCPAddr{IP: net.IPv4(192, 0, 2, 1), Port: 4599}, false, true},
		{"public insecure", &net.TCPAddr{IP: net.IPv4(192, 0, 2, 1), Port: 4599}, true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := mk(tt.insecure).CheckListener(tt.addr)
			if (err != nil) != tt.wantErr {
				t.Errorf("CheckListener(%v) = %v, want error %v", tt.addr, err, tt.wantErr)
			}
			if err != nil && !strings.Contains(err.Error(), "--insecure-dev-auth") {
				t.Errorf("CheckListener(%v) = %v, want it to name --insecure-dev-auth", tt.addr, err)
			}
		})
	}
}

func TestNewRejectsDuplicates(t *testing.T) {
	ops := fakeOps("TrentService")
	_, err := New(Config{Audit: audit.Discard, Services: []Service{kmsService(append(ops, ops[0]), kmsErrors)}})
	if err == nil || !strings.Contains(err.Error(), "TrentService.CreateKey listed twice") {
		t.Errorf("New(duplicate) = %v, want listed twice", err)
	}
	if _, err := New(Config{}); err == nil {
		t.Errorf("New(no audit) = nil, want error")
	}
}

func TestServeAndShutdown(t *testing.T) {
	ts := newTestServer(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- ts.Serve(l) }()
	resp, err := http.Get("http://" + l.Addr().String() + "/health")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("GET /health = %d", resp.StatusCode)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := ts.Shutdown(ctx); err != nil {
		t.Errorf("Shutdown = %v", err)
	}
	if err := <-done; err != nil {
		t.Errorf("Serve = %v, want nil after Shutdown", err)
	}
}

func BenchmarkDispatch(b *testing.B) {
	srv, err := New(Config{Services: []Service{kmsService(fakeOps("TrentService"), kmsErrors)}, Audit: audit.Discard})
	if err != nil {
		b.Fatal(err)
	}
	body := []byte(`{"KeyId":"k1","Plaintext":"aGVsbG8="}`)
	auth := authHeader("k", "us-east-1", "kms")
	b.ReportAllocs()
	for b.Loop() {
		r := httptest.NewRequest("POST", "/", bytes.NewReader(body))
		r.Header.Set("X-Amz-Target", "TrentService.Encrypt")
		r.Header.Set("Authorization", auth)
		w := httptest.NewRecorder()
		srv.ServeHTTP(w, r)
		if w.Code != 200 {
			b.Fatal(w.Code)
		}
	}
}

// TestOnUndeclaredError checks the hook tests use to fail on an error code
// the operation's model does not declare: called for such a code, not for
// a declared one nor a common one.
func TestOnUndeclaredError(t *testing.T) {
	var got []string
	ops := fakeOps("TrentService")
	ops[0].Errors = []string{"NotFoundException"} // CreateKey declares it; Encrypt does not
	srv, err := New(Config{
		Services:          []Service{kmsService(ops, kmsErrors)},
		Audit:             &audittest.MemorySink{},
		OnUndeclaredError: func(target, code string) { got = append(got, target+" "+code) },
	})
	if err != nil {
		t.Fatal(err)
	}
	ts := &testServer{Server: srv}
	ts.do(t, request{target: "TrentService.CreateKey", body: `{"KeyId":"notfound"}`})   // declared
	ts.do(t, request{target: "TrentService.Encrypt", body: `{"KeyId":"undeclared"}`})   // AccessDeniedException: common
	ts.do(t, request{target: "TrentService.Encrypt", body: `{"KeyId":""}`})             // ValidationException: common
	ts.do(t, request{target: "TrentService.Encrypt", body: `{"KeyId":"notfound"}`})     // not declared by Encrypt here
	ts.do(t, request{target: "TrentService.DescribeKey", body: `{"KeyId":"conflict"}`}) // not declared
	want := []string{"TrentService.Encrypt NotFoundException", "TrentService.DescribeKey ConflictThing"}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("undeclared errors reported = %v, want %v", got, want)
	}
}

// TestServiceErrorMapping checks the per-service facts of errors that are
// not the client's: the service's MapError (a request whose context ended),
// and its internal message.
func TestServiceErrorMapping(t *testing.T) {
	svc := kmsService(fakeOps("TrentService"), kmsErrors)
	svc.InternalMessage = "kms internal words"
	svc.MapError = func(err error) *awserr.Error {
		if errors.Is(err, context.DeadlineExceeded) {
			return awserr.WithStatus(500, "DependencyTimeoutException", "The request timed out.")
		}
		return nil
	}
	srv, err := New(Config{Services: []Service{svc}, Audit: &audittest.MemorySink{}})
	if err != nil {
		t.Fatal(err)
	}
	ts := &testServer{Server: srv}
	w := ts.do(t, request{target: "TrentService.Encrypt", body: `{"KeyId":"timeout"}`})
	if w.Code != 500 || w.Body.String() != `{"__type":"DependencyTimeoutException","message":"The request timed out."}` {
		t.Errorf("timeout: %d %s", w.Code, w.Body)
	}
	w = ts.do(t, request{target: "TrentService.Encrypt", body: `{"KeyId":"internal"}`})
	if w.Code != 500 || w.Body.String() != `{"__type":"KMSInternalException","message":"kms internal words"}` {
		t.Errorf("internal: %d %s", w.Code, w.Body)
	}
}

// kmsService and smService describe KMS and Secrets Manager as app does,
// with the given (fake) operations.
func kmsService(ops []operation.Operation, errs map[string]operation.ErrorShape) Service {
	return NewService(kmsapi.Facts(), ops, errs)
}

func smService(ops []operation.Operation, errs map[string]operation.ErrorShape) Service {
	return NewService(smapi.Facts(), ops, errs)
}

// TestTargetAliases serves a service under its qualified target prefix and
// its alias, as CloudTrail is (botocore sends the one, Smithy-generated
// SDKs the other); an unknown operation under either gets the service's
// message casing.
func TestTargetAliases(t *testing.T) {
	const prefix, alias = "com.amazonaws.example.v1.Example_1", "Example_1"
	svc := NewService(operation.Facts{TargetPrefix: prefix, TargetAliases: []string{alias}, SigningName: "kms",
		EventSource: "example.amazonaws.com", MessageField: "Message", InternalErrorCode: "InternalFailure"}, fakeOps(prefix), nil)
	ts := newTestServer(t, func(c *Config) { c.Services = []Service{svc} })
	for _, p := range []string{prefix, alias} {
		if w := ts.do(t, request{target: p + ".DescribeKey", body: `{"KeyId":"k"}`}); w.Code != 200 {
			t.Errorf("%s.DescribeKey = %d %s, want 200", p, w.Code, w.Body)
		}
		w := ts.do(t, request{target: p + ".Frobnicate", body: `{}`})
		if want := `{"__type":"UnknownOperationException","Message":"The operation named in the X-Amz-Target header is not recognized."}`; w.Code != 400 || w.Body.String() != want {
			t.Errorf("%s.Frobnicate = %d %s, want 400 %s", p, w.Code, w.Body, want)
		}
	}
	if _, err := New(Config{Audit: audit.Discard, Services: []Service{svc, svc}}); err == nil || !strings.Contains(err.Error(), "listed twice") {
		t.Errorf("New(a prefix twice) = %v, want listed twice", err)
	}
}

func TestReady(t *testing.T) {
	var notReady error
	var mu sync.Mutex
	ts := newTestServer(t, func(c *Config) {
		c.Ready = func(context.Context) error { mu.Lock(); defer mu.Unlock(); return notReady }
	})
	get := func() *httptest.ResponseRecorder {
		w := httptest.NewRecorder()
		ts.ServeHTTP(w, httptest.NewRequest("GET", "/ready", nil))
		return w
	}
	if w := get(); w.Code != 200 || w.Body.String() != `{"status":"ready"}` {
		t.Errorf("GET /ready = %d %s, want 200 {\"status\":\"ready\"}", w.Code, w.Body)
	}
	mu.Lock()
	notReady = errors.New("jobs stopped")
	mu.Unlock()
	if w := get(); w.Code != 503 || w.Body.String() != `{"status":"not ready"}` {
		t.Errorf("GET /ready = %d %s, want 503 {\"status\":\"not ready\"}", w.Code, w.Body)
	}
}

func TestRequestMetrics(t *testing.T) {
	reg := metrics.NewRegistry()
	ts := newTestServer(t, func(c *Config) { c.Metrics = reg; c.LogRequests = true })
	ts.do(t, request{target: "TrentService.CreateKey", body: `{"KeyId":"k"}`})
	ts.do(t, request{target: "TrentService.CreateKey", body: `{"KeyId":"k"}`})
	ts.do(t, request{target: "TrentService.CreateKey", body: `{"KeyId":"internal"}`})
	ts.do(t, request{target: "TrentService.CreateKey", body: `{"KeyId":"panic"}`})
	ts.do(t, request{target: "TrentService.CreateKey", body: `{"KeyId":`})
	ts.do(t, request{target: "TrentService.NoSuchOperation", body: `{}`})
	ts.do(t, request{target: "made.up.client.chosen.Name", body: `{}`})
	ts.audit.SetError(errors.New("disk full"))
	ts.do(t, request{target: "TrentService.CreateKey", body: `{"KeyId":"k"}`})
	ts.audit.SetError(nil)

	var b strings.Builder
	if err := reg.WriteText(&b); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		`keyfort_requests_total{service="kms",operation="CreateKey",code="OK"} 2` + "\n",
		`keyfort_requests_total{service="kms",operation="CreateKey",code="KMSInternalException"} 3` + "\n", // internal, panic, audit failure
		`keyfort_requests_total{service="kms",operation="CreateKey",code="SerializationException"} 1` + "\n",
		`keyfort_requests_total{service="",operation="",code="UnknownOperationException"} 2` + "\n",
		`keyfort_request_duration_seconds_count{service="kms",operation="CreateKey"} 6` + "\n",
		`keyfort_audit_writes_total{result="error"} 1` + "\n",
		`keyfort_audit_writes_total{result="ok"} 5` + "\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("metrics lack %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "NoSuchOperation") || strings.Contains(out, "made.up") {
		t.Errorf("a client's target became a label:\n%s", out)
	}
	if !strings.Contains(ts.logs.String(), "level=INFO msg=request op=TrentService.CreateKey status=200") {
		t.Errorf("LogRequests: no info line: %s", ts.logs.String())
	}
}

// BenchmarkDispatchMetrics is BenchmarkDispatch with a registry: the
// request path's metrics must add no allocation.
func BenchmarkDispatchMetrics(b *testing.B) {
	srv, err := New(Config{Services: []Service{kmsService(fakeOps("TrentService"), kmsErrors)}, Audit: audit.Discard,
		Metrics: metrics.NewRegistry()})
	if err != nil {
		b.Fatal(err)
	}
	body := []byte(`{"KeyId":"k1","Plaintext":"aGVsbG8="}`)
	auth := authHeader("k", "us-east-1", "kms")
	b.ReportAllocs()
	for b.Loop() {
		r := httptest.NewRequest("POST", "/", bytes.NewReader(body))
		r.Header.Set("X-Amz-Target", "TrentService.Encrypt")
		r.Header.Set("Authorization", auth)
		w := httptest.NewRecorder()
		srv.ServeHTTP(w, r)
		if w.Code != 200 {
			b.Fatal(w.Code)
		}
	}
}

type outerKey struct{}

// TestRequestContext checks what an operation finds in its context, which
// the server carries in one node of its own (callCtx) where it used a
// context.WithValue for each value: the caller, the notes and the event id
// of the request, the values and the cancellation of the request's own
// context, through derived contexts too.
func TestRequestContext(t *testing.T) {
	type seen struct {
		caller             *identity.Caller
		eventID, derivedID string
		outer              any
		noNotes            bool
		canceled           error
	}
	var got seen
	ops := fakeOps("TrentService")
	for i := range ops {
		ops[i].Invoke = func(ctx context.Context, in operation.Input) (operation.Output, error) {
			got.caller = identity.From(ctx)
			got.eventID = operation.EventID(ctx)
			got.outer = ctx.Value(outerKey{})
			operation.AddResource(ctx, operation.Resource{Type: "AWS::KMS::Key", ARN: "arn:aws:kms:eu-west-1:111122223333:key/k1", Account: "111122223333"})
			child, cancel := context.WithCancel(identity.WithVia(ctx, &identity.Via{Service: "x"}))
			defer cancel()
			got.derivedID = operation.EventID(child)
			operation.AddResource(operation.WithoutNotes(child), operation.Resource{Type: "x", ARN: "not noted"})
			got.noNotes = identity.From(operation.WithoutNotes(child)) == got.caller
			operation.AddEvent(child, operation.Event{Name: "Decrypt", Source: "kms.amazonaws.com", ReadOnly: true})
			return &fakeOutput{KeyId: "k1"}, nil
		}
	}
	ts := newTestServer(t, func(c *Config) { c.Services = []Service{kmsService(ops, kmsErrors)} })
	r := httptest.NewRequest("POST", "/", strings.NewReader(`{"KeyId":"k1"}`))
	r.Header.Set("X-Amz-Target", "TrentService.Encrypt")
	r.Header.Set("Authorization", authHeader("111122223333", "eu-west-1", "kms"))
	r = r.WithContext(context.WithValue(r.Context(), outerKey{}, "outer"))
	w := httptest.NewRecorder()
	ts.ServeHTTP(w, r)
	if w.Code != 200 {
		t.Fatalf("status = %d: %s", w.Code, w.Body)
	}
	reqID := w.Header().Get("X-Amzn-Requestid")
	events := ts.audit.Events()
	if len(events) != 2 {
		t.Fatalf("audited %d events, want 2 (the request's and the noted Decrypt)", len(events))
	}
	if got.caller == nil || got.caller.Account != "111122223333" || got.caller.RequestID != reqID || got.caller.UserAgent != "" && got.caller.UserAgent != r.UserAgent() {
		t.Errorf("identity.From = %+v, want the caller of request %s", got.caller, reqID)
	}
	if got.eventID != events[0].EventID || got.derivedID != got.eventID || !uuidRE.MatchString(got.eventID) || got.eventID == reqID {
		t.Errorf("operation.EventID = %q (derived %q), want the request's event id %q, a v4 UUID other than the request id %q",
			got.eventID, got.derivedID, events[0].EventID, reqID)
	}
	if events[1].EventName != "Decrypt" || events[1].RequestID != reqID || events[1].EventID == got.eventID {
		t.Errorf("noted event = %+v", events[1])
	}
	if len(events[0].Resources) != 1 || events[0].Resources[0].ARN != "arn:aws:kms:eu-west-1:111122223333:key/k1" {
		t.Errorf("resources = %+v, want the one noted under the request's context", events[0].Resources)
	}
	if got.outer != "outer" || !got.noNotes {
		t.Errorf("request context value = %v, identity under WithoutNotes kept = %v; want outer, true", got.outer, got.noNotes)
	}

	// The request's cancellation reaches the operation's context.
	ctx, cancel := context.WithCancel(context.Background())
	ops[1].Invoke = func(ctx context.Context, in operation.Input) (operation.Output, error) {
		cancel()
		<-ctx.Done()
		got.canceled = ctx.Err()
		return &fakeOutput{}, nil
	}
	ts = newTestServer(t, func(c *Config) { c.Services = []Service{kmsService(ops, kmsErrors)} })
	r = httptest.NewRequestWithContext(ctx, "POST", "/", strings.NewReader(`{"KeyId":"k1"}`))
	r.Header.Set("X-Amz-Target", "TrentService.Encrypt")
	r.Header.Set("Authorization", authHeader("111122223333", "eu-west-1", "kms"))
	ts.ServeHTTP(httptest.NewRecorder(), r)
	if got.canceled != context.Canceled {
		t.Errorf("operation's ctx.Err() after the request's cancel = %v, want context.Canceled", got.canceled)
	}
}
