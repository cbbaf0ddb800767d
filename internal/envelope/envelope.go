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
	"sync"
	"sync/atomic"
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
// under the current or an older root key. Keys can be added while it is in
// use (Add, and a Loader asked when a record names a key it does not
// hold), so that a serving node learns the new key of a root key rotation.
// It is safe for concurrent use.
type Sealer struct {
	rand    io.Reader
	current *RootKey
	// keys holds every key the Sealer opens with, the current one first;
	// it is replaced, never changed, when a key is added.
	keys atomic.Pointer[[]sealKey]

	// loadMu makes one Loader call at a time and guards loader.
	loadMu sync.Mutex
	loader func() ([]*RootKey, error)
}

// NewSealer returns a Sealer that seals under current and opens records
// sealed under current or any of older. rand supplies nonces (nil means
// crypto/rand.Reader). It panics if current is nil (a wiring error).
func NewSealer(rand io.Reader, current *RootKey, older ...*RootKey) *Sealer {
	if current == nil {
		panic("envelope: NewSealer: nil current root key")
	}
	s := &Sealer{rand: rand, current: current}
	s.keys.Store(&[]sealKey{})
	s.Add(current)
	s.Add(older...)
	return s
}

// Add makes the Sealer open records sealed under keys too (and SealUnder
// seal under them). Keys it holds already, and nil keys, are skipped.
func (s *Sealer) Add(keys ...*RootKey) {
	s.loadMu.Lock()
	defer s.loadMu.Unlock()
	s.add(keys)
}

// add is Add with loadMu held.
func (s *Sealer) add(keys []*RootKey) {
	cur := *s.keys.Load()
	next := cur
	for _, k := range keys {
		if k == nil || find(next, k.id) != nil {
			continue
		}
		if len(next) == len(cur) {
			next = append([]sealKey(nil), cur...) // copy on write
		}
		next = append(next, sealKey{id: k.id, aead: newAEAD(k.key[:])})
	}
	if len(next) != len(cur) {
		s.keys.Store(&next)
	}
}

// SetLoader sets the function the Sealer calls when it is asked for a root
// key it does not hold (Open of a record sealed under it, SealUnder, Load):
// it returns the keys to add, e.g. re-read from the files where an
// operator puts the next root key. Calls are made one at a time.
func (s *Sealer) SetLoader(load func() ([]*RootKey, error)) {
	s.loadMu.Lock()
	defer s.loadMu.Unlock()
	s.loader = load
}

// Load returns whether the Sealer holds the root key with id, calling the
// Loader first when it does not. The error is the Loader's.
func (s *Sealer) Load(id [8]byte) (bool, error) {
	if s.Holds(id) {
		return true, nil
	}
	s.loadMu.Lock()
	defer s.loadMu.Unlock()
	if find(*s.keys.Load(), id) != nil {
		return true, nil // loaded by the call we waited for
	}
	if s.loader == nil {
		return false, nil
	}
	keys, err := s.loader()
	if err != nil {
		return false, err
	}
	s.add(keys)
	return find(*s.keys.Load(), id) != nil, nil
}

// Holds reports whether the Sealer holds the root key with id.
func (s *Sealer) Holds(id [8]byte) bool { return find(*s.keys.Load(), id) != nil }

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

func find(keys []sealKey, id [idSize]byte) cipher.AEAD {
	for i := range keys {
		if keys[i].id == id {
			return keys[i].aead
		}
	}
	return nil
}

// aead returns the key with id, asking the Loader when the Sealer does not
// hold it; nil if it cannot be had.
func (s *Sealer) aead(id [idSize]byte) cipher.AEAD {
	if a := find(*s.keys.Load(), id); a != nil {
		return a
	}
	if ok, _ := s.Load(id); !ok {
		return nil
	}
	return find(*s.keys.Load(), id)
}

// CurrentID returns the id of the root key that Seal uses.
func (s *Sealer) CurrentID() [8]byte { return s.current.id }

// Seal encrypts plaintext under the current root key, bound to aad. It fails
// only if the random source fails.
func (s *Sealer) Seal(aad AAD, plaintext []byte) ([]byte, error) {
	return s.seal(s.current.id, find(*s.keys.Load(), s.current.id), aad, plaintext)
}

// SealUnder encrypts plaintext under the root key with id, which the Sealer
// must hold or get from its Loader (a serving node seals under the key the
// store's root key marker names, which a rotation moves). The error says
// when it cannot have the key; it names the key id only.
func (s *Sealer) SealUnder(id [8]byte, aad AAD, plaintext []byte) ([]byte, error) {
	ok, err := s.Load(id)
	if err != nil {
		return nil, fmt.Errorf("envelope: seal under root key %x: %w", id, err)
	}
	if !ok {
		return nil, fmt.Errorf("envelope: seal under root key %x: this process does not hold that root key", id)
	}
	return s.seal(id, find(*s.keys.Load(), id), aad, plaintext)
}

func (s *Sealer) seal(id [idSize]byte, aead cipher.AEAD, aad AAD, plaintext []byte) ([]byte, error) {
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
	copy(out[len(Magic):], id[:])
	copy(out[len(Magic)+idSize:], nonce[:])
	return aead.Seal(out, nonce[:], plaintext, ad), nil
}

// Open decrypts a record sealed by Seal with the same aad, under any root
// key the Sealer holds (or gets from its Loader, when the record names a
// key it does not hold). Any failure returns ErrOpen; Open never panics.
func (s *Sealer) Open(aad AAD, sealed []byte) ([]byte, error) {
	if len(sealed) < Overhead || string(sealed[:len(Magic)]) != Magic {
		return nil, ErrOpen
	}
	id := [idSize]byte(sealed[len(Magic) : len(Magic)+idSize])
	aead := s.aead(id)
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
