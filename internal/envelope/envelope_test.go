package envelope

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the frozen vectors in testdata/envelope (only for a deliberate format change)")

// counterReader is a deterministic byte source for tests: 0, 1, 2, ...
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

func mustKey(t testing.TB, fill byte) *RootKey {
	t.Helper()
	k, err := NewRootKey(bytes.Repeat([]byte{fill}, RootKeySize))
	if err != nil {
		t.Fatalf("NewRootKey: %v", err)
	}
	return k
}

var testAAD = AAD{Kind: "kms.material", Account: "123456789012", Region: "us-east-1", ID: "1234abcd-12ab-34cd-56ef-1234567890ab", Version: 3, Column: "material"}

func TestRootKeyID(t *testing.T) {
	k := mustKey(t, 0)
	// SHA-256 of 32 zero bytes starts 66687aadf862bd77.
	want := "66687aadf862bd77"
	id := k.ID()
	if got := hex.EncodeToString(id[:]); got != want {
		t.Errorf("ID() = %s, want %s", got, want)
	}
	for _, s := range []string{fmt.Sprint(k), fmt.Sprintf("%v %+v %#v %s %x %q", k, k, k, k, k, k)} {
		if bytes.Contains([]byte(s), []byte("\x00\x00\x00")) || !bytes.Contains([]byte(s), []byte(want)) {
			t.Errorf("formatted root key = %q, want only its id", s)
		}
	}
	if _, err := NewRootKey(make([]byte, 31)); err == nil {
		t.Errorf("NewRootKey(31 bytes) = nil error, want error")
	}
}

func TestSealOpenRoundTrip(t *testing.T) {
	s := NewSealer(nil, mustKey(t, 1))
	for _, pt := range [][]byte{nil, {}, []byte("x"), bytes.Repeat([]byte("secret"), 2000)} {
		sealed, err := s.Seal(testAAD, pt)
		if err != nil {
			t.Fatalf("Seal: %v", err)
		}
		if len(sealed) != len(pt)+Overhead {
			t.Errorf("len(Seal(%d bytes)) = %d, want %d", len(pt), len(sealed), len(pt)+Overhead)
		}
		if string(sealed[:4]) != Magic {
			t.Errorf("Seal prefix = %q, want %q", sealed[:4], Magic)
		}
		got, err := s.Open(testAAD, sealed)
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		if !bytes.Equal(got, pt) {
			t.Errorf("Open(Seal(%d bytes)) returned %d different bytes", len(pt), len(got))
		}
	}
	a, _ := s.Seal(testAAD, []byte("same"))
	b, _ := s.Seal(testAAD, []byte("same"))
	if bytes.Equal(a, b) {
		t.Errorf("two seals of the same plaintext are equal; nonces must differ")
	}
}

func TestSealRandFailure(t *testing.T) {
	s := NewSealer(failReader{}, mustKey(t, 1))
	if _, err := s.Seal(testAAD, []byte("x")); err == nil {
		t.Errorf("Seal with failing rand = nil error, want error")
	}
}

func TestOpenOtherRowFails(t *testing.T) {
	s := NewSealer(nil, mustKey(t, 1))
	sealed, err := s.Seal(testAAD, []byte("material"))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		mutate func(*AAD)
	}{
		{"kind", func(a *AAD) { a.Kind = "sm.version" }},
		{"account", func(a *AAD) { a.Account = "210987654321" }},
		{"region", func(a *AAD) { a.Region = "eu-west-1" }},
		{"id", func(a *AAD) { a.ID = "other" }},
		{"version", func(a *AAD) { a.Version = 4 }},
		{"column", func(a *AAD) { a.Column = "private" }},
		{"shifted boundary", func(a *AAD) { a.Kind, a.Account = "kms.material1", "23456789012" }},
		{"zero", func(a *AAD) { *a = AAD{} }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			aad := testAAD
			tc.mutate(&aad)
			if got, err := s.Open(aad, sealed); err != ErrOpen {
				t.Errorf("Open(%+v) = %q, %v, want ErrOpen", aad, got, err)
			}
		})
	}
}

func TestAADEncodingUnambiguous(t *testing.T) {
	aads := []AAD{
		{},
		{Kind: "a"},
		{Account: "a"},
		{Region: "a"},
		{ID: "a"},
		{Column: "a"},
		{Version: 1},
		{Version: -1},
		{Kind: "ab", Account: "c"},
		{Kind: "a", Account: "bc"},
		{ID: "a\x00\x00\x00\x01b"},
		{ID: "a", Version: 0x0000000162},
	}
	seen := map[string]int{}
	for i, a := range aads {
		enc := string(a.Encode())
		if j, ok := seen[enc]; ok {
			t.Errorf("AAD %+v and %+v encode the same: %x", aads[j], a, enc)
		}
		seen[enc] = i
		if got := string(a.Append([]byte("p"))); got != "p"+enc {
			t.Errorf("Append(%+v) = %x, want prefix + Encode", a, got)
		}
	}
	want := "00000001" + "61" + "00000000" + "00000000" + "00000000" + "0000000000000002" + "00000001" + "63"
	if got := hex.EncodeToString(AAD{Kind: "a", Version: 2, Column: "c"}.Encode()); got != want {
		t.Errorf("Encode = %s, want %s", got, want)
	}
}

