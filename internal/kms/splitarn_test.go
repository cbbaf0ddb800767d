package kms

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"testing"
)

// TestSplitARNMatchesSplitN checks splitARN against the SplitN it replaces.
func TestSplitARNMatchesSplitN(t *testing.T) {
	for _, v := range []string{
		"", ":", "arn", "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab",
		"arn:aws:kms:us-east-1:111122223333", "arn:aws:kms:us-east-1:111122223333:", ":::::", "::::",
		"arn:aws:kms:us-east-1:111122223333:alias/a:b:c", "a:b:c:d:e:f:g",
	} {
		want := strings.SplitN(v, ":", 6)
		got, ok := splitARN(v)
		if ok != (len(want) == 6) {
			t.Errorf("splitARN(%q) ok = %t, SplitN has %d parts", v, ok, len(want))
			continue
		}
		if ok && [6]string(want) != got {
			t.Errorf("splitARN(%q) = %q, want %q", v, got, want)
		}
	}
}

// TestDisplayMaterialIDMatchesDecodeString checks displayMaterialID against
// hashing hex.DecodeString's bytes, which it did before, for well-formed and
// malformed ids.
func TestDisplayMaterialIDMatchesDecodeString(t *testing.T) {
	for _, id := range []string{
		"", "00", "0123456789abcdef0123456789abcdef", "0123456789abcdef0123456789abcdef00",
		"0123456789abcdef0123456789abcde", "zz", "01zz", "0123456789abcdef0123456789abcdeg",
	} {
		b, _ := hex.DecodeString(id)
		sum := sha256.Sum256(b)
		if got, want := displayMaterialID(id), hex.EncodeToString(sum[:]); got != want {
			t.Errorf("displayMaterialID(%q) = %s, want %s", id, got, want)
		}
	}
}
