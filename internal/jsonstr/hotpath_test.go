package jsonstr

import (
	"math/rand/v2"
	"strings"
	"testing"
	"unicode/utf8"
)

// oldAppend is Append before its eight-bytes-at-a-time prefix scan, the
// reference the faster one must match byte for byte.
func oldAppend(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// TestAppendMatchesOld checks Append against oldAppend for every single
// byte at every position of a 1 to 24 byte string, and for random strings
// mixing safe ASCII with each byte class Append treats apart.
func TestAppendMatchesOld(t *testing.T) {
	check := func(s string) {
		t.Helper()
		if got, want := string(Append([]byte("x"), s)), string(oldAppend([]byte("x"), s)); got != want {
			t.Fatalf("Append(%q) = %s, want %s", s, got, want)
		}
	}
	for n := 1; n <= 24; n++ {
		for p := range n {
			for c := range 256 {
				s := []byte(strings.Repeat("a", n))
				s[p] = byte(c)
				check(string(s))
			}
		}
	}
	pieces := []string{"a", "Z", "~", " ", "/", "<", "&", "\x7f", "\"", "\\", "\n", "\r", "\t", "\x00", "\x1f", "\x20", "\x21",
		"\x5b", "\x5d", "\x22\x22", "é", "€", "😀", "\u2028", "\u2029", "\xff", "\xe2\x80", "\xc3", "arn:aws:kms:us-east-1:111122223333:key/"}
	r := rand.New(rand.NewPCG(5, 6))
	for range 200000 {
		var sb strings.Builder
		for range r.IntN(20) {
			sb.WriteString(pieces[r.IntN(len(pieces))])
		}
		check(sb.String())
	}
}

// FuzzAppendMatchesOld compares Append with oldAppend on any string.
func FuzzAppendMatchesOld(f *testing.F) {
	f.Add("arn:aws:kms:us-east-1:111122223333:key/0f1e2d3c\"x")
	f.Add("12345678\x7f\x80\u2028")
	f.Fuzz(func(t *testing.T, s string) {
		if got, want := string(Append(nil, s)), string(oldAppend(nil, s)); got != want {
			t.Fatalf("Append(%q) = %s, want %s", s, got, want)
		}
	})
}

func BenchmarkAppend(b *testing.B) {
	for name, s := range map[string]string{
		"arn":   "arn:aws:kms:us-east-1:111122223333:key/0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0",
		"short": "us-east-1",
		"ua":    "aws-sdk-go-v2/1.36.3 ua/2.1 os/linux lang/go#1.25.0 md/GOOS#linux md/GOARCH#amd64 api/kms#1.38.1",
	} {
		b.Run(name, func(b *testing.B) {
			buf := make([]byte, 0, 256)
			for b.Loop() {
				buf = Append(buf[:0], s)
			}
		})
		b.Run(name+"/old", func(b *testing.B) {
			buf := make([]byte, 0, 256)
			for b.Loop() {
				buf = oldAppend(buf[:0], s)
			}
		})
	}
}
