package kms

// Keys of origin EXTERNAL: CreateKey makes them without material (state
// PendingImport); GetParametersForImport hands out a wrapping public key
// and an import token (importwrap.go); ImportKeyMaterial unwraps the
// material, checks it fits the key and stores it sealed like any other;
// DeleteImportedKeyMaterial and the material's expiry remove it again.
//
// A symmetric encryption key may hold several imported materials (AWS's
// on-demand rotation of imported keys): ImportType NEW_KEY_MATERIAL adds
// one in PENDING_ROTATION, which RotateKeyOnDemand makes current; every
// other kind of key holds one material for life, which may only be
// imported again.

import (
	"context"
	"errors"
	"strconv"
	"time"

	"github.com/keyfort/keyfort/internal/awserr"
	"github.com/keyfort/keyfort/internal/iam"
	"github.com/keyfort/keyfort/internal/kms/kmsapi"
	"github.com/keyfort/keyfort/internal/partition"
	"github.com/keyfort/keyfort/internal/storage"
)

const (
	originExternal = "EXTERNAL"

	expires       = "KEY_MATERIAL_EXPIRES"
	doesNotExpire = "KEY_MATERIAL_DOES_NOT_EXPIRE"

	importNew      = "NEW_KEY_MATERIAL"
	importExisting = "EXISTING_KEY_MATERIAL"

	// maxValidTo is how far ahead ImportKeyMaterial's ValidTo may be.
	maxValidTo = 365 * day

	codeInvalidImportToken   = "InvalidImportTokenException"
	codeExpiredImportToken   = "ExpiredImportTokenException"
	codeIncorrectKeyMaterial = "IncorrectKeyMaterialException"
)

func errOrigin(arn, origin string) error {
	return awserr.Newf(codeUnsupported, "%s origin is %s which is not valid for this operation.", arn, origin)
}

// errMaterialAbsent answers a use of an imported material that was
// deleted or expired (the key is then PendingImport: its state check
// answers first).
func errMaterialAbsent(k *key) error { return errInvalidState(k.arn, statePendingImport) }

// GetParametersForImport returns a new RSA (or, in the China regions, SM2)
// wrapping public key and the import token that goes with it, valid for 24
// hours.
func (s *Service) GetParametersForImport(ctx context.Context, in *kmsapi.GetParametersForImportInput) (*kmsapi.GetParametersForImportOutput, error) {
	scope, _, err := scopeOf(ctx)
	if err != nil {
		return nil, err
	}
	alg, spec := string(in.WrappingAlgorithm), string(in.WrappingKeySpec)
	a := act(in.IAMAction())
	a.extra = iam.MapContext{"kms:wrappingalgorithm": {alg}, "kms:wrappingkeyspec": {spec}}
	k, err := s.lookupKey(ctx, scope, deref(in.KeyId), refKeyOnly, a)
	if err != nil {
		return nil, err
	}
	if k.meta.Origin != originExternal {
		return nil, errOrigin(k.arn, k.meta.Origin)
	}
	if pendingDeletion(k) {
		return nil, errInvalidState(k.arn, k.meta.State)
	}
	if err := checkWrapping(scope, alg, spec); err != nil {
		return nil, err
	}
	priv, err := s.newWrappingKey(spec)
	if err != nil {
		return nil, err
	}
	validTo := s.now().UTC().Add(importTokenLifetime).Truncate(time.Millisecond)
	token, err := s.sealToken(scope, k.rec.ID, &importToken{algorithm: alg, keySpec: spec, validTo: validTo, priv: priv})
	if err != nil {
		return nil, err
	}
	pub, err := publicKeyDER(priv)
	if err != nil {
		return nil, wrap("encode wrapping public key", err)
	}
	return &kmsapi.GetParametersForImportOutput{KeyId: ptr(k.arn), ImportToken: token, PublicKey: pub, ParametersValidTo: &validTo}, nil
}

