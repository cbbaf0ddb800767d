// Package uuid makes and formats random (version 4) UUIDs: key ids, request
// ids, audit event ids. It imports only the standard library.
package uuid

import (
	"crypto/rand"
	"encoding/hex"
	"io"
)

// Format returns b in canonical form (8-4-4-4-12 lower-case hex digits).
func Format(b [16]byte) string {
	var s [36]byte
	return string(Append(s[:0], b))
}

// Append appends Format(b) to dst without making a string.
func Append(dst []byte, b [16]byte) []byte {
	var s [36]byte
	hex.Encode(s[0:8], b[0:4])
	s[8] = '-'
	hex.Encode(s[9:13], b[4:6])
	s[13] = '-'
	hex.Encode(s[14:18], b[6:8])
	s[18] = '-'
	hex.Encode(s[19:23], b[8:10])
	s[23] = '-'
	hex.Encode(s[24:], b[10:])
	return append(dst, s[:]...)
}

// NewV4 returns a random version 4 UUID read from r.
func NewV4(r io.Reader) (string, error) {
	var b [16]byte
	if _, err := io.ReadFull(r, b[:]); err != nil {
		return "", err
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return Format(b), nil
}

// New returns a random version 4 UUID from crypto/rand, which never fails.
func New() string {
	s, _ := NewV4(rand.Reader)
	return s
}

// Canonical reports whether s is a UUID in the canonical form Format writes
// (8-4-4-4-12 lower-case hex digits), of any version.
func Canonical(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
				return false
			}
		}
	}
	return true
}
