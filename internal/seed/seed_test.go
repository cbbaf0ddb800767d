package seed

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const id1 = "11111111-2222-3333-4444-555555555555"

func pemOf(t *testing.T, typ string, der []byte) string {
	t.Helper()
	p := string(pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}))
	return "      " + strings.ReplaceAll(strings.TrimSpace(p), "\n", "\n      ")
}

func TestParseGood(t *testing.T) {
	ec, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	ecDER, _ := x509.MarshalECPrivateKey(ec)
	_, ed, _ := ed25519.GenerateKey(rand.Reader)
	edDER, _ := x509.MarshalPKCS8PrivateKey(ed)
	aes := base64.StdEncoding.EncodeToString(make([]byte, 32))
	doc := `account: "111122223333"
region: eu-west-1
keys:
  - key_id: ` + id1 + `
    material_base64: ` + aes + `
    aliases: [alias/b, alias/a]
    tags: {team: blue}
    rotation_period_days: 90
  - key_id: 22222222-2222-3333-4444-555555555555
    key_spec: ECC_NIST_P384
    region: us-west-2
    private_key_pem: |
` + pemOf(t, "EC PRIVATE KEY", ecDER) + `
  - key_id: 33333333-2222-3333-4444-555555555555
    key_spec: ECC_NIST_EDWARDS25519
    private_key_pem: |
` + pemOf(t, "PRIVATE KEY", edDER) + `
  - key_id: 44444444-2222-3333-4444-555555555555
    key_spec: HMAC_512
  - key_id: 55555555-2222-3333-4444-555555555555
    key_spec: ML_DSA_65
secrets:
  - name: app/db
    secret_string: x
  - name: app/two
    account: "444455556666"
    versions:
      - version_id: 0f0f0f0f-0000-4000-8000-000000000001
        secret_binary_base64: AAEC
        stages: [AWSCURRENT]
      - version_id: 0f0f0f0f-0000-4000-8000-000000000002
        secret_string: y
`
	f, err := Parse([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Keys) != 5 || len(f.Secrets) != 2 {
		t.Fatalf("%d keys, %d secrets", len(f.Keys), len(f.Secrets))
	}
	k := f.Keys[0]
	if k.Account != "111122223333" || k.Region != "eu-west-1" || k.KeySpec != "SYMMETRIC_DEFAULT" || k.KeyUsage != "ENCRYPT_DECRYPT" ||
		len(k.Material) != 32 || k.Aliases[0] != "alias/a" || k.RotationPeriodDays != 90 {
		t.Fatalf("key 0 = %+v", k)
	}
	if f.Keys[1].Region != "us-west-2" || f.Keys[1].KeyUsage != "SIGN_VERIFY" {
		t.Fatalf("key 1 = %s %s", f.Keys[1].Region, f.Keys[1].KeyUsage)
	}
	if _, err := x509.ParsePKCS8PrivateKey(f.Keys[1].Material); err != nil {
		t.Fatalf("SEC 1 key not re-encoded as PKCS#8: %v", err)
	}
	s := f.Secrets[0]
	if len(s.Versions) != 1 || s.Versions[0].Stages[0] != "AWSCURRENT" || s.Versions[0].ID == "" {
		t.Fatalf("secret 0 = %+v", s)
	}
	again, _ := Parse([]byte(doc))
	if again.Secrets[0].Versions[0].ID != s.Versions[0].ID {
		t.Fatal("the default version id is not stable")
	}
	if f.Secrets[1].Account != "444455556666" || len(f.Secrets[1].Versions[1].Stages) != 0 {
		t.Fatalf("secret 1 = %+v", f.Secrets[1])
	}
	if f, err := Parse(nil); err != nil || len(f.Keys) != 0 {
		t.Fatalf("empty file: %v", err)
	}
}

// TestParseRefusals: every refusal is one line naming its entry, and none
// shows material or a value.
func TestParseRefusals(t *testing.T) {
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	rsaPEM := pemOf(t, "RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(rsaKey))
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ecDER, _ := x509.MarshalECPrivateKey(ec)
	ecPEM := pemOf(t, "EC PRIVATE KEY", ecDER)
	b64 := func(n int) string { return base64.StdEncoding.EncodeToString([]byte(strings.Repeat("S", n))) }
	key := func(body string) string { return "keys:\n  - key_id: " + id1 + "\n" + body }
	secret := func(body string) string { return "secrets:\n  - name: app/db\n" + body }
	tests := []struct{ name, doc, want string }{
		{"unknown field", "keys:\n  - key_id: " + id1 + "\n    colour: red\n", "field colour not found"},
		{"bad top-level account", "account: 12\n", "account \"12\""},
		{"bad region", "region: Mars\n", "region \"Mars\""},
		{"missing key id", "keys:\n  - key_spec: RSA_2048\n", "keys[0]: key_id is missing"},
		{"key id not a uuid", "keys:\n  - key_id: not-a-uuid\n", "keys[0] (key not-a-uuid): key_id must be a lower-case UUID"},
		{"upper-case uuid", "keys:\n  - key_id: AAAAAAAA-BBBB-CCCC-DDDD-EEEEEEEEEEEE\n", "must be a lower-case UUID"},
		{"bad spec", key("    key_spec: AES_256\n"), "keys[0] (key " + id1 + "): key_spec AES_256 is not a KeySpec"},
		{"bad usage", key("    key_spec: HMAC_256\n    key_usage: ENCRYPT_DECRYPT\n"), "key_usage ENCRYPT_DECRYPT is not compatible with key_spec HMAC_256"},
		{"sm2 outside china", key("    key_spec: SM2\n"), "only in the China regions"},
		{"aes too short", key("    material_base64: " + b64(16) + "\n"), "must be 32 bytes, not 16"},
		{"hmac too short", key("    key_spec: HMAC_384\n    material_base64: " + b64(40) + "\n"), "HMAC_384 key must be 48 to 128 bytes, not 40"},
		{"hmac too long", key("    key_spec: HMAC_256\n    material_base64: " + b64(129) + "\n"), "32 to 128 bytes, not 129"},
		{"bad base64", key("    material_base64: '***'\n"), "material_base64 is not standard base64"},
		{"material for rsa", key("    key_spec: RSA_2048\n    material_base64: " + b64(32) + "\n"), "a RSA_2048 key takes private_key_pem"},
		{"pem for aes", key("    private_key_pem: |\n" + rsaPEM + "\n"), "private_key_pem is for asymmetric keys"},
		{"pem spec mismatch", key("    key_spec: RSA_3072\n    key_usage: SIGN_VERIFY\n    private_key_pem: |\n" + rsaPEM + "\n"), "is a RSA_2048 key, not a RSA_3072 key"},
		{"pem curve mismatch", key("    key_spec: ECC_NIST_P384\n    private_key_pem: |\n" + ecPEM + "\n"), "is a ECC_NIST_P256 key, not a ECC_NIST_P384 key"},
		{"pem garbage", key("    key_spec: RSA_2048\n    private_key_pem: nothing here\n"), "holds no PEM block"},
		{"pem wrong block", key("    key_spec: RSA_2048\n    private_key_pem: |\n      -----BEGIN CERTIFICATE-----\n      AAAA\n      -----END CERTIFICATE-----\n"), "\"CERTIFICATE\" block"},
		{"both materials", key("    key_spec: RSA_2048\n    material_base64: " + b64(32) + "\n    private_key_pem: x\n"), "not both"},
		{"alias prefix", key("    aliases: [app]\n"), "alias \"app\": Alias must start with the prefix"},
		{"alias aws", key("    aliases: [alias/aws/s3]\n"), "reserved for AWS managed keys"},
		{"alias chars", key("    aliases: [alias/a b]\n"), "alias \"alias/a b\""},
		{"alias twice across keys", key("    aliases: [alias/x]\n  - key_id: 22222222-2222-3333-4444-555555555555\n    aliases: [alias/x]\n"), "keys[1] (key 22222222-2222-3333-4444-555555555555): alias alias/x is also keys[0]'s"},
		{"key id twice", key("") + "  - key_id: " + id1 + "\n", "keys[1] (key " + id1 + "): key_id is also keys[0]'s"},
		{"aws tag", key("    tags: {'aws:x': y}\n"), "reserved for AWS use"},
		{"bad policy", key("    policy: '{\"Version\":\"2012-10-17\"}'\n"), "keys[0] (key " + id1 + "): policy:"},
		{"rotation on rsa", key("    key_spec: RSA_2048\n    rotation_period_days: 365\n"), "does not support automatic rotation"},
		{"rotation too short", key("    rotation_period_days: 30\n"), "from 90 to 2560"},
		{"rotation zero", key("    rotation_period_days: 0\n"), "from 90 to 2560"},
		{"wrong type", key("    rotation_period_days: soon\n"), "cannot unmarshal"},
		{"secret without name", "secrets:\n  - secret_string: x\n", "secrets[0]: name is missing"},
		{"secret without value", secret(""), "secrets[0] (secret app/db): a secret needs a value"},
		{"secret bad name", "secrets:\n  - name: 'a b'\n    secret_string: x\n", "secrets[0] (secret a b): name:"},
		{"secret empty string", secret("    secret_string: ''\n"), "can't be empty"},
		{"secret both values", secret("    secret_string: x\n    secret_binary_base64: AAAA\n"), "not both"},
		{"secret value and versions", secret("    secret_string: x\n    versions: [{version_id: 0f0f0f0f-0000-4000-8000-000000000001, secret_string: y}]\n"), "not both"},
		{"secret version id not uuid", secret("    secret_string: x\n    version_id: v1\n"), "version_id \"v1\" must be a lower-case UUID"},
		{"no AWSCURRENT", secret("    versions:\n      - version_id: 0f0f0f0f-0000-4000-8000-000000000001\n        secret_string: x\n        stages: [AWSPREVIOUS]\n"), "no version has the staging label AWSCURRENT"},
		{"AWSCURRENT twice", secret("    versions:\n      - version_id: 0f0f0f0f-0000-4000-8000-000000000001\n        secret_string: x\n        stages: [AWSCURRENT]\n      - version_id: 0f0f0f0f-0000-4000-8000-000000000002\n        secret_string: y\n        stages: [AWSCURRENT]\n"), "staging label AWSCURRENT is on versions"},
		{"version twice", secret("    versions:\n      - version_id: 0f0f0f0f-0000-4000-8000-000000000001\n        secret_string: x\n        stages: [AWSCURRENT]\n      - version_id: 0f0f0f0f-0000-4000-8000-000000000001\n        secret_string: y\n"), "is listed twice"},
		{"version without value", secret("    versions:\n      - version_id: 0f0f0f0f-0000-4000-8000-000000000001\n        stages: [AWSCURRENT]\n"), "has no value"},
		{"secret twice", secret("    secret_string: x\n") + "  - name: app/db\n    secret_string: y\n", "secrets[1] (secret app/db): name is also secrets[0]'s"},
		{"secret aws tag", secret("    secret_string: x\n    tags: {'aws:x': y}\n"), "reserved for AWS use"},
		{"not yaml", "keys: [\n", "not valid YAML"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.doc))
			if err == nil {
				t.Fatalf("accepted:\n%s", tt.doc)
			}
			msg := err.Error()
			if !strings.Contains(msg, tt.want) {
				t.Fatalf("error %q, want it to contain %q", msg, tt.want)
			}
			if strings.Contains(msg, "\n") {
				t.Fatalf("error is not one line: %q", msg)
			}
			for _, leak := range []string{"SSSS", "U1NT", "MII"} {
				if strings.Contains(msg, leak) {
					t.Fatalf("error shows material: %q", msg)
				}
			}
		})
	}
}

func TestLoadNamesFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "s.yaml")
	os.WriteFile(p, []byte("keys:\n  - key_id: x\n"), 0o600)
	_, err := Load(p)
	if err == nil || !strings.HasPrefix(err.Error(), "seed "+p+": keys[0] (key x): ") {
		t.Fatalf("Load: %v", err)
	}
	_, err = Load(filepath.Join(t.TempDir(), "missing.yaml"))
	if err == nil || !strings.Contains(err.Error(), "no such file") {
		t.Fatalf("missing file: %v", err)
	}
}

// TestREADMEExample parses the README's example seed file, its PEM's "..."
// replaced by a key.
func TestREADMEExample(t *testing.T) {
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	readme := string(b)
	i := strings.Index(readme, "## Fixtures (--seed)")
	if i < 0 {
		t.Fatal("README has no Fixtures (--seed) section")
	}
	start := strings.Index(readme[i:], "```yaml\n")
	end := strings.Index(readme[i+start+8:], "```")
	if start < 0 || end < 0 {
		t.Fatal("no yaml block in the Fixtures section")
	}
	doc := readme[i+start+8 : i+start+8+end]
	k, _ := rsa.GenerateKey(rand.Reader, 2048)
	der, _ := x509.MarshalPKCS8PrivateKey(k)
	body := strings.TrimSpace(string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})))
	body = strings.TrimSuffix(strings.TrimPrefix(body, "-----BEGIN PRIVATE KEY-----\n"), "\n-----END PRIVATE KEY-----")
	if !strings.Contains(doc, "      ...\n") {
		t.Fatal("the example's PEM has no ... to replace")
	}
	doc = strings.Replace(doc, "      ...\n", "      "+strings.ReplaceAll(body, "\n", "\n      ")+"\n", 1)
	f, err := Parse([]byte(doc))
	if err != nil {
		t.Fatalf("the README's example: %v", err)
	}
	if len(f.Keys) != 4 || len(f.Secrets) != 2 || f.Keys[3].Region != "eu-west-1" || !f.Keys[3].Disabled || f.Keys[0].RotationPeriodDays != 365 {
		t.Fatalf("the README's example gave %d keys, %d secrets: %+v", len(f.Keys), len(f.Secrets), f.Keys[3])
	}
}
