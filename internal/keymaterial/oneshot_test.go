package keymaterial

import "io"

// Test helpers: the one-shot forms of the AEAD functions, which only tests
// use (the service keeps AEADs in a Cache).

// CanonicalContext returns the unambiguous encoding of a key ARN and an
// encryption context: the ARN as a uint32 big-endian length and its bytes,
// the number of pairs as uint32 big-endian, then each pair in bytewise order
// of its key, key and value each length-prefixed the same way. A nil and an
// empty context encode the same. It is what a version 1 blob's additional
// data holds after the header.
func CanonicalContext(keyARN string, ctx map[string]string) []byte {
	return appendCanonicalPairs(appendString(nil, keyARN), ctx)
}

// Encrypt encrypts plaintext under material (32 bytes) into a blob for the
// key and material named by h, bound to keyARN and ctx. rand supplies the
// nonce (nil means crypto/rand.Reader). Plaintexts longer than MaxPlaintext
// are refused.
func Encrypt(rand io.Reader, material []byte, h Header, keyARN string, ctx map[string]string, plaintext []byte) ([]byte, error) {
	aead, err := NewAEAD(material)
	if err != nil {
		return nil, err
	}
	return EncryptWithAEAD(rand, aead, h, keyARN, ctx, plaintext)
}

// Decrypt opens blob with material (32 bytes), keyARN and ctx. Any failure
// returns ErrInvalidCiphertext. The caller checks, before or after, that the
// blob's header (ParseBlob) names the key and material it expects.
func Decrypt(material []byte, keyARN string, ctx map[string]string, blob []byte) ([]byte, error) {
	if _, err := ParseBlob(blob); err != nil {
		return nil, err
	}
	aead, err := NewAEAD(material)
	if err != nil {
		return nil, ErrInvalidCiphertext
	}
	return DecryptWithAEAD(aead, keyARN, ctx, blob)
}
