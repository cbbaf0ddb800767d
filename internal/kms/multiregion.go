package kms

// Multi-Region keys: related keys in several regions of one account with
// the same key id (mrk-<32 hex>) and the same key material, so that a
// ciphertext of one opens with any other (blob version 3 binds the key id,
// not the regional ARN). A primary key and its replicas share their key
// material, spec, usage and origin, and rotation, which only the primary
// controls; description, key policy, tags, aliases, grants and key state
// are each key's own.
//
// On AWS related keys are kept in step asynchronously. Keyfort keeps all
// regions in one store, so every change to what they share is written to
// all of them in the transaction that makes it: each related key's record
// holds the whole configuration (mrkConfig), and each region holds its own
// sealed copy of every key material (sealed with that region in its AAD).

import (
	"context"
	"errors"
	"slices"
	"time"

	"github.com/keyfort/keyfort/internal/awserr"
	"github.com/keyfort/keyfort/internal/iam"
	"github.com/keyfort/keyfort/internal/kms/kmsapi"
	"github.com/keyfort/keyfort/internal/operation"
	"github.com/keyfort/keyfort/internal/partition"
	"github.com/keyfort/keyfort/internal/storage"
)

// kmsService is KMS's service principal, the invokedBy of the events it
// records in a related key's region.
const kmsService = "kms.amazonaws.com"

// statePendingReplicaDeletion is the state of a primary key scheduled for
// deletion while it still has replicas: it waits for them to be deleted,
// then its waiting period starts.
const statePendingReplicaDeletion = "PendingReplicaDeletion"

// mrkConfig is the multi-Region configuration, the same in every related
// key's record.
type mrkConfig struct {
	// Primary is the region of the primary key.
	Primary string `json:"primary"`
	// Replicas are the regions of the replica keys, in creation order.
	Replicas []string `json:"replicas,omitempty"`
}

// regions is every region of the related keys, the primary's first.
func (c *mrkConfig) regions() []string { return append([]string{c.Primary}, c.Replicas...) }

// isPrimary reports whether k is a multi-Region primary key.
func (k *key) isPrimary() bool { return k.meta.MRK != nil && k.meta.MRK.Primary == k.rec.Scope.Region }

// isReplica reports whether k is a multi-Region replica key.
func (k *key) isReplica() bool { return k.meta.MRK != nil && k.meta.MRK.Primary != k.rec.Scope.Region }

func inRegion(scope storage.Scope, region string) storage.Scope {
	return storage.Scope{Account: scope.Account, Region: region}
}

// errNotPrimary is AWS's answer when an operation of primary keys is given
// another key (LocalStack's AWS-validated snapshot
// test_replicate_key_raises_for_replica_key records it for ReplicateKey).
func errNotPrimary(arn string) error {
	return awserr.Newf(codeUnsupported, "%s is not a multi-region primary key.", arn)
}

// multiRegionConfiguration is DescribeKey's MultiRegionConfiguration.
func (k *key) multiRegionConfiguration() *kmsapi.MultiRegionConfiguration {
	c := k.meta.MRK
	scope := k.rec.Scope
	out := &kmsapi.MultiRegionConfiguration{
		MultiRegionKeyType: "REPLICA",
		PrimaryKey:         &kmsapi.MultiRegionKey{Arn: ptr(keyARN(inRegion(scope, c.Primary), k.rec.ID)), Region: ptr(c.Primary)},
		ReplicaKeys:        make([]kmsapi.MultiRegionKey, 0, len(c.Replicas)),
	}
	if c.Primary == scope.Region {
		out.MultiRegionKeyType = "PRIMARY"
	}
	for _, r := range c.Replicas {
		out.ReplicaKeys = append(out.ReplicaKeys, kmsapi.MultiRegionKey{Arn: ptr(keyARN(inRegion(scope, r), k.rec.ID)), Region: ptr(r)})
	}
	return out
}

// related loads, in tx, each key related to k other than k itself.
func related(ctx context.Context, tx storage.Tx, k *key) ([]*key, error) {
	var out []*key
	for _, region := range k.meta.MRK.regions() {
		if region == k.rec.Scope.Region {
			continue
		}
		r, err := getKey(ctx, tx, inRegion(k.rec.Scope, region), k.rec.ID)
		if err != nil {
			return nil, wrap("related key in "+region, err)
		}
		out = append(out, r)
	}
	return out, nil
}

