package uuid

import (
	"bytes"
	"regexp"
	"testing"
)

var v4 = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

func TestNew(t *testing.T) {
	a, b := New(), New()
	if !v4.MatchString(a) || a == b {
		t.Errorf("New() = %q, %q; want two different v4 UUIDs", a, b)
	}
	if _, err := NewV4(bytes.NewReader(make([]byte, 3))); err == nil {
		t.Errorf("NewV4 with a short reader succeeded")
	}
	if got := Format([16]byte{0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc, 0xde, 0xf0, 1, 2, 3, 4, 5, 6, 7, 8}); got != "12345678-9abc-def0-0102-030405060708" {
		t.Errorf("Format = %q", got)
	}
}

func TestCanonical(t *testing.T) {
	for s, want := range map[string]bool{
		"12345678-9abc-def0-0102-030405060708":   true,
		New():                                    true,
		"12345678-9ABC-def0-0102-030405060708":   false, // upper case
		"12345678-9abc-def0-0102-03040506070":    false,
		"12345678-9abc-def0-0102-0304050607080":  false,
		"123456789-abc-def0-0102-030405060708":   false,
		"12345678-9abc-def0-0102-03040506070g":   false,
		"12345678-9abc-def0-0102-030405060708\n": false,
		"":                                       false,
	} {
		if got := Canonical(s); got != want {
			t.Errorf("Canonical(%q) = %t, want %t", s, got, want)
		}
	}
}

// TestNewPair checks that the two ids of NewPair are the UUIDs NewV4 makes
// of each half of the random bytes, and that both come in one allocation
// (New in one too).
func TestNewPair(t *testing.T) {
	a, b := NewPair()
	if !v4.MatchString(a) || !v4.MatchString(b) || a == b {
		t.Errorf("NewPair() = %q, %q; want two different v4 UUIDs", a, b)
	}
	var r [32]byte
	for i := range r {
		r[i] = byte(i*37 + 255)
	}
	for _, fill := range []byte{0x00, 0xff} {
		for _, x := range [][32]byte{r, bytes32(fill)} {
			wantA, _ := NewV4(bytes.NewReader(x[:16]))
			wantB, _ := NewV4(bytes.NewReader(x[16:]))
			if gotA, gotB := pair(&x); gotA != wantA || gotB != wantB {
				t.Errorf("pair(%x) = %q, %q; want %q, %q", x, gotA, gotB, wantA, wantB)
			}
		}
	}
	if raceEnabled { // the race detector's instrumentation allocates
		return
	}
	if n := testing.AllocsPerRun(100, func() { NewPair() }); n != 1 {
		t.Errorf("NewPair allocates %v times, want 1", n)
	}
	if n := testing.AllocsPerRun(100, func() { New() }); n != 1 {
		t.Errorf("New allocates %v times, want 1", n)
	}
}

func bytes32(c byte) (b [32]byte) {
	for i := range b {
		b[i] = c
	}
	return b
}
