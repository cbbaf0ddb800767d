package sigv4

import (
	"fmt"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/keyfort/keyfort/internal/awserr"
	"github.com/keyfort/keyfort/internal/identity"
)

const sdkHeader = "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20240102/us-east-1/kms/aws4_request, " +
	"SignedHeaders=amz-sdk-invocation-id;content-type;host;x-amz-date;x-amz-target, " +
	"Signature=5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7"

func TestParseAuthorization(t *testing.T) {
	tests := []struct {
		name     string
		header   string
		wantCode string
		wantMsg  string
		want     Credential
	}{
		{name: "sdk v2", header: sdkHeader,
			want: Credential{"AKIAIOSFODNN7EXAMPLE", "20240102", "us-east-1", "kms", "aws4_request"}},
		{name: "no spaces after commas",
			header: "AWS4-HMAC-SHA256 Credential=AKID/20240102/eu-west-1/secretsmanager/aws4_request,SignedHeaders=host,Signature=abcdef",
			want:   Credential{"AKID", "20240102", "eu-west-1", "secretsmanager", "aws4_request"}},
		{name: "extra spaces",
			header: "  AWS4-HMAC-SHA256   Credential=111122223333/20240102/us-gov-west-1/kms/aws4_request ,  SignedHeaders=host ,Signature=ABCDEF  ",
			want:   Credential{"111122223333", "20240102", "us-gov-west-1", "kms", "aws4_request"}},
		{name: "components reordered",
			header: "AWS4-HMAC-SHA256 Signature=abc, SignedHeaders=host, Credential=K/20240102/ap-southeast-2/kms/aws4_request",
			want:   Credential{"K", "20240102", "ap-southeast-2", "kms", "aws4_request"}},
		{name: "empty", header: "", wantCode: CodeMissingAuthenticationToken, wantMsg: "Missing Authentication Token"},
		{name: "sigv2", header: "AWS AKID:signature", wantCode: CodeIncompleteSignature, wantMsg: "Unsupported AWS 'algorithm'"},
		{name: "algorithm only", header: "AWS4-HMAC-SHA256", wantCode: CodeIncompleteSignature,
			wantMsg: "Authorization header requires 'Credential' parameter. Authorization header requires 'Signature' parameter. Authorization header requires 'SignedHeaders' parameter."},
		{name: "missing signature",
			header:   "AWS4-HMAC-SHA256 Credential=K/20240102/us-east-1/kms/aws4_request, SignedHeaders=host",
			wantCode: CodeIncompleteSignature, wantMsg: "Authorization header requires 'Signature' parameter."},
		{name: "empty signed headers",
			header:   "AWS4-HMAC-SHA256 Credential=K/20240102/us-east-1/kms/aws4_request, SignedHeaders=, Signature=ab",
			wantCode: CodeIncompleteSignature, wantMsg: "Authorization header requires 'SignedHeaders' parameter."},
		{name: "component without equals",
			header:   "AWS4-HMAC-SHA256 Credential, SignedHeaders=host, Signature=ab",
			wantCode: CodeIncompleteSignature, wantMsg: "key=value"},
		{name: "non-hex signature",
			header:   "AWS4-HMAC-SHA256 Credential=K/20240102/us-east-1/kms/aws4_request, SignedHeaders=host, Signature=xyz",
			wantCode: CodeIncompleteSignature, wantMsg: "hex-encoded"},
		{name: "short credential",
			header:   "AWS4-HMAC-SHA256 Credential=K/20240102/us-east-1, SignedHeaders=host, Signature=ab",
			wantCode: CodeIncompleteSignature, wantMsg: "Credential is malformed"},
		{name: "long credential",
			header:   "AWS4-HMAC-SHA256 Credential=K/20240102/us-east-1/kms/aws4_request/x, SignedHeaders=host, Signature=ab",
			wantCode: CodeIncompleteSignature, wantMsg: "Credential is malformed"},
		{name: "empty access key",
			header:   "AWS4-HMAC-SHA256 Credential=/20240102/us-east-1/kms/aws4_request, SignedHeaders=host, Signature=ab",
			wantCode: CodeUnrecognizedClient, wantMsg: "The security token included in the request is invalid."},
		{name: "bad date",
			header:   "AWS4-HMAC-SHA256 Credential=K/20241399/us-east-1/kms/aws4_request, SignedHeaders=host, Signature=ab",
			wantCode: CodeInvalidSignature, wantMsg: "valid date"},
		{name: "bad terminator",
			header:   "AWS4-HMAC-SHA256 Credential=K/20240102/us-east-1/kms/aws5_request, SignedHeaders=host, Signature=ab",
			wantCode: CodeInvalidSignature, wantMsg: "Credential should be scoped with a valid terminator: 'aws4_request', not 'aws5_request'. "},
		{name: "bad region",
			header:   "AWS4-HMAC-SHA256 Credential=K/20240102/US_EAST/kms/aws4_request, SignedHeaders=host, Signature=ab",
			wantCode: CodeInvalidSignature, wantMsg: "Credential should be scoped to a valid region. "},
		{name: "empty region",
			header:   "AWS4-HMAC-SHA256 Credential=K/20240102//kms/aws4_request, SignedHeaders=host, Signature=ab",
			wantCode: CodeInvalidSignature, wantMsg: "Credential should be scoped to a valid region. "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, err := ParseAuthorization(tt.header)
			if tt.wantCode == "" {
				if err != nil {
					t.Fatalf("ParseAuthorization(%q) = %v, want nil", tt.header, err)
				}
				if a.Credential != tt.want {
					t.Errorf("ParseAuthorization(%q).Credential = %+v, want %+v", tt.header, a.Credential, tt.want)
				}
				return
			}
			e, ok := awserr.As(err)
			if !ok {
				t.Fatalf("ParseAuthorization(%q) = %v, want *awserr.Error", tt.header, err)
			}
			if e.Code != tt.wantCode || !strings.Contains(e.Message, tt.wantMsg) || e.Status != 400 {
				t.Errorf("ParseAuthorization(%q) = %s %d %q, want %s 400 containing %q",
					tt.header, e.Code, e.Status, e.Message, tt.wantCode, tt.wantMsg)
			}
		})
	}
}

