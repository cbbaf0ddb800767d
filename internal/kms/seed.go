package kms

// Seeding: keys with fixed ids (and optionally fixed material) that the
// operator's seed file defines (keyfort serve --seed FILE; parsed by
// internal/seed). The checks are CreateKey's, CreateAlias's, TagResource's,
// PutKeyPolicy's and EnableKeyRotation's; the material is sealed as every
// material is.

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/emmansun/gmsm/sm2"

	"github.com/keyfort/keyfort/internal/awserr"
	"github.com/keyfort/keyfort/internal/keymaterial"
	"github.com/keyfort/keyfort/internal/kms/kmsapi"
	"github.com/keyfort/keyfort/internal/storage"
	"github.com/keyfort/keyfort/internal/uuid"
)

// SeedKey is one key of a seed file.
type SeedKey struct {
	Account, Region string
	KeyID           string // a UUID
	KeySpec         string // "" means SYMMETRIC_DEFAULT
	KeyUsage        string // "" means the spec's default usage
	Description     string
	// Material is the key's fixed material: the raw key of a symmetric
	// (32 bytes) or HMAC key, or the private key as PKCS#8 DER (crypto/x509's
	// forms, and secp256k1, ML-DSA and SM2 in theirs). Nil: random material.
	Material []byte
	Aliases  []string
	Tags     map[string]string
	// Policy is the key policy; "" means the default key policy.
	Policy string
	// RotationPeriodDays > 0 turns automatic rotation on with that period.
	RotationPeriodDays int32
	// Disabled seeds the key in state Disabled.
	Disabled bool
}

// seedDef is what a seeded key was made from, stored with the key (without
// its material) so that a later start can tell a changed entry.
type seedDef struct {
	Spec        string            `json:"spec"`
	Usage       string            `json:"usage"`
	Description string            `json:"description,omitempty"`
	Fixed       bool              `json:"fixed,omitempty"` // fixed material given
	Aliases     []string          `json:"aliases,omitempty"`
	Tags        map[string]string `json:"tags,omitempty"`
	Policy      string            `json:"policy,omitempty"`
	Rotation    int32             `json:"rotation,omitempty"`
	Disabled    bool              `json:"disabled,omitempty"`
}

// diff names the first field in which d and o differ, or "".
func (d *seedDef) diff(o *seedDef) string {
	switch {
	case d.Spec != o.Spec:
		return "key_spec"
	case d.Usage != o.Usage:
		return "key_usage"
	case d.Description != o.Description:
		return "description"
	case d.Fixed != o.Fixed:
		return "material"
	case !slices.Equal(d.Aliases, o.Aliases):
		return "aliases"
	case !maps.Equal(d.Tags, o.Tags):
		return "tags"
	case d.Policy != o.Policy:
		return "policy"
	case d.Rotation != o.Rotation:
		return "rotation_period_days"
	case d.Disabled != o.Disabled:
		return "enabled"
	}
	return ""
}

// SeedError is a refused seed entry: its message is one line naming the
// entry, never its material.
type SeedError struct {
	Entry string // "key <id>"
	Msg   string
}

func (e *SeedError) Error() string { return e.Entry + ": " + e.Msg }

func seedErr(id, format string, args ...any) error {
	return &SeedError{Entry: "key " + id, Msg: fmt.Sprintf(format, args...)}
}

