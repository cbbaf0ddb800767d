package keymaterial

import (
	"bytes"
	"crypto/cipher"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/keyfort/keyfort/internal/uuid"
)

var update = flag.Bool("update", false, "rewrite the frozen vectors in testdata/keymaterial (only for a deliberate format change)")

// counterReader is a deterministic byte source for tests: n, n+1, ...
type counterReader struct{ n byte }

func (r *counterReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = r.n
		r.n++
	}
	return len(p), nil
}

type failReader struct{}

func (failReader) Read([]byte) (int, error) { return 0, errors.New("no entropy") }

const testARN = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"

func testHeader(t testing.TB) Header {
	t.Helper()
	kid, err := ParseKeyID("1234abcd-12ab-34cd-56ef-1234567890ab")
	if err != nil {
		t.Fatal(err)
	}
	return Header{KeyID: kid, MaterialID: [16]byte{0xaa, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}}
}

func testMaterial(fill byte) []byte { return bytes.Repeat([]byte{fill}, MaterialSize) }

func TestRoundTrip(t *testing.T) {
	h := testHeader(t)
	m := testMaterial(1)
	tests := []struct {
		name string
		ctx  map[string]string
		pt   []byte
	}{
		{"nil context", nil, []byte("hello")},
		{"empty context", map[string]string{}, []byte("hello")},
		{"one pair", map[string]string{"purpose": "test"}, []byte{0}},
		{"many pairs", map[string]string{"SecretARN": "arn:aws:secretsmanager:us-east-1:123456789012:secret:x-AbCdEf", "SecretVersionId": "v1", "a": "", "": "empty key", "é": "ü"}, bytes.Repeat([]byte{7}, 32)},
		{"twelve pairs", func() map[string]string {
			c := map[string]string{}
			for i := range 12 {
				c[fmt.Sprintf("k%02d", i)] = fmt.Sprint(i)
			}
			return c
		}(), bytes.Repeat([]byte("x"), MaxPlaintext)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			blob, err := Encrypt(nil, m, h, testARN, tc.ctx, tc.pt)
			if err != nil {
				t.Fatalf("Encrypt: %v", err)
			}
			if len(blob) != len(tc.pt)+Overhead {
				t.Errorf("len(blob) = %d, want %d", len(blob), len(tc.pt)+Overhead)
			}
			got, err := ParseBlob(blob)
			if err != nil || got != h {
				t.Errorf("ParseBlob = %+v, %v, want %+v, nil", got, err, h)
			}
			pt, err := Decrypt(m, testARN, tc.ctx, blob)
			if err != nil {
				t.Fatalf("Decrypt: %v", err)
			}
			if !bytes.Equal(pt, tc.pt) {
				t.Errorf("Decrypt returned different bytes")
			}
		})
	}
}

func TestEncryptErrors(t *testing.T) {
	h := testHeader(t)
	if _, err := Encrypt(nil, testMaterial(1), h, testARN, nil, make([]byte, MaxPlaintext+1)); err == nil {
		t.Errorf("Encrypt(%d bytes) = nil error, want error", MaxPlaintext+1)
	}
	if _, err := Encrypt(nil, make([]byte, 16), h, testARN, nil, []byte("x")); err == nil {
		t.Errorf("Encrypt(16-byte material) = nil error, want error")
	}
	if _, err := Encrypt(failReader{}, testMaterial(1), h, testARN, nil, []byte("x")); err == nil {
		t.Errorf("Encrypt(failing rand) = nil error, want error")
	}
}