func TestValidRegion(t *testing.T) {
	for _, r := range []string{"us-east-1", "eu-central-2", "us-gov-west-1", "cn-northwest-1", "ap-southeast-4", "us-isob-east-1"} {
		if !ValidRegion(r) {
			t.Errorf("ValidRegion(%q) = false, want true", r)
		}
	}
	for _, r := range []string{"", "local", "us-east", "us-east-x", "US-EAST-1", "u-east-1", "us--1", "us-east-1-", "-us-east-1", "us east-1"} {
		if ValidRegion(r) {
			t.Errorf("ValidRegion(%q) = true, want false", r)
		}
	}
}

func TestDevAuthenticate(t *testing.T) {
	header := func(akid, region, service string) string {
		return "AWS4-HMAC-SHA256 Credential=" + akid + "/20240102/" + region + "/" + service +
			"/aws4_request, SignedHeaders=host;x-amz-date, Signature=00ff"
	}
	tests := []struct {
		name        string
		auth        string
		date        string
		service     string
		wantAccount string
		wantRegion  string
		wantCode    string
		wantMsg     string
	}{
		{name: "any key is the default account", auth: header("AKIAEXAMPLE", "us-east-1", "kms"), service: "kms",
			wantAccount: "123456789012", wantRegion: "us-east-1"},
		{name: "12-digit key is the account", auth: header("111122223333", "eu-west-1", "kms"), service: "kms",
			wantAccount: "111122223333", wantRegion: "eu-west-1"},
		{name: "13 digits is not an account", auth: header("1111222233334", "eu-west-1", "kms"), service: "kms",
			wantAccount: "123456789012", wantRegion: "eu-west-1"},
		{name: "secrets manager", auth: header("test", "us-west-2", "secretsmanager"), service: "secretsmanager",
			date: "20240102T030405Z", wantAccount: "123456789012", wantRegion: "us-west-2"},
		{name: "missing header", service: "kms", wantCode: CodeMissingAuthenticationToken, wantMsg: "Missing Authentication Token"},
		{name: "wrong service", auth: header("k", "us-east-1", "secretsmanager"), service: "kms",
			wantCode: CodeInvalidSignature, wantMsg: "Credential should be scoped to correct service: 'kms'. "},
		{name: "bad date header", auth: header("k", "us-east-1", "kms"), service: "kms", date: "2024-01-02",
			wantCode: CodeIncompleteSignature, wantMsg: "ISO-8601"},
		{name: "date mismatch", auth: header("k", "us-east-1", "kms"), service: "kms", date: "20240103T000000Z",
			wantCode: CodeInvalidSignature, wantMsg: "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '20240102' != '20240103', from '20240103T000000Z'."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest("POST", "/", nil)
			if tt.auth != "" {
				r.Header.Set("Authorization", tt.auth)
			}
			if tt.date != "" {
				r.Header.Set("X-Amz-Date", tt.date)
			}
			c, err := Dev{}.Authenticate(r, nil, tt.service)
			// AuthenticateInto answers the same, into the given Caller,
			// which it leaves as is on error.
			into := &identity.Caller{SourceIP: "kept"}
			errInto := Dev{}.AuthenticateInto(r, nil, tt.service, into)
			if fmt.Sprint(errInto) != fmt.Sprint(err) || err == nil && !reflect.DeepEqual(into, c) ||
				err != nil && !reflect.DeepEqual(into, &identity.Caller{SourceIP: "kept"}) {
				t.Errorf("AuthenticateInto = %v, %+v; Authenticate = %v, %+v", errInto, into, err, c)
			}
			if tt.wantCode != "" {
				e, ok := awserr.As(err)
				if !ok || e.Code != tt.wantCode || e.Message != tt.wantMsg && !strings.Contains(e.Message, tt.wantMsg) {
					t.Fatalf("Authenticate = %v, want %s %q", err, tt.wantCode, tt.wantMsg)
				}
				return
			}
			if err != nil {
				t.Fatalf("Authenticate = %v, want nil", err)
			}
			if c.Account != tt.wantAccount || c.Region != tt.wantRegion || c.Type != "Root" ||
				c.ARN != "arn:aws:iam::"+tt.wantAccount+":root" {
				t.Errorf("Authenticate = %+v, want account %s region %s", c, tt.wantAccount, tt.wantRegion)
			}
		})
	}
}

