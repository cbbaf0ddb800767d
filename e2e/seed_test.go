package e2e

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	secpecdsa "github.com/decred/dcrd/dcrec/secp256k1/v4/ecdsa"

	"github.com/keyfort/keyfort/internal/app"
	"github.com/keyfort/keyfort/internal/config"
	"github.com/keyfort/keyfort/internal/keyfortest"
	"github.com/keyfort/keyfort/internal/storage/postgres/pgtest"
)

const (
	seedAES   = "11111111-2222-3333-4444-555555555555"
	seedRSA   = "66666666-7777-8888-9999-000000000000"
	seedEC    = "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"
	seedEd    = "aaaaaaaa-bbbb-cccc-dddd-ffffffffffff"
	seedHMAC  = "12345678-1234-1234-1234-123456789012"
	seedRand  = "87654321-4321-4321-4321-210987654321"
	seedV1    = "0f0f0f0f-0000-4000-8000-000000000001"
	seedV2    = "0f0f0f0f-0000-4000-8000-000000000002"
	seedValue = `{"password":"seeded-secret-value-7f3a"}`
)

type seedFixture struct {
	aes, hmacKey       []byte
	rsaKey             *rsa.PrivateKey
	ecKey              *ecdsa.PrivateKey
	edKey              ed25519.PrivateKey
	rsaDER, ecDER, edD []byte
	policy             string
}

func newSeedFixture(t *testing.T) *seedFixture {
	f := &seedFixture{aes: make([]byte, 32), hmacKey: make([]byte, 40)}
	rand.Read(f.aes)
	rand.Read(f.hmacKey)
	var err error
	if f.rsaKey, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
		t.Fatal(err)
	}
	if f.ecKey, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
		t.Fatal(err)
	}
	_, f.edKey, _ = ed25519.GenerateKey(rand.Reader)
	f.rsaDER = x509.MarshalPKCS1PrivateKey(f.rsaKey)
	f.ecDER, _ = x509.MarshalECPrivateKey(f.ecKey)
	f.edD, _ = x509.MarshalPKCS8PrivateKey(f.edKey)
	f.policy = `{"Version":"2012-10-17","Statement":[{"Sid":"root","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::123456789012:root"},"Action":"kms:*","Resource":"*"}]}`
	return f
}

func indentPEM(typ string, der []byte) string {
	p := string(pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}))
	return "      " + strings.ReplaceAll(strings.TrimSpace(p), "\n", "\n      ")
}

// yaml is the seed file; tagValue lets a test change one entry.
func (f *seedFixture) yaml(tagValue string) string {
	b64 := base64.StdEncoding.EncodeToString
	return `region: us-east-1
keys:
  - key_id: ` + seedAES + `
    material_base64: ` + b64(f.aes) + `
    description: seeded AES key
    aliases: [alias/app, alias/app-2]
    tags: {team: ` + tagValue + `}
    rotation_period_days: 180
    policy: '` + f.policy + `'
  - key_id: ` + seedRSA + `
    key_spec: RSA_2048
    key_usage: SIGN_VERIFY
    private_key_pem: |
` + indentPEM("RSA PRIVATE KEY", f.rsaDER) + `
  - key_id: ` + seedEC + `
    key_spec: ECC_NIST_P256
    key_usage: SIGN_VERIFY
    private_key_pem: |
` + indentPEM("EC PRIVATE KEY", f.ecDER) + `
  - key_id: ` + seedEd + `
    key_spec: ECC_NIST_EDWARDS25519
    key_usage: SIGN_VERIFY
    private_key_pem: |
` + indentPEM("PRIVATE KEY", f.edD) + `
  - key_id: ` + seedHMAC + `
    key_spec: HMAC_256
    material_base64: ` + b64(f.hmacKey) + `
  - key_id: ` + seedRand + `
    enabled: false
secrets:
  - name: app/db
    secret_string: '` + seedValue + `'
    kms_key_id: alias/app
    tags: {team: blue}
  - name: app/versions
    description: two versions
    versions:
      - version_id: ` + seedV1 + `
        secret_string: old
        stages: [AWSPREVIOUS]
      - version_id: ` + seedV2 + `
        secret_binary_base64: ` + b64([]byte("new-binary")) + `
        stages: [AWSCURRENT, blue]
`
}