func TestWrongContextFails(t *testing.T) {
	h := testHeader(t)
	m := testMaterial(1)
	ctx := map[string]string{"a": "bc", "x": "y"}
	blob, err := Encrypt(nil, m, h, testARN, ctx, []byte("pt"))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		arn  string
		ctx  map[string]string
	}{
		{"missing pair", testARN, map[string]string{"a": "bc"}},
		{"extra pair", testARN, map[string]string{"a": "bc", "x": "y", "z": ""}},
		{"shifted boundary", testARN, map[string]string{"ab": "c", "x": "y"}},
		{"swapped values", testARN, map[string]string{"a": "y", "x": "bc"}},
		{"swapped key and value", testARN, map[string]string{"bc": "a", "x": "y"}},
		{"case", testARN, map[string]string{"A": "bc", "x": "y"}},
		{"nil", testARN, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if pt, err := Decrypt(m, tc.arn, tc.ctx, blob); err != ErrInvalidCiphertext {
				t.Errorf("Decrypt(%q, %v) = %q, %v, want ErrInvalidCiphertext", tc.arn, tc.ctx, pt, err)
			}
		})
	}
	// A version 2 blob binds the key id (in its header), not the regional
	// ARN: the same key in another region opens it; another key id in the
	// header does not.
	if pt, err := Decrypt(m, "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab", ctx, blob); err != nil || string(pt) != "pt" {
		t.Errorf("Decrypt under the ARN of another region = %q, %v, want the plaintext", pt, err)
	}
	forged := bytes.Clone(blob)
	forged[16] ^= 1
	if _, err := Decrypt(m, testARN, ctx, forged); err != ErrInvalidCiphertext {
		t.Errorf("Decrypt with another key id in the header = %v, want ErrInvalidCiphertext", err)
	}
	// Order of insertion does not matter.
	ctx2 := map[string]string{"x": "y"}
	ctx2["a"] = "bc"
	if _, err := Decrypt(m, testARN, ctx2, blob); err != nil {
		t.Errorf("Decrypt(same context, other insertion order) = %v, want nil", err)
	}
}

func TestCanonicalContext(t *testing.T) {
	cases := []map[string]string{
		nil,
		{"a": "bc"},
		{"ab": "c"},
		{"a": "b", "c": ""},
		{"a": "b\x00\x00\x00\x01c"},
		{"": ""},
		{"b": "1", "a": "2"},
		{"a": "1", "b": "2"},
	}
	seen := map[string]int{}
	for i, c := range cases {
		enc := string(CanonicalContext(testARN, c))
		if j, ok := seen[enc]; ok {
			t.Errorf("CanonicalContext(%v) == CanonicalContext(%v)", c, cases[j])
		}
		seen[enc] = i
	}
	if !bytes.Equal(CanonicalContext("k", nil), CanonicalContext("k", map[string]string{})) {
		t.Errorf("CanonicalContext(nil) != CanonicalContext(empty)")
	}
	got := hex.EncodeToString(CanonicalContext("k", map[string]string{"b": "2", "a": "1"}))
	want := "00000001" + "6b" + "00000002" + "00000001" + "61" + "00000001" + "31" + "00000001" + "62" + "00000001" + "32"
	if got != want {
		t.Errorf("CanonicalContext = %s, want %s", got, want)
	}
	// A version 1 blob's additional data is its header and then the
	// encoding of its key ARN and context, appended after what dst holds.
	v1 := make([]byte, Overhead)
	v1[0] = BlobVersion1
	ec := map[string]string{"x": "y"}
	want = "p" + string(v1[:HeaderSize]) + string(CanonicalContext("k", ec))
	if got := string(appendAdditionalData([]byte("p"), v1, "k", ec)); got != want {
		t.Errorf("appendAdditionalData(version 1) = %x, want %x", got, want)
	}
}

func TestTamperingFails(t *testing.T) {
	m := testMaterial(1)
	blob, err := Encrypt(nil, m, testHeader(t), testARN, map[string]string{"k": "v"}, []byte("sixteen byte pt."))
	if err != nil {
		t.Fatal(err)
	}
	for i := range blob {
		for _, mask := range []byte{0x01, 0x80, 0xff} {
			c := bytes.Clone(blob)
			c[i] ^= mask
			if pt, err := Decrypt(m, testARN, map[string]string{"k": "v"}, c); err != ErrInvalidCiphertext {
				t.Fatalf("Decrypt(byte %d ^ %#x) = %q, %v, want ErrInvalidCiphertext", i, mask, pt, err)
			}
		}
	}
}

