package kms

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strconv"
	"time"

	"github.com/keyfort/keyfort/internal/awserr"
	"github.com/keyfort/keyfort/internal/envelope"
	"github.com/keyfort/keyfort/internal/iam"
	"github.com/keyfort/keyfort/internal/keymaterial"
	"github.com/keyfort/keyfort/internal/kms/kmsapi"
	"github.com/keyfort/keyfort/internal/storage"
)

const (
	managerCustomer = "CUSTOMER"
	managerAWS      = "AWS"

	specSymmetric        = "SYMMETRIC_DEFAULT"
	usageEncrypt         = "ENCRYPT_DECRYPT"
	originAWSKMS         = "AWS_KMS"
	defaultWindow        = 30
	defaultRotation      = 365
	maxOnDemandRotations = 25 // AWS raised the quota from 10 to 25 (not adjustable)
)

// saveKey writes a loaded key back with its revision check.
func (s *Service) saveKey(ctx context.Context, tx storage.Tx, k *key) error {
	if err := k.encode(); err != nil {
		return err
	}
	return tx.Update(ctx, k.rec)
}

// materialAAD is the sealed-record identity of one key material.
func materialAAD(scope storage.Scope, recID string) envelope.AAD {
	return envelope.AAD{Kind: string(kindMaterial), Account: scope.Account, Region: scope.Region, ID: recID, Version: 1, Column: "material"}
}

func materialRecordID(keyID, matID string) string { return keyID + "/" + matID }

// newMaterial creates, seals and inserts a new key material for keyID and
// returns its id (32 hex characters).
func (s *Service) newMaterial(ctx context.Context, tx storage.Tx, scope storage.Scope, keyID, spec string, now time.Time) (string, error) {
	raw, err := s.randomMaterial(spec)
	if err != nil {
		return "", err
	}
	defer clear(raw)
	mid, err := keymaterial.NewMaterialID(s.rand)
	if err != nil {
		return "", wrap("new material id", err)
	}
	matID := hex.EncodeToString(mid[:])
	if err := s.insertMaterial(ctx, tx, scope, keyID, matID, raw, now); err != nil {
		return "", err
	}
	return matID, nil
}

// randomMaterial makes the material of a new key of spec: random bytes for
// symmetric and HMAC keys, the private key as PKCS#8 DER for asymmetric
// keys.
func (s *Service) randomMaterial(spec string) ([]byte, error) {
	var raw []byte
	var err error
	if privateKeyKind(spec) != "" {
		raw, err = newPrivateKey(s.rand, spec)
	} else {
		size := keymaterial.MaterialSize
		if row, ok := keySpecs[spec]; ok && row.materialSize > 0 {
			size = row.materialSize
		}
		raw, err = keymaterial.NewMaterialOfSize(s.rand, size)
	}
	if err != nil {
		return nil, wrap("new material", err)
	}
	return raw, nil
}

// insertMaterial seals raw and inserts it as material matID of keyID.
func (s *Service) insertMaterial(ctx context.Context, tx storage.Tx, scope storage.Scope, keyID, matID string, raw []byte, now time.Time) error {
	recID := materialRecordID(keyID, matID)
	var sealed []byte
	var err error
	if s.sealKey == nil {
		sealed, err = s.sealer.Seal(materialAAD(scope, recID), raw)
	} else {
		var id [8]byte
		if id, err = s.sealKey(ctx, tx); err != nil {
			return wrap("seal material", err)
		}
		sealed, err = s.sealer.SealUnder(id, materialAAD(scope, recID), raw)
	}
	if err != nil {
		return wrap("seal material", err)
	}
	rec := &storage.Record{Kind: kindMaterial, Scope: scope, ID: recID, Parent: keyID, Created: now.UnixNano(), Data: []byte("{}"), Sealed: sealed}
	if err := tx.Insert(ctx, rec); err != nil {
		return wrap("insert material", err)
	}
	return nil
}

