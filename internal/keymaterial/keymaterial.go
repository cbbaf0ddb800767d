// Package keymaterial holds the KMS CiphertextBlob format and the symmetric
// cryptography behind Encrypt, Decrypt and GenerateDataKey.
//
// A blob is
//
//	version (1) | key id (16, the key's UUID) | material id (16) | nonce (12) | AES-256-GCM ciphertext+tag
//
// The AES-GCM additional data is the 45-byte header followed by the
// unambiguous encoding of a binding string and the encryption context (the
// binding as a uint32 big-endian length and its bytes, the number of pairs
// as uint32 big-endian, then each pair in bytewise order of its key, key and
// value each length-prefixed the same way; a nil and an empty context encode
// the same), so a blob opens only under the same binding, the same
// encryption context and the same header. Version 2, which Encrypt writes, binds the key id
// (its canonical text), so that the same key in another region (a
// multi-Region replica) opens what its primary encrypted. Version 3 is
// version 2 for a multi-Region key: its 16 key id bytes are the 32 hex
// digits of the key id "mrk-<hex>", which is the text bound (36 bytes, as a
// UUID's text). Version 1, which still opens, bound the regional key ARN. Every failure to parse or open a
// blob is the single opaque ErrInvalidCiphertext; parsers bound every length
// and never panic. Version 4 (external.go) is the double encryption of a
// key in an external key store: a version 2 blob encrypted again by the
// key store's proxy.
//
// This package imports only the standard library. It does not store or look
// up material; the kms service does, and may cache the AEADs built from it in
// a Cache.
package keymaterial

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"

	"github.com/keyfort/keyfort/internal/uuid"
)

// BlobVersion is the format version Encrypt writes in the first byte of a
// blob; ParseBlob also takes BlobVersion1.
const BlobVersion = 2

// BlobVersion1 is the first format, whose additional data bound the key
// ARN; its blobs still open.
const BlobVersion1 = 1

// BlobVersion3 is the format Encrypt writes for a multi-Region key (a
// Header with MultiRegion): version 2 with the key id "mrk-<32 hex>".
const BlobVersion3 = 3

// multiRegionPrefix starts the id of a multi-Region key.
const multiRegionPrefix = "mrk-"

const (
	// MaterialSize is the length of symmetric key material in bytes.
	MaterialSize = 32
	nonceSize    = 12
	tagSize      = 16
	// HeaderSize is the length of the blob header: version, key id,
	// material id and nonce.
	HeaderSize = 1 + 16 + 16 + nonceSize
	// Overhead is how many bytes a blob adds to its plaintext.
	Overhead = HeaderSize + tagSize
	// MaxPlaintext is the largest plaintext Encrypt accepts (AWS KMS's limit).
	MaxPlaintext = 4096
	// MaxBlobSize is the largest blob ParseBlob accepts. It leaves room above
	// MaxPlaintext+Overhead for CiphertextBlobType's 6144-byte model maximum.
	MaxBlobSize = 6144
)

// ErrInvalidCiphertext is the one error for a blob that cannot be parsed or
// opened: bad version, bad length, tampering, wrong key material, wrong key
// ARN or wrong encryption context.
var ErrInvalidCiphertext = errors.New("keymaterial: invalid ciphertext")

// ErrInvalidKeyID is returned by ParseKeyID for text that is not a canonical
// lower-case UUID.
var ErrInvalidKeyID = errors.New("keymaterial: invalid key id")

// Header is the plaintext part of a blob that says which key and which
// material version encrypted it.
type Header struct {
	// KeyID is the KMS key's UUID.
	KeyID [16]byte
	// MaterialID names the key-material version within the key.
	MaterialID [16]byte
	// MultiRegion: KeyID holds the 32 hex digits of a multi-Region key's
	// id, mrk-<hex> (ParseMultiRegionKeyID), not a UUID.
	MultiRegion bool
	// External: a version 4 blob of a key in an external key store
	// (ParseExternalBlob).
	External bool
}

// AppendID appends the key id h names as text: canonical UUID text, or
// mrk-<32 hex> for a multi-Region key.
func (h *Header) AppendID(dst []byte) []byte {
	if h.MultiRegion {
		return appendMultiRegionID(dst, h.KeyID)
	}
	return uuid.Append(dst, h.KeyID)
}

func appendMultiRegionID(dst []byte, id [16]byte) []byte {
	const digits = "0123456789abcdef"
	dst = append(dst, multiRegionPrefix...)
	for _, b := range id {
		dst = append(dst, digits[b>>4], digits[b&0x0f])
	}
	return dst
}

