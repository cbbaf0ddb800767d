package kms

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"maps"
	"slices"
	"testing"

	"github.com/keyfort/keyfort/internal/keymaterial"
	"github.com/keyfort/keyfort/internal/kms/kmsapi"
	"github.com/keyfort/keyfort/internal/storage"
)

// TestVersion1BlobsStillDecrypt makes a version 1 blob (bound to the key
// ARN, as Keyfort wrote them before version 2) under a key's material and
// checks that Decrypt opens it, and that new blobs are version 2.
func TestVersion1BlobsStillDecrypt(t *testing.T) {
	s, ctx := newAuthzService(t)
	out, err := s.CreateKey(ctx, &kmsapi.CreateKeyInput{})
	mustOK(t, err, "CreateKey")
	k, err := s.lookupKey(ctx, storage.Scope{Account: "111122223333", Region: "us-east-1"}, deref(out.KeyMetadata.KeyId), refKeyOnly, nil)
	mustOK(t, err, "lookupKey")
	aead, err := s.aead(ctx, k, k.meta.Material)
	mustOK(t, err, "aead")
	h, err := header(k, k.meta.Material)
	mustOK(t, err, "header")
	ec := map[string]string{"purpose": "v1"}
	blob := make([]byte, keymaterial.HeaderSize)
	blob[0] = keymaterial.BlobVersion1
	copy(blob[1:17], h.KeyID[:])
	copy(blob[17:33], h.MaterialID[:])
	if _, err := rand.Read(blob[33:keymaterial.HeaderSize]); err != nil {
		t.Fatal(err)
	}
	ad := appendVersion1Context(append([]byte(nil), blob...), k.arn, ec)
	blob = aead.Seal(blob, blob[33:keymaterial.HeaderSize], []byte("written by version 1"), ad)

	dec, err := s.Decrypt(ctx, &kmsapi.DecryptInput{CiphertextBlob: blob, EncryptionContext: ec})
	mustOK(t, err, "Decrypt of a version 1 blob")
	if string(dec.Plaintext.Reveal()) != "written by version 1" {
		t.Fatalf("Decrypt = %q", dec.Plaintext.Reveal())
	}
	enc, err := s.Encrypt(ctx, &kmsapi.EncryptInput{KeyId: out.KeyMetadata.KeyId, Plaintext: []byte("new")})
	mustOK(t, err, "Encrypt")
	if enc.CiphertextBlob[0] != keymaterial.BlobVersion {
		t.Fatalf("Encrypt wrote blob version %d (%s), want %d", enc.CiphertextBlob[0], hex.EncodeToString(enc.CiphertextBlob[:1]), keymaterial.BlobVersion)
	}
}

// appendVersion1Context appends what a version 1 blob's additional data
// holds after its header: the key ARN as a uint32 big-endian length and its
// bytes, the number of context pairs as uint32 big-endian, then each pair in
// bytewise order of its key, key and value each length-prefixed the same
// way. It is written out here rather than taken from keymaterial so that the
// test holds the format version 1 blobs were written in.
func appendVersion1Context(dst []byte, keyARN string, ec map[string]string) []byte {
	str := func(s string) {
		dst = binary.BigEndian.AppendUint32(dst, uint32(len(s)))
		dst = append(dst, s...)
	}
	str(keyARN)
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(ec)))
	for _, k := range slices.Sorted(maps.Keys(ec)) {
		str(k)
		str(ec[k])
	}
	return dst
}