// displayMaterialID is the 64-hex-character KeyMaterialId AWS shows for a
// material (SHA-256 of the internal 16-byte id).
func displayMaterialID(matID string) string {
	// A material id's 16 bytes are decoded without allocating; anything
	// longer as before.
	var buf [16]byte
	var b []byte
	if len(matID) <= 2*len(buf) {
		n, _ := hex.Decode(buf[:], []byte(matID))
		b = buf[:n]
	} else {
		b, _ = hex.DecodeString(matID)
	}
	sum := sha256.Sum256(b)
	var out [2 * sha256.Size]byte // hex.EncodeToString's buffer escapes
	hex.Encode(out[:], sum[:])
	return string(out[:])
}

// createKey inserts a new key with its first material (none for a key of
// origin EXTERNAL, which waits for ImportKeyMaterial).
func (s *Service) createKey(ctx context.Context, tx storage.Tx, scope storage.Scope, meta keyMeta) (*key, error) {
	now := meta.Created
	id := meta.ID
	if id == "" {
		if id = newUUID(s.rand); id == "" {
			return nil, errors.New("kms: cannot read randomness")
		}
	}
	meta.ID = id
	if meta.Origin != originExternal {
		matID, err := s.newMaterial(ctx, tx, scope, id, meta.Spec, now)
		if err != nil {
			return nil, err
		}
		meta.Material = matID
		meta.Materials = []materialRef{{ID: matID, Created: now}}
	}
	k := &key{rec: &storage.Record{Kind: kindKey, Scope: scope, ID: id, Created: now.UnixNano()}, meta: meta, arn: keyARN(scope, id)}
	if meta.XKS != nil {
		// A key store's keys are one indexed query (markStoreKeys,
		// DeleteCustomKeyStore).
		k.rec.Parent = meta.XKS.Store
	}
	if err := k.encode(); err != nil {
		return nil, err
	}
	if err := tx.Insert(ctx, k.rec); err != nil {
		return nil, wrap("insert key", err)
	}
	return k, nil
}