func writeSeed(t *testing.T, text string) string {
	p := filepath.Join(t.TempDir(), "seed.yaml")
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func withSeed(path string) keyfortest.Option {
	return keyfortest.WithConfig(func(c *config.Config) { c.Seed = path })
}

// TestSeed: keyfort serve --seed FILE gives keys with fixed ids and
// material, aliases, tags, policy, rotation and secrets with fixed names,
// ARNs, versions and labels; a restart changes nothing; a fresh server
// seeded from the same file decrypts the first one's ciphertexts; a
// changed entry is refused with one line; no seeded plaintext is in the
// database.
func TestSeed(t *testing.T) {
	f := newSeedFixture(t)
	file := writeSeed(t, f.yaml("blue"))
	srv := keyfortest.Start(t, withSeed(file))
	c, sm := srv.KMS(), srv.SecretsManager()
	ctx := ctxT(t)

	// Fixed ids, specs, origin.
	for id, spec := range map[string]types.KeySpec{seedAES: types.KeySpecSymmetricDefault, seedRSA: types.KeySpecRsa2048,
		seedEC: types.KeySpecEccNistP256, seedEd: types.KeySpecEccNistEdwards25519, seedHMAC: types.KeySpecHmac256, seedRand: types.KeySpecSymmetricDefault} {
		d, err := c.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String(id)})
		mustNoErr(t, err, "DescribeKey "+id)
		md := d.KeyMetadata
		if aws.ToString(md.KeyId) != id || md.KeySpec != spec || md.Origin != types.OriginTypeAwsKms {
			t.Fatalf("DescribeKey %s = %s %s %s", id, aws.ToString(md.KeyId), md.KeySpec, md.Origin)
		}
		wantState := types.KeyStateEnabled
		if id == seedRand {
			wantState = types.KeyStateDisabled
		}
		if md.KeyState != wantState {
			t.Fatalf("%s state %s", id, md.KeyState)
		}
	}

	// AES: encrypt through the alias.
	enc, err := c.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String("alias/app"), Plaintext: []byte("hello seed")})
	mustNoErr(t, err, "Encrypt")
	ct := enc.CiphertextBlob

	// HMAC equals Go's over the given key.
	msg := []byte("message to MAC")
	mac, err := c.GenerateMac(ctx, &kms.GenerateMacInput{KeyId: aws.String(seedHMAC), Message: msg, MacAlgorithm: types.MacAlgorithmSpecHmacSha256})
	mustNoErr(t, err, "GenerateMac")
	h := hmac.New(sha256.New, f.hmacKey)
	h.Write(msg)
	if !bytes.Equal(mac.Mac, h.Sum(nil)) {
		t.Fatal("GenerateMac differs from HMAC-SHA256 over the seeded key")
	}

	// Public keys are the PEMs' and signatures verify with Go.
	pubOf := func(id string) []byte {
		out, err := c.GetPublicKey(ctx, &kms.GetPublicKeyInput{KeyId: aws.String(id)})
		mustNoErr(t, err, "GetPublicKey "+id)
		return out.PublicKey
	}
	for id, pub := range map[string]any{seedRSA: &f.rsaKey.PublicKey, seedEC: &f.ecKey.PublicKey, seedEd: f.edKey.Public()} {
		want, _ := x509.MarshalPKIXPublicKey(pub)
		if !bytes.Equal(pubOf(id), want) {
			t.Fatalf("GetPublicKey %s is not the seeded key's", id)
		}
	}
	digest := sha256.Sum256(msg)
	sig, err := c.Sign(ctx, &kms.SignInput{KeyId: aws.String(seedRSA), Message: msg, SigningAlgorithm: types.SigningAlgorithmSpecRsassaPssSha256})
	mustNoErr(t, err, "Sign RSA")
	if err := rsa.VerifyPSS(&f.rsaKey.PublicKey, 5 /* crypto.SHA256 */, digest[:], sig.Signature, nil); err != nil {
		t.Fatalf("RSA signature: %v", err)
	}
	sig, err = c.Sign(ctx, &kms.SignInput{KeyId: aws.String(seedEC), Message: msg, SigningAlgorithm: types.SigningAlgorithmSpecEcdsaSha256})
	mustNoErr(t, err, "Sign EC")
	if !ecdsa.VerifyASN1(&f.ecKey.PublicKey, digest[:], sig.Signature) {
		t.Fatal("ECDSA signature does not verify")
	}
	sig, err = c.Sign(ctx, &kms.SignInput{KeyId: aws.String(seedEd), Message: msg, SigningAlgorithm: types.SigningAlgorithmSpecEd25519Sha512})
	mustNoErr(t, err, "Sign Ed25519")
	if !ed25519.Verify(f.edKey.Public().(ed25519.PublicKey), msg, sig.Signature) {
		t.Fatal("Ed25519 signature does not verify")
	}

	// Aliases, tags, policy, rotation.
	al, err := c.ListAliases(ctx, &kms.ListAliasesInput{KeyId: aws.String(seedAES)})
	mustNoErr(t, err, "ListAliases")
	if len(al.Aliases) != 2 || aws.ToString(al.Aliases[0].AliasName) != "alias/app" || aws.ToString(al.Aliases[1].AliasName) != "alias/app-2" {
		t.Fatalf("aliases = %+v", al.Aliases)
	}
	tg, err := c.ListResourceTags(ctx, &kms.ListResourceTagsInput{KeyId: aws.String(seedAES)})
	mustNoErr(t, err, "ListResourceTags")
	if len(tg.Tags) != 1 || aws.ToString(tg.Tags[0].TagKey) != "team" || aws.ToString(tg.Tags[0].TagValue) != "blue" {
		t.Fatalf("tags = %+v", tg.Tags)
	}
	pol, err := c.GetKeyPolicy(ctx, &kms.GetKeyPolicyInput{KeyId: aws.String(seedAES)})
	mustNoErr(t, err, "GetKeyPolicy")
	if aws.ToString(pol.Policy) != f.policy {
		t.Fatalf("policy = %s", aws.ToString(pol.Policy))
	}
	rot, err := c.GetKeyRotationStatus(ctx, &kms.GetKeyRotationStatusInput{KeyId: aws.String(seedAES)})
	mustNoErr(t, err, "GetKeyRotationStatus")
	if !rot.KeyRotationEnabled || aws.ToInt32(rot.RotationPeriodInDays) != 180 {
		t.Fatalf("rotation = %v %d", rot.KeyRotationEnabled, aws.ToInt32(rot.RotationPeriodInDays))
	}

	// Secrets.
	gv, err := sm.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String("app/db")})
	mustNoErr(t, err, "GetSecretValue")
	if aws.ToString(gv.SecretString) != seedValue {
		t.Fatal("app/db has another value")
	}
	arn := aws.ToString(gv.ARN)
	if !strings.HasPrefix(arn, "arn:aws:secretsmanager:us-east-1:123456789012:secret:app/db-") || len(arn) != len("arn:aws:secretsmanager:us-east-1:123456789012:secret:app/db-")+6 {
		t.Fatalf("ARN %s", arn)
	}
	ds, err := sm.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String("app/db")})
	mustNoErr(t, err, "DescribeSecret")
	if !strings.HasSuffix(aws.ToString(ds.KmsKeyId), seedAES) && aws.ToString(ds.KmsKeyId) != "alias/app" {
		t.Fatalf("KmsKeyId %s", aws.ToString(ds.KmsKeyId))
	}
	cur, err := sm.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String("app/versions")})
	mustNoErr(t, err, "GetSecretValue versions")
	if aws.ToString(cur.VersionId) != seedV2 || string(cur.SecretBinary) != "new-binary" {
		t.Fatalf("AWSCURRENT = %s", aws.ToString(cur.VersionId))
	}
	prev, err := sm.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String("app/versions"), VersionStage: aws.String("AWSPREVIOUS")})
	mustNoErr(t, err, "GetSecretValue AWSPREVIOUS")
	if aws.ToString(prev.VersionId) != seedV1 || aws.ToString(prev.SecretString) != "old" {
		t.Fatalf("AWSPREVIOUS = %s", aws.ToString(prev.VersionId))
	}
	blue, err := sm.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String("app/versions"), VersionStage: aws.String("blue")})
	mustNoErr(t, err, "GetSecretValue blue")
	if aws.ToString(blue.VersionId) != seedV2 {
		t.Fatalf("blue = %s", aws.ToString(blue.VersionId))
	}

	// A change through the API survives a restart; nothing is duplicated.
	_, err = c.TagResource(ctx, &kms.TagResourceInput{KeyId: aws.String(seedAES), Tags: []types.Tag{{TagKey: aws.String("added"), TagValue: aws.String("by-test")}}})
	mustNoErr(t, err, "TagResource")
	srv.Restart(t)
	c, sm = srv.KMS(), srv.SecretsManager()
	dec, err := c.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: ct})
	mustNoErr(t, err, "Decrypt after restart")
	if string(dec.Plaintext) != "hello seed" || aws.ToString(dec.KeyId) != "arn:aws:kms:us-east-1:123456789012:key/"+seedAES {
		t.Fatal("Decrypt after restart")
	}
	lk, err := c.ListKeys(ctx, &kms.ListKeysInput{})
	mustNoErr(t, err, "ListKeys")
	if len(lk.Keys) != 7 { // six seeded, and aws/secretsmanager (app/versions)
		t.Fatalf("ListKeys after restart: %d keys", len(lk.Keys))
	}
	tg, err = c.ListResourceTags(ctx, &kms.ListResourceTagsInput{KeyId: aws.String(seedAES)})
	mustNoErr(t, err, "ListResourceTags after restart")
	if len(tg.Tags) != 2 {
		t.Fatalf("tags after restart = %+v", tg.Tags)
	}
	ls, err := sm.ListSecrets(ctx, &secretsmanager.ListSecretsInput{})
	mustNoErr(t, err, "ListSecrets")
	if len(ls.SecretList) != 2 {
		t.Fatalf("ListSecrets after restart: %d", len(ls.SecretList))
	}
	gv2, err := sm.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(arn)})
	mustNoErr(t, err, "GetSecretValue by ARN after restart")
	if aws.ToString(gv2.SecretString) != seedValue {
		t.Fatal("app/db after restart")
	}

	// A fresh server seeded from the same file: same material, same ARNs.
	other := keyfortest.Start(t, withSeed(file), keyfortest.WithName("fresh"))
	dec, err = other.KMS().Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: ct})
	mustNoErr(t, err, "Decrypt on a fresh server")
	if string(dec.Plaintext) != "hello seed" {
		t.Fatal("Decrypt on a fresh server")
	}
	gv3, err := other.SecretsManager().GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(arn)})
	mustNoErr(t, err, "GetSecretValue by ARN on a fresh server")
	if aws.ToString(gv3.SecretString) != seedValue || aws.ToString(gv3.ARN) != arn {
		t.Fatal("app/db on a fresh server")
	}

	// A changed entry is refused with one line naming it.
	srv.Close()
	changed := writeSeed(t, f.yaml("red"))
	cfg := config.Default()
	cfg.Listen, cfg.DataDir, cfg.Seed = "127.0.0.1:0", srv.DataDir, changed
	a, err := app.New(context.Background(), cfg, app.Options{LookupEnv: func(string) (string, bool) { return "", false }})
	if err == nil {
		a.Close()
		t.Fatal("a changed seed entry was accepted")
	}
	if msg := err.Error(); strings.Contains(msg, "\n") || !strings.Contains(msg, "key "+seedAES) || !strings.Contains(msg, "tags") {
		t.Fatalf("changed entry: %q", msg)
	}
	changedMaterial := newSeedFixture(t)
	changedMaterial.rsaKey, changedMaterial.ecKey, changedMaterial.edKey = f.rsaKey, f.ecKey, f.edKey
	changedMaterial.rsaDER, changedMaterial.ecDER, changedMaterial.edD = f.rsaDER, f.ecDER, f.edD
	changedMaterial.hmacKey = f.hmacKey
	cfg.Seed = writeSeed(t, changedMaterial.yaml("blue"))
	a, err = app.New(context.Background(), cfg, app.Options{LookupEnv: func(string) (string, bool) { return "", false }})
	if err == nil {
		a.Close()
		t.Fatal("changed material was accepted")
	}
	if msg := err.Error(); !strings.Contains(msg, "key "+seedAES) || !strings.Contains(msg, "material") {
		t.Fatalf("changed material: %q", msg)
	}

	cfg.Seed = writeSeed(t, strings.Replace(f.yaml("blue"), seedValue, `{"password":"another"}`, 1))
	a, err = app.New(context.Background(), cfg, app.Options{LookupEnv: func(string) (string, bool) { return "", false }})
	if err == nil {
		a.Close()
		t.Fatal("a changed secret value was accepted")
	}
	if msg := err.Error(); !strings.Contains(msg, "secret app/db: the entry's value of version") || strings.Contains(msg, "another") {
		t.Fatalf("changed secret value: %q", msg)
	}

	// No seeded plaintext in the database files.
	other.Close()
	for _, dir := range []string{srv.DataDir, other.DataDir} {
		files, _ := filepath.Glob(filepath.Join(dir, "keyfort.db*"))
		if len(files) == 0 {
			t.Fatalf("no database in %s", dir)
		}
		for _, p := range files {
			b, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			edSeed := f.edKey.Seed()
			for name, secret := range map[string][]byte{"AES material": f.aes, "HMAC material": f.hmacKey,
				"RSA prime": f.rsaKey.Primes[0].Bytes(), "EC scalar": f.ecKey.D.Bytes(), "Ed25519 seed": edSeed,
				"secret value": []byte("seeded-secret-value-7f3a"), "binary value": []byte("new-binary")} {
				if bytes.Contains(b, secret) {
					t.Errorf("%s holds the %s", p, name)
				}
			}
		}
	}
}

