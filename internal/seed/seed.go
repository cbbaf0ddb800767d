// Package seed reads the seed file of `keyfort serve --seed FILE`: KMS keys
// with fixed key ids (and optionally fixed material), their aliases,
// policies, tags and rotation settings, and Secrets Manager secrets with
// fixed names, versions and staging labels (README "Fixtures (--seed)").
//
// Parse checks the whole file, with the services' own checks
// (kms.CheckSeedKey, secretsmanager.CheckSeedSecret), before anything is
// written; an error is one line naming the file and the entry, and never
// shows key material or a secret value. The services apply the result
// (kms.Service.Seed, secretsmanager.Service.Seed).
package seed

import (
	"bytes"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/keyfort/keyfort/internal/kms"
	"github.com/keyfort/keyfort/internal/secretsmanager"
)

// Defaults of the file's account and region.
const (
	DefaultAccount = "123456789012"
	DefaultRegion  = "us-east-1"
)

// File is a parsed, checked seed file.
type File struct {
	Keys    []kms.SeedKey
	Secrets []secretsmanager.SeedSecret
}

// The YAML form.
type fileYAML struct {
	Account string       `yaml:"account"`
	Region  string       `yaml:"region"`
	Keys    []keyYAML    `yaml:"keys"`
	Secrets []secretYAML `yaml:"secrets"`
}

type keyYAML struct {
	KeyID              string            `yaml:"key_id"`
	Account            string            `yaml:"account"`
	Region             string            `yaml:"region"`
	KeySpec            string            `yaml:"key_spec"`
	KeyUsage           string            `yaml:"key_usage"`
	Description        string            `yaml:"description"`
	MaterialBase64     string            `yaml:"material_base64"`
	PrivateKeyPEM      string            `yaml:"private_key_pem"`
	Aliases            []string          `yaml:"aliases"`
	Tags               map[string]string `yaml:"tags"`
	Policy             string            `yaml:"policy"`
	RotationPeriodDays *int32            `yaml:"rotation_period_days"`
	Enabled            *bool             `yaml:"enabled"`
}

type secretYAML struct {
	Name               string            `yaml:"name"`
	Account            string            `yaml:"account"`
	Region             string            `yaml:"region"`
	Description        string            `yaml:"description"`
	KmsKeyID           string            `yaml:"kms_key_id"`
	Tags               map[string]string `yaml:"tags"`
	VersionID          string            `yaml:"version_id"`
	SecretString       *string           `yaml:"secret_string"`
	SecretBinaryBase64 *string           `yaml:"secret_binary_base64"`
	Versions           []versionYAML     `yaml:"versions"`
}

type versionYAML struct {
	VersionID          string   `yaml:"version_id"`
	SecretString       *string  `yaml:"secret_string"`
	SecretBinaryBase64 *string  `yaml:"secret_binary_base64"`
	Stages             []string `yaml:"stages"`
}

var (
	accountRE = regexp.MustCompile(`^[0-9]{12}$`)
	regionRE  = regexp.MustCompile(`^[a-z]{2}(-[a-z]+)+-[0-9]+$`)
	// backquoted matches the values yaml.v3 quotes in its type errors.
	backquoted = regexp.MustCompile("`[^`]*`")
	// typeNames names yaml.v3's Go types as the file's entries.
	typeNames = strings.NewReplacer("in type seed.fileYAML", "at the top level", "in type seed.keyYAML", "in a keys entry",
		"in type seed.secretYAML", "in a secrets entry", "in type seed.versionYAML", "in a versions entry")
)

// Load reads and parses the seed file at path.
func Load(path string) (*File, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("seed %s: %w", path, errors.Unwrap(err))
	}
	defer clear(b)
	f, err := Parse(b)
	if err != nil {
		return nil, fmt.Errorf("seed %s: %w", path, err)
	}
	return f, nil
}