func TestTruncationFails(t *testing.T) {
	m := testMaterial(1)
	blob, err := Encrypt(nil, m, testHeader(t), testARN, nil, []byte("some plaintext"))
	if err != nil {
		t.Fatal(err)
	}
	for n := range len(blob) {
		if pt, err := Decrypt(m, testARN, nil, blob[:n]); err != ErrInvalidCiphertext {
			t.Fatalf("Decrypt(first %d of %d bytes) = %q, %v, want ErrInvalidCiphertext", n, len(blob), pt, err)
		}
	}
	if _, err := Decrypt(m, testARN, nil, append(bytes.Clone(blob), 0)); err != ErrInvalidCiphertext {
		t.Errorf("Decrypt(extra byte) = %v, want ErrInvalidCiphertext", err)
	}
}

func TestWrongMaterialFails(t *testing.T) {
	blob, err := Encrypt(nil, testMaterial(1), testHeader(t), testARN, nil, []byte("x"))
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range [][]byte{testMaterial(2), nil, make([]byte, 16), make([]byte, 33)} {
		if pt, err := Decrypt(m, testARN, nil, blob); err != ErrInvalidCiphertext {
			t.Errorf("Decrypt(material of %d bytes) = %q, %v, want ErrInvalidCiphertext", len(m), pt, err)
		}
	}
}

func TestParseBlob(t *testing.T) {
	good, err := Encrypt(nil, testMaterial(1), testHeader(t), testARN, nil, []byte("x"))
	if err != nil {
		t.Fatal(err)
	}
	badVersion := bytes.Clone(good)
	badVersion[0] = 4
	tests := []struct {
		name string
		blob []byte
		ok   bool
	}{
		{"good", good, true},
		{"nil", nil, false},
		{"one byte", []byte{BlobVersion}, false},
		{"header only", good[:HeaderSize], false},
		{"shortest", append([]byte{BlobVersion}, make([]byte, Overhead-1)...), true},
		{"one short", append([]byte{BlobVersion}, make([]byte, Overhead-2)...), false},
		{"longest", append([]byte{BlobVersion}, make([]byte, MaxBlobSize-1)...), true},
		{"too long", append([]byte{BlobVersion}, make([]byte, MaxBlobSize)...), false},
		{"version 0", append([]byte{0}, good[1:]...), false},
		{"version 4", badVersion, false},
		{"version 3", append([]byte{BlobVersion3}, good[1:]...), true},
		{"version 1", append([]byte{BlobVersion1}, good[1:]...), true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h, err := ParseBlob(tc.blob)
			if tc.ok && err != nil {
				t.Errorf("ParseBlob(%d bytes) = %v, want nil", len(tc.blob), err)
			}
			if !tc.ok && (err != ErrInvalidCiphertext || h != (Header{})) {
				t.Errorf("ParseBlob(%d bytes) = %+v, %v, want zero, ErrInvalidCiphertext", len(tc.blob), h, err)
			}
		})
	}
}

func TestKeyID(t *testing.T) {
	const s = "1234abcd-12ab-34cd-56ef-1234567890ab"
	id, err := ParseKeyID(s)
	if err != nil {
		t.Fatalf("ParseKeyID(%q) = %v", s, err)
	}
	if want := [16]byte{0x12, 0x34, 0xab, 0xcd, 0x12, 0xab, 0x34, 0xcd, 0x56, 0xef, 0x12, 0x34, 0x56, 0x78, 0x90, 0xab}; id != want {
		t.Errorf("ParseKeyID(%q) = %x, want %x", s, id, want)
	}
	if got := uuid.Format(id); got != s {
		t.Errorf("uuid.Format(ParseKeyID(%q)) = %q", s, got)
	}
	for _, bad := range []string{
		"",
		"1234abcd12ab34cd56ef1234567890ab",
		"1234ABCD-12AB-34CD-56EF-1234567890AB",
		"1234abcd-12ab-34cd-56ef-1234567890a",
		"1234abcd-12ab-34cd-56ef-1234567890abc",
		"1234abcd_12ab-34cd-56ef-1234567890ab",
		"1234abcd-12ab-34cd-56ef-1234567890ag",
		"alias/aws/secretsmanager",
		"arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab",
	} {
		if id, err := ParseKeyID(bad); err != ErrInvalidKeyID || id != ([16]byte{}) {
			t.Errorf("ParseKeyID(%q) = %x, %v, want zero, ErrInvalidKeyID", bad, id, err)
		}
	}
}

