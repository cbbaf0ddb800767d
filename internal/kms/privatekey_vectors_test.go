package kms

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"
)

var (
	updateKeyVectors = flag.Bool("update-key-vectors", false, "rewrite testdata/kms/privatekeys.json (only for a deliberate format change)")
	addKeyVectors    = flag.Bool("add-key-vectors", false, "add vectors for the specs testdata/kms/privatekeys.json lacks, keeping the others")
)

// keyVectorFile holds, per asymmetric key spec, a private key as stored in
// a sealed kms.material record (PKCS#8 DER), its public key as GetPublicKey
// returns it, and a signature made then: stored keys must open to the same
// public key and verify the same signature after every change.
const keyVectorFile = "../../testdata/kms/privatekeys.json"

type keyVector struct {
	Spec      string `json:"spec"`
	PKCS8     string `json:"pkcs8_hex"`
	SPKI      string `json:"spki_hex"`
	Message   string `json:"message_hex"`
	Signature string `json:"signature_hex"` // over SHA-256(message), the message (Ed25519, ML-DSA) or SM3(Z_A || message) (SM2DSA)
}

var keyVectorSpecs = []string{"RSA_2048", "ECC_NIST_P256", "ECC_NIST_EDWARDS25519", "ECC_SECG_P256K1", "ML_DSA_44", "ML_DSA_65", "ML_DSA_87", "SM2"}

// signedPart is what a vector's signature covers (SM2DSA hashes the
// message with Z_A itself).
func signedPart(spec string, msg []byte) []byte {
	switch privateKeyKind(spec) {
	case "ed25519", "mldsa", "sm2":
		return msg
	}
	d := sha256.Sum256(msg)
	return d[:]
}

// makeKeyVector makes a new vector of spec.
func makeKeyVector(t *testing.T, spec string) keyVector {
	msg := []byte("frozen key vector")
	signer, err := generatePrivateKey(rand.Reader, spec)
	if err != nil {
		t.Fatal(err)
	}
	der, err := marshalPKCS8(signer)
	if err != nil {
		t.Fatal(err)
	}
	spki, err := marshalPKIX(signer.Public())
	if err != nil {
		t.Fatal(err)
	}
	var sig []byte
	switch privateKeyKind(spec) {
	case "ed25519", "mldsa":
		sig, err = signer.Sign(rand.Reader, signedPart(spec, msg), crypto.Hash(0))
	case "sm2":
		sig, err = signSM2(rand.Reader, signer, msg, msgRaw)
	default:
		sig, err = signer.Sign(rand.Reader, signedPart(spec, msg), crypto.SHA256)
	}
	if err != nil {
		t.Fatal(err)
	}
	return keyVector{Spec: spec, PKCS8: hex.EncodeToString(der), SPKI: hex.EncodeToString(spki),
		Message: hex.EncodeToString(msg), Signature: hex.EncodeToString(sig)}
}

func writeKeyVectors(t *testing.T, vs []keyVector) {
	b, _ := json.MarshalIndent(vs, "", "  ")
	if err := os.MkdirAll(filepath.Dir(keyVectorFile), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyVectorFile, append(b, '\n'), 0o644); err != nil {
		t.Fatal(err)
	}
}

func verifyVector(pub crypto.PublicKey, signed, sig []byte) bool {
	if isSM2Public(pub) {
		return verifySM2(pub.(*ecdsa.PublicKey), signed, sig, msgRaw)
	}
	switch p := pub.(type) {
	case *rsa.PublicKey:
		return rsa.VerifyPKCS1v15(p, crypto.SHA256, signed, sig) == nil
	case *ecdsa.PublicKey:
		return ecdsa.VerifyASN1(p, signed, sig)
	case ed25519.PublicKey:
		return ed25519.Verify(p, signed, sig)
	case *secp256k1.PublicKey:
		return verifySecp256k1(p, signed, sig)
	case *mldsaPublic:
		return p.verify(signed, sig)
	}
	return false
}

func TestPrivateKeyVectors(t *testing.T) {
	if *updateKeyVectors {
		var vs []keyVector
		for _, spec := range keyVectorSpecs {
			vs = append(vs, makeKeyVector(t, spec))
		}
		writeKeyVectors(t, vs)
	}
	if *addKeyVectors {
		b, err := os.ReadFile(keyVectorFile)
		if err != nil {
			t.Fatal(err)
		}
		var vs []keyVector
		if err := json.Unmarshal(b, &vs); err != nil {
			t.Fatal(err)
		}
		have := map[string]bool{}
		for _, v := range vs {
			have[v.Spec] = true
		}
		for _, spec := range keyVectorSpecs {
			if !have[spec] {
				vs = append(vs, makeKeyVector(t, spec))
			}
		}
		writeKeyVectors(t, vs)
	}
	b, err := os.ReadFile(keyVectorFile)
	if err != nil {
		t.Fatalf("read frozen key vectors: %v (create them once with -update-key-vectors)", err)
	}
	var vs []keyVector
	if err := json.Unmarshal(b, &vs); err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, v := range vs {
		seen[v.Spec] = true
		t.Run(v.Spec, func(t *testing.T) {
			der, _ := hex.DecodeString(v.PKCS8)
			want, _ := hex.DecodeString(v.SPKI)
			msg, _ := hex.DecodeString(v.Message)
			sig, _ := hex.DecodeString(v.Signature)
			signer, err := parseSigner(der)
			if err != nil {
				t.Fatalf("parseSigner = %v", err)
			}
			got, err := marshalPKIX(signer.(crypto.Signer).Public())
			if err != nil || !bytes.Equal(got, want) {
				t.Fatalf("public key = %x, %v; want %x", got, err, want)
			}
			if !verifyVector(signer.(crypto.Signer).Public(), signedPart(v.Spec, msg), sig) {
				t.Fatal("the frozen signature does not verify")
			}
			// The encodings written here (secp256k1, ML-DSA) and the
			// standard library's for curves are byte-stable; RSA's need not be.
			if privateKeyKind(v.Spec) != "rsa" {
				again, err := marshalPKCS8(signer.(crypto.Signer))
				if err != nil || !bytes.Equal(again, der) {
					t.Errorf("PKCS#8 re-encoding differs: %v", err)
				}
			}
		})
	}
	for _, spec := range keyVectorSpecs {
		if !seen[spec] {
			t.Errorf("no frozen vector for %s", spec)
		}
	}
}
