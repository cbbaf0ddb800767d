package kms

import (
	"testing"

	"github.com/keyfort/keyfort/internal/iam"
	"github.com/keyfort/keyfort/internal/identity"
)

// validatePolicy parses a key policy and (unless bypass) runs the lockout
// check for the account root with no request context.
func validatePolicy(doc, account string, bypass bool) error {
	p, err := parseKeyPolicy(doc)
	if err != nil || bypass {
		return err
	}
	root := identity.Root(account, "us-east-1", "")
	res := iam.Authorize(iam.Authorization{
		Request:          &iam.Request{Action: "kms:PutKeyPolicy", Resource: "*", Principal: &root.Principal},
		Resource:         p,
		ResourceAccount:  account,
		ResourceRequired: true,
	})
	if !res.Allowed() {
		return errLockout()
	}
	return nil
}

func TestValidatePolicy(t *testing.T) {
	const acct = "123456789012"
	cases := []struct {
		name   string
		doc    string
		bypass bool
		ok     bool
	}{
		{"default policy", defaultKeyPolicy(acct, "us-east-1"), false, true},
		{"root by account id", `{"Statement":[{"Effect":"Allow","Principal":{"AWS":"123456789012"},"Action":"kms:*","Resource":"*"}]}`, false, true},
		{"everyone", `{"Statement":{"Effect":"Allow","Principal":"*","Action":"kms:Put*","Resource":"*"}}`, false, true},
		{"conditional root only", `{"Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::123456789012:root"},"Action":"kms:*","Resource":"*","Condition":{"Bool":{"aws:SecureTransport":"true"}}}]}`, false, false},
		{"lockout bypassed", `{"Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::123456789012:role/x"},"Action":"kms:Encrypt","Resource":"*"}]}`, true, true},
		{"other account root", `{"Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::999999999999:root"},"Action":"kms:*","Resource":"*"}]}`, false, false},
		{"not kms action", `{"Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"*"}]}`, true, false},
		{"bad version", `{"Version":"2020-01-01","Statement":[{"Effect":"Allow","Principal":"*","Action":"kms:*","Resource":"*"}]}`, true, false},
		{"trailing garbage", defaultKeyPolicy(acct, "us-east-1") + "{}", false, false},
		{"array", `[]`, true, false},
		{"bad principal key", `{"Statement":[{"Effect":"Allow","Principal":{"Bogus":"x"},"Action":"kms:*","Resource":"*"}]}`, true, false},
	}
	for _, c := range cases {
		err := validatePolicy(c.doc, acct, c.bypass)
		if (err == nil) != c.ok {
			t.Errorf("validatePolicy(%s) = %v, want ok=%v", c.name, err, c.ok)
		}
	}
}

func FuzzValidatePolicy(f *testing.F) {
	f.Add(defaultKeyPolicy("123456789012", "us-east-1"), false)
	f.Add(`{"Statement":[{"Effect":"Allow","Principal":"*","Action":["kms:*"],"Resource":"*"}]}`, true)
	f.Add(`{"Statement":null}`, false)
	f.Fuzz(func(t *testing.T, doc string, bypass bool) {
		_ = validatePolicy(doc, "123456789012", bypass) // must not panic
	})
}

func TestMarkerRoundTripAndForgery(t *testing.T) {
	m := markerCodec{key: []byte("0123456789abcdef0123456789abcdef")}
	tok := m.encode("keys", "abc")
	if got, err := m.decode("keys", tok); err != nil || got != "abc" {
		t.Fatalf("decode(encode(abc)) = %q, %v", got, err)
	}
	if _, err := m.decode("aliases", tok); err == nil {
		t.Errorf("marker of one list accepted by another")
	}
	for _, bad := range []string{"", "x", "!!!!", tok[:len(tok)-1], tok + "A"} {
		if _, err := m.decode("keys", bad); err == nil {
			t.Errorf("decode(%q) accepted a forged marker", bad)
		}
	}
}