func TestNewMaterial(t *testing.T) {
	m, err := NewMaterialOfSize(nil, MaterialSize)
	if err != nil || len(m) != MaterialSize {
		t.Fatalf("NewMaterialOfSize(MaterialSize) = %d bytes, %v, want 32 bytes", len(m), err)
	}
	m2, _ := NewMaterialOfSize(nil, MaterialSize)
	if bytes.Equal(m, m2) {
		t.Errorf("NewMaterialOfSize returned the same bytes twice")
	}
	if _, err := NewMaterialOfSize(failReader{}, MaterialSize); err == nil {
		t.Errorf("NewMaterialOfSize(failing rand) = nil error, want error")
	}
	id, err := NewMaterialID(nil)
	if err != nil {
		t.Fatal(err)
	}
	if s := uuid.Format(id); s[14] != '4' || (s[19] != '8' && s[19] != '9' && s[19] != 'a' && s[19] != 'b') {
		t.Errorf("NewMaterialID = %s, want a version 4 UUID", s)
	}
	if _, err := NewMaterialID(failReader{}); err == nil {
		t.Errorf("NewMaterialID(failing rand) = nil error, want error")
	}
}

func TestWithAEADMatches(t *testing.T) {
	m := testMaterial(3)
	a, err := NewAEAD(m)
	if err != nil {
		t.Fatal(err)
	}
	h := testHeader(t)
	ctx := map[string]string{"k": "v"}
	b1, _ := Encrypt(&counterReader{}, m, h, testARN, ctx, []byte("same"))
	b2, _ := EncryptWithAEAD(&counterReader{}, a, h, testARN, ctx, []byte("same"))
	if !bytes.Equal(b1, b2) {
		t.Errorf("Encrypt and EncryptWithAEAD differ for the same nonce")
	}
	if pt, err := DecryptWithAEAD(a, testARN, ctx, b1); err != nil || string(pt) != "same" {
		t.Errorf("DecryptWithAEAD = %q, %v, want \"same\", nil", pt, err)
	}
}

// putAEAD builds the AEAD of material and adds it to c.
func putAEAD(c *Cache, id [16]byte, material []byte) (cipher.AEAD, error) {
	if v, ok := c.Get(id); ok {
		return v.(cipher.AEAD), nil
	}
	a, err := NewAEAD(material)
	if err != nil {
		return nil, err
	}
	return c.Add(id, a).(cipher.AEAD), nil
}

func TestCache(t *testing.T) {
	c := NewCache(3)
	id := func(i byte) [16]byte { return [16]byte{i} }
	if _, ok := c.Get(id(1)); ok {
		t.Errorf("Get on empty cache = ok")
	}
	a1, err := putAEAD(c, id(1), testMaterial(1))
	if err != nil {
		t.Fatal(err)
	}
	if got, ok := c.Get(id(1)); !ok || got != a1 {
		t.Errorf("Get(1) = %v, %v, want the AEAD added", got, ok)
	}
	other, _ := NewAEAD(testMaterial(1))
	if again := c.Add(id(1), other); again != a1 {
		t.Errorf("Add(existing id) replaced the cached value")
	}
	for i := byte(2); i < 10; i++ {
		if _, err := putAEAD(c, id(i), testMaterial(i)); err != nil {
			t.Fatal(err)
		}
		if n := c.Len(); n > 3 {
			t.Fatalf("Len() = %d after %d adds, want at most 3", n, i)
		}
	}
	if _, ok := c.Get(id(9)); !ok {
		t.Errorf("Get(last added) = not ok")
	}
	c.Delete(id(9))
	if _, ok := c.Get(id(9)); ok {
		t.Errorf("Get after Delete = ok")
	}
	// Values of other kinds (an HMAC key's bytes) share the cache.
	if got := c.Add(id(50), []byte("hmac key")); string(got.([]byte)) != "hmac key" {
		t.Errorf("Add(bytes) = %v", got)
	}
	// The cached AEAD is the material's AEAD.
	m := testMaterial(4)
	a, _ := putAEAD(c, id(40), m)
	blob, _ := Encrypt(nil, m, testHeader(t), testARN, nil, []byte("z"))
	if pt, err := DecryptWithAEAD(a, testARN, nil, blob); err != nil || string(pt) != "z" {
		t.Errorf("DecryptWithAEAD(cached) = %q, %v", pt, err)
	}
	if NewCache(0).max != 1 {
		t.Errorf("NewCache(0) capacity != 1")
	}
}

