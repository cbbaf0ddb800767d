package kms

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"testing"
	"time"

	"github.com/keyfort/keyfort/internal/envelope"
	"github.com/keyfort/keyfort/internal/keywrap"
	"github.com/keyfort/keyfort/internal/storage"
)

// testTokenService is a Service with a sealer, for the token functions.
func testTokenService(t testing.TB) *Service {
	return New(Config{Sealer: envelope.NewSealer(nil, mustRootKey(t))})
}

// TestImportToken: a token opens only for its key and scope, carries its
// algorithm, spec, end of validity and private key, and nothing else opens.
func TestImportToken(t *testing.T) {
	s := testTokenService(t)
	scope := storage.Scope{Account: "111122223333", Region: "us-east-1"}
	priv, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	validTo := time.Date(2026, 12, 7, 1, 2, 3, 4000000, time.UTC)
	tok, err := s.sealToken(scope, "key-1", &importToken{algorithm: wrapAESSHA256, keySpec: "RSA_2048", validTo: validTo, priv: priv})
	if err != nil {
		t.Fatal(err)
	}
	got, ok := s.openToken(scope, "key-1", tok)
	if !ok || got.algorithm != wrapAESSHA256 || got.keySpec != "RSA_2048" || !got.validTo.Equal(validTo) || !got.priv.(*rsa.PrivateKey).Equal(priv) {
		t.Fatalf("openToken = %+v, %v", got, ok)
	}
	if bytes.Contains(tok, x509.MarshalPKCS1PrivateKey(priv)[:64]) {
		t.Fatal("the token holds the private key in the clear")
	}
	for name, try := range map[string]func() bool{
		"another key": func() bool { _, ok := s.openToken(scope, "key-2", tok); return ok },
		"another region": func() bool {
			_, ok := s.openToken(storage.Scope{Account: scope.Account, Region: "eu-west-1"}, "key-1", tok)
			return ok
		},
		"another account": func() bool {
			_, ok := s.openToken(storage.Scope{Account: "444455556666", Region: scope.Region}, "key-1", tok)
			return ok
		},
		"another root key": func() bool {
			_, ok := testTokenService(t).openToken(scope, "key-1", tok)
			return ok
		},
		"truncated": func() bool { _, ok := s.openToken(scope, "key-1", tok[:len(tok)-1]); return ok },
		"empty":     func() bool { _, ok := s.openToken(scope, "key-1", nil); return ok },
	} {
		if try() {
			t.Errorf("a token opened for %s", name)
		}
	}
}

// TestUnwrapMaterial: each wrapping algorithm unwraps what a client makes
// with it and nothing made with another algorithm or key.
func TestUnwrapMaterial(t *testing.T) {
	priv, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	other, _ := rsa.GenerateKey(rand.Reader, 2048)
	material := bytes.Repeat([]byte{0x42}, 32)
	wrap := func(pub *rsa.PublicKey, alg string) []byte {
		h := sha256.New()
		if alg == wrapOAEPSHA1 || alg == wrapAESSHA1 {
			h = sha1.New()
		}
		if alg == wrapOAEPSHA1 || alg == wrapOAEP256 {
			ct, err := rsa.EncryptOAEP(h, rand.Reader, pub, material, nil)
			if err != nil {
				t.Fatal(err)
			}
			return ct
		}
		kek := bytes.Repeat([]byte{7}, 32)
		ek, err := rsa.EncryptOAEP(h, rand.Reader, pub, kek, nil)
		if err != nil {
			t.Fatal(err)
		}
		wm, err := keywrap.Wrap(kek, material)
		if err != nil {
			t.Fatal(err)
		}
		return append(ek, wm...)
	}
	algs := []string{wrapOAEPSHA1, wrapOAEP256, wrapAESSHA1, wrapAESSHA256}
	for _, alg := range algs {
		tok := &importToken{algorithm: alg, priv: priv}
		got, err := unwrapMaterial(tok, wrap(&priv.PublicKey, alg))
		if err != nil || !bytes.Equal(got, material) {
			t.Errorf("%s: unwrap = %x, %v", alg, got, err)
		}
		for _, wrong := range algs {
			if wrong == alg {
				continue
			}
			if got, err := unwrapMaterial(tok, wrap(&priv.PublicKey, wrong)); err == nil {
				t.Errorf("%s unwrapped what %s wrapped: %x", alg, wrong, got)
			}
		}
		if _, err := unwrapMaterial(tok, wrap(&other.PublicKey, alg)); err == nil {
			t.Errorf("%s unwrapped what another key wrapped", alg)
		}
	}
	if _, err := unwrapMaterial(&importToken{algorithm: wrapPKCS1, priv: priv}, wrap(&priv.PublicKey, wrapOAEP256)); err == nil {
		t.Error("RSAES_PKCS1_V1_5 unwrapped")
	}
}