// copyMaterial seals material id of k again for the same key in region
// dst, unless that region already holds it.
func (s *Service) copyMaterial(ctx context.Context, tx storage.Tx, k *key, dst storage.Scope, id string, created time.Time) error {
	recID := materialRecordID(k.rec.ID, id)
	if _, err := tx.Get(ctx, kindMaterial, dst, recID); err == nil {
		return nil
	} else if !errors.Is(err, storage.ErrNotFound) {
		return wrap("get material", err)
	}
	rec, err := tx.Get(ctx, kindMaterial, k.rec.Scope, recID)
	if err != nil {
		return wrap("get material", err)
	}
	raw, err := s.sealer.Open(materialAAD(k.rec.Scope, recID), rec.Sealed)
	if err != nil {
		return wrap("open material "+recID, err)
	}
	defer clear(raw)
	return s.insertMaterial(ctx, tx, dst, k.rec.ID, id, raw, created)
}

// syncReplicas gives every replica of the primary k (read in tx) the
// primary's key materials and current material (after a rotation).
func (s *Service) syncReplicas(ctx context.Context, tx storage.Tx, k *key) error {
	reps, err := related(ctx, tx, k)
	if err != nil {
		return err
	}
	for _, r := range reps {
		for _, m := range k.meta.Materials {
			if err := s.copyMaterial(ctx, tx, k, r.rec.Scope, m.ID, m.Created); err != nil {
				return err
			}
		}
		r.meta.Materials = slices.Clone(k.meta.Materials)
		r.meta.Material = k.meta.Material
		if err := s.saveKey(ctx, tx, r); err != nil {
			return err
		}
	}
	return nil
}

// setConfig writes c into every key of rel (read in tx) and saves them.
func (s *Service) setConfig(ctx context.Context, tx storage.Tx, rel []*key, c *mrkConfig) error {
	for _, r := range rel {
		r.meta.MRK = &mrkConfig{Primary: c.Primary, Replicas: slices.Clone(c.Replicas)}
		if err := s.saveKey(ctx, tx, r); err != nil {
			return err
		}
	}
	return nil
}

// primaryKey resolves keyID (a key id or ARN) in tx, authorizes a on it and
// checks that it is a multi-Region primary key.
func (s *Service) primaryKey(ctx context.Context, tx storage.Tx, scope storage.Scope, keyID string, a *access) (*key, error) {
	k, err := resolveKey(ctx, tx, scope, keyID, refKeyOnly)
	if err != nil {
		return nil, err
	}
	if err := s.authorize(ctx, tx, k, a); err != nil {
		return nil, err
	}
	if !k.isPrimary() {
		return nil, errNotPrimary(k.arn)
	}
	return k, nil
}