func TestCacheConcurrent(t *testing.T) {
	c := NewCache(8)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 200 {
				id := [16]byte{byte((g + i) % 16)}
				a, err := putAEAD(c, id, testMaterial(id[0]))
				if err != nil {
					t.Error(err)
					return
				}
				blob, err := EncryptWithAEAD(nil, a, Header{MaterialID: id}, testARN, nil, []byte("p"))
				if err != nil {
					t.Error(err)
					return
				}
				if _, err := Decrypt(testMaterial(id[0]), testARN, nil, blob); err != nil {
					t.Errorf("Decrypt(blob from cached AEAD %d) = %v", id[0], err)
					return
				}
			}
		})
	}
	wg.Wait()
	if c.Len() > 8 {
		t.Errorf("Len() = %d, want at most 8", c.Len())
	}
}

// vectors is the JSON form of testdata/keymaterial/v1.json and v2.json.
type vectors struct {
	Comment string   `json:"comment"`
	Vectors []vector `json:"vectors"`
}

type vector struct {
	Name       string            `json:"name"`
	Material   string            `json:"material_hex"`
	KeyID      string            `json:"key_id"`
	MaterialID string            `json:"material_id_hex"`
	KeyARN     string            `json:"key_arn"`
	Context    map[string]string `json:"encryption_context"`
	AADHex     string            `json:"aad_hex"`
	Plaintext  string            `json:"plaintext_hex"`
	Blob       string            `json:"blob_hex"`
}

// The frozen vectors of each blob version. v1.json was written by the
// version 1 code and is never rewritten (Encrypt no longer writes version
// 1); -update rewrites v2.json.
const (
	vectorFileV1 = "../../testdata/keymaterial/v1.json"
	vectorFile   = "../../testdata/keymaterial/v2.json"
	// vectorFileV3 holds version 3 blobs (multi-Region keys); -update
	// rewrites it with v2.json.
	vectorFileV3 = "../../testdata/keymaterial/v3.json"
)

