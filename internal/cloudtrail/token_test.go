package cloudtrail

import (
	"testing"
	"time"

	"github.com/keyfort/keyfort/internal/awserr"
)

// FuzzParseToken checks that no NextToken text makes parseToken panic or
// answer anything but a token or InvalidNextTokenException, and that
// tokens round-trip.
func FuzzParseToken(f *testing.F) {
	p := params{account: account, region: region, attribute: AttrEventName, value: "Encrypt"}
	good := token{from: now.Add(-time.Hour), to: now, after: Cursor{Time: now.Add(-time.Minute), ID: "6f1c2f1e-0000-4000-8000-000000000001"}}
	f.Add(good.encode(p))
	f.Add("")
	f.Add("AQ")
	f.Add("AQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
	// The good token with other trailing bits in its last character.
	g := good.encode(p)
	for _, c := range "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_" {
		f.Add(g[:len(g)-1] + string(c))
	}
	f.Fuzz(func(t *testing.T, s string) {
		tok, err := parseToken(s, p)
		if err != nil {
			if e, ok := awserr.As(err); !ok || e.Code != codeInvalidNextToken {
				t.Fatalf("parseToken(%q) error = %v, want InvalidNextTokenException", s, err)
			}
			return
		}
		if again := tok.encode(p); again != s {
			t.Fatalf("parseToken(%q) = %+v, which encodes as %q", s, tok, again)
		}
	})
}

func TestTokenRoundTrip(t *testing.T) {
	p := params{account: account, region: region, start: ptr(now.Add(-time.Hour))}
	want := token{from: now.Add(-time.Hour), to: now, after: Cursor{Time: now.Add(-time.Minute), ID: "id"}}
	got, err := parseToken(want.encode(p), p)
	if err != nil || !got.from.Equal(want.from) || !got.to.Equal(want.to) || !got.after.Time.Equal(want.after.Time) || got.after.ID != "id" {
		t.Errorf("parseToken(encode(%+v)) = %+v, %v", want, got, err)
	}
}
