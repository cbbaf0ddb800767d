// Package envelope seals records before they reach storage and opens them
// again: the root key, its loading, and the sealed-record format.
//
// A sealed record is
//
//	"KFS1" | root-key id (8) | nonce (12) | AES-256-GCM ciphertext+tag
//
// with the record's identity (AAD: kind, account, region, id, version,
// column), length-prefixed, as additional authenticated data, so a record
// copied to another row does not open. Every failure to open is the single
// opaque ErrOpen. Nonces are random (96 bits), so one root key should seal
// well under 2^32 records; `rootkey rotate` moves to a new key.
//
// This package imports only the standard library and internal/durable. It knows nothing of
// storage, services or HTTP.
package envelope

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// Magic is the first four bytes of every sealed record (format version 1).
const Magic = "KFS1"

const (
	idSize     = 8
	nonceSize  = 12
	tagSize    = 16
	headerSize = len(Magic) + idSize + nonceSize
	// Overhead is how many bytes Seal adds to a plaintext.
	Overhead = headerSize + tagSize
)

// ErrOpen is the one error Open returns, whatever went wrong: a wrong AAD,
// tampering, truncation, an unknown root key or a bad header.
var ErrOpen = errors.New("envelope: cannot open sealed record")

// AAD is the identity of a sealed record. It is bound to the ciphertext, so
// a sealed value opens only with the same AAD it was sealed with.
type AAD struct {
	// Kind is the record kind, e.g. "kms.material".
	Kind string
	// Account and Region scope the record.
	Account string
	Region  string
	// ID is the record id.
	ID string
	// Version distinguishes versions of the same record (0 if unused).
	Version int64
	// Column names the sealed column within the record.
	Column string
}

// Append appends the unambiguous encoding of a to dst and returns the
// extended slice: each string as a uint32 big-endian length and its bytes,
// Version as 8 bytes big-endian, in the order Kind, Account, Region, ID,
// Version, Column. Different AADs never encode the same.
func (a AAD) Append(dst []byte) []byte {
	dst = appendString(dst, a.Kind)
	dst = appendString(dst, a.Account)
	dst = appendString(dst, a.Region)
	dst = appendString(dst, a.ID)
	dst = binary.BigEndian.AppendUint64(dst, uint64(a.Version))
	dst = appendString(dst, a.Column)
	return dst
}

// Encode returns the unambiguous encoding of a (see Append).
func (a AAD) Encode() []byte {
	return a.Append(make([]byte, 0, a.encodedLen()))
}

func (a AAD) encodedLen() int {
	return 5*4 + 8 + len(a.Kind) + len(a.Account) + len(a.Region) + len(a.ID) + len(a.Column)
}

func appendString(dst []byte, s string) []byte {
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(s)))
	return append(dst, s...)
}

type sealKey struct {
	id   [idSize]byte
	aead cipher.AEAD
}

// Sealer seals records under the current root key and opens records sealed
// under the current or an older root key. It is safe for concurrent use.
type Sealer struct {
	rand    io.Reader
	current *RootKey
	keys    []sealKey // keys[0] is the current key
}

// NewSealer returns a Sealer that seals under current and opens records
// sealed under current or any of older. rand supplies nonces (nil means
// crypto/rand.Reader). It panics if current is nil (a wiring error).
func NewSealer(rand io.Reader, current *RootKey, older ...*RootKey) *Sealer {
	if current == nil {
		panic("envelope: NewSealer: nil current root key")
	}
	s := &Sealer{rand: rand, current: current}
	for _, k := range append([]*RootKey{current}, older...) {
		if k == nil || s.find(k.id) != nil {
			continue
		}
		s.keys = append(s.keys, sealKey{id: k.id, aead: newAEAD(k.key[:])})
	}
	return s
}

func newAEAD(key []byte) cipher.AEAD {
	block, err := aes.NewCipher(key)
	if err != nil {
		panic("envelope: " + err.Error()) // unreachable: the key is 32 bytes
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		panic("envelope: " + err.Error()) // unreachable: standard nonce and tag sizes
	}
	return aead
}

