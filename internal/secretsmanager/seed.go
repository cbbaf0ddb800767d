package secretsmanager

// Seeding: secrets with fixed names, ARNs, version ids and staging labels
// that the operator's seed file defines (keyfort serve --seed FILE; parsed
// by internal/seed). Values are sealed through KMS as PutSecretValue seals
// them.

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/keyfort/keyfort/internal/awserr"
	"github.com/keyfort/keyfort/internal/secretsmanager/smapi"
	"github.com/keyfort/keyfort/internal/sensitive"
	"github.com/keyfort/keyfort/internal/storage"
	"github.com/keyfort/keyfort/internal/uuid"
)

// SeedSecret is one secret of a seed file.
type SeedSecret struct {
	Account, Region string
	Name            string
	Description     string
	// KmsKeyID is the KMS key the values are encrypted under (a key id,
	// ARN or alias); "" means the AWS managed key aws/secretsmanager.
	KmsKeyID string
	Tags     map[string]string
	// Versions, oldest first; exactly one has the label AWSCURRENT.
	Versions []SeedVersion
}

// SeedVersion is one version of a seeded secret: a string or a binary
// value.
type SeedVersion struct {
	ID     string // a UUID
	String *string
	Binary []byte
	Stages []string
}

// SeedVersionID is the version id of the one version of a seeded secret
// whose entry names none: derived from the account, region and name, so
// that it is the same on every server seeded from the file.
func SeedVersionID(account, region, name string) string {
	id, _ := uuid.NewV4(&seedStream{label: "keyfort seed version\x00" + account + "\x00" + region + "\x00" + name})
	return id
}

// seedStream is a deterministic byte stream: SHA-256 of label and a
// counter, block after block.
type seedStream struct {
	label string
	n     uint64
	buf   []byte
}

func (r *seedStream) Read(p []byte) (int, error) {
	for len(r.buf) < len(p) {
		var c [8]byte
		binary.BigEndian.PutUint64(c[:], r.n)
		r.n++
		sum := sha256.Sum256(append([]byte(r.label), c[:]...))
		r.buf = append(r.buf, sum[:]...)
	}
	n := copy(p, r.buf)
	r.buf = r.buf[n:]
	return n, nil
}

// seedARN is the ARN of a seeded secret: its 6-character suffix is derived
// from the account, region and name, so that it is the same across
// restarts and fresh data directories.
func seedARN(scope storage.Scope, name string) (string, error) {
	return newARN(&seedStream{label: "keyfort seed arn\x00" + scope.Account + "\x00" + scope.Region + "\x00" + name}, scope, name)
}

// secretSeedDef is what a seeded secret was made from, stored with it
// (without its values) so that a later start can tell a changed entry.
type secretSeedDef struct {
	Description string            `json:"description,omitempty"`
	KmsKeyID    string            `json:"kmsKeyId,omitempty"`
	Tags        map[string]string `json:"tags,omitempty"`
	Versions    []seedVersionDef  `json:"versions"`
}

type seedVersionDef struct {
	ID     string   `json:"id"`
	Binary bool     `json:"binary,omitempty"`
	Stages []string `json:"stages"`
}

func (d *secretSeedDef) diff(o *secretSeedDef) string {
	switch {
	case d.Description != o.Description:
		return "description"
	case d.KmsKeyID != o.KmsKeyID:
		return "kms_key_id"
	case !maps.Equal(d.Tags, o.Tags):
		return "tags"
	case len(d.Versions) != len(o.Versions):
		return "versions"
	}
	for i := range d.Versions {
		a, b := d.Versions[i], o.Versions[i]
		switch {
		case a.ID != b.ID:
			return "version ids"
		case a.Binary != b.Binary:
			return "value of version " + a.ID
		case !slices.Equal(a.Stages, b.Stages):
			return "staging labels of version " + a.ID
		}
	}
	return ""
}

// SeedError is a refused seed entry: one line naming the entry, never a
// value.
type SeedError struct {
	Entry string // "secret <name>"
	Msg   string
}

func (e *SeedError) Error() string { return e.Entry + ": " + e.Msg }

func seedErr(name, format string, args ...any) error {
	return &SeedError{Entry: "secret " + name, Msg: fmt.Sprintf(format, args...)}
}