func makeVectors(t *testing.T, multiRegion bool) vectors {
	t.Helper()
	material := make([]byte, MaterialSize)
	for i := range material {
		material[i] = byte(0x10 + i)
	}
	kid, _ := ParseKeyID("0f1e2d3c-4b5a-4697-8877-665544332211")
	keyID, version := uuid.Format(kid), 2
	if multiRegion {
		keyID, version = "mrk-0f1e2d3c4b5a46978877665544332211", 3
		kid, _ = ParseMultiRegionKeyID(keyID)
	}
	mid := [16]byte{0x8a, 0x1b, 0x2c, 0x3d, 0x4e, 0x5f, 0x40, 0x71, 0x82, 0x93, 0xa4, 0xb5, 0xc6, 0xd7, 0xe8, 0xf9}
	arn := "arn:aws:kms:eu-west-2:444455556666:key/" + keyID
	ins := []struct {
		name string
		ctx  map[string]string
		pt   []byte
	}{
		{"no context", nil, []byte("Hello, Keyfort!")},
		{"secrets manager context", map[string]string{"SecretARN": "arn:aws:secretsmanager:eu-west-2:444455556666:secret:prod/db-AbCdEf", "SecretVersionId": "EXAMPLE1-90ab-cdef-fedc-ba987EXAMPLE"}, bytes.Repeat([]byte{0x5a}, 32)},
		{"tricky context", map[string]string{"a": "bc", "ab": "c", "": "", "ü": "\x00"}, []byte{0}},
	}
	var vs vectors
	vs.Comment = fmt.Sprintf("KMS CiphertextBlob format version %d. Written once by `go test ./internal/keymaterial -run TestFrozenVectors -update`; must decrypt after every change.", version)
	r := &counterReader{n: 0x60}
	for _, in := range ins {
		h := Header{KeyID: kid, MaterialID: mid, MultiRegion: multiRegion}
		blob, err := Encrypt(r, material, h, arn, in.ctx, in.pt)
		if err != nil {
			t.Fatal(err)
		}
		vs.Vectors = append(vs.Vectors, vector{
			Name:       in.name,
			Material:   hex.EncodeToString(material),
			KeyID:      keyID,
			MaterialID: hex.EncodeToString(mid[:]),
			KeyARN:     arn,
			Context:    in.ctx,
			AADHex:     hex.EncodeToString(appendAdditionalData(nil, blob, arn, in.ctx)),
			Plaintext:  hex.EncodeToString(in.pt),
			Blob:       hex.EncodeToString(blob),
		})
	}
	return vs
}