func TestEveryBitFlipFails(t *testing.T) {
	s := NewSealer(nil, mustKey(t, 1))
	sealed, err := s.Seal(testAAD, []byte("sixteen byte pt."))
	if err != nil {
		t.Fatal(err)
	}
	for i := range sealed {
		for bit := range 8 {
			c := bytes.Clone(sealed)
			c[i] ^= 1 << bit
			if got, err := s.Open(testAAD, c); err != ErrOpen {
				t.Fatalf("Open(flip byte %d bit %d) = %q, %v, want ErrOpen", i, bit, got, err)
			}
		}
	}
}

func TestTruncationFails(t *testing.T) {
	s := NewSealer(nil, mustKey(t, 1))
	sealed, err := s.Seal(testAAD, []byte("some plaintext"))
	if err != nil {
		t.Fatal(err)
	}
	for n := range len(sealed) {
		if got, err := s.Open(testAAD, sealed[:n]); err != ErrOpen {
			t.Fatalf("Open(first %d of %d bytes) = %q, %v, want ErrOpen", n, len(sealed), got, err)
		}
	}
	if _, err := s.Open(testAAD, append(bytes.Clone(sealed), 0)); err != ErrOpen {
		t.Errorf("Open(with extra byte) = %v, want ErrOpen", err)
	}
}

func TestRotation(t *testing.T) {
	oldKey, newKey := mustKey(t, 1), mustKey(t, 2)
	before := NewSealer(nil, oldKey)
	sealed, err := before.Seal(testAAD, []byte("v"))
	if err != nil {
		t.Fatal(err)
	}
	after := NewSealer(nil, newKey, oldKey)
	if after.CurrentID() != newKey.ID() {
		t.Errorf("CurrentID() = %x, want %x", after.CurrentID(), newKey.ID())
	}
	if !after.NeedsReseal(sealed) {
		t.Errorf("NeedsReseal(old record) = false, want true")
	}
	got, err := after.Open(testAAD, sealed)
	if err != nil || string(got) != "v" {
		t.Fatalf("Open(old record) after rotation = %q, %v, want \"v\", nil", got, err)
	}
	resealed, err := after.Reseal(testAAD, sealed)
	if err != nil {
		t.Fatalf("Reseal: %v", err)
	}
	if after.NeedsReseal(resealed) {
		t.Errorf("NeedsReseal(resealed) = true, want false")
	}
	if _, err := NewSealer(nil, newKey).Open(testAAD, resealed); err != nil {
		t.Errorf("Open(resealed) without old key = %v, want nil", err)
	}
	if _, err := NewSealer(nil, newKey).Open(testAAD, sealed); err != ErrOpen {
		t.Errorf("Open(old record) without old key = %v, want ErrOpen", err)
	}
	if after.NeedsReseal([]byte("KFS")) {
		t.Errorf("NeedsReseal(malformed) = true, want false")
	}
}

func TestDeriveKey(t *testing.T) {
	s := NewSealer(nil, mustKey(t, 1))
	a, b := s.DeriveKey("page-token"), s.DeriveKey("other")
	if len(a) != 32 {
		t.Fatalf("len(DeriveKey) = %d, want 32", len(a))
	}
	if bytes.Equal(a, b) {
		t.Errorf("DeriveKey with different labels returned the same key")
	}
	if !bytes.Equal(a, s.DeriveKey("page-token")) {
		t.Errorf("DeriveKey is not deterministic")
	}
	if bytes.Equal(a, NewSealer(nil, mustKey(t, 2)).DeriveKey("page-token")) {
		t.Errorf("DeriveKey does not depend on the root key")
	}
	if bytes.Contains(a, bytes.Repeat([]byte{1}, 8)) {
		t.Errorf("DeriveKey looks like the root key")
	}
}

// vector is the JSON form of testdata/envelope/v1.json.
type vector struct {
	Comment   string    `json:"comment"`
	RootKey   string    `json:"root_key_hex"`
	RootKeyID string    `json:"root_key_id_hex"`
	AAD       vectorAAD `json:"aad"`
	AADHex    string    `json:"aad_encoded_hex"`
	Plaintext string    `json:"plaintext_hex"`
	Sealed    string    `json:"sealed_hex"`
}

// vectorAAD keeps the vector file's spelling independent of AAD's field names.
type vectorAAD struct {
	Kind    string `json:"kind"`
	Account string `json:"account"`
	Region  string `json:"region"`
	ID      string `json:"id"`
	Version int64  `json:"version"`
	Column  string `json:"column"`
}

const vectorFile = "../../testdata/envelope/v1.json"

