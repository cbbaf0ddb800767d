package kms

import (
	"context"
	"errors"
	"math"
	"strconv"
	"time"

	"github.com/keyfort/keyfort/internal/awserr"
	"github.com/keyfort/keyfort/internal/iam"
	"github.com/keyfort/keyfort/internal/job"
	"github.com/keyfort/keyfort/internal/kms/kmsapi"
	"github.com/keyfort/keyfort/internal/storage"
)

const day = 24 * time.Hour

// checkRotatable applies the rules shared by the rotation operations:
// automatic rotation (auto) is for symmetric keys of origin AWS_KMS only
// (a key of origin EXTERNAL is refused for its origin whatever its state,
// as AWS does for a key pending import); on-demand rotation also takes
// symmetric keys of origin EXTERNAL (rotateImported).
func checkRotatable(k *key, auto bool) error {
	if auto && k.meta.Origin == originExternal {
		return errOrigin(k.arn, k.meta.Origin)
	}
	if k.isReplica() {
		// Rotation is the primary key's.
		return errNotPrimary(k.arn)
	}
	if err := checkEnabled(k); err != nil {
		return err
	}
	// AWS's texts for RotateKeyOnDemand (snapshots
	// test_rotate_key_on_demand_raises_error_given_non_symmetric_key and
	// ..._given_key_with_imported_key_material).
	if !specOf(k).rotatable {
		return awserr.New(codeUnsupported, "")
	}
	if k.meta.Origin != originAWSKMS && k.meta.Origin != originExternal {
		return errOrigin(k.arn, k.meta.Origin)
	}
	return nil
}

