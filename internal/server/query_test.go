package server

import (
	"encoding/xml"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/keyfort/keyfort/internal/iam"
	"github.com/keyfort/keyfort/internal/identity"
)

func (ts *testServer) doQuery(t *testing.T, contentType, body, service string) *httptest.ResponseRecorder {
	t.Helper()
	r := httptest.NewRequest("POST", "/", strings.NewReader(body))
	if contentType != "" {
		r.Header.Set("Content-Type", contentType)
	}
	if service != "" {
		r.Header.Set("Authorization", authHeader("111122223333", "eu-west-1", service))
	}
	r.Header.Set("User-Agent", "test-agent/1.0")
	w := httptest.NewRecorder()
	ts.ServeHTTP(w, r)
	return w
}

type queryError struct {
	XMLName xml.Name `xml:"ErrorResponse"`
	Type    string   `xml:"Error>Type"`
	Code    string   `xml:"Error>Code"`
	Message string   `xml:"Error>Message"`
	ReqID   string   `xml:"RequestId"`
}

func TestQueryGetCallerIdentity(t *testing.T) {
	ts := newTestServer(t)
	for _, ct := range []string{"application/x-www-form-urlencoded", "application/x-www-form-urlencoded; charset=utf-8", "Application/X-WWW-Form-Urlencoded"} {
		w := ts.doQuery(t, ct, "Action=GetCallerIdentity&Version=2011-06-15", "sts")
		if w.Code != 200 || w.Header().Get("Content-Type") != "text/xml" {
			t.Fatalf("%s: status %d, content type %q: %s", ct, w.Code, w.Header().Get("Content-Type"), w.Body)
		}
		var got struct {
			XMLName xml.Name `xml:"https://sts.amazonaws.com/doc/2011-06-15/ GetCallerIdentityResponse"`
			Arn     string   `xml:"GetCallerIdentityResult>Arn"`
			UserID  string   `xml:"GetCallerIdentityResult>UserId"`
			Account string   `xml:"GetCallerIdentityResult>Account"`
			ReqID   string   `xml:"ResponseMetadata>RequestId"`
		}
		if err := xml.Unmarshal(w.Body.Bytes(), &got); err != nil {
			t.Fatalf("%v: %s", err, w.Body)
		}
		if got.Arn != "arn:aws:iam::111122223333:root" || got.UserID != "111122223333" || got.Account != "111122223333" ||
			got.ReqID != w.Header().Get("X-Amzn-RequestId") || got.ReqID == "" {
			t.Errorf("response = %+v", got)
		}
	}
	events := ts.audit.Events()
	if len(events) != 3 {
		t.Fatalf("audited %d events, want 3", len(events))
	}
	e := events[0]
	if e.EventSource != "sts.amazonaws.com" || e.EventName != "GetCallerIdentity" || !e.ReadOnly ||
		e.UserIdentity.ARN != "arn:aws:iam::111122223333:root" || e.AWSRegion != "eu-west-1" || e.ErrorCode != "" ||
		e.UserAgent != "test-agent/1.0" || e.SourceIPAddress != "192.0.2.1" {
		t.Errorf("event = %+v", e)
	}
}

func TestQueryErrors(t *testing.T) {
	tests := []struct {
		name, body, service string
		status              int
		code, message       string
		audited             bool
	}{
		{"assume role", "Action=AssumeRole&Version=2011-06-15&RoleArn=x", "sts", 400, "InvalidAction",
			"Keyfort serves only the STS action GetCallerIdentity; AssumeRole is not supported", true},
		{"unknown action", "Action=Nope%3C&Version=2011-06-15", "sts", 400, "InvalidAction",
			"Could not find operation Nope< (Keyfort serves only the STS action GetCallerIdentity)", false},
		{"no action", "Version=2011-06-15", "sts", 400, "MissingAction", "The request must contain the parameter Action", false},
		{"no version", "Action=GetCallerIdentity", "sts", 400, "MissingParameter", "The request must contain the parameter Version", true},
		{"other version", "Action=GetCallerIdentity&Version=2010", "sts", 400, "InvalidAction",
			"Could not find operation GetCallerIdentity for version 2010", true},
		{"extra parameter", "Action=GetCallerIdentity&Version=2011-06-15&X=1", "sts", 400, "InvalidParameterValue",
			"GetCallerIdentity takes no parameter X", true},
		{"bad encoding", "Action=%zz", "sts", 400, "MalformedQueryString", "The request body is not a valid form-encoded query string", false},
		{"wrong signing name", "Action=GetCallerIdentity&Version=2011-06-15", "kms", 400, "SignatureDoesNotMatch", "", true},
		{"unsigned", "Action=GetCallerIdentity&Version=2011-06-15", "", 400, "MissingAuthenticationToken", "", true},
		{"too large", "Action=GetCallerIdentity&Version=2011-06-15&P=" + strings.Repeat("a", stsMaxBody), "sts", 413, "RequestEntityTooLarge", "", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ts := newTestServer(t)
			w := ts.doQuery(t, "application/x-www-form-urlencoded", tc.body, tc.service)
			var got queryError
			if err := xml.Unmarshal(w.Body.Bytes(), &got); err != nil {
				t.Fatalf("%v: %s", err, w.Body)
			}
			if w.Code != tc.status || got.Code != tc.code || got.Type != "Sender" ||
				(tc.message != "" && got.Message != tc.message) || got.ReqID != w.Header().Get("X-Amzn-RequestId") {
				t.Errorf("status %d, error %+v; want %d %s %q", w.Code, got, tc.status, tc.code, tc.message)
			}
			if n := len(ts.audit.Events()); (n == 1) != tc.audited || n > 1 {
				t.Errorf("audited %d events, want audited %v", n, tc.audited)
			} else if n == 1 && ts.audit.Events()[0].ErrorCode != tc.code {
				t.Errorf("audit error code %q, want %q", ts.audit.Events()[0].ErrorCode, tc.code)
			}
		})
	}
}