func TestFrozenVector(t *testing.T) {
	keyBytes := make([]byte, 32)
	for i := range keyBytes {
		keyBytes[i] = byte(0xa0 + i)
	}
	if *update {
		k, _ := NewRootKey(keyBytes)
		aad := AAD{Kind: "sm.version", Account: "111122223333", Region: "eu-central-1", ID: "prod/db-Ab12Cd/v1", Version: 7, Column: "datakey"}
		pt := []byte("frozen vector plaintext \x00\xff")
		sealed, err := NewSealer(&counterReader{n: 0x40}, k).Seal(aad, pt)
		if err != nil {
			t.Fatal(err)
		}
		id := k.ID()
		v := vector{
			Comment:   "Sealed record format KFS1. Written once by `go test ./internal/envelope -run TestFrozenVector -update`; must open after every change.",
			RootKey:   hex.EncodeToString(keyBytes),
			RootKeyID: hex.EncodeToString(id[:]),
			AAD:       vectorAAD(aad),
			AADHex:    hex.EncodeToString(aad.Encode()),
			Plaintext: hex.EncodeToString(pt),
			Sealed:    hex.EncodeToString(sealed),
		}
		b, _ := json.MarshalIndent(v, "", "  ")
		if err := os.MkdirAll(filepath.Dir(vectorFile), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(vectorFile, append(b, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	b, err := os.ReadFile(vectorFile)
	if err != nil {
		t.Fatalf("read frozen vector: %v (create it once with -update)", err)
	}
	var v vector
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	kb, _ := hex.DecodeString(v.RootKey)
	k, err := NewRootKey(kb)
	if err != nil {
		t.Fatal(err)
	}
	id := k.ID()
	if got := hex.EncodeToString(id[:]); got != v.RootKeyID {
		t.Errorf("ID() = %s, want %s", got, v.RootKeyID)
	}
	aad := AAD(v.AAD)
	if got := hex.EncodeToString(aad.Encode()); got != v.AADHex {
		t.Errorf("AAD.Encode() = %s, want %s", got, v.AADHex)
	}
	sealed, _ := hex.DecodeString(v.Sealed)
	want, _ := hex.DecodeString(v.Plaintext)
	got, err := NewSealer(nil, k).Open(aad, sealed)
	if err != nil {
		t.Fatalf("Open(frozen vector) = %v, want nil", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("Open(frozen vector) = %x, want %x", got, want)
	}
	// Sealing with the same nonce must still produce the same bytes.
	again, err := NewSealer(&counterReader{n: 0x40}, k).Seal(aad, want)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(again, sealed) {
		t.Errorf("Seal(frozen inputs) = %x, want %x", again, sealed)
	}
	// And it opens via an older key too.
	if _, err := NewSealer(nil, mustKey(t, 9), k).Open(aad, sealed); err != nil {
		t.Errorf("Open(frozen vector, as older key) = %v, want nil", err)
	}
}

func FuzzOpen(f *testing.F) {
	k := mustKey(f, 1)
	s := NewSealer(&counterReader{}, k)
	sealed, _ := s.Seal(testAAD, []byte("fuzz seed"))
	f.Add(sealed, "kms.material")
	f.Add([]byte("KFS1"), "")
	f.Add([]byte{}, "x")
	f.Add(append([]byte("KFS1"), make([]byte, 40)...), "kms.material")
	f.Fuzz(func(t *testing.T, data []byte, kind string) {
		aad := testAAD
		aad.Kind = kind
		_ = s.NeedsReseal(data)
		pt, err := s.Open(aad, data)
		if err != nil {
			if err != ErrOpen || pt != nil {
				t.Fatalf("Open = %q, %v, want nil, ErrOpen", pt, err)
			}
			return
		}
		if !bytes.Equal(data, sealed) || kind != testAAD.Kind {
			t.Fatalf("Open accepted forged input %x", data)
		}
	})
}

func BenchmarkSeal(b *testing.B) {
	s := NewSealer(nil, mustKey(b, 1))
	pt := make([]byte, 64)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Seal(testAAD, pt); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkOpen(b *testing.B) {
	s := NewSealer(nil, mustKey(b, 1))
	sealed, _ := s.Seal(testAAD, make([]byte, 64))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Open(testAAD, sealed); err != nil {
			b.Fatal(err)
		}
	}
}

func TestSealedKeyID(t *testing.T) {
	k := mustKey(t, 7)
	sealed, err := NewSealer(nil, k).Seal(testAAD, []byte("x"))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		sealed []byte
		wantOK bool
	}{
		{"sealed", sealed, true},
		{"empty", nil, false},
		{"header only", sealed[:headerSize], false},
		{"bad magic", append([]byte("KFS2"), sealed[4:]...), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id, ok := SealedKeyID(tt.sealed)
			if ok != tt.wantOK || (ok && id != k.ID()) {
				t.Errorf("SealedKeyID = %x, %v, want %x, %v", id, ok, k.ID(), tt.wantOK)
			}
		})
	}
}