// checkWrapping refuses the wrapping algorithms and wrapping key specs
// AWS does not offer together or here: RSAES_PKCS1_V1_5 (retired by AWS on
// October 10, 2023), SM2PKE only with SM2 and only in the China Regions,
// where the RSA_AES_KEY_WRAP algorithms are not offered. Which material an
// algorithm can carry is not checked here: material too long for RSAES_OAEP
// (an RSA private key) cannot be wrapped by the client at all.
func checkWrapping(scope storage.Scope, alg, spec string) error {
	china := partition.IsChina(scope.Region)
	switch {
	case alg == wrapPKCS1:
		return errValidation("The RSAES_PKCS1_V1_5 wrapping algorithm is no longer supported. Use RSAES_OAEP_SHA_256 or RSA_AES_KEY_WRAP_SHA_256.")
	case (alg == wrapSM2PKE) != (spec == wrapSpecSM2):
		return errValidation("The wrapping algorithm %s is not compatible with the wrapping key spec %s.", alg, spec)
	case alg == wrapSM2PKE && !china:
		return errValidation("The SM2PKE wrapping algorithm and the SM2 wrapping key spec are supported only in the China Regions.")
	case china && (alg == wrapAESSHA1 || alg == wrapAESSHA256):
		return errValidation("The %s wrapping algorithm is not supported in the China Regions.", alg)
	}
	return nil
}

// ImportKeyMaterial imports key material, wrapped under the public key of
// a GetParametersForImport call, into a key of origin EXTERNAL.
func (s *Service) ImportKeyMaterial(ctx context.Context, in *kmsapi.ImportKeyMaterialInput) (*kmsapi.ImportKeyMaterialOutput, error) {
	scope, _, err := scopeOf(ctx)
	if err != nil {
		return nil, err
	}
	now := s.now().UTC()
	model := string(in.ExpirationModel)
	if model == "" {
		model = expires
	}
	switch {
	case model == expires && in.ValidTo == nil:
		return nil, errValidation("A validTo date must be set if the ExpirationModel is KEY_MATERIAL_EXPIRES")
	case model == doesNotExpire && in.ValidTo != nil:
		return nil, errValidation("A validTo date must not be set if the ExpirationModel is KEY_MATERIAL_DOES_NOT_EXPIRE")
	case in.ValidTo != nil && !in.ValidTo.After(now):
		return nil, errValidation("The validTo date must be in the future.")
	case in.ValidTo != nil && in.ValidTo.After(now.Add(maxValidTo)):
		return nil, errValidation("The validTo date must be no more than 365 days in the future.")
	case in.ImportType == importNew && in.KeyMaterialId != nil:
		return nil, errValidation("You cannot specify a KeyMaterialId when ImportType is NEW_KEY_MATERIAL.")
	}
	a := act(in.IAMAction())
	a.extra = iam.MapContext{"kms:expirationmodel": {model}}
	if in.ValidTo != nil {
		a.extra["kms:validto"] = []string{strconv.FormatInt(in.ValidTo.Unix(), 10)}
	}
	var matID string
	k, err := s.updateKey(ctx, a, in.KeyId, func(tx storage.Tx, k *key) error {
		if k.meta.Origin != originExternal {
			return errOrigin(k.arn, k.meta.Origin)
		}
		if pendingDeletion(k) {
			return errInvalidState(k.arn, k.meta.State)
		}
		symmetric := k.meta.Spec == specSymmetric
		if !symmetric && (in.ImportType != "" || in.KeyMaterialId != nil || in.KeyMaterialDescription != nil) {
			return errValidation("ImportType, KeyMaterialId and KeyMaterialDescription are valid only for symmetric encryption keys.")
		}
		if k.isReplica() && in.ImportType == importNew {
			return errValidation("Import new key material into the primary key first; import it into %s, a multi-Region replica key, with ImportType EXISTING_KEY_MATERIAL.", k.arn)
		}
		if k.isReplica() && in.KeyMaterialDescription != nil {
			return errValidation("A key material's description is set on the primary key; %s is a multi-Region replica key.", k.arn)
		}
		t, ok := s.openToken(scope, k.rec.ID, in.ImportToken)
		if !ok {
			return awserr.New(codeInvalidImportToken, "The import token is not valid for "+k.arn+".")
		}
		if !now.Before(t.validTo) {
			return awserr.Newf(codeExpiredImportToken, "The import token expired at %s. Call GetParametersForImport for a new one.", t.validTo.Format(time.RFC3339))
		}
		raw, err := unwrapMaterial(t, in.EncryptedKeyMaterial)
		if err != nil {
			return errInvalidCiphertext()
		}
		defer clear(raw)
		material, public, ok := importedMaterial(k.meta.Spec, raw)
		if !ok {
			return awserr.Newf(codeIncorrectKeyMaterial, "The key material is not valid key material for %s, whose key spec is %s.", k.arn, k.meta.Spec)
		}
		defer clear(material)
		matID = importedMaterialID(k.rec.ID, material)
		return s.importMaterial(ctx, tx, k, in, model, matID, material, public, now)
	})
	if err != nil {
		return nil, err
	}
	return &kmsapi.ImportKeyMaterialOutput{KeyId: ptr(k.arn), KeyMaterialId: ptr(displayMaterialID(matID))}, nil
}