func (s *Sealer) find(id [idSize]byte) cipher.AEAD {
	for i := range s.keys {
		if s.keys[i].id == id {
			return s.keys[i].aead
		}
	}
	return nil
}

// CurrentID returns the id of the root key that Seal uses.
func (s *Sealer) CurrentID() [8]byte { return s.current.id }

// Seal encrypts plaintext under the current root key, bound to aad. It fails
// only if the random source fails.
func (s *Sealer) Seal(aad AAD, plaintext []byte) ([]byte, error) {
	r := s.rand
	if r == nil {
		r = rand.Reader
	}
	var nonce [nonceSize]byte
	if _, err := io.ReadFull(r, nonce[:]); err != nil {
		return nil, fmt.Errorf("envelope: seal: read nonce: %w", err)
	}
	var abuf [256]byte
	ad := aad.Append(abuf[:0])

	out := make([]byte, headerSize, headerSize+len(plaintext)+tagSize)
	copy(out, Magic)
	copy(out[len(Magic):], s.keys[0].id[:])
	copy(out[len(Magic)+idSize:], nonce[:])
	return s.keys[0].aead.Seal(out, nonce[:], plaintext, ad), nil
}

// Open decrypts a record sealed by Seal with the same aad, under the current
// or an older root key. Any failure returns ErrOpen; Open never panics.
func (s *Sealer) Open(aad AAD, sealed []byte) ([]byte, error) {
	if len(sealed) < Overhead || string(sealed[:len(Magic)]) != Magic {
		return nil, ErrOpen
	}
	id := [idSize]byte(sealed[len(Magic) : len(Magic)+idSize])
	aead := s.find(id)
	if aead == nil {
		return nil, ErrOpen
	}
	nonce := sealed[len(Magic)+idSize : headerSize]
	var abuf [256]byte
	ad := aad.Append(abuf[:0])
	pt, err := aead.Open(nil, nonce, sealed[headerSize:], ad)
	if err != nil {
		return nil, ErrOpen
	}
	return pt, nil
}

// Reseal opens sealed (under any known root key) and seals the plaintext
// again under the current root key, for `rootkey rotate`. It returns ErrOpen
// if sealed does not open.
func (s *Sealer) Reseal(aad AAD, sealed []byte) ([]byte, error) {
	pt, err := s.Open(aad, sealed)
	if err != nil {
		return nil, err
	}
	defer clear(pt)
	return s.Seal(aad, pt)
}

// NeedsReseal reports whether sealed has a well-formed header naming a root
// key other than the current one. Malformed input reports false (Open will
// reject it).
func (s *Sealer) NeedsReseal(sealed []byte) bool {
	if len(sealed) < Overhead || string(sealed[:len(Magic)]) != Magic {
		return false
	}
	return [idSize]byte(sealed[len(Magic):len(Magic)+idSize]) != s.current.id
}

// SealedKeyID returns the root-key id in the header of a sealed record, and
// false if sealed is too short or does not start with Magic. It reads only
// the header: it says which root key a record needs, not that it opens.
func SealedKeyID(sealed []byte) (id [8]byte, ok bool) {
	if len(sealed) < Overhead || string(sealed[:len(Magic)]) != Magic {
		return id, false
	}
	return [idSize]byte(sealed[len(Magic) : len(Magic)+idSize]), true
}

// DeriveKey returns 32 bytes derived from the current root key with
// HKDF-SHA256 for the given purpose label (e.g. "page-token-mac"). Distinct
// labels give independent keys. Derived keys change when the root key is
// rotated.
func (s *Sealer) DeriveKey(label string) []byte {
	k, err := hkdf.Key(sha256.New, s.current.key[:], []byte("keyfort/envelope/derive/v1"), label, 32)
	if err != nil {
		panic("envelope: DeriveKey: " + err.Error()) // unreachable: 32 bytes of SHA-256 output is allowed
	}
	return k
}
