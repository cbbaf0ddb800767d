package kms

import (
	"crypto"
	"crypto/rand"
	"errors"
	"strings"
	"testing"
)

// TestCheckSeedKeyMaterial: a private key of every asymmetric spec (as
// Keyfort makes them) is accepted for its spec and refused, with a message
// naming both specs, for every other; HMAC lengths follow AWS's rules for
// imported HMAC material.
func TestCheckSeedKeyMaterial(t *testing.T) {
	var specs []string
	for spec := range keySpecs {
		if privateKeyKind(spec) != "" {
			specs = append(specs, spec)
		}
	}
	ders := map[string][]byte{}
	for _, spec := range specs {
		der, err := newPrivateKey(rand.Reader, spec)
		if err != nil {
			t.Fatal(spec, err)
		}
		ders[spec] = der
	}
	region := func(spec string) string {
		if keySpecs[spec].chinaOnly {
			return "cn-north-1"
		}
		return "us-east-1"
	}
	for _, spec := range specs {
		for _, other := range specs {
			k := SeedKey{Account: "123456789012", Region: region(spec), KeyID: "11111111-2222-3333-4444-555555555555",
				KeySpec: spec, KeyUsage: usageSignVerify, Material: append([]byte(nil), ders[other]...)}
			err := CheckSeedKey(&k)
			if other == spec {
				if err != nil {
					t.Fatalf("%s: %v", spec, err)
				}
				v, err := parseSigner(k.Material)
				if err != nil || signerSpec(v.(crypto.Signer)) != spec {
					t.Fatalf("%s: the normalized material is not a %s key: %v", spec, spec, err)
				}
				continue
			}
			var se *SeedError
			if !errors.As(err, &se) || !strings.Contains(se.Msg, "not a "+spec+" key") {
				t.Fatalf("%s material for %s: %v", other, spec, err)
			}
		}
	}
	for spec, r := range hmacSizes {
		for _, n := range []int{r[0] - 1, r[0], r[1], r[1] + 1} {
			k := SeedKey{Account: "123456789012", Region: "us-east-1", KeyID: "11111111-2222-3333-4444-555555555555",
				KeySpec: spec, Material: make([]byte, n)}
			err := CheckSeedKey(&k)
			if ok := n >= r[0] && n <= r[1]; ok != (err == nil) {
				t.Fatalf("%s with %d bytes: %v", spec, n, err)
			}
		}
	}
}