// importMaterial records material matID in k (read in tx) as in asks.
func (s *Service) importMaterial(ctx context.Context, tx storage.Tx, k *key, in *kmsapi.ImportKeyMaterialInput, model, matID string, material, public []byte, now time.Time) error {
	m := &k.meta
	importType := string(in.ImportType)
	if importType == "" {
		importType = importExisting
		if len(m.Materials) == 0 {
			importType = importNew
		}
	}
	ref := m.materialRef(matID)
	if in.KeyMaterialId != nil && (ref == nil || *in.KeyMaterialId != displayMaterialID(matID)) {
		return awserr.Newf(codeIncorrectKeyMaterial, "The key material does not match KeyMaterialId %s of %s.", *in.KeyMaterialId, k.arn)
	}
	switch {
	case importType == importNew && ref != nil:
		return awserr.Newf(codeIncorrectKeyMaterial, "The key material is already associated with %s. Import it with ImportType EXISTING_KEY_MATERIAL.", k.arn)
	case importType == importNew && len(m.Materials) > 0 && m.Spec != specSymmetric:
		return errDifferentMaterial(k)
	case importType == importNew:
		for _, r := range m.Materials {
			if r.Pending {
				return awserr.Newf(codeInvalidState, "New key material (id: %s) cannot be imported into KMS key %s, because another key material (id: %s) is pending rotation.",
					displayMaterialID(matID), k.arn, displayMaterialID(r.ID))
			}
		}
	case ref == nil:
		return errDifferentMaterial(k)
	}
	if ref == nil || ref.Absent {
		if err := s.insertMaterial(ctx, tx, k.rec.Scope, k.rec.ID, matID, material, now); err != nil {
			return err
		}
	}
	if ref == nil {
		m.Materials = append(m.Materials, materialRef{ID: matID, Created: now, Pending: len(m.Materials) > 0})
		ref = &m.Materials[len(m.Materials)-1]
		if !ref.Pending {
			m.Material = matID
		}
	}
	ref.Absent = false
	ref.PublicKey = public
	ref.Expiration = model
	ref.ValidTo = nil
	if in.ValidTo != nil {
		v := in.ValidTo.UTC()
		ref.ValidTo = &v
	}
	if in.KeyMaterialDescription != nil {
		ref.Description = *in.KeyMaterialDescription
	}
	m.refreshImportState()
	if k.isPrimary() {
		return s.importedOnPrimary(ctx, tx, k, ref)
	}
	return nil
}