// EnableKeyRotation turns on automatic rotation (90-2560 days, default 365).
func (s *Service) EnableKeyRotation(ctx context.Context, in *kmsapi.EnableKeyRotationInput) (*kmsapi.EnableKeyRotationOutput, error) {
	now := s.now().UTC()
	a := act(in.IAMAction())
	if in.RotationPeriodInDays != nil {
		a.extra = iam.MapContext{"kms:rotationperiodindays": {strconv.Itoa(int(*in.RotationPeriodInDays))}}
	}
	_, err := s.updateKey(ctx, a, in.KeyId, func(_ storage.Tx, k *key) error {
		if err := refuseManaged(k); err != nil {
			return err
		}
		if err := checkRotatable(k, true); err != nil {
			return err
		}
		period := int32(defaultRotation)
		if in.RotationPeriodInDays != nil {
			period = *in.RotationPeriodInDays
		}
		if k.meta.RotationEnabled && k.meta.NextRotation != nil {
			if period == k.meta.RotationPeriod {
				return errNoChange
			}
			next := k.meta.NextRotation.Add(time.Duration(period-k.meta.RotationPeriod) * day)
			if next.Before(now) {
				next = now
			}
			k.meta.NextRotation = &next
		} else {
			next := now.Add(time.Duration(period) * day)
			k.meta.NextRotation = &next
		}
		k.meta.RotationEnabled = true
		k.meta.RotationPeriod = period
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &kmsapi.EnableKeyRotationOutput{}, nil
}

// DisableKeyRotation turns off automatic rotation.
func (s *Service) DisableKeyRotation(ctx context.Context, in *kmsapi.DisableKeyRotationInput) (*kmsapi.DisableKeyRotationOutput, error) {
	_, err := s.updateKey(ctx, act(in.IAMAction()), in.KeyId, func(_ storage.Tx, k *key) error {
		if err := refuseManaged(k); err != nil {
			return err
		}
		if err := checkRotatable(k, true); err != nil {
			return err
		}
		if !k.meta.RotationEnabled {
			return errNoChange
		}
		k.meta.RotationEnabled = false
		k.meta.RotationPeriod = 0
		k.meta.NextRotation = nil
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &kmsapi.DisableKeyRotationOutput{}, nil
}

// GetKeyRotationStatus reports whether automatic rotation is on and when
// the next rotation is due.
func (s *Service) GetKeyRotationStatus(ctx context.Context, in *kmsapi.GetKeyRotationStatusInput) (*kmsapi.GetKeyRotationStatusOutput, error) {
	scope, _, err := scopeOf(ctx)
	if err != nil {
		return nil, err
	}
	k, err := s.lookupKey(ctx, scope, deref(in.KeyId), refKeyOnly|refCrossAccount, act(in.IAMAction()))
	if err != nil {
		return nil, err
	}
	switch {
	case k.meta.Origin == originExternal && specOf(k).rotatable && k.meta.State == statePendingImport:
		return nil, errOrigin(k.arn, k.meta.Origin)
	case k.meta.Origin == originExternal && specOf(k).rotatable:
		// Imported keys rotate on demand only.
		return &kmsapi.GetKeyRotationStatusOutput{KeyId: ptr(k.arn), KeyRotationEnabled: ptr(false)}, nil
	case !specOf(k).rotatable || k.meta.Origin != originAWSKMS:
		return nil, awserr.Newf(codeUnsupported, "%s does not support automatic rotation.", k.arn)
	}
	// A replica reports its primary's rotation.
	p, err := s.rotationStatusOf(ctx, k)
	if err != nil {
		return nil, err
	}
	// While a key is pending deletion (or replica deletion) AWS reports
	// rotation as off; the stored setting returns when the deletion is
	// cancelled.
	enabled := p.meta.RotationEnabled && k.meta.State != statePendingDeletion && k.meta.State != statePendingReplicaDeletion
	out := &kmsapi.GetKeyRotationStatusOutput{KeyId: ptr(k.arn), KeyRotationEnabled: ptr(enabled)}
	if enabled {
		out.RotationPeriodInDays = ptr(p.meta.RotationPeriod)
		if p.meta.NextRotation != nil {
			out.NextRotationDate = ptr(*p.meta.NextRotation)
		}
	}
	return out, nil
}

// rotate makes a new material current for k.
func (s *Service) rotate(ctx context.Context, tx storage.Tx, k *key, now time.Time, how string) error {
	matID, err := s.newMaterial(ctx, tx, k.rec.Scope, k.rec.ID, k.meta.Spec, now)
	if err != nil {
		return err
	}
	k.meta.Material = matID
	k.meta.Materials = append(k.meta.Materials, materialRef{ID: matID, Created: now, Rotation: how})
	if k.isPrimary() {
		return s.syncReplicas(ctx, tx, k)
	}
	return nil
}

// rotateImported makes the material of k pending rotation current (the
// on-demand rotation of a key of origin EXTERNAL: its new material was
// imported with ImportType NEW_KEY_MATERIAL).
func rotateImported(k *key, now time.Time) error {
	for i := range k.meta.Materials {
		if m := &k.meta.Materials[i]; m.Pending {
			m.Pending = false
			m.Created = now
			m.Rotation = "ON_DEMAND"
			k.meta.Material = m.ID
			// The current material is listed last, as rotations are.
			moved := *m
			k.meta.Materials = append(append(k.meta.Materials[:i:i], k.meta.Materials[i+1:]...), moved)
			return nil
		}
	}
	return errNoPendingMaterial(k)
}

func errNoPendingMaterial(k *key) error {
	return awserr.Newf(codeInvalidState, "No available key material pending rotation for the key: %s.", k.arn)
}

// rotateImportedAll is rotateImported of k and, for a multi-Region primary,
// of every replica, once each has the material pending rotation.
func (s *Service) rotateImportedAll(ctx context.Context, tx storage.Tx, k *key, now time.Time) error {
	if !k.isPrimary() {
		return rotateImported(k, now)
	}
	rel, err := related(ctx, tx, k)
	if err != nil {
		return err
	}
	for _, m := range k.meta.Materials {
		if !m.Pending {
			continue
		}
		if ok, err := s.pendingEverywhere(ctx, tx, k, m.ID); err != nil {
			return err
		} else if !ok {
			// Not yet imported into every replica
			// (PENDING_MULTI_REGION_IMPORT_AND_ROTATION).
			return errNoPendingMaterial(k)
		}
	}
	if err := rotateImported(k, now); err != nil {
		return err
	}
	for _, r := range rel {
		if err := rotateImported(r, now); err != nil {
			return err
		}
		if err := s.saveKey(ctx, tx, r); err != nil {
			return err
		}
	}
	return nil
}

// RotateKeyOnDemand rotates a key's material now (at most 25 times per key)
// and answers the key's ARN in KeyId.
func (s *Service) RotateKeyOnDemand(ctx context.Context, in *kmsapi.RotateKeyOnDemandInput) (*kmsapi.RotateKeyOnDemandOutput, error) {
	now := s.now().UTC()
	var previous string
	k, err := s.updateKey(ctx, act(in.IAMAction()), in.KeyId, func(tx storage.Tx, k *key) error {
		if err := refuseManaged(k); err != nil {
			return err
		}
		if err := checkRotatable(k, false); err != nil {
			return err
		}
		previous = k.meta.Material
		if k.meta.OnDemandCount >= maxOnDemandRotations {
			return awserr.Newf(codeLimitExceeded, "The on-demand rotations limit has been reached for the given keyId. No more on-demand rotations can be performed for this key: %s", k.arn)
		}
		if k.meta.Origin == originExternal {
			if err := s.rotateImportedAll(ctx, tx, k, now); err != nil {
				return err
			}
		} else if err := s.rotate(ctx, tx, k, now, "ON_DEMAND"); err != nil {
			return err
		}
		k.meta.OnDemandCount++
		return nil
	})
	if err != nil {
		return nil, err
	}
	auditRotation(ctx, k, previous)
	return &kmsapi.RotateKeyOnDemandOutput{KeyId: ptr(k.arn)}, nil // the ARN, as AWS answers
}

// ListKeyRotations lists completed rotations (or, with ALL_KEY_MATERIAL,
// every key material), oldest first.
func (s *Service) ListKeyRotations(ctx context.Context, in *kmsapi.ListKeyRotationsInput) (*kmsapi.ListKeyRotationsOutput, error) {
	scope, _, err := scopeOf(ctx)
	if err != nil {
		return nil, err
	}
	k, err := s.lookupKey(ctx, scope, deref(in.KeyId), refKeyOnly, act(in.IAMAction()))
	if err != nil {
		return nil, err
	}
	if !specOf(k).rotatable || (k.meta.Origin != originAWSKMS && k.meta.Origin != originExternal) {
		return nil, awserr.Newf(codeUnsupported, "%s does not support key rotation.", k.arn)
	}
	all := in.IncludeKeyMaterial == "ALL_KEY_MATERIAL"
	list := "rotations/" + k.rec.ID + "/" + string(in.IncludeKeyMaterial)
	start := 0
	if in.Marker != nil {
		last, err := s.marker.decode(list, *in.Marker)
		if err != nil {
			return nil, err
		}
		n, err := strconv.Atoi(last)
		if err != nil || n < 0 || n > len(k.meta.Materials) {
			return nil, errInvalidMarker()
		}
		start = n
	}
	limit := pageLimit(in.Limit, 100)
	out := &kmsapi.ListKeyRotationsOutput{Rotations: []kmsapi.RotationsListEntry{}, Truncated: ptr(false)}
	for i := start; i < len(k.meta.Materials); i++ {
		m := k.meta.Materials[i]
		if m.Rotation == "" && !all {
			continue
		}
		if len(out.Rotations) == limit {
			out.Truncated = ptr(true)
			out.NextMarker = ptr(s.marker.encode(list, strconv.Itoa(i)))
			break
		}
		e := kmsapi.RotationsListEntry{
			KeyId:            ptr(k.rec.ID),
			KeyMaterialId:    ptr(displayMaterialID(m.ID)),
			KeyMaterialState: "NON_CURRENT",
		}
		switch {
		case m.Pending && k.meta.MRK != nil:
			e.KeyMaterialState = "PENDING_ROTATION"
			everywhere, err := s.pendingEverywhere(ctx, s.reads, k, m.ID)
			if err != nil {
				return nil, err
			}
			if !everywhere {
				e.KeyMaterialState = "PENDING_MULTI_REGION_IMPORT_AND_ROTATION"
			}
		case m.Pending:
			e.KeyMaterialState = "PENDING_ROTATION"
		case m.ID == k.meta.Material:
			e.KeyMaterialState = "CURRENT"
		}
		if m.Rotation != "" {
			e.RotationDate = ptr(m.Created)
			e.RotationType = kmsapi.RotationType(m.Rotation)
		}
		if k.meta.Origin == originExternal {
			importedEntry(&e, &m)
		}
		out.Rotations = append(out.Rotations, e)
	}
	return out, nil
}

// importedEntry adds to a ListKeyRotations entry what AWS shows of an
// imported material: ImportState, its description, and while it is
// imported its ExpirationModel and ValidTo.
func importedEntry(e *kmsapi.RotationsListEntry, m *materialRef) {
	e.ImportState = "IMPORTED"
	if m.Absent {
		e.ImportState = "PENDING_IMPORT"
	}
	if m.Description != "" {
		e.KeyMaterialDescription = ptr(m.Description)
	}
	if !m.Absent {
		e.ExpirationModel = kmsapi.ExpirationModelType(m.Expiration)
		if m.ValidTo != nil {
			e.ValidTo = ptr(*m.ValidTo)
		}
	}
}

// RunJobs performs the background work that is due: writing the key uses
// noted since the last run (GetKeyLastUsage), deleting keys whose
// deletion window has passed (with their material and aliases) and
// automatic rotations. It is safe to call from several nodes at once: each
// due key is claimed and handled inside one transaction (job.RunDue), so
// each deletion and rotation happens once.
func (s *Service) RunJobs(ctx context.Context) error {
	if err := s.FlushKeyUsage(ctx); err != nil {
		return err
	}
	now := s.now().UTC()
	log := eventLog{newID: func() string { return newUUID(s.rand) }, record: s.serviceEventRecord}
	if _, err := job.RunDue(ctx, s.store, kindKey, now.Unix(), func(ctx context.Context, tx storage.Tx, rec *storage.Record) error {
		return s.runDueKey(ctx, tx, rec, now, &log)
	}); err != nil {
		// The events of a batch that did not commit are not true; those
		// of earlier batches are lost with them (a storage failure).
		return wrap("run jobs", err)
	}
	return s.recordServiceEvents(ctx, &log)
}

// runDueKey does the work due on one key, in the transaction that claimed
// it, and moves or clears its Due.
func (s *Service) runDueKey(ctx context.Context, tx storage.Tx, rec *storage.Record, now time.Time, log *eventLog) error {
	// The batch's records were read before its first key was handled,
	// and handling a key may change or delete a related one (a
	// multi-Region replica's deletion): read it again.
	rec, err := tx.Get(ctx, kindKey, rec.Scope, rec.ID)
	if errors.Is(err, storage.ErrNotFound) {
		return nil
	}
	if err != nil {
		return wrap("get due key", err)
	}
	k, err := decodeKey(rec)
	if err != nil {
		return err
	}
	if k.meta.State == statePendingDeletion && k.meta.Deletion != nil && !k.meta.Deletion.After(now) {
		if k.isReplica() {
			if err := s.replicaDeleted(ctx, tx, k, now); err != nil {
				return err
			}
		}
		if err := log.add(ctx, tx, k, "DeleteKey", *k.meta.Deletion, nil); err != nil {
			return err
		}
		return s.deleteKeyNow(ctx, tx, k)
	}
	if exp := k.meta.nextExpiry(); exp != nil && !exp.After(now) {
		if err := s.expireMaterials(ctx, tx, k, now, log); err != nil {
			return err
		}
	}
	if k.meta.RotationEnabled && k.meta.NextRotation != nil && !k.meta.NextRotation.After(now) {
		if k.meta.State == stateEnabled {
			previous := k.meta.Material
			if err := s.rotate(ctx, tx, k, *k.meta.NextRotation, "AUTOMATIC"); err != nil {
				return err
			}
			if err := log.add(ctx, tx, k, "RotateKey", *k.meta.NextRotation, rotationDetails(k, "AUTOMATIC", previous)); err != nil {
				return err
			}
		}
		next := *k.meta.NextRotation
		for !next.After(now) {
			next = next.Add(time.Duration(k.meta.RotationPeriod) * day)
		}
		k.meta.NextRotation = &next
	}
	// Due moves to the next work (or is cleared; a stale Due, e.g. one
	// written by an older version, is refreshed).
	return s.saveKey(ctx, tx, k)
}

// deleteKeyNow removes a key, its materials and the aliases pointing at it.
func (s *Service) deleteKeyNow(ctx context.Context, tx storage.Tx, k *key) error {
	scope := k.rec.Scope
	for _, kind := range []storage.Kind{kindMaterial, kindAlias, kindGrant} {
		recs, err := tx.List(ctx, kind, scope, storage.ListOptions{Parent: k.rec.ID})
		if err != nil {
			return err
		}
		for _, r := range recs {
			if err := tx.Delete(ctx, kind, scope, r.ID); err != nil && !errors.Is(err, storage.ErrNotFound) {
				return err
			}
		}
	}
	return tx.Delete(ctx, kindKey, scope, k.rec.ID)
}

// NextDue returns the Unix second at which the earliest background work on
// a key falls due (a deletion date, an automatic rotation), and false when
// none is scheduled. It may be in the past when RunJobs has not run since.
// The app's clock advance runs the jobs at each such time in turn.
func (s *Service) NextDue(ctx context.Context) (int64, bool, error) {
	var due int64
	err := s.store.View(ctx, func(r storage.Reader) error {
		recs, err := r.Due(ctx, kindKey, math.MaxInt64, 1)
		if err == nil && len(recs) == 1 {
			due = recs[0].Due
		}
		return err
	})
	if err != nil {
		return 0, false, wrap("next due key", err)
	}
	return due, due != 0, nil
}
