package secretsmanager

import (
	"context"
	"errors"

	"github.com/keyfort/keyfort/internal/kms/kmsapi"
	"github.com/keyfort/keyfort/internal/storage"
)

// keyARNOf returns the ARN of the KMS key a KmsKeyId names (the AWS managed
// key for ""), checking, as Secrets Manager does on AWS when a secret's key
// is set, that the caller may use it through the service: a
// GenerateDataKey whose encryption context names the secret and the
// version "RequestToValidateKeyAccess". A key KMS refuses is
// EncryptionFailure (AccessDeniedException when the caller may not use it).
func (s *Service) keyARNOf(ctx context.Context, arn, kmsKeyID string) (string, error) {
	if kmsKeyID == "" {
		return s.kmsKeyRef(ctx, &secretMeta{})
	}
	out, err := s.kms.GenerateDataKey(ctx, &kmsapi.GenerateDataKeyInput{
		KeyId:             ptr(kmsKeyID),
		KeySpec:           kmsapi.DataKeySpec("AES_256"),
		EncryptionContext: encryptionContext(arn, "RequestToValidateKeyAccess"),
	})
	if err != nil {
		return "", s.kmsError(ctx, "GenerateDataKey", err, errEncryption)
	}
	out.Plaintext.Zero()
	if deref(out.KeyId) == "" {
		return "", wrap("validate key", errors.New("no key ARN"))
	}
	return *out.KeyId, nil
}

// reencryptStages are the labels whose versions are re-encrypted when a
// secret's KMS key changes, as on AWS.
var reencryptStages = []string{stageCurrent, stagePending, stagePrevious}

// reencrypt adds an encryption under the KMS key keyARN to the versions of
// sec labeled AWSCURRENT, AWSPENDING or AWSPREVIOUS, keeping their existing
// encryptions so that either key opens them. A version whose value KMS
// refuses to decrypt (the old key is disabled) is left as it is, as on AWS.
func (s *Service) reencrypt(ctx context.Context, op string, scope storage.Scope, name, arn, keyARN string) error {
	sec, err := getSecret(ctx, s.store, scope, name)
	if err != nil {
		return err
	}
	if sec.meta.ARN != arn {
		return errSecretNotFound()
	}
	added := map[string]sealedEntry{}
	for _, label := range reencryptStages {
		vid := sec.meta.holder(label)
		if vid == "" {
			continue
		}
		if _, done := added[vid]; done || sec.meta.Versions[vid].NoValue {
			continue
		}
		if ks := sec.meta.Versions[vid].KMSKeyARNs; len(ks) > 0 && ks[0] == keyARN {
			continue
		}
		v, err := s.readValue(ctx, sec, vid)
		if isCode(err, codeDecryption) {
			continue
		}
		if err != nil {
			return err
		}
		e, _, err := s.sealEntry(ctx, keyARN, arn, vid, v)
		clear(v.data)
		if err != nil {
			return err
		}
		added[vid] = e
	}
	if len(added) == 0 {
		return nil
	}
	var after syncAfter
	err = s.store.Update(ctx, func(tx storage.Tx) error {
		cur, err := getSecret(ctx, tx, scope, name)
		if err != nil {
			return err
		}
		if cur.meta.ARN != arn {
			return errSecretNotFound()
		}
		for vid, e := range added {
			ver, ok := cur.meta.Versions[vid]
			if !ok {
				continue
			}
			rec, err := tx.Get(ctx, kindVersion, scope, versionRecordID(name, vid))
			if errors.Is(err, storage.ErrNotFound) {
				continue
			}
			if err != nil {
				return wrap("get version", err)
			}
			sv, err := parseSealed(rec.Sealed)
			if err != nil {
				return wrap("parse version "+vid, err)
			}
			if len(sv.entries) != len(ver.KMSKeyARNs) {
				return wrap("version "+vid, errors.New("sealed entries do not match the version's keys"))
			}
			entries, keys := []sealedEntry{e}, []string{keyARN}
			for i, old := range sv.entries {
				if ver.KMSKeyARNs[i] != keyARN && len(entries) < maxEntries {
					entries = append(entries, old)
					keys = append(keys, ver.KMSKeyARNs[i])
				}
			}
			sv.entries = entries
			rec.Sealed = sv.marshal()
			if err := tx.Update(ctx, rec); err != nil {
				return wrap("update version", err)
			}
			ver.KMSKeyARNs = keys
		}
		return s.saveChange(ctx, tx, cur, &after)
	})
	if err != nil {
		return err
	}
	s.syncNow(ctx, after)
	return nil
}