// Parse parses and checks a seed file. Unknown fields are refused.
func Parse(b []byte) (*File, error) {
	var y fileYAML
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&y); err != nil {
		if errors.Is(err, io.EOF) { // an empty file
			return &File{}, nil
		}
		return nil, yamlError(err)
	}
	account, region := y.Account, y.Region
	if account == "" {
		account = DefaultAccount
	}
	if region == "" {
		region = DefaultRegion
	}
	if err := checkScope("the file", account, region); err != nil {
		return nil, err
	}
	f := &File{}
	type scoped struct{ account, region, id string }
	keyIDs := map[scoped]int{}
	aliases := map[scoped]int{}
	for i, ky := range y.Keys {
		entry := fmt.Sprintf("keys[%d]", i)
		if ky.KeyID != "" {
			entry += " (key " + ky.KeyID + ")"
		}
		k, err := keyOf(ky, account, region)
		if err == nil {
			err = kms.CheckSeedKey(&k)
			var se *kms.SeedError
			if errors.As(err, &se) {
				err = errors.New(se.Msg)
			}
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", entry, err)
		}
		id := scoped{k.Account, k.Region, k.KeyID}
		if j, dup := keyIDs[id]; dup {
			return nil, fmt.Errorf("%s: key_id is also keys[%d]'s", entry, j)
		}
		keyIDs[id] = i
		for _, a := range k.Aliases {
			as := scoped{k.Account, k.Region, a}
			if j, dup := aliases[as]; dup && j != i {
				return nil, fmt.Errorf("%s: alias %s is also keys[%d]'s", entry, a, j)
			}
			aliases[as] = i
		}
		f.Keys = append(f.Keys, k)
	}
	names := map[scoped]int{}
	for i, sy := range y.Secrets {
		entry := fmt.Sprintf("secrets[%d]", i)
		if sy.Name != "" {
			entry += " (secret " + sy.Name + ")"
		}
		s, err := secretOf(sy, account, region)
		if err == nil {
			err = secretsmanager.CheckSeedSecret(&s)
			var se *secretsmanager.SeedError
			if errors.As(err, &se) {
				err = errors.New(se.Msg)
			}
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", entry, err)
		}
		n := scoped{s.Account, s.Region, s.Name}
		if j, dup := names[n]; dup {
			return nil, fmt.Errorf("%s: name is also secrets[%d]'s", entry, j)
		}
		names[n] = i
		f.Secrets = append(f.Secrets, s)
	}
	return f, nil
}

// yamlError is one line, without the values yaml.v3 quotes.
func yamlError(err error) error {
	var te *yaml.TypeError
	if errors.As(err, &te) && len(te.Errors) > 0 {
		msg := backquoted.ReplaceAllString(te.Errors[0], "a value")
		msg = typeNames.Replace(msg)
		if n := len(te.Errors) - 1; n > 0 {
			msg += fmt.Sprintf(" (and %d more)", n)
		}
		return errors.New(msg)
	}
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	if i := strings.IndexByte(msg, '\n'); i >= 0 {
		msg = msg[:i]
	}
	return errors.New("not valid YAML: " + backquoted.ReplaceAllString(msg, "a value"))
}

func checkScope(entry, account, region string) error {
	if !accountRE.MatchString(account) {
		return fmt.Errorf("%s: account %q is not 12 digits", entry, account)
	}
	if !regionRE.MatchString(region) {
		return fmt.Errorf("%s: region %q is not a region name such as us-east-1", entry, region)
	}
	return nil
}

