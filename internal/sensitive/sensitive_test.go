package sensitive

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

func TestRedacted(t *testing.T) {
	b, s := Bytes("top secret"), String("top secret")
	for _, format := range []string{"%v", "%s", "%x", "%q", "%+v", "%#v", "%d"} {
		for _, v := range []any{b, s} {
			if got := fmt.Sprintf(format, v); strings.Contains(got, "secret") || strings.Contains(got, "746f70") {
				t.Errorf("Sprintf(%q, %T) = %q, leaks the value", format, v, got)
			}
		}
	}
	var logs bytes.Buffer
	slog.New(slog.NewJSONHandler(&logs, nil)).Info("x", "b", b, "s", s)
	if strings.Contains(logs.String(), "secret") {
		t.Errorf("slog wrote %s", logs.String())
	}
	j, err := json.Marshal(struct {
		B Bytes
		S String
	}{b, s})
	if err != nil || strings.Contains(string(j), "secret") || strings.Contains(string(j), "dG9w") {
		t.Errorf("json.Marshal = %s, %v; want redacted", j, err)
	}
	if string(b.Reveal()) != "top secret" || s.Reveal() != "top secret" {
		t.Errorf("Reveal does not return the value")
	}
}

func TestBytesUnmarshalJSON(t *testing.T) {
	cases := []struct {
		in   string
		want []byte
		ok   bool
	}{
		{`"aGVsbG8="`, []byte("hello"), true},
		{`""`, []byte{}, true},
		{`"aGVs\/bG8="`, nil, false}, // escaped '/' goes the slow way: not base64 after unescaping either
		{`"aGVsbG8\u003d"`, []byte("hello"), true},
		{`"not base64!"`, nil, false},
		{`42`, nil, false},
		{`"aGVsbG8`, nil, false},
	}
	for _, c := range cases {
		var b Bytes
		err := json.Unmarshal([]byte(`{"v":`+c.in+`}`), &struct{ V *Bytes }{&b})
		if (err == nil) != c.ok || (c.ok && !bytes.Equal(b, c.want)) {
			t.Errorf("Unmarshal(%s) = %q, %v; want %q, ok=%v", c.in, []byte(b), err, c.want, c.ok)
		}
	}
	var b Bytes = Bytes("x")
	if err := json.Unmarshal([]byte("null"), &b); err != nil || b != nil {
		t.Errorf("Unmarshal(null) = %q, %v; want nil", []byte(b), err)
	}
	var s String
	if err := json.Unmarshal([]byte(`"a\"b"`), &s); err != nil || s.Reveal() != `a"b` {
		t.Errorf("String Unmarshal = %q, %v", s.Reveal(), err)
	}
}
