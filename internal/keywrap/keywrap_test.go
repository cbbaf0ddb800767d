package keywrap

import (
	"bytes"
	"crypto/aes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"testing"
)

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// key returns a deterministic n-byte test key whose bytes start at seed.
func key(n int, seed byte) []byte {
	k := make([]byte, n)
	for i := range k {
		k[i] = seed + byte(i)
	}
	return k
}

type vector struct {
	name, kek, plaintext, ciphertext string
}

var vectors = []vector{
	// RFC 5649 section 6, 20-octet key data with a 192-bit KEK.
	{"RFC5649/20", "5840df6e29b02af1ab493b705bf16ea1ae8338f4dcc176a8",
		"c37b7e6492584340bed12207808941155068f738",
		"138bdeaa9b8fa7fc61f97742e72248ee5ae6ae5360d1ae6a5f54f373fa543b6a"},
	// RFC 5649 section 6, 7-octet key data with a 192-bit KEK.
	{"RFC5649/7", "5840df6e29b02af1ab493b705bf16ea1ae8338f4dcc176a8",
		"466f7250617369",
		"afbeb0f07dfbf5419200f2ccb50bb24f"},
	// Frozen OpenSSL 3.0.19 output (AES-256 KEK, 32-byte plaintext),
	// generated once with
	//
	//	printf 00112233445566778899aabbccddeeff000102030405060708090a0b0c0d0e0f | xxd -r -p > pt32
	//	openssl enc -id-aes256-wrap-pad \
	//	    -K 000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f \
	//	    -iv A65959A6 -in pt32 -out ct32
	//	xxd -p -c 100 ct32
	//
	// (OpenSSL refuses the wrap-pad ciphers without -iv, "iv undefined";
	// -iv A65959A6 is the RFC 5649 AIV constant.)
	{"OpenSSL/aes256/32", "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f",
		"00112233445566778899aabbccddeeff000102030405060708090a0b0c0d0e0f",
		"4a8029243027353b0694cf1bd8fc745bb0ce8a739b19b1960b12426d4c39cfeda926d103ab34e9f6"},
	// Frozen OpenSSL 3.0.19 output (AES-256 KEK, 7-byte plaintext: the
	// single-block path), generated once with
	//
	//	printf ForPasi | openssl enc -id-aes256-wrap-pad \
	//	    -K 000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f \
	//	    -iv A65959A6 | xxd -p -c 100
	{"OpenSSL/aes256/7", "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f",
		"466f7250617369",
		"443b17837bb39348610d19202df8a1f9"},
}

func TestVectors(t *testing.T) {
	for _, v := range vectors {
		t.Run(v.name, func(t *testing.T) {
			kek, pt, ct := unhex(t, v.kek), unhex(t, v.plaintext), unhex(t, v.ciphertext)
			got, err := Wrap(kek, pt)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, ct) {
				t.Fatalf("Wrap = %x, want %x", got, ct)
			}
			back, err := Unwrap(kek, ct)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(back, pt) {
				t.Fatalf("Unwrap = %x, want %x", back, pt)
			}
		})
	}
}

// TestRFC3394W checks the wrapping process W alone against RFC 3394
// sections 4.1 and 4.6 (default IV A6A6A6A6A6A6A6A6).
func TestRFC3394W(t *testing.T) {
	for _, v := range []vector{
		{"4.1", "000102030405060708090a0b0c0d0e0f", "00112233445566778899aabbccddeeff",
			"1fa68b0a8112b447aef34bd8fb5a7b829d3e862371d2cfe5"},
		{"4.6", "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f",
			"00112233445566778899aabbccddeeff000102030405060708090a0b0c0d0e0f",
			"28c9f404c4b810f4cbccb35cfb87f8263f5786e2d80ed326cbc7f0e71a99f43bfb988b9b7a02dd21"},
	} {
		b, err := aes.NewCipher(unhex(t, v.kek))
		if err != nil {
			t.Fatal(err)
		}
		buf := append(unhex(t, "a6a6a6a6a6a6a6a6"), unhex(t, v.plaintext)...)
		seal(b, buf)
		if want := unhex(t, v.ciphertext); !bytes.Equal(buf, want) {
			t.Fatalf("%s: W = %x, want %x", v.name, buf, want)
		}
		open(b, buf)
		if want := append(unhex(t, "a6a6a6a6a6a6a6a6"), unhex(t, v.plaintext)...); !bytes.Equal(buf, want) {
			t.Fatalf("%s: W^-1 = %x, want %x", v.name, buf, want)
		}
	}
}