func keyOf(y keyYAML, account, region string) (kms.SeedKey, error) {
	k := kms.SeedKey{Account: y.Account, Region: y.Region, KeyID: y.KeyID, KeySpec: y.KeySpec, KeyUsage: y.KeyUsage,
		Description: y.Description, Aliases: y.Aliases, Tags: y.Tags, Policy: y.Policy, Disabled: y.Enabled != nil && !*y.Enabled}
	if k.Account == "" {
		k.Account = account
	}
	if k.Region == "" {
		k.Region = region
	}
	if y.KeyID == "" {
		return k, errors.New("key_id is missing")
	}
	if err := checkScope("key", k.Account, k.Region); err != nil {
		return k, err
	}
	if y.RotationPeriodDays != nil {
		k.RotationPeriodDays = *y.RotationPeriodDays
		if k.RotationPeriodDays == 0 {
			return k, errors.New("rotation_period_days must be from 90 to 2560 (leave it out for no rotation)")
		}
	}
	switch {
	case y.MaterialBase64 != "" && y.PrivateKeyPEM != "":
		return k, errors.New("give material_base64 or private_key_pem, not both")
	case y.MaterialBase64 != "":
		raw, err := base64.StdEncoding.Strict().DecodeString(strings.TrimSpace(y.MaterialBase64))
		if err != nil {
			return k, errors.New("material_base64 is not standard base64")
		}
		if raw == nil {
			raw = []byte{}
		}
		k.Material = raw
		if k.KeySpec != "" && k.KeySpec != "SYMMETRIC_DEFAULT" && !strings.HasPrefix(k.KeySpec, "HMAC_") {
			return k, fmt.Errorf("material_base64 is for SYMMETRIC_DEFAULT and HMAC keys; a %s key takes private_key_pem", k.KeySpec)
		}
	case y.PrivateKeyPEM != "":
		if k.KeySpec == "" || k.KeySpec == "SYMMETRIC_DEFAULT" || strings.HasPrefix(k.KeySpec, "HMAC_") {
			return k, errors.New("private_key_pem is for asymmetric keys: set key_spec (RSA_2048, ECC_NIST_P256, ...)")
		}
		der, err := pkcs8(y.PrivateKeyPEM)
		if err != nil {
			return k, err
		}
		k.Material = der
	}
	sort.Strings(k.Aliases)
	return k, nil
}

// pkcs8 reads one PEM private key (PKCS#8 "PRIVATE KEY", PKCS#1 "RSA
// PRIVATE KEY" or SEC 1 "EC PRIVATE KEY" of a NIST curve) as PKCS#8 DER.
func pkcs8(text string) ([]byte, error) {
	block, rest := pem.Decode([]byte(text))
	if block == nil {
		return nil, errors.New("private_key_pem holds no PEM block")
	}
	if len(bytes.TrimSpace(rest)) > 0 {
		return nil, errors.New("private_key_pem holds more than one PEM block")
	}
	if _, enc := block.Headers["Proc-Type"]; enc {
		return nil, errors.New("private_key_pem is encrypted; give the key unencrypted")
	}
	switch block.Type {
	case "PRIVATE KEY":
		return block.Bytes, nil
	case "RSA PRIVATE KEY":
		k, err := x509.ParsePKCS1PrivateKey(block.Bytes)
		if err != nil {
			return nil, errors.New("private_key_pem is not a valid PKCS#1 RSA private key")
		}
		return x509.MarshalPKCS8PrivateKey(k)
	case "EC PRIVATE KEY":
		k, err := x509.ParseECPrivateKey(block.Bytes)
		if err != nil {
			return sec1ToPKCS8(block.Bytes)
		}
		return x509.MarshalPKCS8PrivateKey(k)
	}
	return nil, fmt.Errorf("private_key_pem is a %q block; Keyfort reads PRIVATE KEY, RSA PRIVATE KEY and EC PRIVATE KEY", block.Type)
}

var (
	oidPublicKeyEC = asn1.ObjectIdentifier{1, 2, 840, 10045, 2, 1}
	oidSecp256k1   = asn1.ObjectIdentifier{1, 3, 132, 0, 10}
	oidSM2         = asn1.ObjectIdentifier{1, 2, 156, 10197, 1, 301}
)