func awsMessage(err error) string {
	var ae *awserr.Error
	if errors.As(err, &ae) {
		return ae.Message
	}
	return err.Error()
}

// CheckSeedSecret validates a seeded secret as CreateSecret, PutSecretValue
// and UpdateSecretVersionStage would. It returns a *SeedError.
func CheckSeedSecret(sc *SeedSecret) error {
	name := sc.Name
	if err := checkName(name); err != nil {
		return seedErr(name, "name: %s", awsMessage(err))
	}
	if len(sc.Description) > 2048 {
		return seedErr(name, "description is longer than 2048 characters")
	}
	if len(sc.Tags) > maxTags {
		return seedErr(name, "a secret can have at most %d tags", maxTags)
	}
	if err := checkNewTags(smTags(sc.Tags)); err != nil {
		return seedErr(name, "tags: %s", awsMessage(err))
	}
	if len(sc.Versions) == 0 {
		return seedErr(name, "a secret needs a value (secret_string, secret_binary_base64 or versions)")
	}
	if len(sc.Versions) > maxVersions {
		return seedErr(name, "a secret can have at most %d versions", maxVersions)
	}
	ids := map[string]bool{}
	labels := map[string]string{}
	for _, v := range sc.Versions {
		if !uuid.Canonical(v.ID) {
			return seedErr(name, "version_id %q must be a lower-case UUID", v.ID)
		}
		if ids[v.ID] {
			return seedErr(name, "version_id %s is listed twice", v.ID)
		}
		ids[v.ID] = true
		var str *sensitive.String
		if v.String != nil {
			s := sensitive.String(*v.String)
			str = &s
		}
		var bin sensitive.Bytes
		if v.Binary != nil {
			bin = sensitive.Bytes(v.Binary)
		}
		has, err := checkValue(str, bin)
		if err != nil {
			return seedErr(name, "version %s: %s", v.ID, awsMessage(err))
		}
		if !has {
			return seedErr(name, "version %s has no value (secret_string or secret_binary_base64)", v.ID)
		}
		if len(v.Stages) > 0 {
			if err := checkStages(v.Stages); err != nil {
				return seedErr(name, "version %s: %s", v.ID, awsMessage(err))
			}
		}
		for _, st := range v.Stages {
			if other, dup := labels[st]; dup {
				return seedErr(name, "staging label %s is on versions %s and %s; a label is on one version", st, other, v.ID)
			}
			labels[st] = v.ID
		}
	}
	if _, ok := labels[stageCurrent]; !ok {
		return seedErr(name, "no version has the staging label AWSCURRENT")
	}
	return nil
}

func smTags(m map[string]string) []smapi.Tag {
	out := make([]smapi.Tag, 0, len(m))
	for k, v := range m {
		out = append(out, smapi.Tag{Key: ptr(k), Value: ptr(v)})
	}
	slices.SortFunc(out, func(a, b smapi.Tag) int {
		switch {
		case *a.Key < *b.Key:
			return -1
		case *a.Key > *b.Key:
			return 1
		}
		return 0
	})
	return out
}

