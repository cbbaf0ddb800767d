package secretsmanager

import (
	"context"
	"errors"
	"math"
	"strings"
	"time"

	"github.com/keyfort/keyfort/internal/awserr"
	"github.com/keyfort/keyfort/internal/job"
	"github.com/keyfort/keyfort/internal/secretsmanager/smapi"
	"github.com/keyfort/keyfort/internal/storage"
)

const day = 24 * time.Hour

// Recovery window bounds of DeleteSecret, in days.
const (
	minRecoveryDays     = 7
	maxRecoveryDays     = 30
	defaultRecoveryDays = 30
)

// CreateSecret creates a secret, and its first version (labeled AWSCURRENT)
// when a value is given. A retry with the same ClientRequestToken and the
// same value returns the same version; a different value, or a name in use
// with another token, is ResourceExistsException.
func (s *Service) CreateSecret(ctx context.Context, in *smapi.CreateSecretInput) (*smapi.CreateSecretOutput, error) {
	const op = "CreateSecret"
	scope, err := scopeOf(ctx)
	if err != nil {
		return nil, err
	}
	name := deref(in.Name)
	if err := checkName(name); err != nil {
		return nil, err
	}
	hasValue, err := checkValue(in.SecretString, in.SecretBinary)
	if err != nil {
		return nil, err
	}
	if err := checkNewTags(in.Tags); err != nil {
		return nil, err
	}
	if len(in.Tags) > maxTags {
		return nil, errTooManyTags()
	}
	if err := checkReplicaRegions(scope, in.AddReplicaRegions); err != nil {
		return nil, err
	}
	value := valueOf(in.SecretString, in.SecretBinary)

	// A secret of that name exists: an idempotent retry, or an error.
	if existing, err := getSecret(ctx, s.store, scope, name); err == nil {
		if existing.deleted() {
			return nil, errInvalidRequest("You can't create this secret because a secret with this name is already scheduled for deletion.")
		}
		if hasValue && in.ClientRequestToken != nil {
			if v, ok := existing.meta.Versions[*in.ClientRequestToken]; ok && !v.NoValue {
				old, err := s.readValue(ctx, existing, *in.ClientRequestToken)
				if err != nil {
					return nil, err
				}
				same := old.equal(value)
				clear(old.data)
				if same {
					return &smapi.CreateSecretOutput{ARN: ptr(existing.meta.ARN), Name: ptr(name), VersionId: in.ClientRequestToken}, nil
				}
				return nil, errVersionExists(*in.ClientRequestToken, existing.meta.ARN)
			}
		}
		return nil, errSecretExists(name)
	} else if !isNotFound(err) {
		return nil, err
	}

	arn, err := newARN(s.rand, scope, name)
	if err != nil {
		return nil, err
	}
	if err := s.authorizeCreate(ctx, scope, arn, in); err != nil {
		return nil, err
	}
	now := s.now().UTC()
	meta := secretMeta{
		ARN:         arn,
		Name:        name,
		Description: in.Description,
		KmsKeyID:    deref(in.KmsKeyId),
		Type:        in.Type,
		Created:     now,
		LastChanged: now,
		Versions:    map[string]*versionMeta{},
	}
	if len(in.Tags) > 0 {
		meta.Tags, _ = mergeTags(nil, in.Tags)
	}
	addReplicas(&meta, scope.Region, in.AddReplicaRegions, deref(in.ForceOverwriteReplicaSecret)) // replication.go
	var nv *newVersion
	if hasValue {
		vid := deref(in.ClientRequestToken)
		if vid == "" {
			if vid, err = newUUID(s.rand); err != nil {
				return nil, err
			}
		}
		keyRef, err := s.kmsKeyRef(ctx, &meta)
		if err != nil {
			return nil, err
		}
		sealed, keyARN, err := s.seal(ctx, keyRef, arn, vid, value)
		if err != nil {
			return nil, err
		}
		nv = &newVersion{id: vid, sealed: sealed, keyARN: keyARN, stages: []string{stageCurrent}}
	}
	var after syncAfter
	err = s.store.Update(ctx, func(tx storage.Tx) error {
		sec := &secret{
			rec:  &storage.Record{Kind: kindSecret, Scope: scope, ID: name, Created: now.UnixNano()},
			meta: meta,
		}
		sec.meta.Versions = map[string]*versionMeta{}
		if err := sec.encode(); err != nil {
			return err
		}
		if err := tx.Insert(ctx, sec.rec); err != nil {
			if errors.Is(err, storage.ErrExists) {
				return errSecretExists(name)
			}
			return wrap("insert secret", err)
		}
		if nv != nil {
			if err := addVersion(ctx, tx, sec, *nv, now); err != nil {
				return err
			}
		}
		return s.queueSync(ctx, tx, sec, &after)
	})
	if err != nil {
		return nil, err
	}
	s.syncNow(ctx, after)
	out := &smapi.CreateSecretOutput{ARN: ptr(arn), Name: ptr(name)}
	if nv != nil {
		out.VersionId = ptr(nv.id)
	}
	if len(in.AddReplicaRegions) > 0 { // the replicas were made by syncNow
		if out.ReplicationStatus, err = s.currentStatus(ctx, scope, name, arn); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func errSecretExists(name string) error {
	return awserr.Newf(codeExists, "The operation failed because the secret %s already exists.", name)
}

// DescribeSecret returns a secret's metadata (never its value).
func (s *Service) DescribeSecret(ctx context.Context, in *smapi.DescribeSecretInput) (*smapi.DescribeSecretOutput, error) {
	const op = "DescribeSecret"
	scope, err := secretScope(ctx, in.SecretId)
	if err != nil {
		return nil, err
	}
	a := act(in.IAMAction())
	sec, err := s.secretFor(ctx, s.reads, scope, deref(in.SecretId), a)
	if err != nil {
		return nil, err
	}
	e := listEntry(&sec.meta)
	return &smapi.DescribeSecretOutput{
		ARN:                e.ARN,
		Name:               e.Name,
		Type:               e.Type,
		Description:        e.Description,
		KmsKeyId:           e.KmsKeyId,
		RotationEnabled:    e.RotationEnabled,
		RotationLambdaARN:  e.RotationLambdaARN,
		RotationRules:      e.RotationRules,
		LastRotatedDate:    e.LastRotatedDate,
		LastChangedDate:    e.LastChangedDate,
		LastAccessedDate:   e.LastAccessedDate,
		DeletedDate:        e.DeletedDate,
		NextRotationDate:   e.NextRotationDate,
		Tags:               e.Tags,
		VersionIdsToStages: e.SecretVersionsToStages,
		CreatedDate:        e.CreatedDate,
		PrimaryRegion:      e.PrimaryRegion,
		ReplicationStatus:  replicationStatus(ctx, s.store, &sec.meta),
	}, nil
}

// listEntry renders a secret's metadata as DescribeSecret and ListSecrets
// show it: absent fields are omitted, Tags only once the secret was tagged,
// and only versions with staging labels.
func listEntry(m *secretMeta) smapi.SecretListEntry {
	e := smapi.SecretListEntry{
		ARN:                    ptr(m.ARN),
		Name:                   ptr(m.Name),
		Type:                   m.Type,
		Description:            m.Description,
		LastChangedDate:        ptr(m.LastChanged),
		LastAccessedDate:       m.LastAccessed,
		DeletedDate:            m.Deleted,
		SecretVersionsToStages: m.stagesMap(),
		CreatedDate:            ptr(m.Created),
		LastRotatedDate:        m.LastRotated,
		NextRotationDate:       m.NextRotation,
		PrimaryRegion:          primaryRegionOf(m),
	}
	if m.KmsKeyID != "" {
		e.KmsKeyId = ptr(m.KmsKeyID)
	}
	if m.RotationEnabled || m.RotationLambdaARN != "" {
		e.RotationEnabled = ptr(m.RotationEnabled)
	}
	if m.RotationLambdaARN != "" {
		e.RotationLambdaARN = ptr(m.RotationLambdaARN)
	}
	if m.RotationDays > 0 || m.RotationSchedule != "" || m.RotationDuration != "" {
		r := &smapi.RotationRulesType{}
		if m.RotationDays > 0 {
			r.AutomaticallyAfterDays = ptr(m.RotationDays)
		}
		if m.RotationSchedule != "" {
			r.ScheduleExpression = ptr(m.RotationSchedule)
		}
		if m.RotationDuration != "" {
			r.Duration = ptr(m.RotationDuration)
		}
		e.RotationRules = r
	}
	if m.Tags != nil {
		e.Tags = make([]smapi.Tag, 0, len(m.Tags))
		for _, t := range m.Tags {
			e.Tags = append(e.Tags, smapi.Tag{Key: ptr(t.Key), Value: ptr(t.Value)})
		}
	}
	return e
}

// DeleteSecret schedules a secret for deletion after a recovery window
// (7-30 days, default 30), or deletes it at once with
// ForceDeleteWithoutRecovery. A scheduled secret can be restored with
// RestoreSecret until RunJobs purges it.
func (s *Service) DeleteSecret(ctx context.Context, in *smapi.DeleteSecretInput) (*smapi.DeleteSecretOutput, error) {
	const op = "DeleteSecret"
	scope, err := secretScope(ctx, in.SecretId)
	if err != nil {
		return nil, err
	}
	a := deleteAccess(in)
	force := deref(in.ForceDeleteWithoutRecovery)
	if force && in.RecoveryWindowInDays != nil {
		return nil, errInvalidParameter("You can't use ForceDeleteWithoutRecovery in conjunction with RecoveryWindowInDays.")
	}
	days := int64(defaultRecoveryDays)
	if in.RecoveryWindowInDays != nil {
		days = *in.RecoveryWindowInDays
		if days < minRecoveryDays || days > maxRecoveryDays {
			return nil, errInvalidParameter("The RecoveryWindowInDays value must be between 7 and 30 days (inclusive).")
		}
	}
	now := s.now().UTC()
	var out *smapi.DeleteSecretOutput
	err = s.store.Update(ctx, func(tx storage.Tx) error {
		sec, err := s.secretFor(ctx, tx, scope, deref(in.SecretId), a)
		if force && isNotFound(err) {
			// "If you forcibly delete an already deleted or nonexistent
			// secret, the operation does not return
			// ResourceNotFoundException" (DeleteSecret).
			out, err = s.forceDeletedOutput(scope, deref(in.SecretId), now)
			return err
		}
		if err != nil {
			return err
		}
		out = &smapi.DeleteSecretOutput{ARN: ptr(sec.meta.ARN), Name: ptr(sec.meta.Name)}
		if sec.meta.isReplica() {
			return errReplicaOp()
		}
		if force && sec.meta.isPrimary() {
			return errHasReplicas(&sec.meta) // replication.go
		}
		if force {
			out.DeletionDate = ptr(now)
			return purgeSecret(ctx, tx, sec)
		}
		if sec.deleted() {
			return errMarkedForDeletion()
		}
		if sec.meta.isPrimary() {
			return errHasReplicas(&sec.meta)
		}
		when := now.Add(time.Duration(days) * day)
		sec.meta.Deleted = ptr(now)
		sec.meta.Deletion = ptr(when)
		out.DeletionDate = ptr(when)
		return saveSecret(ctx, tx, sec)
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// forceDeletedOutput answers a forced DeleteSecret of a secret that does not
// exist: the name it was asked for, an ARN (the one given, or one made for
// the name as CreateSecret would) and the time of the request.
func (s *Service) forceDeletedOutput(scope storage.Scope, id string, now time.Time) (*smapi.DeleteSecretOutput, error) {
	out := &smapi.DeleteSecretOutput{Name: ptr(id), DeletionDate: ptr(now)}
	if rest, ok := strings.CutPrefix(id, "arn:"); ok {
		out.ARN = ptr(id)
		if i := strings.Index(rest, ":secret:"); i >= 0 {
			name := rest[i+len(":secret:"):]
			if hasARNSuffix(name) && len(name) > 7 {
				name = name[:len(name)-7]
			}
			out.Name = ptr(name)
		}
		return out, nil
	}
	arn, err := newARN(s.rand, scope, id)
	if err != nil {
		return nil, err
	}
	out.ARN = ptr(arn)
	return out, nil
}

// RestoreSecret cancels the scheduled deletion of a secret. Restoring a
// secret that is not scheduled for deletion succeeds and changes nothing.
func (s *Service) RestoreSecret(ctx context.Context, in *smapi.RestoreSecretInput) (*smapi.RestoreSecretOutput, error) {
	const op = "RestoreSecret"
	scope, err := secretScope(ctx, in.SecretId)
	if err != nil {
		return nil, err
	}
	a := act(in.IAMAction())
	var out *smapi.RestoreSecretOutput
	var after syncAfter
	err = s.store.Update(ctx, func(tx storage.Tx) error {
		sec, err := s.secretFor(ctx, tx, scope, deref(in.SecretId), a)
		if err != nil {
			return err
		}
		out = &smapi.RestoreSecretOutput{ARN: ptr(sec.meta.ARN), Name: ptr(sec.meta.Name)}
		if !sec.deleted() {
			return nil
		}
		sec.meta.Deleted, sec.meta.Deletion = nil, nil
		sec.meta.LastChanged = s.now().UTC()
		return s.saveChange(ctx, tx, sec, &after)
	})
	if err != nil {
		return nil, err
	}
	s.syncNow(ctx, after)
	return out, nil
}

// UpdateSecret changes a secret's description and KMS key, and with
// SecretString or SecretBinary stores a new version labeled AWSCURRENT (with
// the same idempotency as PutSecretValue). A new KMS key (KmsKeyId; "" is the
// AWS managed key) protects new versions, and the versions labeled
// AWSCURRENT, AWSPENDING and AWSPREVIOUS are re-encrypted under it while
// keeping their old encryption, as on AWS.
func (s *Service) UpdateSecret(ctx context.Context, in *smapi.UpdateSecretInput) (*smapi.UpdateSecretOutput, error) {
	const op = "UpdateSecret"
	scope, err := secretScope(ctx, in.SecretId)
	if err != nil {
		return nil, err
	}
	a := updateAccess(in)
	hasValue, err := checkValue(in.SecretString, in.SecretBinary)
	if err != nil {
		return nil, err
	}
	sec, err := s.secretFor(ctx, s.store, scope, deref(in.SecretId), a)
	if err != nil {
		return nil, err
	}
	if sec.deleted() {
		return nil, errMarkedForDeletion()
	}
	if sec.meta.isReplica() {
		return nil, errReplicaOp()
	}
	keyChanged := in.KmsKeyId != nil && *in.KmsKeyId != sec.meta.KmsKeyID
	newKeyARN := ""
	if keyChanged {
		if newKeyARN, err = s.keyARNOf(ctx, sec.meta.ARN, *in.KmsKeyId); err != nil {
			return nil, err
		}
	}
	out := &smapi.UpdateSecretOutput{ARN: ptr(sec.meta.ARN), Name: ptr(sec.meta.Name)}
	if hasValue {
		vid, _, err := s.putValue(ctx, op, scope, sec, in.ClientRequestToken, valueOf(in.SecretString, in.SecretBinary), []string{stageCurrent}, in.KmsKeyId)
		if err != nil {
			return nil, err
		}
		out.VersionId = ptr(vid)
	}
	if in.Description != nil || in.Type != nil || (in.KmsKeyId != nil && !hasValue) {
		var after syncAfter
		err = s.store.Update(ctx, func(tx storage.Tx) error {
			cur, err := getSecret(ctx, tx, scope, sec.rec.ID)
			if err != nil {
				return err
			}
			if cur.meta.ARN != sec.meta.ARN {
				return errSecretNotFound()
			}
			if cur.deleted() {
				return errMarkedForDeletion()
			}
			if in.Description != nil {
				cur.meta.Description = in.Description
			}
			if in.Type != nil {
				cur.meta.Type = in.Type
			}
			if in.KmsKeyId != nil {
				cur.meta.KmsKeyID = *in.KmsKeyId
			}
			cur.meta.LastChanged = s.now().UTC()
			return s.saveChange(ctx, tx, cur, &after)
		})
		if err != nil {
			return nil, err
		}
		s.syncNow(ctx, after)
	}
	if keyChanged {
		if err := s.reencrypt(ctx, op, scope, sec.rec.ID, sec.meta.ARN, newKeyARN); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// RunJobs runs the replica syncs that are due (replication.go: left by a
// crash, a failure or a lease that ran out), purges the secrets whose
// recovery window has passed, with their versions, and runs the rotations
// whose window has opened (rotation.go), then the replica syncs those
// queued. It is safe to call from several nodes at once: each due secret is
// claimed and handled in one transaction (job.RunDue), the steps of a
// rotation, which run outside any transaction, under a lease
// (job.ClaimDue), and each replica sync under its own claim, so each purge,
// rotation and sync happens once.
func (s *Service) RunJobs(ctx context.Context) error {
	s.syncDueJobs(ctx) // replica syncs left undone (replication.go)

	now := s.now().UTC()
	if _, err := job.RunDue(ctx, s.store, kindSecret, now.Unix(), func(ctx context.Context, tx storage.Tx, rec *storage.Record) error {
		return s.runDueSecret(ctx, tx, rec, now)
	}); err != nil {
		return wrap("run jobs", err)
	}
	err := s.rotateDue(ctx) // rotation.go
	s.syncDueJobs(ctx)      // the syncs the rotations started queued
	return err
}

// runDueSecret does the work due on one secret, in the transaction that
// claimed it, and moves or clears its Due: a purge, or the start of a
// scheduled rotation (whose steps rotateDue invokes).
func (s *Service) runDueSecret(ctx context.Context, tx storage.Tx, rec *storage.Record, now time.Time) error {
	sec, err := decodeSecret(rec)
	if err != nil {
		return err
	}
	switch {
	case sec.meta.Deletion != nil && !sec.meta.Deletion.After(now):
		return purgeSecret(ctx, tx, sec)
	case sec.rotationDue(now):
		return s.startRotation(ctx, tx, sec, now)
	default: // stale Due: refresh it
		return saveSecret(ctx, tx, sec)
	}
}

// NextDue returns the Unix second at which the earliest background work on
// a secret falls due (the end of a recovery window, a scheduled rotation),
// and false when none is scheduled. It may be in the past when RunJobs has
// not run since (or a rotation's node died). The app's clock advance runs
// the jobs at each such time in turn.
func (s *Service) NextDue(ctx context.Context) (int64, bool, error) {
	var due int64
	err := s.store.View(ctx, func(r storage.Reader) error {
		// A rotation's to-do is due when its lease runs out (its node died).
		for _, kind := range []storage.Kind{kindSecret, kindRotation} {
			recs, err := r.Due(ctx, kind, math.MaxInt64, 1)
			if err != nil {
				return err
			}
			if len(recs) == 1 && (due == 0 || recs[0].Due < due) {
				due = recs[0].Due
			}
		}
		return nil
	})
	if err != nil {
		return 0, false, wrap("next due secret", err)
	}
	return due, due != 0, nil
}