func roundTrip(t *testing.T, kek, pt []byte) []byte {
	t.Helper()
	ct, err := Wrap(kek, pt)
	if err != nil {
		t.Fatalf("Wrap(%d-byte KEK, %d bytes): %v", len(kek), len(pt), err)
	}
	if want := 8 * ((len(pt)+7)/8 + 1); len(ct) != want {
		t.Fatalf("Wrap(%d bytes) gave %d bytes, want %d", len(pt), len(ct), want)
	}
	back, err := Unwrap(kek, ct)
	if err != nil {
		t.Fatalf("Unwrap(%d-byte KEK, %d bytes): %v", len(kek), len(pt), err)
	}
	if !bytes.Equal(back, pt) {
		t.Fatalf("round trip of %d bytes with %d-byte KEK differs", len(pt), len(kek))
	}
	return ct
}

func TestRoundTrip(t *testing.T) {
	for _, ks := range []int{16, 24, 32} {
		kek := key(ks, 1)
		for n := 1; n <= 100; n++ {
			roundTrip(t, kek, key(n, byte(n)))
		}
		for _, n := range []int{1000, 4093, 65541, 1<<20 + 1} {
			roundTrip(t, kek, key(n, 7))
		}
	}
}

func TestEveryBitFlipFails(t *testing.T) {
	kek := key(32, 0x40)
	for _, n := range []int{1, 7, 8, 9, 16, 20, 32, 33} {
		ct := roundTrip(t, kek, key(n, 0x80))
		for bit := 0; bit < 8*len(ct); bit++ {
			bad := bytes.Clone(ct)
			bad[bit/8] ^= 1 << (bit % 8)
			if pt, err := Unwrap(kek, bad); !errors.Is(err, ErrUnwrap) || pt != nil {
				t.Fatalf("%d bytes, bit %d flipped: Unwrap = %x, %v; want nil, ErrUnwrap", n, bit, pt, err)
			}
		}
	}
}

func TestWrongKEKFails(t *testing.T) {
	for _, n := range []int{1, 8, 20, 64} {
		pt := key(n, 3)
		for _, ks := range []int{16, 24, 32} {
			ct := roundTrip(t, key(ks, 1), pt)
			for _, other := range [][]byte{key(ks, 2), key(16, 1), key(24, 1), key(32, 1)} {
				if len(other) == ks && other[0] == 1 {
					continue // the right key
				}
				if _, err := Unwrap(other, ct); !errors.Is(err, ErrUnwrap) {
					t.Fatalf("%d bytes, %d-byte KEK, unwrapped with a wrong %d-byte KEK: err = %v, want ErrUnwrap", n, ks, len(other), err)
				}
			}
		}
	}
}

func TestBadLengthsFail(t *testing.T) {
	kek := key(16, 9)
	ct := roundTrip(t, kek, key(40, 5)) // 48 bytes
	cases := map[string][]byte{"nil": nil}
	for l := 0; l < 16; l++ {
		cases[fmt.Sprintf("short/%d", l)] = ct[:l]
	}
	for l := 16; l < len(ct); l++ {
		cases[fmt.Sprintf("truncated/%d", l)] = ct[:l] // odd lengths and whole-block truncations
	}
	cases["dropped first block"] = ct[8:]
	cases["extra byte"] = append(bytes.Clone(ct), 0)
	cases["extra block"] = append(bytes.Clone(ct), make([]byte, 8)...)
	for name, c := range cases {
		if pt, err := Unwrap(kek, c); !errors.Is(err, ErrUnwrap) || pt != nil {
			t.Errorf("%s (%d bytes): Unwrap = %x, %v; want nil, ErrUnwrap", name, len(c), pt, err)
		}
	}
}

