// Package keywrap implements AES Key Wrap with Padding (AES-KWP) as
// specified in RFC 5649, which is the same algorithm as NIST SP 800-38F
// KWP and OpenSSL's id-aes{128,192,256}-wrap-pad.
//
// A plaintext of 1 to 2^32-1 bytes is zero-padded to a multiple of 8 bytes
// and wrapped under a 16-, 24- or 32-byte key-encryption key (KEK) with the
// Alternative Initial Value
//
//	AIV = A65959A6 | MLI (32-bit big-endian plaintext length)
//
// If the padded plaintext is a single 64-bit block, AIV|P is encrypted as
// one AES block; otherwise the RFC 3394 wrapping process W is applied with
// AIV as its initial value. The output is 8 bytes longer than the padded
// plaintext. Wrapping is deterministic.
//
// Every ciphertext that does not authenticate (wrong KEK, tampering, bad
// length, bad AIV, MLI or padding) is rejected with the single opaque
// ErrUnwrap.
//
// This package imports only the standard library.
package keywrap

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
)

// ErrUnwrap is returned by Unwrap for any ciphertext that does not
// authenticate under the given KEK.
var ErrUnwrap = errors.New("keywrap: integrity check failed")

// aivConst is the 32-bit constant half of the RFC 5649 Alternative
// Initial Value (section 3).
var aivConst = [4]byte{0xA6, 0x59, 0x59, 0xA6}

// maxBlocks is the largest number of 64-bit plaintext blocks a valid
// ciphertext can hold: ceil((2^32-1)/8), since the MLI is 32 bits.
const maxBlocks = 1 << 29

// newCipher returns the AES block cipher for kek, or an error (not a
// panic) if kek is not 16, 24 or 32 bytes long.
func newCipher(kek []byte) (cipher.Block, error) {
	switch len(kek) {
	case 16, 24, 32:
		return aes.NewCipher(kek)
	}
	return nil, fmt.Errorf("keywrap: invalid KEK length %d (want 16, 24 or 32)", len(kek))
}

// Wrap wraps plaintext (1 to 2^32-1 bytes) under kek (16, 24 or 32 bytes)
// with RFC 5649 padding (section 4.1). The result is 8*(n+1) bytes long,
// where n = ceil(len(plaintext)/8).
func Wrap(kek, plaintext []byte) ([]byte, error) {
	b, err := newCipher(kek)
	if err != nil {
		return nil, err
	}
	if len(plaintext) == 0 || uint64(len(plaintext)) > math.MaxUint32 {
		return nil, fmt.Errorf("keywrap: plaintext length %d out of range [1, 2^32-1]", len(plaintext))
	}
	n := (len(plaintext) + 7) / 8
	// out = AIV | P | zero padding; it is wrapped in place.
	out := make([]byte, 8*(n+1))
	copy(out[:4], aivConst[:])
	binary.BigEndian.PutUint32(out[4:8], uint32(len(plaintext)))
	copy(out[8:], plaintext)
	seal(b, out)
	return out, nil
}

// seal encrypts buf = A | R[1] | ... | R[n] in place: a single AES block if
// n == 1 (RFC 5649 section 4.1, step 2), otherwise the RFC 3394 wrapping
// process W (RFC 3394 section 2.2.1, index-based form) with A as the IV.
func seal(b cipher.Block, buf []byte) {
	n := len(buf)/8 - 1
	if n == 1 {
		b.Encrypt(buf, buf)
		return
	}
	var blk [16]byte
	copy(blk[:8], buf[:8]) // A
	for j := 0; j <= 5; j++ {
		for i := 1; i <= n; i++ {
			r := buf[8*i : 8*i+8]
			// B = AES(K, A | R[i]); A = MSB(64, B) ^ t; R[i] = LSB(64, B)
			copy(blk[8:], r)
			b.Encrypt(blk[:], blk[:])
			t := uint64(n)*uint64(j) + uint64(i)
			binary.BigEndian.PutUint64(blk[:8], binary.BigEndian.Uint64(blk[:8])^t)
			copy(r, blk[8:])
		}
	}
	copy(buf[:8], blk[:8])
	clear(blk[:])
}

// Unwrap reverses Wrap (RFC 5649 section 4.2). It returns ErrUnwrap for any
// ciphertext that does not authenticate under kek: a length that is not a
// multiple of 8 or is shorter than 16 bytes, a wrong key, tampering, or a
// bad AIV constant, MLI or padding. An invalid kek length is reported as a
// different error. Unwrap never panics.
func Unwrap(kek, ciphertext []byte) ([]byte, error) {
	b, err := newCipher(kek)
	if err != nil {
		return nil, err
	}
	if len(ciphertext)%8 != 0 || len(ciphertext) < 16 {
		return nil, ErrUnwrap
	}
	n := len(ciphertext)/8 - 1
	if n > maxBlocks {
		// No 32-bit MLI can describe this many blocks.
		return nil, ErrUnwrap
	}
	buf := make([]byte, len(ciphertext))
	copy(buf, ciphertext)
	open(b, buf)

	// Check the AIV (section 3): the constant, 8*(n-1) < MLI <= 8*n, and
	// that the 8*n-MLI padding bytes are zero. All checks are combined in
	// constant time; only the final verdict is branched on.
	ok := subtle.ConstantTimeCompare(buf[:4], aivConst[:])
	mli := uint64(binary.BigEndian.Uint32(buf[4:8]))
	pad := uint64(8*n) - mli // wraps around (huge) if mli > 8*n
	hi := pad >> 3           // zero iff pad in [0, 7]
	ok &= int(((hi|-hi)>>63)^1) & 1
	// Bytes k of the last plaintext block with k >= 8-pad are padding.
	p := int(pad & 7)
	last := buf[len(buf)-8:]
	var nz byte
	for k := 0; k < 8; k++ {
		isPad := subtle.ConstantTimeLessOrEq(8, k+p) // 1 if padding, else 0
		nz |= byte(-isPad) & last[k]
	}
	ok &= subtle.ConstantTimeByteEq(nz, 0)
	if ok != 1 {
		clear(buf)
		return nil, ErrUnwrap
	}
	// The padding bytes beyond MLI are verified zero, so the spare
	// capacity hides nothing; the full slice expression hides it anyway.
	return buf[8 : 8+mli : 8+mli], nil
}

// open decrypts buf = C[0] | ... | C[n] in place into A | P[1] | ... | P[n]:
// a single AES block if n == 1, otherwise the RFC 3394 unwrapping process
// W^-1 (RFC 3394 section 2.2.2, index-based form).
func open(b cipher.Block, buf []byte) {
	n := len(buf)/8 - 1
	if n == 1 {
		b.Decrypt(buf, buf)
		return
	}
	var blk [16]byte
	copy(blk[:8], buf[:8]) // A
	for j := 5; j >= 0; j-- {
		for i := n; i >= 1; i-- {
			r := buf[8*i : 8*i+8]
			// B = AES-1(K, (A ^ t) | R[i]); A = MSB(64, B); R[i] = LSB(64, B)
			t := uint64(n)*uint64(j) + uint64(i)
			binary.BigEndian.PutUint64(blk[:8], binary.BigEndian.Uint64(blk[:8])^t)
			copy(blk[8:], r)
			b.Decrypt(blk[:], blk[:])
			copy(r, blk[8:])
		}
	}
	copy(buf[:8], blk[:8])
	clear(blk[:])
}