func TestFrozenVectors(t *testing.T) {
	if *update {
		for file, mrk := range map[string]bool{vectorFile: false, vectorFileV3: true} {
			b, _ := json.MarshalIndent(makeVectors(t, mrk), "", "  ")
			if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(file, append(b, '\n'), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	var vs vectors
	for _, file := range []string{vectorFileV1, vectorFile, vectorFileV3} {
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatalf("read frozen vectors: %v (create them once with -update)", err)
		}
		vs = vectors{}
		if err := json.Unmarshal(b, &vs); err != nil {
			t.Fatal(err)
		}
		if len(vs.Vectors) == 0 {
			t.Fatalf("%s: no vectors", file)
		}
		for _, v := range vs.Vectors {
			t.Run(filepath.Base(file)+"/"+v.Name, func(t *testing.T) {
				material, _ := hex.DecodeString(v.Material)
				blob, _ := hex.DecodeString(v.Blob)
				want, _ := hex.DecodeString(v.Plaintext)
				h, err := ParseBlob(blob)
				if err != nil {
					t.Fatalf("ParseBlob = %v", err)
				}
				if got := string(h.AppendID(nil)); got != v.KeyID {
					t.Errorf("KeyID = %s, want %s", got, v.KeyID)
				}
				if got := hex.EncodeToString(h.MaterialID[:]); got != v.MaterialID {
					t.Errorf("MaterialID = %s, want %s", got, v.MaterialID)
				}
				ad := appendAdditionalData(nil, blob, v.KeyARN, v.Context)
				if got := hex.EncodeToString(ad); got != v.AADHex {
					t.Errorf("AAD = %s, want %s", got, v.AADHex)
				}
				if n := additionalDataSize(blob[0], v.KeyARN, v.Context); n != len(ad) {
					t.Errorf("additionalDataSize = %d, want %d", n, len(ad))
				}
				got, err := Decrypt(material, v.KeyARN, v.Context, blob)
				if err != nil {
					t.Fatalf("Decrypt(frozen vector) = %v, want nil", err)
				}
				if !bytes.Equal(got, want) {
					t.Errorf("Decrypt(frozen vector) = %x, want %x", got, want)
				}
			})
		}
	}
	// Today's code with the same nonces still writes the same bytes.
	for file, mrk := range map[string]bool{vectorFile: false, vectorFileV3: true} {
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		vs = vectors{}
		if err := json.Unmarshal(b, &vs); err != nil {
			t.Fatal(err)
		}
		now := makeVectors(t, mrk)
		for i := range min(len(now.Vectors), len(vs.Vectors)) {
			if now.Vectors[i].Blob != vs.Vectors[i].Blob {
				t.Errorf("%s vector %q: Encrypt now writes %s, frozen %s", file, vs.Vectors[i].Name, now.Vectors[i].Blob, vs.Vectors[i].Blob)
			}
		}
	}
}

func FuzzParseBlob(f *testing.F) {
	good, _ := Encrypt(&counterReader{}, testMaterial(1), Header{}, testARN, nil, []byte("x"))
	f.Add(good)
	f.Add([]byte{})
	f.Add([]byte{BlobVersion})
	f.Add(make([]byte, MaxBlobSize+1))
	external, _ := AppendExternalBlob(Header{}, External{IV: make([]byte, 12), Tag: make([]byte, 16), Metadata: []byte("m"), Ciphertext: good})
	f.Add(external)
	f.Fuzz(func(t *testing.T, blob []byte) {
		h, err := ParseBlob(blob)
		if err != nil {
			if err != ErrInvalidCiphertext || h != (Header{}) {
				t.Fatalf("ParseBlob = %+v, %v", h, err)
			}
			return
		}
		if blob[0] == BlobVersionExternal {
			// Version 4: its own layout, checked whole by ParseExternalBlob.
			if xh, _, xerr := ParseExternalBlob(blob); xerr != nil || xh != h || !h.External {
				t.Fatalf("ParseBlob accepted a version 4 blob ParseExternalBlob gives as %+v, %v", xh, xerr)
			}
		} else if len(blob) < Overhead || len(blob) > MaxBlobSize || (blob[0] != BlobVersion && blob[0] != BlobVersion1 && blob[0] != BlobVersion3) {
			t.Fatalf("ParseBlob accepted %d bytes starting %x", len(blob), blob[:min(len(blob), 1)])
		}
		if !bytes.Equal(h.KeyID[:], blob[1:17]) || !bytes.Equal(h.MaterialID[:], blob[17:33]) {
			t.Fatalf("ParseBlob header does not match the bytes")
		}
	})
}

func FuzzDecrypt(f *testing.F) {
	m := testMaterial(1)
	ctx := map[string]string{"k": "v"}
	good, _ := Encrypt(&counterReader{}, m, testHeader(f), testARN, ctx, []byte("fuzz"))
	f.Add(good, "k", "v")
	f.Add([]byte{}, "", "")
	f.Add(good[:Overhead], "k", "v")
	f.Fuzz(func(t *testing.T, blob []byte, k, v string) {
		pt, err := Decrypt(m, testARN, map[string]string{k: v}, blob)
		if err != nil {
			if err != ErrInvalidCiphertext || pt != nil {
				t.Fatalf("Decrypt = %q, %v, want nil, ErrInvalidCiphertext", pt, err)
			}
			return
		}
		if !bytes.Equal(blob, good) || k != "k" || v != "v" {
			t.Fatalf("Decrypt accepted forged input %x", blob)
		}
	})
}

func benchSizes() []int { return []int{32, 4096} }

func BenchmarkEncrypt(b *testing.B) {
	m := testMaterial(1)
	h := testHeader(b)
	ctx := map[string]string{"SecretARN": "arn:aws:secretsmanager:us-east-1:123456789012:secret:x-AbCdEf", "SecretVersionId": "v1"}
	a, _ := NewAEAD(m)
	for _, n := range benchSizes() {
		pt := make([]byte, n)
		b.Run(fmt.Sprintf("%dB/material", n), func(b *testing.B) {
			b.SetBytes(int64(n))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := Encrypt(nil, m, h, testARN, ctx, pt); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(fmt.Sprintf("%dB/aead", n), func(b *testing.B) {
			b.SetBytes(int64(n))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := EncryptWithAEAD(nil, a, h, testARN, ctx, pt); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkDecrypt(b *testing.B) {
	m := testMaterial(1)
	h := testHeader(b)
	ctx := map[string]string{"SecretARN": "arn:aws:secretsmanager:us-east-1:123456789012:secret:x-AbCdEf", "SecretVersionId": "v1"}
	a, _ := NewAEAD(m)
	for _, n := range benchSizes() {
		blob, _ := Encrypt(nil, m, h, testARN, ctx, make([]byte, n))
		b.Run(fmt.Sprintf("%dB/material", n), func(b *testing.B) {
			b.SetBytes(int64(n))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := Decrypt(m, testARN, ctx, blob); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(fmt.Sprintf("%dB/aead", n), func(b *testing.B) {
			b.SetBytes(int64(n))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := DecryptWithAEAD(a, testARN, ctx, blob); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestAppendKeyIDMatchesFormat checks AppendKeyID against uuid.Format,
// onto an empty and a non-empty buffer, without allocating into room.
func TestAppendKeyIDMatchesFormat(t *testing.T) {
	for _, id := range [][16]byte{{}, {0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef, 0xfe, 0xdc, 0xba, 0x98, 0x76, 0x54, 0x32, 0x10},
		{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}} {
		if got, want := string(AppendKeyID(nil, id)), uuid.Format(id); got != want {
			t.Errorf("AppendKeyID(%x) = %q, want %q", id, got, want)
		}
		if got, want := string(AppendKeyID([]byte("key/"), id)), "key/"+uuid.Format(id); got != want {
			t.Errorf("AppendKeyID(key/, %x) = %q, want %q", id, got, want)
		}
	}
	var buf [36]byte
	if n := testing.AllocsPerRun(100, func() { AppendKeyID(buf[:0], [16]byte{1}) }); n != 0 {
		t.Errorf("AppendKeyID into room allocates %v times", n)
	}
}

// TestMultiRegionKeyID: mrk-<32 hex> parses to its 16 bytes and back; a
// version 3 blob names it, and does not open as version 2 (nor a version 2
// blob as version 3) although the 16 bytes are the same.
func TestMultiRegionKeyID(t *testing.T) {
	const s = "mrk-1234abcd12ab34cd56ef1234567890ab"
	id, err := ParseMultiRegionKeyID(s)
	if err != nil {
		t.Fatalf("ParseMultiRegionKeyID(%q) = %v", s, err)
	}
	h := Header{KeyID: id, MultiRegion: true}
	if got := string(h.AppendID(nil)); got != s {
		t.Errorf("AppendID = %q, want %q", got, s)
	}
	for _, bad := range []string{"", "mrk-", "mrk-1234abcd12ab34cd56ef1234567890a", "mrk-1234abcd12ab34cd56ef1234567890abc",
		"MRK-1234abcd12ab34cd56ef1234567890ab", "mrk-1234ABCD12ab34cd56ef1234567890ab", "mrk-1234abcd12ab34cd56ef1234567890ag",
		"1234abcd-12ab-34cd-56ef-1234567890ab", "mrk_1234abcd12ab34cd56ef1234567890ab"} {
		if id, err := ParseMultiRegionKeyID(bad); err != ErrInvalidKeyID || id != ([16]byte{}) {
			t.Errorf("ParseMultiRegionKeyID(%q) = %x, %v, want zero, ErrInvalidKeyID", bad, id, err)
		}
	}
	m := testMaterial(1)
	v3, err := Encrypt(nil, m, h, testARN, nil, []byte("x"))
	if err != nil || v3[0] != BlobVersion3 {
		t.Fatalf("Encrypt with a multi-Region header = version %d, %v", v3[0], err)
	}
	if got, err := ParseBlob(v3); err != nil || got != h {
		t.Fatalf("ParseBlob(v3) = %+v, %v", got, err)
	}
	asV2 := append([]byte{BlobVersion}, v3[1:]...)
	if _, err := Decrypt(m, testARN, nil, asV2); err != ErrInvalidCiphertext {
		t.Errorf("a version 3 blob relabelled version 2 opened: %v", err)
	}
	v2, _ := Encrypt(nil, m, Header{KeyID: id}, testARN, nil, []byte("x"))
	if _, err := Decrypt(m, testARN, nil, append([]byte{BlobVersion3}, v2[1:]...)); err != ErrInvalidCiphertext {
		t.Errorf("a version 2 blob relabelled version 3 opened: %v", err)
	}
}