// TestSeedOpenSSLKeys seeds private keys as openssl writes them (secp256k1
// in SEC 1 and PKCS#8, P-384, Ed25519 and RSA in PKCS#8): GetPublicKey
// answers openssl's public key, and a secp256k1 signature verifies.
func TestSeedOpenSSLKeys(t *testing.T) {
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Skip("no openssl command")
	}
	dir := t.TempDir()
	keys := []struct {
		id, spec string
		gen      []string
	}{
		{"00000000-0000-4000-8000-000000000001", "ECC_SECG_P256K1", []string{"ecparam", "-genkey", "-name", "secp256k1", "-noout"}},
		{"00000000-0000-4000-8000-000000000002", "ECC_SECG_P256K1", []string{"genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:secp256k1"}},
		{"00000000-0000-4000-8000-000000000003", "ECC_NIST_P384", []string{"genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-384"}},
		{"00000000-0000-4000-8000-000000000004", "ECC_NIST_EDWARDS25519", []string{"genpkey", "-algorithm", "ed25519"}},
		{"00000000-0000-4000-8000-000000000005", "RSA_3072", []string{"genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:3072"}},
	}
	var doc strings.Builder
	doc.WriteString("keys:\n")
	pubs := map[string][]byte{}
	for i, k := range keys {
		keyFile := filepath.Join(dir, fmt.Sprintf("k%d.pem", i))
		args := append(append([]string{}, k.gen...), "-out", keyFile)
		if b, err := exec.Command("openssl", args...).CombinedOutput(); err != nil {
			t.Fatalf("openssl %v: %v\n%s", args, err, b)
		}
		pub, err := exec.Command("openssl", "pkey", "-in", keyFile, "-pubout", "-outform", "DER").Output()
		mustNoErr(t, err, "openssl pkey -pubout")
		pubs[k.id] = pub
		pemText, err := os.ReadFile(keyFile)
		mustNoErr(t, err, "read key")
		fmt.Fprintf(&doc, "  - key_id: %s\n    key_spec: %s\n    key_usage: SIGN_VERIFY\n    private_key_pem: |\n      %s\n",
			k.id, k.spec, strings.ReplaceAll(strings.TrimSpace(string(pemText)), "\n", "\n      "))
	}
	srv := keyfortest.Start(t, withSeed(writeSeed(t, doc.String())))
	c := srv.KMS()
	for _, k := range keys {
		out, err := c.GetPublicKey(ctxT(t), &kms.GetPublicKeyInput{KeyId: aws.String(k.id)})
		mustNoErr(t, err, "GetPublicKey "+k.spec)
		if !bytes.Equal(out.PublicKey, pubs[k.id]) {
			t.Fatalf("%s (%s): GetPublicKey is not openssl's public key", k.id, k.spec)
		}
	}
	msg := []byte("seeded secp256k1")
	sig, err := c.Sign(ctxT(t), &kms.SignInput{KeyId: aws.String(keys[0].id), Message: msg, SigningAlgorithm: types.SigningAlgorithmSpecEcdsaSha256})
	mustNoErr(t, err, "Sign secp256k1")
	s, err := secpecdsa.ParseDERSignature(sig.Signature)
	mustNoErr(t, err, "ParseDERSignature")
	d := sha256.Sum256(msg)
	if !s.Verify(d[:], parseSecp256k1SPKI(t, pubs[keys[0].id])) {
		t.Fatal("the seeded secp256k1 key's signature does not verify")
	}
}