// ReplicateKey makes a replica of a multi-Region primary key in another
// region of the same partition: the same key id and key material, its own
// description, key policy (the default one unless given) and tags.
func (s *Service) ReplicateKey(ctx context.Context, in *kmsapi.ReplicateKeyInput) (*kmsapi.ReplicateKeyOutput, error) {
	scope, _, err := scopeOf(ctx)
	if err != nil {
		return nil, err
	}
	region := deref(in.ReplicaRegion)
	// The caller needs kms:CreateKey (and kms:TagResource with tags) in
	// the replica's region, from its identity-based policies.
	create := &access{action: "kms:CreateKey", extra: iam.MapContext{"kms:multiregion": {"true"}, "kms:multiregionkeytype": {"REPLICA"}}}
	if in.Tags != nil {
		create.tags = requestTags(in.Tags)
	}
	if err := s.authorizeAccount(ctx, create); err != nil {
		return nil, err
	}
	if in.Tags != nil {
		if err := s.authorizeAccount(ctx, &access{action: "kms:TagResource", tags: requestTags(in.Tags)}); err != nil {
			return nil, err
		}
	}
	tags, err := newKeyTags(in.Tags)
	if err != nil {
		return nil, err
	}
	a := act(in.IAMAction())
	a.extra = iam.MapContext{"kms:replicaregion": {region}}
	now := s.now().UTC()
	var replica *key
	err = s.store.Update(ctx, func(tx storage.Tx) error {
		k, err := s.primaryKey(ctx, tx, scope, deref(in.KeyId), a)
		if err != nil {
			return err
		}
		if err := checkEnabled(k); err != nil {
			return err
		}
		switch {
		case region == scope.Region:
			return errValidation("You cannot replicate %s into its own Region %s.", k.arn, region)
		case partition.For(region) != partition.For(scope.Region):
			return errValidation("You cannot replicate %s into %s, a Region of another partition.", k.arn, region)
		case slices.Contains(k.meta.MRK.Replicas, region):
			return awserr.New(codeAlreadyExists, "You can create only one replica of each primary key in each AWS Region.")
		}
		rscope := inRegion(scope, region)
		meta := k.meta
		meta.Created = now
		meta.Description = deref(in.Description)
		meta.State = stateEnabled
		meta.Policy = ""
		meta.Tags = tags
		meta.Deletion, meta.Window = nil, 0
		meta.RotationEnabled, meta.RotationPeriod, meta.NextRotation, meta.OnDemandCount = false, 0, nil, 0
		meta.Seed = nil
		meta.Materials = slices.Clone(k.meta.Materials)
		if meta.Origin == originExternal {
			// A replica of an imported key has no material until the
			// same material is imported into it.
			meta.State = statePendingImport
			for i := range meta.Materials {
				m := &meta.Materials[i]
				m.Absent, m.ValidTo, m.Expiration = true, nil, ""
			}
		}
		cfg := &mrkConfig{Primary: scope.Region, Replicas: append(slices.Clone(k.meta.MRK.Replicas), region)}
		meta.MRK = cfg
		replica = &key{rec: &storage.Record{Kind: kindKey, Scope: rscope, ID: k.rec.ID, Created: now.UnixNano()}, meta: meta, arn: keyARN(rscope, k.rec.ID)}
		if in.Policy != nil {
			p, err := parseKeyPolicy(*in.Policy)
			if err != nil {
				return err
			}
			if !deref(in.BypassPolicyLockoutSafetyCheck) {
				if err := s.checkLockout(ctx, p, replica); err != nil {
					return err
				}
			}
			replica.meta.Policy = *in.Policy
		}
		for _, m := range k.meta.Materials {
			if meta.Origin == originExternal {
				break
			}
			if err := s.copyMaterial(ctx, tx, k, rscope, m.ID, m.Created); err != nil {
				return err
			}
		}
		if err := replica.encode(); err != nil {
			return err
		}
		if err := tx.Insert(ctx, replica.rec); err != nil {
			if errors.Is(err, storage.ErrExists) {
				return awserr.New(codeAlreadyExists, "You can create only one replica of each primary key in each AWS Region.")
			}
			return wrap("insert replica key", err)
		}
		rel, err := related(ctx, tx, k)
		if err != nil {
			return err
		}
		replica.audit(ctx)
		return s.setConfig(ctx, tx, append(rel, k), cfg)
	})
	if err != nil {
		return nil, err
	}
	// CloudTrail records the replica's creation in its own region too, as
	// KMS's CreateKey on the caller's behalf (added once the transaction,
	// which may run again, has committed).
	operation.AddEvent(ctx, operation.Event{Name: "CreateKey", Region: region, InvokedBy: kmsService,
		Resources: []operation.Resource{{Type: resourceKey, ARN: replica.arn, Account: scope.Account}}})
	md := replica.metadata()
	// AWS answers while the replica is being made (Keyfort has made it).
	md.KeyState, md.Enabled, md.CurrentKeyMaterialId = "Creating", ptr(false), nil
	out := &kmsapi.ReplicateKeyOutput{ReplicaKeyMetadata: md, ReplicaPolicy: ptr(replica.effectivePolicy())}
	if len(tags) > 0 {
		out.ReplicaTags = make([]kmsapi.Tag, len(tags))
		for i, t := range tags {
			out.ReplicaTags[i] = kmsapi.Tag{TagKey: ptr(t.Key), TagValue: ptr(t.Value)}
		}
	}
	return out, nil
}