// TestBadAIVFails forges ciphertexts under the right KEK whose AIV or
// padding is wrong, so that each check of Unwrap is exercised on its own.
func TestBadAIVFails(t *testing.T) {
	kek := key(24, 0x11)
	b, err := aes.NewCipher(kek)
	if err != nil {
		t.Fatal(err)
	}
	forge := func(constant uint32, mli uint32, padded []byte) []byte {
		buf := make([]byte, 8+len(padded))
		binary.BigEndian.PutUint32(buf[:4], constant)
		binary.BigEndian.PutUint32(buf[4:8], mli)
		copy(buf[8:], padded)
		seal(b, buf)
		return buf
	}
	const good = 0xA65959A6
	for _, n := range []int{1, 2, 3} { // blocks; 1 takes the single-block path
		zeros := make([]byte, 8*n)
		// Sanity: the forger makes valid ciphertexts for every valid MLI.
		for mli := 8*(n-1) + 1; mli <= 8*n; mli++ {
			pt := key(8*n, 1)
			clear(pt[mli:])
			got, err := Unwrap(kek, forge(good, uint32(mli), pt))
			if err != nil || !bytes.Equal(got, pt[:mli]) {
				t.Fatalf("n=%d, valid MLI %d: Unwrap = %x, %v", n, mli, got, err)
			}
		}
		bad := map[string][]byte{
			"RFC 3394 IV":     forge(0xA6A6A6A6, 8*uint32(n), zeros),
			"constant":        forge(good^1, 8*uint32(n), zeros),
			"MLI 0":           forge(good, 0, zeros),
			"MLI 8(n-1)":      forge(good, 8*uint32(n-1), zeros),
			"MLI 8n+1":        forge(good, 8*uint32(n)+1, zeros),
			"MLI 2^32-1":      forge(good, 0xFFFFFFFF, zeros),
			"nonzero padding": forge(good, 8*uint32(n)-1, append(make([]byte, 8*n-1), 1)),
			"padding hi byte": forge(good, 8*uint32(n-1)+1, append(make([]byte, 8*n-1), 0x80)),
		}
		for name, c := range bad {
			if pt, err := Unwrap(kek, c); !errors.Is(err, ErrUnwrap) || pt != nil {
				t.Errorf("n=%d, %s: Unwrap = %x, %v; want nil, ErrUnwrap", n, name, pt, err)
			}
		}
	}
}

func TestBadKEKAndPlaintext(t *testing.T) {
	for _, ks := range []int{0, 1, 8, 15, 17, 23, 31, 33, 64} {
		kek := key(ks, 0)
		if ct, err := Wrap(kek, []byte("key")); err == nil || ct != nil {
			t.Errorf("Wrap with %d-byte KEK: %x, %v; want an error", ks, ct, err)
		}
		if pt, err := Unwrap(kek, make([]byte, 16)); err == nil || errors.Is(err, ErrUnwrap) || pt != nil {
			t.Errorf("Unwrap with %d-byte KEK: %x, %v; want a KEK-length error", ks, pt, err)
		}
	}
	for _, pt := range [][]byte{nil, {}} {
		if ct, err := Wrap(key(16, 0), pt); err == nil || ct != nil {
			t.Errorf("Wrap of empty plaintext: %x, %v; want an error", ct, err)
		}
	}
}

func TestUnwrapResultIsolated(t *testing.T) {
	kek := key(16, 2)
	ct := roundTrip(t, kek, []byte("abc"))
	pt, err := Unwrap(kek, ct)
	if err != nil {
		t.Fatal(err)
	}
	if cap(pt) != len(pt) {
		t.Errorf("cap(pt) = %d, want %d", cap(pt), len(pt))
	}
	pt[0] = 'x'
	if pt2, _ := Unwrap(kek, ct); string(pt2) != "abc" {
		t.Errorf("Unwrap aliases its input: %q", pt2)
	}
}

// FuzzUnwrap checks that Unwrap never panics, that whatever it accepts
// re-wraps to the same ciphertext (wrapping is deterministic), and that
// Unwrap(Wrap(x)) == x.
func FuzzUnwrap(f *testing.F) {
	for _, v := range vectors {
		f.Add(unhex(f, v.kek), unhex(f, v.ciphertext))
		f.Add(unhex(f, v.kek), unhex(f, v.plaintext))
	}
	f.Add(key(16, 0), []byte{})
	f.Add(key(5, 0), make([]byte, 24))
	f.Fuzz(func(t *testing.T, kek, data []byte) {
		pt, err := Unwrap(kek, data)
		validKEK := len(kek) == 16 || len(kek) == 24 || len(kek) == 32
		if !validKEK {
			if err == nil || errors.Is(err, ErrUnwrap) {
				t.Fatalf("Unwrap with %d-byte KEK: err = %v, want a KEK-length error", len(kek), err)
			}
			if _, err := Wrap(kek, data); err == nil {
				t.Fatalf("Wrap with %d-byte KEK succeeded", len(kek))
			}
			return
		}
		if err == nil {
			ct, err := Wrap(kek, pt)
			if err != nil || !bytes.Equal(ct, data) {
				t.Fatalf("accepted %x as %x but it re-wraps to %x, %v", data, pt, ct, err)
			}
		} else if !errors.Is(err, ErrUnwrap) || pt != nil {
			t.Fatalf("Unwrap = %x, %v; want nil, ErrUnwrap", pt, err)
		}
		ct, err := Wrap(kek, data)
		if len(data) == 0 {
			if err == nil {
				t.Fatal("Wrap of empty plaintext succeeded")
			}
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		back, err := Unwrap(kek, ct)
		if err != nil || !bytes.Equal(back, data) {
			t.Fatalf("Unwrap(Wrap(%x)) = %x, %v", data, back, err)
		}
	})
}
