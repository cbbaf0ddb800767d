package keymaterial

import "crypto/sha256"

// BlobVersionExternal is the format of a KMS key in an external key store
// (double encryption): the key's own material encrypts the plaintext into
// a version 2 blob (the inner blob), and the external key store proxy
// encrypts that inner blob. The blob is
//
//	4 | key id (16) | material id (16) | IV length (1) | IV (12 or 16) | tag (16) |
//	metadata length (1) | metadata (0-20) | proxy ciphertext (as long as the inner blob)
//
// The proxy's additional authenticated data is ExternalAAD: the 33 bytes
// of the header and the SHA-256 of the encryption context's encoding, so
// that the proxy refuses a changed header or context before the inner blob
// is opened. The inner blob names the same key and material (checked by
// OpenExternal's caller through InnerMatches).
const BlobVersionExternal = 4

const (
	// externalHeaderSize is the version, key id and material id.
	externalHeaderSize = 33
	// ExternalTagSize is the proxy's authentication tag length.
	ExternalTagSize = 16
	// MaxExternalMetadata is the longest ciphertextMetadata a proxy may
	// return.
	MaxExternalMetadata = 20
)

// External is the proxy's part of a version 4 blob: what its Encrypt
// answered, the encryption of the inner blob.
type External struct {
	IV, Tag, Metadata, Ciphertext []byte
}

// ExternalAAD is the additional authenticated data the proxy binds for a
// blob of header h and encryption context ctx.
func ExternalAAD(h Header, ctx map[string]string) []byte {
	b := make([]byte, 0, externalHeaderSize+sha256.Size)
	b = appendExternalHeader(b, h)
	pairs := appendCanonicalPairs(nil, ctx)
	sum := sha256.Sum256(pairs)
	return append(b, sum[:]...)
}

func appendExternalHeader(dst []byte, h Header) []byte {
	dst = append(dst, BlobVersionExternal)
	dst = append(dst, h.KeyID[:]...)
	return append(dst, h.MaterialID[:]...)
}

// AppendExternalBlob returns the version 4 blob of h and the proxy's
// answer x. It returns ErrInvalidCiphertext when x has sizes the format
// cannot hold (an IV of other than 12 or 16 bytes, a tag of other than 16,
// more than 20 bytes of metadata, an empty ciphertext) or the blob would
// be longer than MaxBlobSize.
func AppendExternalBlob(h Header, x External) ([]byte, error) {
	if (len(x.IV) != 12 && len(x.IV) != 16) || len(x.Tag) != ExternalTagSize || len(x.Metadata) > MaxExternalMetadata || len(x.Ciphertext) == 0 {
		return nil, ErrInvalidCiphertext
	}
	n := externalHeaderSize + 1 + len(x.IV) + len(x.Tag) + 1 + len(x.Metadata) + len(x.Ciphertext)
	if n > MaxBlobSize {
		return nil, ErrInvalidCiphertext
	}
	b := make([]byte, 0, n)
	b = appendExternalHeader(b, h)
	b = append(b, byte(len(x.IV)))
	b = append(b, x.IV...)
	b = append(b, x.Tag...)
	b = append(b, byte(len(x.Metadata)))
	b = append(b, x.Metadata...)
	return append(b, x.Ciphertext...), nil
}

// ParseExternalBlob returns the header and the proxy's part of a version 4
// blob (slices of blob), or ErrInvalidCiphertext.
func ParseExternalBlob(blob []byte) (Header, External, error) {
	var x External
	if len(blob) > MaxBlobSize || len(blob) < externalHeaderSize+1 || blob[0] != BlobVersionExternal {
		return Header{}, x, ErrInvalidCiphertext
	}
	h := Header{KeyID: [16]byte(blob[1:17]), MaterialID: [16]byte(blob[17:33]), External: true}
	rest := blob[externalHeaderSize:]
	ivLen := int(rest[0])
	if ivLen != 12 && ivLen != 16 {
		return Header{}, x, ErrInvalidCiphertext
	}
	rest = rest[1:]
	if len(rest) < ivLen+ExternalTagSize+1 {
		return Header{}, x, ErrInvalidCiphertext
	}
	x.IV, rest = rest[:ivLen], rest[ivLen:]
	x.Tag, rest = rest[:ExternalTagSize], rest[ExternalTagSize:]
	mdLen := int(rest[0])
	rest = rest[1:]
	if mdLen > MaxExternalMetadata || len(rest) < mdLen+Overhead {
		// The proxy's ciphertext is as long as the inner blob, at least
		// Overhead bytes.
		return Header{}, x, ErrInvalidCiphertext
	}
	x.Metadata, x.Ciphertext = rest[:mdLen], rest[mdLen:]
	return h, x, nil
}

// InnerMatches reports whether inner is a version 2 blob of the key and
// material h names: what the proxy's decryption of a version 4 blob must
// be.
func InnerMatches(h Header, inner []byte) bool {
	if len(inner) < Overhead || inner[0] != BlobVersion {
		return false
	}
	return [16]byte(inner[1:17]) == h.KeyID && [16]byte(inner[17:33]) == h.MaterialID
}