// sec1ToPKCS8 wraps a SEC 1 private key of a curve crypto/x509 does not
// know (secp256k1, as `openssl ecparam -genkey -name secp256k1` writes it,
// and SM2) in PKCS#8, the curve moved to the algorithm identifier (RFC 5915
// section 3). The KMS service checks the key itself.
func sec1ToPKCS8(der []byte) ([]byte, error) {
	var sec1 struct {
		Version    int
		PrivateKey []byte
		Curve      asn1.ObjectIdentifier `asn1:"optional,explicit,tag:0"`
		PublicKey  asn1.BitString        `asn1:"optional,explicit,tag:1"`
	}
	refused := errors.New("private_key_pem is not a SEC 1 EC private key of a curve Keyfort knows (NIST P-256, P-384, P-521, secp256k1, SM2)")
	if rest, err := asn1.Unmarshal(der, &sec1); err != nil || len(rest) > 0 || !(sec1.Curve.Equal(oidSecp256k1) || sec1.Curve.Equal(oidSM2)) {
		return nil, refused
	}
	defer clear(sec1.PrivateKey)
	inner, err := asn1.Marshal(struct {
		Version    int
		PrivateKey []byte
		PublicKey  asn1.BitString `asn1:"optional,explicit,tag:1"`
	}{sec1.Version, sec1.PrivateKey, sec1.PublicKey})
	if err != nil {
		return nil, refused
	}
	defer clear(inner)
	curve, err := asn1.Marshal(sec1.Curve)
	if err != nil {
		return nil, refused
	}
	return asn1.Marshal(struct {
		Version    int
		Algo       pkix.AlgorithmIdentifier
		PrivateKey []byte
	}{0, pkix.AlgorithmIdentifier{Algorithm: oidPublicKeyEC, Parameters: asn1.RawValue{FullBytes: curve}}, inner})
}

func secretOf(y secretYAML, account, region string) (secretsmanager.SeedSecret, error) {
	s := secretsmanager.SeedSecret{Account: y.Account, Region: y.Region, Name: y.Name, Description: y.Description,
		KmsKeyID: y.KmsKeyID, Tags: y.Tags}
	if s.Account == "" {
		s.Account = account
	}
	if s.Region == "" {
		s.Region = region
	}
	if y.Name == "" {
		return s, errors.New("name is missing")
	}
	if err := checkScope("secret", s.Account, s.Region); err != nil {
		return s, err
	}
	single := y.SecretString != nil || y.SecretBinaryBase64 != nil
	switch {
	case single && len(y.Versions) > 0:
		return s, errors.New("give secret_string (or secret_binary_base64) or versions, not both")
	case single:
		id := y.VersionID
		if id == "" {
			id = secretsmanager.SeedVersionID(s.Account, s.Region, s.Name)
		}
		v, err := versionOf(versionYAML{VersionID: id, SecretString: y.SecretString, SecretBinaryBase64: y.SecretBinaryBase64,
			Stages: []string{"AWSCURRENT"}})
		if err != nil {
			return s, err
		}
		s.Versions = []secretsmanager.SeedVersion{v}
	case y.VersionID != "":
		return s, errors.New("version_id goes with secret_string or secret_binary_base64; in versions, give each its own")
	default:
		for i, vy := range y.Versions {
			v, err := versionOf(vy)
			if err != nil {
				return s, fmt.Errorf("versions[%d]: %w", i, err)
			}
			s.Versions = append(s.Versions, v)
		}
	}
	return s, nil
}

func versionOf(y versionYAML) (secretsmanager.SeedVersion, error) {
	v := secretsmanager.SeedVersion{ID: y.VersionID, String: y.SecretString, Stages: y.Stages}
	if y.VersionID == "" {
		return v, errors.New("version_id is missing")
	}
	if y.SecretString != nil && y.SecretBinaryBase64 != nil {
		return v, errors.New("give secret_string or secret_binary_base64, not both")
	}
	if y.SecretBinaryBase64 != nil {
		raw, err := base64.StdEncoding.Strict().DecodeString(strings.TrimSpace(*y.SecretBinaryBase64))
		if err != nil {
			return v, errors.New("secret_binary_base64 is not standard base64")
		}
		if raw == nil {
			raw = []byte{}
		}
		v.Binary = raw
	}
	return v, nil
}
