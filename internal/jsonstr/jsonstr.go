// Package jsonstr appends JSON strings without reflection, for the hand- and
// generator-written encoders on hot paths (the wire codec, the audit trail).
// It imports only the standard library.
package jsonstr

import "unicode/utf8"

// Append appends s to b as a JSON string. Invalid UTF-8 becomes
// U+FFFD; <, > and & are left as they are (AWS does not escape them).
func Append(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	// Bytes before safePrefix need no escape; the loop takes them as it
	// would one by one.
	for i := safePrefix(s); i < len(s); {
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

const hex = "0123456789abcdef"

// safePrefix returns the length of the longest prefix of s made of whole
// 8-byte words of printable ASCII other than '"' and '\\' (bytes that Append
// copies as they are), testing eight bytes at a time.
func safePrefix(s string) int {
	const lsb, msb = 0x0101010101010101, 0x8080808080808080
	i := 0
	for ; i+8 <= len(s); i += 8 {
		t := s[i : i+8]
		w := uint64(t[0]) | uint64(t[1])<<8 | uint64(t[2])<<16 | uint64(t[3])<<24 |
			uint64(t[4])<<32 | uint64(t[5])<<40 | uint64(t[6])<<48 | uint64(t[7])<<56
		q, bs := w^('"'*lsb), w^('\\'*lsb)
		// A byte >= 0x80, a byte < 0x20, a '"', a '\\' (a zero byte of q or bs).
		if (w|(w-0x20*lsb)&^w|(q-lsb)&^q|(bs-lsb)&^bs)&msb != 0 {
			break
		}
	}
	return i
}