// TestImportedMaterial: material is checked against the key spec and
// asymmetric keys are stored in one form whatever DER the client sent.
func TestImportedMaterial(t *testing.T) {
	for _, tc := range []struct {
		spec string
		n    int
		ok   bool
	}{
		{specSymmetric, 32, true}, {specSymmetric, 16, false}, {specSymmetric, 33, false},
		{"HMAC_224", 27, false}, {"HMAC_224", 28, true}, {"HMAC_224", 128, true}, {"HMAC_224", 129, false},
		{"HMAC_512", 63, false}, {"HMAC_512", 64, true},
		{"RSA_2048", 32, false}, {"ECC_NIST_P256", 32, false},
	} {
		if _, _, ok := importedMaterial(tc.spec, make([]byte, tc.n)); ok != tc.ok {
			t.Errorf("%s with %d bytes: ok %v, want %v", tc.spec, tc.n, ok, tc.ok)
		}
	}
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	pkcs8, _ := x509.MarshalPKCS8PrivateKey(ec)
	stored, pub, ok := importedMaterial("ECC_NIST_P256", pkcs8)
	if !ok {
		t.Fatal("a P-256 PKCS#8 key was refused")
	}
	if want, _ := x509.MarshalPKIXPublicKey(&ec.PublicKey); !bytes.Equal(pub, want) {
		t.Error("the public key of imported material is not the key's")
	}
	if _, _, ok := importedMaterial("ECC_NIST_P384", pkcs8); ok {
		t.Error("a P-256 key was taken for ECC_NIST_P384")
	}
	if _, _, ok := importedMaterial("ECC_SECG_P256K1", pkcs8); ok {
		t.Error("a P-256 key was taken for ECC_SECG_P256K1")
	}
	again, _, _ := importedMaterial("ECC_NIST_P256", stored)
	if !bytes.Equal(stored, again) || importedMaterialID("k", stored) != importedMaterialID("k", again) {
		t.Error("the stored form of a key is not stable")
	}
	if importedMaterialID("k", stored) == importedMaterialID("other", stored) {
		t.Error("the same material has the same id in two keys")
	}
}

// FuzzOpenToken: no input panics openToken, and none but a sealed token
// opens.
func FuzzOpenToken(f *testing.F) {
	s := testTokenService(f)
	scope := storage.Scope{Account: "111122223333", Region: "us-east-1"}
	priv, _ := rsa.GenerateKey(rand.Reader, 2048)
	tok, err := s.sealToken(scope, "key-1", &importToken{algorithm: wrapOAEP256, keySpec: "RSA_2048", validTo: time.Now(), priv: priv})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(tok)
	f.Add([]byte{})
	f.Add([]byte("KFS1"))
	f.Fuzz(func(t *testing.T, b []byte) {
		if _, ok := s.openToken(scope, "key-1", b); ok && !bytes.Equal(b, tok) {
			t.Fatalf("a forged token opened: %x", b)
		}
	})
}

// FuzzUnwrapMaterial: no wrapped input panics unwrapMaterial, whatever the
// algorithm.
func FuzzUnwrapMaterial(f *testing.F) {
	priv, _ := rsa.GenerateKey(rand.Reader, 2048)
	f.Add([]byte{}, uint8(0))
	f.Add(make([]byte, 256), uint8(1))
	f.Add(make([]byte, 256+40), uint8(3))
	algs := []string{wrapOAEPSHA1, wrapOAEP256, wrapAESSHA1, wrapAESSHA256, wrapSM2PKE, wrapPKCS1}
	f.Fuzz(func(t *testing.T, b []byte, alg uint8) {
		_, _ = unwrapMaterial(&importToken{algorithm: algs[int(alg)%len(algs)], priv: priv}, b)
	})
}