// importedOnPrimary tells the replicas of the multi-Region primary k (read
// in tx) of material ref imported into it: new material pending rotation
// is associated with every replica, waiting to be imported there
// (PENDING_MULTI_REGION_IMPORT_AND_ROTATION); a description reaches them
// all.
func (s *Service) importedOnPrimary(ctx context.Context, tx storage.Tx, k *key, ref *materialRef) error {
	rel, err := related(ctx, tx, k)
	if err != nil {
		return err
	}
	for _, r := range rel {
		if rr := r.meta.materialRef(ref.ID); rr != nil {
			rr.Description = ref.Description
		} else if ref.Pending {
			r.meta.Materials = append(r.meta.Materials, materialRef{ID: ref.ID, Created: ref.Created, Pending: true, Absent: true, Description: ref.Description})
		} else {
			continue
		}
		if err := s.saveKey(ctx, tx, r); err != nil {
			return err
		}
	}
	return nil
}

// pendingEverywhere reports whether material id, pending rotation in the
// multi-Region key k, is imported into every related key (then it is
// PENDING_ROTATION, else PENDING_MULTI_REGION_IMPORT_AND_ROTATION).
func (s *Service) pendingEverywhere(ctx context.Context, g getter, k *key, id string) (bool, error) {
	for _, region := range k.meta.MRK.regions() {
		r := k
		if region != k.rec.Scope.Region {
			var err error
			if r, err = getKey(ctx, g, inRegion(k.rec.Scope, region), k.rec.ID); err != nil {
				return false, err
			}
		}
		if ref := r.meta.materialRef(id); ref == nil || ref.Absent {
			return false, nil
		}
	}
	return true, nil
}

func errDifferentMaterial(k *key) error {
	return awserr.Newf(codeIncorrectKeyMaterial, "The key material is not the key material previously imported into %s.", k.arn)
}

// imported reports whether the key holds every material permanently
// associated with it (all but one pending rotation), and at least one.
func (m *keyMeta) imported() bool {
	n := 0
	for _, r := range m.Materials {
		if r.Absent && !r.Pending {
			return false
		}
		if !r.Pending {
			n++
		}
	}
	return n > 0
}

// expiration is what DescribeKey shows of an imported key's expiry: the
// earliest time at which a material permanently associated with it
// expires (AWS's ValidTo), and KEY_MATERIAL_EXPIRES when there is one.
func (m *keyMeta) expiration() (kmsapi.ExpirationModelType, *time.Time) {
	var t *time.Time
	for _, r := range m.Materials {
		if r.ValidTo != nil && !r.Pending && (t == nil || r.ValidTo.Before(*t)) {
			v := *r.ValidTo
			t = &v
		}
	}
	if t == nil {
		return doesNotExpire, nil
	}
	return expires, t
}

// refreshImportState moves a key of origin EXTERNAL between PendingImport
// and the usable states as its materials come and go: it is PendingImport
// while any material permanently associated with it is absent (AWS: "If
// any one of these key materials is deleted or allowed to expire, the KMS
// key state changes to PendingImport") and Enabled once all are imported
// again. A key pending deletion keeps its state.
func (m *keyMeta) refreshImportState() {
	switch {
	case m.Origin != originExternal || m.State == statePendingDeletion || m.State == statePendingReplicaDeletion:
	case m.State == statePendingImport && m.imported():
		m.State = stateEnabled
	case m.State != statePendingImport && !m.imported():
		m.State = statePendingImport
	}
}

