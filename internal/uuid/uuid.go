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
	return Format(setV4(b)), nil
}

// New returns a random version 4 UUID from crypto/rand, which never fails.
// It reads crypto/rand directly, so that its buffer stays on the stack
// (NewV4's escapes through the io.Reader).
func New() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return Format(setV4(b))
}

// NewPair returns two random version 4 UUIDs from crypto/rand, made from
// one read of 32 random bytes and sharing one allocation: the request id
// and the audit event id of a request.
func NewPair() (string, string) {
	var b [32]byte
	_, _ = rand.Read(b[:])
	return pair(&b)
}

// pair formats the two UUIDs of NewPair from b.
func pair(b *[32]byte) (string, string) {
	var s [72]byte
	Append(Append(s[:0], setV4([16]byte(b[:16]))), setV4([16]byte(b[16:])))
	both := string(s[:])
	return both[:36], both[36:]
}

// setV4 sets the version (4) and variant (RFC 9562) bits of b.
func setV4(b [16]byte) [16]byte {
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return b
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
