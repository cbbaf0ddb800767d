package jsonstr

import (
	"encoding/json"
	"testing"
)

func TestAppendRoundTrips(t *testing.T) {
	for _, s := range []string{"", "plain", `q"uote\back`, "\n\r\t\x00\x1f", "<&>", "é€😀", "\u2028\u2029", "bad\xffutf8"} {
		b := Append(nil, s)
		var got string
		if err := json.Unmarshal(b, &got); err != nil {
			t.Fatalf("Append(%q) = %s: not JSON: %v", s, b, err)
		}
		want := s
		if s == "bad\xffutf8" {
			want = "bad\ufffdutf8"
		}
		if got != want {
			t.Errorf("Append(%q) decodes to %q, want %q", s, got, want)
		}
	}
}

func FuzzAppend(f *testing.F) {
	f.Add("a\"b\\c\n")
	f.Fuzz(func(t *testing.T, s string) {
		if !json.Valid(Append(nil, s)) {
			t.Fatalf("Append(%q) is not valid JSON", s)
		}
	})
}
