package kms

import (
	"slices"
	"testing"

	"github.com/keyfort/keyfort/internal/kms/kmsapi"
)

// TestKeySpecTable checks the key-spec table against the KMS model: a row
// for every KeySpec, and only the model's usages and algorithms in it.
func TestKeySpecTable(t *testing.T) {
	in := func(vals []string, enum []string) {
		t.Helper()
		for _, v := range vals {
			if !slices.Contains(enum, v) {
				t.Errorf("%s is not in the model's enum %v", v, enum)
			}
		}
	}
	str := func(v []string) []string { return v }
	var usages, enc, sign, mac, agree []string
	for _, u := range (kmsapi.KeyUsageType("")).Values() {
		usages = append(usages, string(u))
	}
	for _, a := range (kmsapi.EncryptionAlgorithmSpec("")).Values() {
		enc = append(enc, string(a))
	}
	for _, a := range (kmsapi.SigningAlgorithmSpec("")).Values() {
		sign = append(sign, string(a))
	}
	for _, a := range (kmsapi.MacAlgorithmSpec("")).Values() {
		mac = append(mac, string(a))
	}
	for _, a := range (kmsapi.KeyAgreementAlgorithmSpec("")).Values() {
		agree = append(agree, string(a))
	}
	specs := (kmsapi.KeySpec("")).Values()
	if len(specs) != len(keySpecs) {
		t.Errorf("the model has %d key specs, the table %d", len(specs), len(keySpecs))
	}
	for _, sp := range specs {
		row, ok := keySpecs[string(sp)]
		if !ok {
			t.Errorf("no row for KeySpec %s", sp)
			continue
		}
		if len(row.usages) == 0 {
			t.Errorf("%s allows no usage", sp)
		}
		in(str(row.usages), usages)
		in(row.encryption, enc)
		in(row.signing, sign)
		in(row.mac, mac)
		in(row.agreement, agree)
		for _, u := range row.usages {
			e, s, m, a := row.algorithms(u)
			if len(e)+len(s)+len(m)+len(a) == 0 {
				t.Errorf("%s with %s offers no algorithm", sp, u)
			}
		}
	}
}
