package kms

import (
	"encoding/hex"
	"io"
	"strings"

	"github.com/keyfort/keyfort/internal/uuid"
)

// newUUID returns a random (version 4) UUID in canonical form, or "" if the
// random source fails.
func newUUID(r io.Reader) string {
	s, err := uuid.NewV4(r)
	if err != nil {
		return ""
	}
	return s
}

// multiRegionPrefix starts the id of a multi-Region key: mrk- and 32 hex
// digits, as AWS makes them.
const multiRegionPrefix = "mrk-"

// newMultiRegionID returns a random multi-Region key id, or "" if the
// random source fails.
func newMultiRegionID(r io.Reader) string {
	var b [16]byte
	if _, err := io.ReadFull(r, b[:]); err != nil {
		return ""
	}
	return multiRegionPrefix + hex.EncodeToString(b[:])
}

// validKeyID reports whether v is a key id: a canonical UUID, or mrk- and
// 32 lower-case hex digits.
func validKeyID(v string) bool {
	if strings.HasPrefix(v, multiRegionPrefix) {
		rest := v[len(multiRegionPrefix):]
		return len(rest) == 32 && strings.Trim(rest, "0123456789abcdef") == ""
	}
	return uuid.Canonical(v)
}