// Seed creates the secrets that do not exist yet, with their versions, and
// leaves a secret made from the same definition as it is (whatever the API
// did to it since). A secret that exists but was made from another
// definition (or values), or not by a seed file, is refused with a
// *SeedError. The KMS keys the values are sealed under must exist (seed
// KMS first).
func (s *Service) Seed(ctx context.Context, secrets []SeedSecret) error {
	for i := range secrets {
		if err := CheckSeedSecret(&secrets[i]); err != nil {
			return err
		}
	}
	for i := range secrets {
		err := s.seedSecret(ctx, &secrets[i])
		if errors.Is(err, storage.ErrExists) || errors.Is(err, storage.ErrConflict) {
			// Another node sharing the store made it meanwhile: compare.
			err = s.seedSecret(ctx, &secrets[i])
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func (s *Service) seedSecret(ctx context.Context, sc *SeedSecret) error {
	scope := storage.Scope{Account: sc.Account, Region: sc.Region}
	ctx = inRegion(storage.WithoutPendingEvent(ctx), scope)
	def := &secretSeedDef{Description: sc.Description, KmsKeyID: sc.KmsKeyID, Tags: sc.Tags}
	for _, v := range sc.Versions {
		def.Versions = append(def.Versions, seedVersionDef{ID: v.ID, Binary: v.Binary != nil, Stages: v.Stages})
	}
	existing, err := getSecret(ctx, s.store, scope, sc.Name)
	if err == nil {
		return s.checkSeeded(ctx, existing, sc, def)
	} else if !isNotFound(err) {
		return err
	}
	arn, err := seedARN(scope, sc.Name)
	if err != nil {
		return err
	}
	now := s.now().UTC()
	meta := secretMeta{ARN: arn, Name: sc.Name, KmsKeyID: sc.KmsKeyID, Created: now, LastChanged: now,
		Versions: map[string]*versionMeta{}, Seed: def}
	if sc.Description != "" {
		meta.Description = ptr(sc.Description)
	}
	if len(sc.Tags) > 0 {
		meta.Tags, _ = mergeTags(nil, smTags(sc.Tags))
	}
	keyRef, err := s.kmsKeyRef(ctx, &meta)
	if err != nil {
		return seedErr(sc.Name, "kms_key_id: %s", awsMessage(err))
	}
	type sealedVersion struct {
		id     string
		sealed []byte
		keyARN string
	}
	var sealed []sealedVersion
	for _, v := range sc.Versions {
		b, keyARN, err := s.seal(ctx, keyRef, arn, v.ID, seedValue(v))
		if err != nil {
			return seedErr(sc.Name, "sealing version %s: %s", v.ID, awsMessage(err))
		}
		sealed = append(sealed, sealedVersion{v.ID, b, keyARN})
	}
	return s.store.Update(ctx, func(tx storage.Tx) error {
		sec := &secret{rec: &storage.Record{Kind: kindSecret, Scope: scope, ID: sc.Name, Created: now.UnixNano()}, meta: meta}
		sec.meta.Versions = map[string]*versionMeta{}
		for i, v := range sc.Versions {
			sec.meta.NextSeq++
			sec.meta.Versions[v.ID] = &versionMeta{Seq: sec.meta.NextSeq, Created: now, KMSKeyARNs: []string{sealed[i].keyARN},
				Stages: append([]string{}, v.Stages...)}
			data, err := jsonMarshal(versionData{Created: now})
			if err != nil {
				return err
			}
			err = tx.Insert(ctx, &storage.Record{Kind: kindVersion, Scope: scope, ID: versionRecordID(sc.Name, v.ID),
				Parent: sc.Name, Created: now.UnixNano(), Data: data, Sealed: sealed[i].sealed})
			if err != nil {
				return wrap("insert version", err)
			}
		}
		if err := sec.encode(); err != nil {
			return err
		}
		if err := tx.Insert(ctx, sec.rec); err != nil {
			return wrap("insert secret", err)
		}
		return nil
	})
}

func seedValue(v SeedVersion) secretValue {
	if v.String != nil {
		return secretValue{kind: kindString, data: []byte(*v.String)}
	}
	return secretValue{kind: kindBinary, data: v.Binary}
}

// checkSeeded compares a stored secret with the seed entry that names it,
// values included (decrypted through KMS, compared in constant time).
func (s *Service) checkSeeded(ctx context.Context, sec *secret, sc *SeedSecret, def *secretSeedDef) error {
	if sec.meta.Seed == nil {
		return seedErr(sc.Name, "a secret with this name exists and was not made from a seed file")
	}
	if field := sec.meta.Seed.diff(def); field != "" {
		return seedErr(sc.Name, "the entry's %s changed since the secret was seeded; restore it or start with a new data directory", field)
	}
	for _, v := range sc.Versions {
		if _, ok := sec.meta.Versions[v.ID]; !ok {
			continue // removed through the API since: left as it is
		}
		old, err := s.readValue(ctx, sec, v.ID)
		if err != nil {
			return seedErr(sc.Name, "reading version %s: %s", v.ID, awsMessage(err))
		}
		same := old.equal(seedValue(v))
		clear(old.data)
		if !same {
			return seedErr(sc.Name, "the entry's value of version %s changed since the secret was seeded; restore it or start with a new data directory", v.ID)
		}
	}
	return nil
}
