package awsjson

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/keyfort/keyfort/internal/awserr"
)

type testOutput struct{ body string }

func (o *testOutput) AppendJSON(b []byte) []byte { return append(b, o.body...) }

func TestWriteErrorGolden(t *testing.T) {
	tests := []struct {
		name     string
		err      *awserr.Error
		field    string
		status   int
		wantBody string
	}{
		{
			name:     "kms not found",
			err:      awserr.New("NotFoundException", "Key 'arn:aws:kms:us-east-1:123456789012:key/1' does not exist"),
			field:    "message",
			status:   400,
			wantBody: `{"__type":"NotFoundException","message":"Key 'arn:aws:kms:us-east-1:123456789012:key/1' does not exist"}`,
		},
		{
			name:     "secrets manager not found",
			err:      awserr.New("ResourceNotFoundException", "Secrets Manager can't find the specified secret."),
			field:    "Message",
			status:   400,
			wantBody: `{"__type":"ResourceNotFoundException","Message":"Secrets Manager can't find the specified secret."}`,
		},
		{
			name:     "kms internal",
			err:      awserr.WithStatus(500, "KMSInternalException", "internal"),
			field:    "message",
			status:   500,
			wantBody: `{"__type":"KMSInternalException","message":"internal"}`,
		},
		{
			name:     "escaping",
			err:      awserr.New("ValidationException", "a \"quoted\" \\ <tag> \n\x01 \xff"),
			field:    "",
			status:   400,
			wantBody: `{"__type":"ValidationException","message":"a \"quoted\" \\ <tag> \n\u0001 \ufffd"}`,
		},
		{
			// AWS sends no message member for an error without one
			// (KMS's InvalidCiphertextException), whichever its name.
			name:     "no message",
			err:      awserr.New("InvalidCiphertextException", ""),
			field:    "message",
			status:   400,
			wantBody: `{"__type":"InvalidCiphertextException"}`,
		},
		{
			name:     "no Message",
			err:      awserr.New("X", ""),
			field:    "Message",
			status:   400,
			wantBody: `{"__type":"X"}`,
		},
		{
			name:     "no status means 400",
			err:      &awserr.Error{Code: "X", Message: "m"},
			field:    "Message",
			status:   400,
			wantBody: `{"__type":"X","Message":"m"}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			if err := (JSON11{}).WriteError(rec, tt.err, tt.field); err != nil {
				t.Fatal(err)
			}
			if rec.Code != tt.status {
				t.Errorf("status = %d, want %d", rec.Code, tt.status)
			}
			if got := rec.Body.String(); got != tt.wantBody {
				t.Errorf("body = %s\nwant   %s", got, tt.wantBody)
			}
			if got := rec.Header().Get("X-Amzn-ErrorType"); got != tt.err.Code {
				t.Errorf("X-Amzn-ErrorType = %q, want %q", got, tt.err.Code)
			}
			if got := rec.Header().Get("Content-Type"); got != ContentType {
				t.Errorf("Content-Type = %q, want %q", got, ContentType)
			}
		})
	}
}

func TestWriteOutput(t *testing.T) {
	rec := httptest.NewRecorder()
	body := JSON11{}.AppendOutput(nil, &testOutput{body: `{"KeyId":"k"}`})
	if err := (JSON11{}).WriteOutput(rec, body); err != nil {
		t.Fatal(err)
	}
	if rec.Code != 200 || rec.Body.String() != `{"KeyId":"k"}` || rec.Header().Get("Content-Type") != ContentType {
		t.Errorf("WriteOutput = %d %q %q", rec.Code, rec.Body.String(), rec.Header().Get("Content-Type"))
	}
	if got := string(JSON11{}.AppendOutput(nil, (*testOutput)(nil))); got != "{}" {
		t.Errorf("AppendOutput(nil) = %q, want {}", got)
	}
}

func TestReadBody(t *testing.T) {
	tests := []struct {
		name          string
		body          string
		contentLength int64
		limit         int64
		wantErr       bool
	}{
		{name: "empty", body: "", contentLength: 0, limit: 10},
		{name: "at limit", body: "0123456789", contentLength: 10, limit: 10},
		{name: "over limit", body: "0123456789a", contentLength: 11, limit: 10, wantErr: true},
		{name: "over limit unknown length", body: strings.Repeat("x", 5000), contentLength: -1, limit: 4096, wantErr: true},
		{name: "lying content length", body: strings.Repeat("x", 20), contentLength: 5, limit: 10, wantErr: true},
		{name: "default limit", body: strings.Repeat("x", 5000), contentLength: -1, limit: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ReadBody(strings.NewReader(tt.body), tt.contentLength, tt.limit, make([]byte, 0, 4))
			if tt.wantErr {
				e, ok := awserr.As(err)
				if !ok || e.Status != http.StatusRequestEntityTooLarge || e.Code != "RequestEntityTooLargeException" {
					t.Fatalf("ReadBody = %v, want RequestEntityTooLargeException 413", err)
				}
				return
			}
			if err != nil || string(got) != tt.body {
				t.Fatalf("ReadBody = %q, %v, want %q", got, err, tt.body)
			}
		})
	}
	_, err := ReadBody(io.MultiReader(strings.NewReader("ab"), errReader{}), -1, 10, nil)
	if err == nil || !errors.Is(err, errBoom) {
		t.Errorf("ReadBody(failing reader) = %v, want wrapped errBoom", err)
	}
}

var errBoom = errors.New("boom")

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, errBoom }

func TestAppendStringMatchesEncodingJSON(t *testing.T) {
	for _, s := range []string{"", "plain", "tab\there", "\u2028\u2029", "é✓😀", "\x00\x1f", `"\`} {
		got := AppendString(nil, s)
		var round string
		if err := jsonUnmarshal(got, &round); err != nil || round != s {
			t.Errorf("AppendString(%q) = %s, round trip %q, %v", s, got, round, err)
		}
	}
}

func FuzzAppendString(f *testing.F) {
	for _, s := range []string{"", "{}", "\xff", "\u2028", `"\`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var round string
		if err := jsonUnmarshal(AppendString(nil, string(body)), &round); err != nil {
			t.Fatalf("AppendString(%q) produced invalid JSON: %v", body, err)
		}
	})
}