// ParseMultiRegionKeyID parses a multi-Region key id, mrk- and 32 lower-case
// hex digits. Anything else is ErrInvalidKeyID.
func ParseMultiRegionKeyID(s string) ([16]byte, error) {
	var id [16]byte
	if len(s) != len(multiRegionPrefix)+32 || s[:len(multiRegionPrefix)] != multiRegionPrefix {
		return id, ErrInvalidKeyID
	}
	for i := range id {
		hi, ok1 := fromHexLower(s[4+2*i])
		lo, ok2 := fromHexLower(s[5+2*i])
		if !ok1 || !ok2 {
			return [16]byte{}, ErrInvalidKeyID
		}
		id[i] = hi<<4 | lo
	}
	return id, nil
}

// ParseBlob checks the version and length of blob and returns its header.
// It returns ErrInvalidCiphertext for anything malformed.
func ParseBlob(blob []byte) (Header, error) {
	if len(blob) > 0 && blob[0] == BlobVersionExternal {
		h, _, err := ParseExternalBlob(blob)
		return h, err
	}
	if len(blob) < Overhead || len(blob) > MaxBlobSize || (blob[0] != BlobVersion && blob[0] != BlobVersion1 && blob[0] != BlobVersion3) {
		return Header{}, ErrInvalidCiphertext
	}
	return Header{
		KeyID:       [16]byte(blob[1:17]),
		MaterialID:  [16]byte(blob[17:33]),
		MultiRegion: blob[0] == BlobVersion3,
	}, nil
}

// AppendKeyID appends id to dst as canonical lower-case UUID text
// (xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx, what uuid.Format returns) without
// making a string.
func AppendKeyID(dst []byte, id [16]byte) []byte { return uuid.Append(dst, id) }

// ParseKeyID parses canonical lower-case UUID text, the form AppendKeyID
// writes and AWS uses for key ids. Anything else is ErrInvalidKeyID.
func ParseKeyID(s string) ([16]byte, error) {
	var id [16]byte
	if len(s) != 36 || s[8] != '-' || s[13] != '-' || s[18] != '-' || s[23] != '-' {
		return id, ErrInvalidKeyID
	}
	j := 0
	for i := 0; i < 36; {
		if i == 8 || i == 13 || i == 18 || i == 23 {
			i++
			continue
		}
		hi, ok1 := fromHexLower(s[i])
		lo, ok2 := fromHexLower(s[i+1])
		if !ok1 || !ok2 {
			return [16]byte{}, ErrInvalidKeyID
		}
		id[j] = hi<<4 | lo
		j++
		i += 2
	}
	return id, nil
}

func fromHexLower(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	}
	return 0, false
}

// appendCanonicalPairs appends the encoding of an encryption context that
// follows the binding in the additional data (see the package comment): the
// number of pairs, then each pair in bytewise order of its key.
func appendCanonicalPairs(dst []byte, ctx map[string]string) []byte {
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(ctx)))
	switch len(ctx) {
	case 0:
		return dst
	case 1:
		for k, v := range ctx {
			dst = appendString(dst, k)
			dst = appendString(dst, v)
		}
		return dst
	}
	var kbuf [8]string
	keys := kbuf[:0]
	for k := range ctx {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		dst = appendString(dst, k)
		dst = appendString(dst, ctx[k])
	}
	return dst
}

func appendString(dst []byte, s string) []byte {
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(s)))
	return append(dst, s...)
}