// UpdatePrimaryRegion makes the replica in PrimaryRegion the primary key
// and the primary a replica. Both must be enabled; the caller needs
// kms:UpdatePrimaryRegion on both.
func (s *Service) UpdatePrimaryRegion(ctx context.Context, in *kmsapi.UpdatePrimaryRegionInput) (*kmsapi.UpdatePrimaryRegionOutput, error) {
	scope, _, err := scopeOf(ctx)
	if err != nil {
		return nil, err
	}
	target := deref(in.PrimaryRegion)
	a := act(in.IAMAction())
	a.extra = iam.MapContext{"kms:primaryregion": {target}}
	err = s.store.Update(ctx, func(tx storage.Tx) error {
		k, err := s.primaryKey(ctx, tx, scope, deref(in.KeyId), a)
		if err != nil {
			return err
		}
		if target == scope.Region {
			return errValidation("%s is already the primary key: its Region is %s.", k.arn, target)
		}
		if !slices.Contains(k.meta.MRK.Replicas, target) {
			return errKeyNotFound(keyARN(inRegion(scope, target), k.rec.ID))
		}
		if err := checkEnabled(k); err != nil {
			return err
		}
		rel, err := related(ctx, tx, k)
		if err != nil {
			return err
		}
		var next *key
		for _, r := range rel {
			if r.rec.Scope.Region == target {
				next = r
			}
		}
		if err := s.authorize(ctx, tx, next, a); err != nil {
			return err
		}
		if err := checkEnabled(next); err != nil {
			return err
		}
		auditResource(ctx, next.rec.Scope, next.arn)
		// Rotation is the primary's: it moves with the role.
		next.meta.RotationEnabled, next.meta.RotationPeriod, next.meta.NextRotation, next.meta.OnDemandCount =
			k.meta.RotationEnabled, k.meta.RotationPeriod, k.meta.NextRotation, k.meta.OnDemandCount
		k.meta.RotationEnabled, k.meta.RotationPeriod, k.meta.NextRotation, k.meta.OnDemandCount = false, 0, nil, 0
		replicas := make([]string, 0, len(k.meta.MRK.Replicas))
		for _, r := range k.meta.MRK.Replicas {
			if r != target {
				replicas = append(replicas, r)
			}
		}
		cfg := &mrkConfig{Primary: target, Replicas: append(replicas, scope.Region)}
		return s.setConfig(ctx, tx, append(rel, k), cfg)
	})
	if err != nil {
		return nil, err
	}
	// CloudTrail records the change in the new primary's region too,
	// invoked by KMS, without resources (the developer guide's example).
	operation.AddEvent(ctx, operation.Event{Name: "UpdatePrimaryRegion", Region: target, InvokedBy: kmsService,
		RequestParameters: in.AppendAuditJSON(nil)})
	return &kmsapi.UpdatePrimaryRegionOutput{}, nil
}

// replicaDeleted takes the replica k (being deleted in tx) out of the
// configuration of its related keys. A primary waiting in
// PendingReplicaDeletion for its last replica starts its own waiting
// period.
func (s *Service) replicaDeleted(ctx context.Context, tx storage.Tx, k *key, now time.Time) error {
	rel, err := related(ctx, tx, k)
	if err != nil {
		return err
	}
	gone := k.rec.Scope.Region
	cfg := &mrkConfig{Primary: k.meta.MRK.Primary}
	for _, r := range k.meta.MRK.Replicas {
		if r != gone {
			cfg.Replicas = append(cfg.Replicas, r)
		}
	}
	for _, r := range rel {
		if r.isPrimary() && r.meta.State == statePendingReplicaDeletion && len(cfg.Replicas) == 0 {
			del := now.Add(time.Duration(r.meta.Window) * day)
			r.meta.State = statePendingDeletion
			r.meta.Deletion = &del
		}
	}
	return s.setConfig(ctx, tx, rel, cfg)
}

// rotationStatusOf is the key whose rotation settings k follows: the
// primary for a replica, else k.
func (s *Service) rotationStatusOf(ctx context.Context, k *key) (*key, error) {
	if !k.isReplica() {
		return k, nil
	}
	return s.readKey(ctx, inRegion(k.rec.Scope, k.meta.MRK.Primary), k.rec.ID)
}