// A JSON request (with X-Amz-Target, or without a form content type) is
// not taken for a Query one.
func TestQueryRouting(t *testing.T) {
	ts := newTestServer(t)
	r := httptest.NewRequest("POST", "/", strings.NewReader(`{"KeyId":"k1"}`))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r.Header.Set("X-Amz-Target", "TrentService.DescribeKey")
	r.Header.Set("Authorization", authHeader("111122223333", "eu-west-1", "kms"))
	w := httptest.NewRecorder()
	ts.ServeHTTP(w, r)
	if strings.Contains(w.Body.String(), "<") {
		t.Errorf("a JSON request got a Query answer: %s", w.Body)
	}
	for _, ct := range []string{"", "application/x-amz-json-1.1", "text/plain", "application/x-www-form-urlencoded;;bad="} {
		w := ts.doQuery(t, ct, "Action=GetCallerIdentity&Version=2011-06-15", "sts")
		if strings.Contains(w.Body.String(), "<") || w.Code != http.StatusBadRequest {
			t.Errorf("content type %q: %d %s", ct, w.Code, w.Body)
		}
	}
}

func TestQueryCallerUserID(t *testing.T) {
	for _, c := range []struct {
		caller *identity.Caller
		want   string
	}{
		{identity.Root("111122223333", "us-east-1", "AKID"), "111122223333"},
		{&identity.Caller{Account: "111122223333", ARN: "arn:aws:iam::111122223333:user/u"}, "111122223333"},
		{&identity.Caller{Account: "111122223333", ARN: "arn:aws:sts::111122223333:assumed-role/r/s",
			Principal: iam.Principal{UserID: "AROAEXAMPLE:s"}}, "AROAEXAMPLE:s"},
	} {
		if got := callerUserID(c.caller); got != c.want {
			t.Errorf("callerUserID(%s) = %q, want %q", c.caller.ARN, got, c.want)
		}
	}
}

func TestAppendXMLText(t *testing.T) {
	got := string(appendXMLText(nil, "a<b>&\"'\x01\n\xff é"))
	want := "a&lt;b&gt;&amp;&quot;&apos;\uFFFD&#10;\uFFFD é"
	if got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	var v struct {
		S string `xml:",chardata"`
	}
	if err := xml.Unmarshal([]byte("<x>"+got+"</x>"), &v); err != nil || v.S != "a<b>&\"'\uFFFD\n\uFFFD é" {
		t.Errorf("round trip: %q, %v", v.S, err)
	}
}

func TestQueryAuditFailClosed(t *testing.T) {
	ts := newTestServer(t)
	ts.audit.SetError(errors.New("disk full"))
	for _, body := range []string{"Action=GetCallerIdentity&Version=2011-06-15", "Action=AssumeRole&Version=2011-06-15"} {
		w := ts.doQuery(t, "application/x-www-form-urlencoded", body, "sts")
		var got queryError
		if err := xml.Unmarshal(w.Body.Bytes(), &got); err != nil {
			t.Fatalf("%v: %s", err, w.Body)
		}
		if w.Code != 500 || got.Type != "Receiver" || got.Code != "InternalFailure" || strings.Contains(w.Body.String(), "111122223333") {
			t.Errorf("%s: status %d, error %+v", body, w.Code, got)
		}
	}
	if !strings.Contains(ts.logs.String(), "disk full") {
		t.Errorf("audit failure not logged: %s", ts.logs.String())
	}
}
