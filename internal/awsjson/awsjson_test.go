package awsjson

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/keyfort/keyfort/internal/awserr"
	"github.com/keyfort/keyfort/internal/sensitive"
)

type testTag struct {
	TagKey   *string
	TagValue *string
}

type testInput struct {
	KeyId             *string
	NumberOfBytes     *int32
	Plaintext         sensitive.Bytes
	CiphertextBlob    []byte
	GrantTokens       []string
	EncryptionContext map[string]string
	Tags              []testTag
	BypassPolicy      *bool
}

func (*testInput) Validate() error { return nil }

type testOutput struct{ body string }

func (o *testOutput) AppendJSON(b []byte) []byte { return append(b, o.body...) }

func TestDecode(t *testing.T) {
	tests := []struct {
		name    string
		body    string
		check   func(*testInput) bool
		wantMsg string // "" means success
	}{
		{name: "empty body", body: "", check: func(in *testInput) bool { return in.KeyId == nil }},
		{name: "whitespace body", body: " \n", check: func(in *testInput) bool { return in.KeyId == nil }},
		{name: "empty object", body: "{}", check: func(in *testInput) bool { return in.KeyId == nil }},
		{name: "null", body: "null", check: func(in *testInput) bool { return in.KeyId == nil }},
		{name: "members", body: `{"KeyId":"alias/x","NumberOfBytes":32,"Plaintext":"aGVsbG8=","EncryptionContext":{"a":"b"}}`,
			check: func(in *testInput) bool {
				return *in.KeyId == "alias/x" && *in.NumberOfBytes == 32 &&
					string(in.Plaintext.Reveal()) == "hello" && in.EncryptionContext["a"] == "b"
			}},
		{name: "unknown member ignored", body: `{"KeyId":"k","SomethingNew":{"x":[1,2]}}`,
			check: func(in *testInput) bool { return *in.KeyId == "k" }},
		{name: "malformed", body: `{"KeyId":`, wantMsg: "Malformed JSON in request body"},
		{name: "garbage", body: `hello`, wantMsg: "Malformed JSON in request body at byte offset 1"},
		{name: "trailing data", body: `{} {}`, wantMsg: "Malformed JSON"},
		{name: "string for integer", body: `{"NumberOfBytes":"32"}`, wantMsg: "Member 'NumberOfBytes' must be an integer, found string"},
		{name: "number for string", body: `{"KeyId":12345}`, wantMsg: "Member 'KeyId' must be a string, found number"},
		{name: "integer overflow", body: `{"NumberOfBytes":99999999999}`, wantMsg: "Value of member 'NumberOfBytes' is not a valid integer"},
		{name: "fraction for integer", body: `{"NumberOfBytes":1.5}`, wantMsg: "Value of member 'NumberOfBytes' is not a valid integer"},
		{name: "object for list", body: `{"GrantTokens":{}}`, wantMsg: "Member 'GrantTokens' must be an array, found object"},
		{name: "number in map", body: `{"EncryptionContext":{"a":1}}`, wantMsg: "must be a string, found number"},
		{name: "nested wrong type", body: `{"Tags":[{"TagKey":true}]}`, wantMsg: "Member 'Tags.TagKey' must be a string, found bool"},
		{name: "bool wrong", body: `{"BypassPolicy":"yes"}`, wantMsg: "Member 'BypassPolicy' must be a boolean, found string"},
		{name: "array top level", body: `[1]`, wantMsg: "Request body must be a JSON object, found array"},
		{name: "bad base64 blob", body: `{"CiphertextBlob":"!!!"}`, wantMsg: "not valid base64"},
		{name: "bad base64 sensitive", body: `{"Plaintext":"!!!"}`, wantMsg: "not valid base64"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var in testInput
			err := JSON11{}.Decode([]byte(tt.body), &in)
			if tt.wantMsg == "" {
				if err != nil {
					t.Fatalf("Decode(%q) = %v, want nil", tt.body, err)
				}
				if !tt.check(&in) {
					t.Fatalf("Decode(%q) decoded %+v", tt.body, in)
				}
				return
			}
			e, ok := awserr.As(err)
			if !ok {
				t.Fatalf("Decode(%q) = %v, want *awserr.Error", tt.body, err)
			}
			if e.Code != "SerializationException" || e.Status != 400 {
				t.Errorf("Decode(%q) = %s/%d, want SerializationException/400", tt.body, e.Code, e.Status)
			}
			if !strings.Contains(e.Message, tt.wantMsg) {
				t.Errorf("Decode(%q) message = %q, want it to contain %q", tt.body, e.Message, tt.wantMsg)
			}
		})
	}
}

// TestDecodeNeverEchoesValues checks that error messages carry no request
// values, which may be plaintexts or secrets.
func TestDecodeNeverEchoesValues(t *testing.T) {
	const secret = "s3cr3tVALUE"
	bodies := []string{
		`{"NumberOfBytes":"` + secret + `"}`,
		`{"KeyId":["` + secret + `"]}`,
		`{"Plaintext":"` + secret + `!"}`,
		`{"KeyId":"` + secret + `"`,
		`{"` + secret + `"}`,
		`{"NumberOfBytes":1234567890123` + `}`,
	}
	for _, body := range bodies {
		var in testInput
		err := JSON11{}.Decode([]byte(body), &in)
		if err == nil {
			t.Fatalf("Decode(%q) = nil, want error", body)
		}
		if strings.Contains(err.Error(), secret) || strings.Contains(err.Error(), "1234567890123") {
			t.Errorf("Decode(%q) = %q, echoes the value", body, err)
		}
	}
}

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

func FuzzDecode(f *testing.F) {
	for _, s := range []string{"", "{}", `{"KeyId":"x","Tags":[{"TagKey":"a"}]}`, `{"NumberOfBytes":"1"}`, "[", `{"Plaintext":"AAAA"}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var in testInput
		err := JSON11{}.Decode(body, &in)
		if err != nil {
			if e, ok := awserr.As(err); !ok || e.Code != "SerializationException" {
				t.Fatalf("Decode(%q) = %v, want SerializationException", body, err)
			}
		}
		var buf bytes.Buffer
		buf.Write(AppendString(nil, string(body)))
		var round string
		if err := jsonUnmarshal(buf.Bytes(), &round); err != nil {
			t.Fatalf("AppendString produced invalid JSON %q: %v", buf.Bytes(), err)
		}
	})
}