// DeleteImportedKeyMaterial deletes imported key material (the current one
// unless KeyMaterialId names another). Without its current material the
// key is PendingImport until the same material is imported again.
func (s *Service) DeleteImportedKeyMaterial(ctx context.Context, in *kmsapi.DeleteImportedKeyMaterialInput) (*kmsapi.DeleteImportedKeyMaterialOutput, error) {
	var deleted string
	k, err := s.updateKey(ctx, act(in.IAMAction()), in.KeyId, func(tx storage.Tx, k *key) error {
		if k.meta.Origin != originExternal {
			return errOrigin(k.arn, k.meta.Origin)
		}
		ref := k.meta.materialRef(k.meta.Material)
		if in.KeyMaterialId != nil {
			ref = nil
			for i := range k.meta.Materials {
				if displayMaterialID(k.meta.Materials[i].ID) == *in.KeyMaterialId {
					ref = &k.meta.Materials[i]
				}
			}
			if ref == nil {
				return awserr.Newf(codeNotFound, "Key material %s does not exist for %s.", *in.KeyMaterialId, k.arn)
			}
		}
		if ref == nil || ref.Absent {
			// Nothing to delete: the key is PendingImport (or the
			// material already gone); AWS answers 200.
			if ref != nil {
				deleted = ref.ID
			}
			return errNoChange
		}
		deleted = ref.ID
		return s.removeMaterial(ctx, tx, k, ref)
	})
	if err != nil {
		return nil, err
	}
	out := &kmsapi.DeleteImportedKeyMaterialOutput{KeyId: ptr(k.arn)}
	if deleted != "" {
		out.KeyMaterialId = ptr(displayMaterialID(deleted))
	}
	return out, nil
}

// removeMaterial deletes the record of imported material ref of k (read in
// tx). A material pending rotation is then no longer associated with the
// key; any other stays listed, absent, and the key is PendingImport until
// it is imported again.
func (s *Service) removeMaterial(ctx context.Context, tx storage.Tx, k *key, ref *materialRef) error {
	id := ref.ID
	if err := tx.Delete(ctx, kindMaterial, k.rec.Scope, materialRecordID(k.rec.ID, id)); err != nil {
		return wrap("delete material", err)
	}
	switch {
	case ref.Pending && k.isReplica():
		// Still associated through the primary: to be imported again.
		ref.Absent = true
		ref.ValidTo = nil
		ref.Expiration = ""
	case ref.Pending:
		k.meta.dropMaterial(id)
		if k.isPrimary() {
			if err := s.dropFromReplicas(ctx, tx, k, id); err != nil {
				return err
			}
		}
	default:
		ref.Absent = true
		ref.ValidTo = nil
		ref.Expiration = ""
	}
	k.meta.refreshImportState()
	if raw, err := hexID(id); err == nil {
		s.cache.Delete(raw)
	}
	return nil
}

// dropMaterial takes material id out of the key's list.
func (m *keyMeta) dropMaterial(id string) {
	kept := m.Materials[:0]
	for _, r := range m.Materials {
		if r.ID != id {
			kept = append(kept, r)
		}
	}
	m.Materials = kept
}

// dropFromReplicas deletes material id, pending rotation, from every
// replica of the primary k: deleting it on the primary deletes it there.
func (s *Service) dropFromReplicas(ctx context.Context, tx storage.Tx, k *key, id string) error {
	rel, err := related(ctx, tx, k)
	if err != nil {
		return err
	}
	for _, r := range rel {
		if r.meta.materialRef(id) == nil {
			continue
		}
		if err := tx.Delete(ctx, kindMaterial, r.rec.Scope, materialRecordID(r.rec.ID, id)); err != nil && !errors.Is(err, storage.ErrNotFound) {
			return wrap("delete material", err)
		}
		r.meta.dropMaterial(id)
		if err := s.saveKey(ctx, tx, r); err != nil {
			return err
		}
	}
	return nil
}

// expireMaterials removes the imported materials of k whose ValidTo is not
// after now (the background job; AWS deletes expired material).
func (s *Service) expireMaterials(ctx context.Context, tx storage.Tx, k *key, now time.Time, log *eventLog) error {
	var due []materialRef
	for _, r := range k.meta.Materials {
		if r.ValidTo != nil && !r.Absent && !r.ValidTo.After(now) {
			due = append(due, r)
		}
	}
	for _, r := range due {
		if err := s.removeMaterial(ctx, tx, k, k.meta.materialRef(r.ID)); err != nil {
			return err
		}
		if err := log.add(ctx, tx, k, "DeleteExpiredKeyMaterial", *r.ValidTo, expiredDetails(k, r.ID)); err != nil {
			return err
		}
	}
	return nil
}