// TestSeedBinary: `keyfort serve` with KEYFORT_SEED makes the entries and
// starts again on them; `--seed` with a bad file exits 1 with one line naming
// the entry and creates nothing.
func TestSeedBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the binary; skipped in -short mode")
	}
	file := writeSeed(t, "keys:\n  - key_id: "+seedAES+"\n    aliases: [alias/bin]\nsecrets:\n  - name: bin/secret\n    secret_string: bin-value\n")
	dir := filepath.Join(t.TempDir(), "data")
	for range 2 {
		p := startBinary(t, dir, "KEYFORT_SEED="+file)
		d, err := p.kms().DescribeKey(ctxT(t), &kms.DescribeKeyInput{KeyId: aws.String("alias/bin")})
		mustNoErr(t, err, "DescribeKey alias/bin")
		if aws.ToString(d.KeyMetadata.KeyId) != seedAES {
			t.Fatalf("alias/bin names %s", aws.ToString(d.KeyMetadata.KeyId))
		}
		p.stop(t)
	}
	bad := writeSeed(t, "keys:\n  - key_id: "+seedAES+"\n    key_spec: HMAC_256\n    material_base64: c2hvcnQ=\n")
	fresh := filepath.Join(t.TempDir(), "fresh")
	out, err := exec.Command(keyfortBinary(t), "serve", "--listen", freePort(t), "--data", fresh, "--seed", bad).CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 {
		t.Fatalf("serve with a bad seed file: %v\n%s", err, out)
	}
	want := "keyfort: app: seed " + bad + ": keys[0] (key " + seedAES + "): material_base64 of an HMAC_256 key must be 32 to 128 bytes, not 5\n"
	if string(out) != want {
		t.Fatalf("serve with a bad seed file said\n%q, want\n%q", out, want)
	}
	if _, err := os.Stat(fresh); !os.IsNotExist(err) {
		t.Fatalf("a refused start created the data directory: %v", err)
	}
}