// CreateKey creates a customer managed symmetric encryption key.
func (s *Service) CreateKey(ctx context.Context, in *kmsapi.CreateKeyInput) (*kmsapi.CreateKeyOutput, error) {
	scope, _, err := scopeOf(ctx)
	if err != nil {
		return nil, err
	}
	spec := string(in.KeySpec)
	if in.CustomerMasterKeySpec != "" {
		if spec != "" {
			return nil, errValidation("You cannot specify KeySpec and CustomerMasterKeySpec in the same request. CustomerMasterKeySpec parameter is deprecated. Use KeySpec instead.")
		}
		spec = string(in.CustomerMasterKeySpec)
	}
	if spec == "" {
		spec = specSymmetric
	}
	usage := string(in.KeyUsage)
	if usage == "" {
		usage = usageEncrypt
	}
	origin := string(in.Origin)
	if origin == "" {
		origin = originAWSKMS
	}
	a := &access{action: in.IAMAction(), extra: iam.MapContext{
		"kms:keyspec":                        {spec},
		"kms:customermasterkeyspec":          {spec},
		"kms:keyusage":                       {usage},
		"kms:customermasterkeyusage":         {usage},
		"kms:keyorigin":                      {origin},
		"kms:multiregion":                    {strconv.FormatBool(deref(in.MultiRegion))},
		"kms:multiregionkeytype":             multiRegionKeyType(deref(in.MultiRegion)),
		"kms:bypasspolicylockoutsafetycheck": {strconv.FormatBool(deref(in.BypassPolicyLockoutSafetyCheck))},
	}}
	if in.Tags != nil {
		a.tags = requestTags(in.Tags)
	}
	if err := s.authorizeAccount(ctx, a); err != nil {
		return nil, err
	}
	var xksKey *xksRef
	switch {
	case origin == originExternalKeyStore:
		if xksKey, err = s.checkExternalKey(ctx, scope, in, spec, usage); err != nil {
			return nil, err
		}
	case in.CustomKeyStoreId != nil:
		// Every custom key store Keyfort has is an external key store.
		if _, err := s.getKeyStore(ctx, nil, scope, *in.CustomKeyStoreId); err != nil {
			return nil, err
		}
		return nil, errValidation("Origin %s is not valid for custom key store %s, an external key store: use Origin EXTERNAL_KEY_STORE.", origin, *in.CustomKeyStoreId)
	case origin == "AWS_CLOUDHSM":
		return nil, errValidation("Origin %s requires a CustomKeyStoreId.", origin)
	case in.XksKeyId != nil:
		return nil, errValidation("XksKeyId is only valid with Origin EXTERNAL_KEY_STORE.")
	case !keySpecs[spec].allows(usage):
		return nil, errValidation("KeyUsage %s is not compatible with KeySpec %s", usage, spec)
	case keySpecs[spec].chinaOnly && !sm2Allowed(scope.Region):
		return nil, errSM2Region()
	case !keySpecs[spec].makes(usage):
		return nil, awserr.Newf(codeUnsupported, "Keyfort does not support KeySpec %s with KeyUsage %s yet.", spec, usage)
	case origin == originExternal && privateKeyKind(spec) == "mldsa":
		// The developer guide: "Importing ML-DSA keys is not supported."
		return nil, awserr.New(codeUnsupported, "Importing ML-DSA keys is not supported.")
	case origin != originAWSKMS && origin != originExternal && origin != originExternalKeyStore:
		return nil, awserr.Newf(codeUnsupported, "Keyfort does not support Origin %s yet.", origin)
	}
	tags, err := newKeyTags(in.Tags)
	if err != nil {
		return nil, err
	}
	now := s.now().UTC()
	id := newUUID(s.rand)
	var mrk *mrkConfig
	if deref(in.MultiRegion) {
		id, mrk = newMultiRegionID(s.rand), &mrkConfig{Primary: scope.Region}
	}
	if id == "" {
		return nil, errors.New("kms: cannot read randomness")
	}
	state := stateEnabled
	if origin == originExternal {
		state = statePendingImport
	}
	meta := keyMeta{
		ID:          id,
		Created:     now,
		Description: deref(in.Description),
		State:       state,
		Usage:       usage,
		Spec:        spec,
		Origin:      origin,
		Manager:     managerCustomer,
		Tags:        tags,
		MRK:         mrk,
		XKS:         xksKey,
	}
	if in.Policy != nil {
		p, err := parseKeyPolicy(*in.Policy)
		if err != nil {
			return nil, err
		}
		if !deref(in.BypassPolicyLockoutSafetyCheck) {
			draft := &key{rec: &storage.Record{Kind: kindKey, Scope: scope, ID: id}, meta: meta, arn: keyARN(scope, id)}
			if err := s.checkLockout(ctx, p, draft); err != nil {
				return nil, err
			}
		}
		meta.Policy = *in.Policy
	}
	var k *key
	err = s.store.Update(ctx, func(tx storage.Tx) error {
		var err error
		if xksKey != nil {
			if err := s.recheckExternalKey(ctx, tx, scope, xksKey); err != nil {
				return err
			}
		}
		if k, err = s.createKey(ctx, tx, scope, meta); err != nil {
			return err
		}
		// Named before the commit: the event that commits with the key
		// names it.
		k.audit(ctx)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &kmsapi.CreateKeyOutput{KeyMetadata: k.metadata()}, nil
}

// newKeyTags checks the Tags of a key being made (CreateKey, ReplicateKey)
// and returns them as stored.
func newKeyTags(in []kmsapi.Tag) ([]tag, error) {
	if err := checkNewTags(in); err != nil {
		return nil, err
	}
	if len(in) > maxTagsPerKey {
		// CreateKey answers TagException here, not LimitExceededException
		// (snapshot test_create_key_with_too_many_tags_raises_error).
		return nil, errTooManyTags()
	}
	return mergeTags(nil, in)
}

// multiRegionKeyType is CreateKey's kms:MultiRegionKeyType: PRIMARY for a
// multi-Region key, absent otherwise.
func multiRegionKeyType(multiRegion bool) []string {
	if multiRegion {
		return []string{"PRIMARY"}
	}
	return nil
}

// metadata renders the KeyMetadata AWS returns for a key.
func (k *key) metadata() *kmsapi.KeyMetadata {
	m := &k.meta
	md := &kmsapi.KeyMetadata{
		AWSAccountId:          ptr(k.rec.Scope.Account),
		KeyId:                 ptr(k.rec.ID),
		Arn:                   ptr(k.arn),
		CreationDate:          ptr(m.Created),
		Enabled:               ptr(m.shownState() == stateEnabled),
		Description:           ptr(m.Description),
		KeyUsage:              kmsapi.KeyUsageType(m.Usage),
		KeyState:              kmsapi.KeyState(m.shownState()),
		Origin:                kmsapi.OriginType(m.Origin),
		KeyManager:            kmsapi.KeyManagerType(m.Manager),
		CustomerMasterKeySpec: kmsapi.CustomerMasterKeySpec(m.Spec),
		KeySpec:               kmsapi.KeySpec(m.Spec),
		MultiRegion:           ptr(m.MRK != nil),
	}
	if m.MRK != nil {
		md.MultiRegionConfiguration = k.multiRegionConfiguration()
	}
	if m.XKS != nil {
		md.CustomKeyStoreId = ptr(m.XKS.Store)
		md.XksKeyConfiguration = &kmsapi.XksKeyConfigurationType{Id: ptr(m.XKS.KeyID)}
	}
	enc, sign, mac, agree := specOf(k).algorithms(m.Usage)
	md.EncryptionAlgorithms = enumList[kmsapi.EncryptionAlgorithmSpec](enc)
	md.SigningAlgorithms = enumList[kmsapi.SigningAlgorithmSpec](sign)
	md.MacAlgorithms = enumList[kmsapi.MacAlgorithmSpec](mac)
	md.KeyAgreementAlgorithms = enumList[kmsapi.KeyAgreementAlgorithmSpec](agree)
	// PendingDeletionWindowInDays is AWS's only for a multi-Region primary
	// key in PendingReplicaDeletion; a regular key shows only DeletionDate.
	if m.State == statePendingDeletion && m.Deletion != nil {
		md.DeletionDate = ptr(*m.Deletion)
	}
	if m.State == statePendingReplicaDeletion {
		md.PendingDeletionWindowInDays = ptr(m.Window)
	}
	// AWS shows CurrentKeyMaterialId for every symmetric key, whatever its
	// state, once it has material.
	if m.Material != "" && m.Spec == specSymmetric {
		md.CurrentKeyMaterialId = ptr(displayMaterialID(m.Material))
	}
	if m.Origin == originExternal && m.imported() {
		md.ExpirationModel, md.ValidTo = m.expiration()
	}
	return md
}

// DescribeKey returns a key's metadata; aliases are accepted.
func (s *Service) DescribeKey(ctx context.Context, in *kmsapi.DescribeKeyInput) (*kmsapi.DescribeKeyOutput, error) {
	scope, _, err := scopeOf(ctx)
	if err != nil {
		return nil, err
	}
	id := deref(in.KeyId)
	k, err := s.resolveOrManaged(ctx, scope, id, &access{action: in.IAMAction(), tokens: in.GrantTokens})
	if err != nil {
		return nil, err
	}
	return &kmsapi.DescribeKeyOutput{KeyMetadata: k.metadata()}, nil
}

// ListKeys pages through the keys of the account and region, by key id.
func (s *Service) ListKeys(ctx context.Context, in *kmsapi.ListKeysInput) (*kmsapi.ListKeysOutput, error) {
	scope, _, err := scopeOf(ctx)
	if err != nil {
		return nil, err
	}
	if err := s.authorizeAccount(ctx, act(in.IAMAction())); err != nil {
		return nil, err
	}
	after := ""
	if in.Marker != nil {
		if after, err = s.marker.decode("keys", *in.Marker); err != nil {
			return nil, err
		}
	}
	limit := pageLimit(in.Limit, 100)
	ids, err := s.listKeyIDs(ctx, scope, after, limit+1)
	if err != nil {
		return nil, err
	}
	n := min(len(ids), limit)
	out := &kmsapi.ListKeysOutput{Keys: make([]kmsapi.KeyListEntry, 0, n), Truncated: ptr(false)}
	strs := newPool[string](2 * n)
	arns := prefixed(keyARN(scope, ""), ids[:n])
	for i, id := range ids {
		if i == limit {
			out.Truncated = ptr(true)
			out.NextMarker = ptr(s.marker.encode("keys", ids[i-1]))
			break
		}
		out.Keys = append(out.Keys, kmsapi.KeyListEntry{KeyId: strs.ptr(id), KeyArn: strs.ptr(arns[i])})
	}
	return out, nil
}

// updateKey runs fn on a key (key id or ARN) in a read-write transaction,
// once a is authorized on it. fn may write other records through tx (e.g.
// a new key material); it returns errNoChange when nothing is to be
// written.
func (s *Service) updateKey(ctx context.Context, a *access, keyID *string, fn func(tx storage.Tx, k *key) error) (*key, error) {
	scope, _, err := scopeOf(ctx)
	if err != nil {
		return nil, err
	}
	var out *key
	err = s.store.Update(ctx, func(tx storage.Tx) error {
		k, err := resolveKey(ctx, tx, scope, deref(keyID), refKeyOnly)
		if err != nil {
			return err
		}
		if err := s.authorize(ctx, tx, k, a); err != nil {
			return err
		}
		if err := fn(tx, k); err != nil {
			if errors.Is(err, errNoChange) {
				out = k
				return nil
			}
			return err
		}
		out = k
		return s.saveKey(ctx, tx, k)
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// errNoChange tells updateKey that fn changed nothing and nothing is written.
var errNoChange = errors.New("kms: no change")

func refuseManaged(k *key) error {
	if k.meta.Manager == managerAWS {
		return awserr.Newf(awserr.CodeAccessDenied, "You cannot perform this operation on an AWS managed key: %s", k.arn)
	}
	return nil
}

// EnableKey sets a key's state to Enabled.
func (s *Service) EnableKey(ctx context.Context, in *kmsapi.EnableKeyInput) (*kmsapi.EnableKeyOutput, error) {
	k, err := s.updateKey(ctx, act(in.IAMAction()), in.KeyId, func(_ storage.Tx, k *key) error {
		if err := refuseManaged(k); err != nil {
			return err
		}
		switch k.meta.State {
		case stateEnabled:
			return errNoChange
		case stateDisabled:
			k.meta.State = stateEnabled
			return nil
		default:
			return errInvalidState(k.arn, k.meta.State)
		}
	})
	if err != nil {
		return nil, err
	}
	auditKeyIDResponse(ctx, k.arn)
	return &kmsapi.EnableKeyOutput{}, nil
}

// DisableKey sets a key's state to Disabled.
func (s *Service) DisableKey(ctx context.Context, in *kmsapi.DisableKeyInput) (*kmsapi.DisableKeyOutput, error) {
	k, err := s.updateKey(ctx, act(in.IAMAction()), in.KeyId, func(_ storage.Tx, k *key) error {
		if err := refuseManaged(k); err != nil {
			return err
		}
		switch k.meta.State {
		case stateDisabled:
			return errNoChange
		case stateEnabled:
			k.meta.State = stateDisabled
			return nil
		default:
			return errInvalidState(k.arn, k.meta.State)
		}
	})
	if err != nil {
		return nil, err
	}
	auditKeyIDResponse(ctx, k.arn)
	return &kmsapi.DisableKeyOutput{}, nil
}

// ScheduleKeyDeletion puts a key in PendingDeletion for 7-30 days.
func (s *Service) ScheduleKeyDeletion(ctx context.Context, in *kmsapi.ScheduleKeyDeletionInput) (*kmsapi.ScheduleKeyDeletionOutput, error) {
	window := int32(defaultWindow)
	if in.PendingWindowInDays != nil {
		window = *in.PendingWindowInDays
		if window < 7 {
			return nil, errValidation("1 validation error detected: Value '%d' at 'pendingWindowInDays' failed to satisfy constraint: Member must have value greater than or equal to 7", window)
		}
		if window > 30 {
			return nil, errValidation("1 validation error detected: Value '%d' at 'pendingWindowInDays' failed to satisfy constraint: Member must have value less than or equal to 30", window)
		}
	}
	now := s.now().UTC()
	a := act(in.IAMAction())
	a.extra = iam.MapContext{"kms:schedulekeydeletionpendingwindowindays": {strconv.Itoa(int(window))}}
	k, err := s.updateKey(ctx, a, in.KeyId, func(_ storage.Tx, k *key) error {
		if err := refuseManaged(k); err != nil {
			return err
		}
		if pendingDeletion(k) {
			return errInvalidState(k.arn, k.meta.State)
		}
		k.meta.Window = window
		if k.isPrimary() && len(k.meta.MRK.Replicas) > 0 {
			// The waiting period starts when the last replica is
			// deleted (replicaDeleted).
			k.meta.State = statePendingReplicaDeletion
			return nil
		}
		del := now.Add(time.Duration(window) * 24 * time.Hour)
		k.meta.State = statePendingDeletion
		k.meta.Deletion = &del
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &kmsapi.ScheduleKeyDeletionOutput{
		KeyId:               ptr(k.arn),
		DeletionDate:        k.meta.Deletion,
		KeyState:            kmsapi.KeyState(k.meta.State),
		PendingWindowInDays: ptr(window),
	}, nil
}

// CancelKeyDeletion returns a key pending deletion to Disabled.
func (s *Service) CancelKeyDeletion(ctx context.Context, in *kmsapi.CancelKeyDeletionInput) (*kmsapi.CancelKeyDeletionOutput, error) {
	k, err := s.updateKey(ctx, act(in.IAMAction()), in.KeyId, func(_ storage.Tx, k *key) error {
		if err := refuseManaged(k); err != nil {
			return err
		}
		if k.meta.State != statePendingDeletion && k.meta.State != statePendingReplicaDeletion {
			return awserr.Newf(codeInvalidState, "%s is not pending deletion.", k.arn)
		}
		k.meta.State = stateDisabled
		k.meta.Deletion = nil
		k.meta.Window = 0
		// A key of origin EXTERNAL without its material returns to
		// PendingImport.
		k.meta.refreshImportState()
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &kmsapi.CancelKeyDeletionOutput{KeyId: ptr(k.arn)}, nil
}

// UpdateKeyDescription replaces a key's description.
func (s *Service) UpdateKeyDescription(ctx context.Context, in *kmsapi.UpdateKeyDescriptionInput) (*kmsapi.UpdateKeyDescriptionOutput, error) {
	_, err := s.updateKey(ctx, act(in.IAMAction()), in.KeyId, func(_ storage.Tx, k *key) error {
		if err := refuseManaged(k); err != nil {
			return err
		}
		if pendingDeletion(k) {
			return errInvalidState(k.arn, k.meta.State)
		}
		k.meta.Description = deref(in.Description)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &kmsapi.UpdateKeyDescriptionOutput{}, nil
}

// enumList converts the table's algorithm names to a generated enum list
// (nil for none, so the member is left out).
func enumList[E ~string](names []string) []E {
	if names == nil {
		return nil
	}
	out := make([]E, len(names))
	for i, n := range names {
		out[i] = E(n)
	}
	return out
}
