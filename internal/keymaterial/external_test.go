package keymaterial

import (
	"bytes"
	"crypto/rand"
	"errors"
	"testing"
)

func TestExternalBlob(t *testing.T) {
	aead, err := NewAEAD(bytes.Repeat([]byte{7}, MaterialSize))
	if err != nil {
		t.Fatal(err)
	}
	h := Header{KeyID: [16]byte{1, 2, 3}, MaterialID: [16]byte{4, 5, 6}}
	inner, err := EncryptWithAEAD(rand.Reader, aead, h, "", nil, []byte("plaintext"))
	if err != nil {
		t.Fatal(err)
	}
	// What a proxy answers: the inner blob's length of ciphertext.
	x := External{IV: bytes.Repeat([]byte{9}, 12), Tag: bytes.Repeat([]byte{8}, 16), Metadata: []byte("v=1"), Ciphertext: bytes.Repeat([]byte{5}, len(inner))}
	blob, err := AppendExternalBlob(h, x)
	if err != nil {
		t.Fatal(err)
	}
	if blob[0] != BlobVersionExternal {
		t.Fatalf("version %d, want 4", blob[0])
	}
	gh, gx, err := ParseExternalBlob(blob)
	if err != nil || !gh.External || gh.KeyID != h.KeyID || gh.MaterialID != h.MaterialID ||
		!bytes.Equal(gx.IV, x.IV) || !bytes.Equal(gx.Tag, x.Tag) || !bytes.Equal(gx.Metadata, x.Metadata) || !bytes.Equal(gx.Ciphertext, x.Ciphertext) {
		t.Fatalf("ParseExternalBlob = %+v, %+v, %v", gh, gx, err)
	}
	if ph, err := ParseBlob(blob); err != nil || !ph.External || ph.KeyID != h.KeyID {
		t.Fatalf("ParseBlob of a version 4 blob = %+v, %v", ph, err)
	}
	if _, err := DecryptWithAEAD(aead, "", nil, blob); !errors.Is(err, ErrInvalidCiphertext) {
		t.Errorf("DecryptWithAEAD of a version 4 blob = %v, want ErrInvalidCiphertext", err)
	}
	if !InnerMatches(h, inner) {
		t.Error("InnerMatches(h, its inner blob) = false")
	}
	if InnerMatches(Header{KeyID: [16]byte{1}, MaterialID: h.MaterialID}, inner) || InnerMatches(h, inner[:Overhead-1]) {
		t.Error("InnerMatches took another key's or a short blob")
	}
	// Every truncation fails to parse, never panics.
	for n := range len(blob) - len(inner) + Overhead {
		if _, _, err := ParseExternalBlob(blob[:n]); err == nil {
			t.Fatalf("ParseExternalBlob of %d of %d bytes succeeded", n, len(blob))
		}
	}
	// Sizes the format cannot hold.
	for _, bad := range []External{
		{IV: make([]byte, 11), Tag: x.Tag, Ciphertext: x.Ciphertext},
		{IV: x.IV, Tag: make([]byte, 15), Ciphertext: x.Ciphertext},
		{IV: x.IV, Tag: x.Tag, Metadata: make([]byte, 21), Ciphertext: x.Ciphertext},
		{IV: x.IV, Tag: x.Tag},
		{IV: x.IV, Tag: x.Tag, Ciphertext: make([]byte, MaxBlobSize)},
	} {
		if _, err := AppendExternalBlob(h, bad); !errors.Is(err, ErrInvalidCiphertext) {
			t.Errorf("AppendExternalBlob(IV %d, tag %d, metadata %d, ciphertext %d) = %v", len(bad.IV), len(bad.Tag), len(bad.Metadata), len(bad.Ciphertext), err)
		}
	}
	// The proxy's additional data binds the header and the context.
	a1, a2 := ExternalAAD(h, map[string]string{"a": "b"}), ExternalAAD(h, map[string]string{"a": "c"})
	if bytes.Equal(a1, a2) || len(a1) != 33+32 || a1[0] != BlobVersionExternal || !bytes.Equal(ExternalAAD(h, nil), ExternalAAD(h, map[string]string{})) {
		t.Errorf("ExternalAAD: %x / %x", a1, a2)
	}
}