// TestSeedPostgresNodes: nodes of one PostgreSQL store starting at once with
// the same seed file all start, and the store holds each entry once.
func TestSeedPostgresNodes(t *testing.T) {
	dsn := pgtest.DSN(t)
	f := newSeedFixture(t)
	file := writeSeed(t, f.yaml("blue"))
	root := make([]byte, 32)
	rand.Read(root)
	first := keyfortest.Start(t, keyfortest.WithStore(dsn), keyfortest.WithRootKey(root))
	nodes := make([]*keyfortest.Server, 3)
	done := make(chan int)
	for i := range nodes {
		go func() {
			defer func() { done <- i }()
			nodes[i] = keyfortest.Start(t, keyfortest.WithNodeOf(first), keyfortest.WithRootKey(root), withSeed(file),
				keyfortest.WithName(fmt.Sprintf("node%d", i)))
		}()
	}
	for range nodes {
		<-done
	}
	for i, n := range nodes {
		if n == nil {
			t.Fatalf("node %d did not start", i)
		}
	}
	lk, err := first.KMS().ListKeys(ctxT(t), &kms.ListKeysInput{})
	mustNoErr(t, err, "ListKeys")
	if len(lk.Keys) != 7 {
		t.Fatalf("%d keys, want 6 seeded and aws/secretsmanager", len(lk.Keys))
	}
	enc, err := nodes[0].KMS().Encrypt(ctxT(t), &kms.EncryptInput{KeyId: aws.String("alias/app"), Plaintext: []byte("pg")})
	mustNoErr(t, err, "Encrypt")
	dec, err := nodes[2].KMS().Decrypt(ctxT(t), &kms.DecryptInput{CiphertextBlob: enc.CiphertextBlob})
	mustNoErr(t, err, "Decrypt on another node")
	if string(dec.Plaintext) != "pg" {
		t.Fatal("Decrypt on another node")
	}
	gv, err := nodes[1].SecretsManager().GetSecretValue(ctxT(t), &secretsmanager.GetSecretValueInput{SecretId: aws.String("app/db")})
	mustNoErr(t, err, "GetSecretValue")
	if aws.ToString(gv.SecretString) != seedValue {
		t.Fatal("app/db on PostgreSQL")
	}
}