// seedMaterialID is the material id of a seeded key's fixed material,
// derived from the key id and the material (a 128-bit check value of it,
// as a key check value), so that a server seeded from the same file opens
// the ciphertexts another one made (a CiphertextBlob names its material
// id), and an id never stands for two materials (material caches are keyed
// by id).
func seedMaterialID(keyID string, material []byte) string {
	h := sha256.New()
	h.Write([]byte("keyfort seed material id\x00" + keyID + "\x00"))
	h.Write(material)
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// hmacSizes are the lengths AWS accepts for imported HMAC key material, in
// bytes (least, most): the developer guide's "Requirements for imported
// key material": "The key length must be at least the same length
// specified by the key spec. The maximum key length is 1024-bits."
// ImportKeyMaterial and seeded material both follow it.
var hmacSizes = map[string][2]int{
	"HMAC_224": {28, 128}, "HMAC_256": {32, 128}, "HMAC_384": {48, 128}, "HMAC_512": {64, 128},
}

// CheckSeedKey validates a seeded key as CreateKey and the other operations
// would, and normalizes it (spec and usage defaults; Material re-encoded as
// the PKCS#8 DER Keyfort stores). It returns a *SeedError.
func CheckSeedKey(k *SeedKey) error {
	id := k.KeyID
	if !uuid.Canonical(id) {
		return seedErr(id, "key_id must be a lower-case UUID such as 1234abcd-12ab-34cd-56ef-1234567890ab")
	}
	if k.KeySpec == "" {
		k.KeySpec = specSymmetric
	}
	row, ok := keySpecs[k.KeySpec]
	if !ok {
		return seedErr(id, "key_spec %s is not a KeySpec", k.KeySpec)
	}
	if k.KeyUsage == "" {
		k.KeyUsage = row.usages[0]
	}
	if !row.allows(k.KeyUsage) {
		return seedErr(id, "key_usage %s is not compatible with key_spec %s (%s)", k.KeyUsage, k.KeySpec, strings.Join(row.usages, ", "))
	}
	if row.chinaOnly && !sm2Allowed(k.Region) {
		return seedErr(id, "key_spec %s exists only in the China regions (cn-north-1, cn-northwest-1), not in %s", k.KeySpec, k.Region)
	}
	if !row.makes(k.KeyUsage) {
		return seedErr(id, "Keyfort does not support key_spec %s with key_usage %s yet", k.KeySpec, k.KeyUsage)
	}
	if len(k.Description) > 8192 {
		return seedErr(id, "description is longer than 8192 characters")
	}
	if k.Material != nil {
		if err := checkSeedMaterial(k); err != nil {
			return err
		}
	}
	seen := map[string]bool{}
	for _, a := range k.Aliases {
		if err := checkAliasName(a); err != nil {
			return seedErr(id, "alias %q: %s", a, awsMessage(err))
		}
		if strings.HasPrefix(a, awsAliasPrefix) {
			return seedErr(id, "alias %q: names that begin with alias/aws/ are reserved for AWS managed keys", a)
		}
		if len(a) > 256 || !aliasNameRE.MatchString(a) {
			return seedErr(id, "alias %q: an alias name is alias/ and then 1 to 250 letters, digits, '/', '_' or '-'", a)
		}
		if seen[a] {
			return seedErr(id, "alias %q is listed twice", a)
		}
		seen[a] = true
	}
	if len(k.Tags) > maxTagsPerKey {
		return seedErr(id, "a key can have at most %d tags", maxTagsPerKey)
	}
	for tk, tv := range k.Tags {
		switch {
		case utf8.RuneCountInString(tk) < 1 || utf8.RuneCountInString(tk) > 128:
			return seedErr(id, "tag key %q must be 1 to 128 characters long", tk)
		case utf8.RuneCountInString(tv) > 256:
			return seedErr(id, "the value of tag %q is longer than 256 characters", tk)
		case strings.HasPrefix(strings.ToLower(tk), "aws:"):
			return seedErr(id, "tag key %q: keys beginning with aws: are reserved for AWS use", tk)
		}
	}
	if k.Policy != "" {
		if _, err := parseKeyPolicy(k.Policy); err != nil {
			return seedErr(id, "policy: %s", awsMessage(err))
		}
	}
	if k.RotationPeriodDays != 0 {
		if !row.rotatable {
			return seedErr(id, "key_spec %s does not support automatic rotation", k.KeySpec)
		}
		if k.RotationPeriodDays < 90 || k.RotationPeriodDays > 2560 {
			return seedErr(id, "rotation_period_days must be from 90 to 2560")
		}
	}
	return nil
}

var aliasNameRE = regexp.MustCompile(`^alias/[a-zA-Z0-9/_-]+$`)

// awsMessage is the message of a client error, for a seed error line.
func awsMessage(err error) string {
	var ae *awserr.Error
	if errors.As(err, &ae) {
		return ae.Message
	}
	return err.Error()
}

// checkSeedMaterial checks that k.Material fits k.KeySpec and re-encodes a
// private key as Keyfort's PKCS#8 DER. Errors never show the material.
func checkSeedMaterial(k *SeedKey) error {
	id, spec := k.KeyID, k.KeySpec
	if privateKeyKind(spec) == "" {
		if spec == specSymmetric {
			if len(k.Material) != 32 {
				return seedErr(id, "material_base64 of a SYMMETRIC_DEFAULT key must be 32 bytes, not %d", len(k.Material))
			}
			return nil
		}
		r := hmacSizes[spec]
		if len(k.Material) < r[0] || len(k.Material) > r[1] {
			return seedErr(id, "material_base64 of an %s key must be %d to %d bytes, not %d", spec, r[0], r[1], len(k.Material))
		}
		return nil
	}
	v, err := parseSigner(k.Material)
	if err != nil {
		return seedErr(id, "private_key_pem is not a private key Keyfort reads (PKCS#8, PKCS#1 RSA or SEC 1 EC)")
	}
	priv := v.(crypto.Signer)
	if got := signerSpec(priv); got != spec {
		if got == "" {
			got = "another type"
		}
		return seedErr(id, "private_key_pem is a %s key, not a %s key", got, spec)
	}
	der, err := marshalPKCS8(priv)
	if err != nil {
		return seedErr(id, "private_key_pem cannot be encoded as PKCS#8")
	}
	clear(k.Material)
	k.Material = der
	return nil
}

// signerSpec is the KeySpec of a private key, or "".
func signerSpec(priv crypto.Signer) string {
	switch p := priv.(type) {
	case *rsa.PrivateKey:
		for spec, bits := range rsaBits {
			if p.N.BitLen() == bits {
				return spec
			}
		}
	case *sm2.PrivateKey:
		return specSM2
	case *ecdsa.PrivateKey:
		for spec, c := range ecCurves {
			if p.Curve == c {
				return spec
			}
		}
	case ed25519.PrivateKey:
		return "ECC_NIST_EDWARDS25519"
	case *secp256k1Key:
		return "ECC_SECG_P256K1"
	case *mldsaKey:
		return p.v.spec
	}
	return ""
}

// Seed creates the keys that do not exist yet, with their aliases, and
// leaves a key made from the same definition as it is (whatever the API did
// to it since). A key that exists but was made from another definition (or
// not by a seed file), or an alias that names another key, is refused with
// a *SeedError naming the key and the difference. Each key is checked with
// CheckSeedKey first. Seeded keys have Origin AWS_KMS (see the README).
func (s *Service) Seed(ctx context.Context, keys []SeedKey) error {
	for i := range keys {
		if err := CheckSeedKey(&keys[i]); err != nil {
			return err
		}
	}
	for i := range keys {
		err := s.seedKey(ctx, &keys[i])
		if errors.Is(err, storage.ErrExists) || errors.Is(err, storage.ErrConflict) {
			// Another node sharing the store made it meanwhile: compare.
			err = s.seedKey(ctx, &keys[i])
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func (s *Service) seedKey(ctx context.Context, sk *SeedKey) error {
	scope := storage.Scope{Account: sk.Account, Region: sk.Region}
	def := &seedDef{Spec: sk.KeySpec, Usage: sk.KeyUsage, Description: sk.Description, Fixed: sk.Material != nil,
		Aliases: sk.Aliases, Tags: sk.Tags, Policy: sk.Policy, Rotation: sk.RotationPeriodDays, Disabled: sk.Disabled}
	return s.store.Update(ctx, func(tx storage.Tx) error {
		rec, err := tx.Get(ctx, kindKey, scope, sk.KeyID)
		switch {
		case err == nil:
			return s.checkSeeded(ctx, tx, rec, sk, def)
		case !errors.Is(err, storage.ErrNotFound):
			return wrap("get key", err)
		}
		for _, a := range sk.Aliases {
			arec, err := tx.Get(ctx, kindAlias, scope, a)
			if err == nil && arec.Parent == sk.KeyID {
				// The key was made meanwhile by another node: Seed looks again.
				return fmt.Errorf("kms: alias %s: %w", a, storage.ErrExists)
			} else if err == nil {
				return seedErr(sk.KeyID, "alias %s already names key %s", a, arec.Parent)
			} else if !errors.Is(err, storage.ErrNotFound) {
				return wrap("get alias", err)
			}
		}
		now := s.now().UTC()
		tags := make([]kmsapi.Tag, 0, len(sk.Tags))
		for k, v := range sk.Tags {
			tags = append(tags, kmsapi.Tag{TagKey: ptr(k), TagValue: ptr(v)})
		}
		mtags, err := mergeTags(nil, tags)
		if err != nil {
			return seedErr(sk.KeyID, "tags: %s", awsMessage(err))
		}
		meta := keyMeta{ID: sk.KeyID, Created: now, Description: sk.Description, State: stateEnabled, Usage: sk.KeyUsage,
			Spec: sk.KeySpec, Origin: originAWSKMS, Manager: managerCustomer, Tags: mtags, Policy: sk.Policy, Seed: def}
		if sk.Disabled {
			meta.State = stateDisabled
		}
		if sk.RotationPeriodDays > 0 {
			next := now.Add(time.Duration(sk.RotationPeriodDays) * day)
			meta.RotationEnabled, meta.RotationPeriod, meta.NextRotation = true, sk.RotationPeriodDays, &next
		}
		raw, matID := sk.Material, ""
		if raw != nil {
			matID = seedMaterialID(sk.KeyID, raw)
		} else {
			if raw, err = s.randomMaterial(sk.KeySpec); err != nil {
				return err
			}
			defer clear(raw)
			mid, err := keymaterial.NewMaterialID(s.rand)
			if err != nil {
				return wrap("new material id", err)
			}
			matID = hex.EncodeToString(mid[:])
		}
		if err := s.insertMaterial(ctx, tx, scope, sk.KeyID, matID, raw, now); err != nil {
			return err
		}
		meta.Material = matID
		meta.Materials = []materialRef{{ID: matID, Created: now}}
		k := &key{rec: &storage.Record{Kind: kindKey, Scope: scope, ID: sk.KeyID, Created: now.UnixNano()}, meta: meta}
		if err := k.encode(); err != nil {
			return err
		}
		if err := tx.Insert(ctx, k.rec); err != nil {
			return wrap("insert key", err)
		}
		for _, a := range sk.Aliases {
			if err := insertAlias(ctx, tx, scope, a, sk.KeyID, now); err != nil {
				var ae *awserr.Error
				if errors.As(err, &ae) { // made meanwhile (another node): Seed looks again
					return fmt.Errorf("kms: insert alias %s: %w", a, storage.ErrExists)
				}
				return err
			}
		}
		return nil
	})
}

// checkSeeded compares a stored key with the seed entry that names it.
func (s *Service) checkSeeded(ctx context.Context, tx storage.Tx, rec *storage.Record, sk *SeedKey, def *seedDef) error {
	k, err := decodeKey(rec)
	if err != nil {
		return err
	}
	if k.meta.Seed == nil {
		return seedErr(sk.KeyID, "a key with this id exists and was not made from a seed file")
	}
	if field := k.meta.Seed.diff(def); field != "" {
		return seedErr(sk.KeyID, "the entry's %s changed since the key was seeded; restore it or start with a new data directory", field)
	}
	if sk.Material == nil || len(k.meta.Materials) == 0 {
		return nil
	}
	recID := materialRecordID(sk.KeyID, k.meta.Materials[0].ID)
	mrec, err := tx.Get(ctx, kindMaterial, rec.Scope, recID)
	if err != nil {
		return wrap("get material", err)
	}
	raw, err := s.sealer.Open(materialAAD(rec.Scope, recID), mrec.Sealed)
	if err != nil {
		return wrap("open material "+recID, err)
	}
	defer clear(raw)
	if subtle.ConstantTimeCompare(raw, sk.Material) != 1 {
		return seedErr(sk.KeyID, "the entry's material changed since the key was seeded; restore it or start with a new data directory")
	}
	return nil
}