// NewAEAD returns the AES-256-GCM AEAD for 32 bytes of key material. The
// AEAD holds its own expanded key; the caller may zero material afterwards.
func NewAEAD(material []byte) (cipher.AEAD, error) {
	if len(material) != MaterialSize {
		return nil, fmt.Errorf("keymaterial: key material is %d bytes, want %d", len(material), MaterialSize)
	}
	block, err := aes.NewCipher(material)
	if err != nil {
		return nil, fmt.Errorf("keymaterial: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("keymaterial: %w", err)
	}
	return aead, nil
}

// NewMaterialOfSize returns n random bytes of key material read from r (nil
// means crypto/rand.Reader): MaterialSize for a symmetric key, its spec's
// length for an HMAC key. The caller owns the buffer and should zero it
// when done.
func NewMaterialOfSize(r io.Reader, n int) ([]byte, error) {
	if r == nil {
		r = rand.Reader
	}
	m := make([]byte, n)
	if _, err := io.ReadFull(r, m); err != nil {
		clear(m)
		return nil, fmt.Errorf("keymaterial: generate material: %w", err)
	}
	return m, nil
}

// NewMaterialID returns a new random material id (a version 4 UUID) read
// from r (nil means crypto/rand.Reader).
func NewMaterialID(r io.Reader) ([16]byte, error) {
	if r == nil {
		r = rand.Reader
	}
	var id [16]byte
	if _, err := io.ReadFull(r, id[:]); err != nil {
		return [16]byte{}, fmt.Errorf("keymaterial: generate material id: %w", err)
	}
	id[6] = id[6]&0x0f | 0x40
	id[8] = id[8]&0x3f | 0x80
	return id, nil
}

// EncryptWithAEAD encrypts plaintext with aead (built from the material by
// NewAEAD and kept in a Cache) into a version 2 blob for the key and material named
// by h, bound to the key id and ctx (keyARN is not bound: version 1 bound
// it). r supplies the nonce (nil means
// crypto/rand.Reader). Plaintexts longer than MaxPlaintext are refused.
func EncryptWithAEAD(r io.Reader, aead cipher.AEAD, h Header, keyARN string, ctx map[string]string, plaintext []byte) ([]byte, error) {
	if len(plaintext) > MaxPlaintext {
		return nil, fmt.Errorf("keymaterial: plaintext is %d bytes, more than %d", len(plaintext), MaxPlaintext)
	}
	if r == nil {
		r = rand.Reader
	}
	// The additional data goes in the same allocation as the blob, past
	// its capacity (a buffer on the stack would escape through the
	// interface).
	n := HeaderSize + len(plaintext) + tagSize
	buf := make([]byte, n, n+additionalDataSize(BlobVersion, keyARN, ctx))
	out := buf[:HeaderSize:n]
	out[0] = BlobVersion
	if h.MultiRegion {
		out[0] = BlobVersion3
	}
	copy(out[1:17], h.KeyID[:])
	copy(out[17:33], h.MaterialID[:])
	// The nonce is read into the header (an array would escape too); Seal
	// writes only past it.
	nonce := out[33:HeaderSize]
	if _, err := io.ReadFull(r, nonce); err != nil {
		return nil, fmt.Errorf("keymaterial: read nonce: %w", err)
	}
	ad := appendAdditionalData(buf[n:n], out, keyARN, ctx)
	return aead.Seal(out, nonce, plaintext, ad), nil
}

// DecryptWithAEAD opens blob with aead (see NewAEAD and Cache) and ctx
// (and keyARN, for a version 1 blob). Any failure returns ErrInvalidCiphertext. The caller checks,
// before or after, that the blob's header (ParseBlob) names the key and
// material it expects.
func DecryptWithAEAD(aead cipher.AEAD, keyARN string, ctx map[string]string, blob []byte) ([]byte, error) {
	if h, err := ParseBlob(blob); err != nil || h.External {
		return nil, ErrInvalidCiphertext
	}
	n := len(blob) - HeaderSize - aead.Overhead()
	if n < 0 {
		return nil, ErrInvalidCiphertext
	}
	// The plaintext and, past its capacity, the additional data share one
	// allocation.
	buf := make([]byte, n, n+additionalDataSize(blob[0], keyARN, ctx))
	ad := appendAdditionalData(buf[n:], blob, keyARN, ctx)
	pt, err := aead.Open(buf[:0:n], blob[33:HeaderSize], blob[HeaderSize:], ad)
	if err != nil {
		return nil, ErrInvalidCiphertext
	}
	return pt, nil
}

// appendAdditionalData appends the GCM additional data of blob (at least
// its header): the header, the binding and ctx, where binding is the key
// id for version 2 and the key ARN for version 1.
func appendAdditionalData(dst, blob []byte, keyARN string, ctx map[string]string) []byte {
	dst = append(dst, blob[:HeaderSize]...)
	switch blob[0] {
	case BlobVersion1:
		dst = appendString(dst, keyARN)
	case BlobVersion3:
		dst = binary.BigEndian.AppendUint32(dst, keyIDSize)
		dst = appendMultiRegionID(dst, [16]byte(blob[1:17]))
	default:
		dst = binary.BigEndian.AppendUint32(dst, keyIDSize)
		dst = appendKeyID(dst, [16]byte(blob[1:17]))
	}
	return appendCanonicalPairs(dst, ctx)
}

// additionalDataSize is the length appendAdditionalData appends for a blob
// of format version.
func additionalDataSize(version byte, keyARN string, ctx map[string]string) int {
	n := HeaderSize + 4 + keyIDSize + 4
	if version == BlobVersion1 {
		n += len(keyARN) - keyIDSize
	}
	for k, v := range ctx {
		n += 8 + len(k) + len(v)
	}
	return n
}

// keyIDSize is the length of a key id's text (a UUID's, and mrk-<32 hex>).
const keyIDSize = 36

// appendKeyID appends id as canonical UUID text without making a string.
func appendKeyID(dst []byte, id [16]byte) []byte { return uuid.Append(dst, id) }