func TestParseAuthorizationDoesNotAllocate(t *testing.T) {
	allocs := testing.AllocsPerRun(100, func() {
		if _, err := ParseAuthorization(sdkHeader); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("ParseAuthorization allocates %v times, want 0", allocs)
	}
}

func FuzzParseAuthorization(f *testing.F) {
	f.Add(sdkHeader)
	f.Add("AWS4-HMAC-SHA256 Credential=K/20240102/us-east-1/kms/aws4_request,SignedHeaders=host,Signature=ab")
	f.Add("AWS4-HMAC-SHA256 Credential=//////, SignedHeaders==, Signature==")
	f.Add("AWS4-HMAC-SHA256 ,,,,")
	f.Add("")
	f.Fuzz(func(t *testing.T, h string) {
		a, err := ParseAuthorization(h)
		if err != nil {
			e, ok := awserr.As(err)
			if !ok || e.Code == "" || e.Status != 400 {
				t.Fatalf("ParseAuthorization(%q) = %v, want a 400 *awserr.Error", h, err)
			}
			if len(e.Message) > 300 {
				t.Fatalf("ParseAuthorization(%q) message is %d bytes, want it bounded", h, len(e.Message))
			}
			return
		}
		c := a.Credential
		if a.Algorithm != Algorithm || c.AccessKeyID == "" || !ValidRegion(c.Region) ||
			c.Terminator != Terminator || len(c.Date) != 8 || a.Signature == "" || a.SignedHeaders == "" {
			t.Fatalf("ParseAuthorization(%q) = %+v accepted an invalid header", h, a)
		}
		if !strings.Contains(h, c.AccessKeyID+"/"+c.Date+"/"+c.Region+"/"+c.Service+"/"+c.Terminator) {
			t.Fatalf("ParseAuthorization(%q) credential %+v not taken from the header", h, c)
		}
	})
}

// TestParseBasicMatchesTimeParse checks the hand-written X-Amz-Date parser
// against time.Parse on valid, invalid and edge values.
func TestParseBasicMatchesTimeParse(t *testing.T) {
	for _, s := range []string{
		"20240102T030405Z", "20241231T235959Z", "20240229T000000Z", "20230229T000000Z", "20240230T000000Z",
		"20241301T000000Z", "20240100T000000Z", "20240102T240000Z", "20240102T236000Z", "20240102T030460Z",
		"2024010T2030405Z", "20240102 030405Z", "20240102T030405", "20240102T030405z", "+0240102T030405Z",
		"", "20240102T03040 Z", "00000101T000000Z",
	} {
		want, err := time.Parse(AmzDateLayout, s)
		got, ok := parseBasic(s)
		if ok != (err == nil) || (ok && !got.Equal(want)) {
			t.Errorf("parseBasic(%q) = %v %v, time.Parse = %v %v", s, got, ok, want, err)
		}
	}
}

// TestIsDateMatchesTimeParse checks the credential scope's date check
// against time.Parse, which it replaced on every request's path.
func TestIsDateMatchesTimeParse(t *testing.T) {
	for _, s := range []string{
		"20240102", "20241231", "20240229", "20230229", "20240230", "20241301", "20240100", "20240001",
		"00000101", "99991231", "2024010", "202401021", "2024-102", "2024010a", "+0240102", "", "20240431",
	} {
		_, err := time.Parse("20060102", s)
		if got := isDate(s); got != (err == nil) {
			t.Errorf("isDate(%q) = %v, time.Parse error %v", s, got, err)
		}
	}
}

func FuzzParseBasic(f *testing.F) {
	f.Add("20240102T030405Z")
	f.Fuzz(func(t *testing.T, s string) {
		want, err := time.Parse(AmzDateLayout, s)
		got, ok := parseBasic(s)
		if ok && (err != nil || !got.Equal(want)) {
			t.Fatalf("parseBasic(%q) = %v, time.Parse = %v %v", s, got, want, err)
		}
		if !ok && err == nil && len(s) == len(AmzDateLayout) {
			t.Fatalf("parseBasic refuses %q, which time.Parse takes as %v", s, want)
		}
	})
}

// TestValidDayMatchesTime checks validDay, which counts the days of the
// month itself, against its former form with time.Date, for every year
// four digits can write and every month and day around the valid ones.
func TestValidDayMatchesTime(t *testing.T) {
	ref := func(y, mo, d int) bool {
		return mo >= 1 && mo <= 12 && d >= 1 && time.Date(y, time.Month(mo), d, 0, 0, 0, 0, time.UTC).Day() == d
	}
	for y := 0; y <= 9999; y++ {
		for mo := 0; mo <= 13; mo++ {
			for d := 0; d <= 32; d++ {
				if got, want := validDay(y, mo, d), ref(y, mo, d); got != want {
					t.Fatalf("validDay(%d, %d, %d) = %t, want %t", y, mo, d, got, want)
				}
			}
		}
	}
}
