package secretsmanager

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/keyfort/keyfort/internal/awserr"
	"github.com/keyfort/keyfort/internal/replication"
	"github.com/keyfort/keyfort/internal/secretsmanager/smapi"
	"github.com/keyfort/keyfort/internal/storage"
)

// Multi-Region secrets, as AWS documents them: a primary secret is copied to
// replica secrets of the same name in other regions of the same account. A
// replica has the primary's ARN with its own region, the same versions,
// staging labels, description, tags and resource policy, and its values are
// encrypted under a KMS key of its own region (the replica's KmsKeyId, or
// that region's aws/secretsmanager key). A replica cannot be changed except
// through its primary.
//
// How: every operation that changes a secret saves it with saveChange (or
// calls queueSync), which refuses the change on a replica and, on a primary
// with replicas, records a sync to-do (kindReplSync, package replication) in
// the change's transaction. Once committed, the operation runs the sync
// (syncNow) before it answers; the sync is a claimed job, so exactly one
// node runs it, and RunJobs runs what a crash or a failure left undone.
// Deleting a primary that still has replicas is refused (DeleteSecret).
// GetSecretValue records access dates on replicas too (touch: plain
// saveSecret, as access dates are not replicated).

// kindReplSync records: the to-dos of package replication. ID is the name of
// a primary secret whose replicas must be brought in line; Due is when the
// change was made, or the end of the lease of the node that runs it.
const kindReplSync storage.Kind = "sm.replsync"

// Replication statuses and messages shown in ReplicationStatus.
const (
	replInSync         = string(smapi.StatusTypeInSync)
	replFailed         = string(smapi.StatusTypeFailed)
	replInProgress     = string(smapi.StatusTypeInProgress)
	replSucceededMsg   = "Replication succeeded"
	replNameExistsMsg  = "Secret with this name already exists in this region"
	managedKeyAliasArn = "alias/aws/secretsmanager"
)

// replicaMeta is a primary's record of one of its replicas.
type replicaMeta struct {
	Region string `json:"region"`
	// KmsKeyID is the replica's KmsKeyId as given; "" is the replica
	// region's aws/secretsmanager key.
	KmsKeyID string `json:"kmsKeyId,omitempty"`
	Status   string `json:"status"`
	Message  string `json:"message,omitempty"`
	// Overwrite asks the next sync to replace a standalone secret of the
	// same name in the region (ForceOverwriteReplicaSecret).
	Overwrite bool `json:"overwrite,omitempty"`
}

// isReplica reports whether the secret is a replica of a primary in another
// region. A primary with replicas has PrimaryRegion set to its own region.
func (m *secretMeta) isReplica() bool {
	return m.PrimaryRegion != "" && m.PrimaryRegion != arnRegion(m.ARN)
}

func (m *secretMeta) isPrimary() bool { return len(m.Replicas) > 0 }

func arnRegion(arn string) string {
	parts := strings.SplitN(arn, ":", 5)
	if len(parts) < 5 {
		return ""
	}
	return parts[3]
}

// replicaARN is the primary's ARN with the replica's region.
func replicaARN(arn, region string) string {
	parts := strings.SplitN(arn, ":", 5)
	if len(parts) < 5 {
		return arn
	}
	parts[3] = region
	return strings.Join(parts, ":")
}

func errReplicaOp() error {
	return errInvalidParameter("Operation not permitted on a replica secret. Call must be made in primary secret's region.")
}

func errHasReplicas(m *secretMeta) error {
	regions := make([]string, 0, len(m.Replicas))
	for _, r := range m.Replicas {
		regions = append(regions, r.Region)
	}
	return errInvalidParameter(fmt.Sprintf("You can't delete secret %s that still has replica regions [%s].", m.ARN, strings.Join(regions, ", ")))
}

func errInvalidReplicaRegion() error { return errInvalidParameter("Invalid replica region.") }

// knownRegion reports whether r is a region of the aws partition that offers
// Secrets Manager (botocore endpoints.json).
func knownRegion(r string) bool {
	switch r {
	case "af-south-1", "ap-east-1", "ap-east-2", "ap-northeast-1", "ap-northeast-2", "ap-northeast-3",
		"ap-south-1", "ap-south-2", "ap-southeast-1", "ap-southeast-2", "ap-southeast-3", "ap-southeast-4",
		"ap-southeast-5", "ap-southeast-6", "ap-southeast-7", "ca-central-1", "ca-west-1", "eu-central-1",
		"eu-central-2", "eu-north-1", "eu-south-1", "eu-south-2", "eu-west-1", "eu-west-2", "eu-west-3",
		"il-central-1", "me-central-1", "me-south-1", "mx-central-1", "sa-east-1", "us-east-1", "us-east-2",
		"us-west-1", "us-west-2":
		return true
	}
	return false
}

// checkReplicaRegions validates AddReplicaRegions of a secret in scope: known
// regions, not the secret's own, none twice.
func checkReplicaRegions(scope storage.Scope, add []smapi.ReplicaRegionType) error {
	seen := make(map[string]bool, len(add))
	for _, a := range add {
		r := deref(a.Region)
		if !knownRegion(r) || r == scope.Region || seen[r] {
			return errInvalidReplicaRegion()
		}
		seen[r] = true
	}
	return nil
}

// addReplicas records new replicas (or a new KmsKeyId, or a retry, for
// existing ones) on a primary in region; the sync after the write makes them.
func addReplicas(m *secretMeta, region string, add []smapi.ReplicaRegionType, overwrite bool) {
	if len(add) == 0 {
		return
	}
	m.PrimaryRegion = region
	for _, a := range add {
		r, key := deref(a.Region), deref(a.KmsKeyId)
		i := slices.IndexFunc(m.Replicas, func(x replicaMeta) bool { return x.Region == r })
		if i < 0 {
			m.Replicas = append(m.Replicas, replicaMeta{Region: r, KmsKeyID: key, Status: replInProgress, Overwrite: overwrite})
			continue
		}
		m.Replicas[i].KmsKeyID = key
		m.Replicas[i].Overwrite = overwrite
		if m.Replicas[i].Status == replFailed {
			m.Replicas[i].Status, m.Replicas[i].Message = replInProgress, ""
		}
	}
}

// primaryRegionOf is the PrimaryRegion DescribeSecret and ListSecrets show:
// set on primaries with replicas and on replicas, absent otherwise.
func primaryRegionOf(m *secretMeta) *string {
	if m.PrimaryRegion == "" {
		return nil
	}
	return ptr(m.PrimaryRegion)
}

// replicationStatus renders a primary's replicas; nil for other secrets.
// With g, each replica's LastAccessedDate is read from its region.
func replicationStatus(ctx context.Context, g getter, m *secretMeta) []smapi.ReplicationStatusType {
	if !m.isPrimary() {
		return nil
	}
	out := make([]smapi.ReplicationStatusType, 0, len(m.Replicas))
	for _, r := range m.Replicas {
		st := smapi.ReplicationStatusType{
			Region:   ptr(r.Region),
			KmsKeyId: ptr(managedKeyAliasArn),
			Status:   smapi.StatusType(r.Status),
		}
		if r.KmsKeyID != "" {
			st.KmsKeyId = ptr(r.KmsKeyID)
		}
		if r.Message != "" {
			st.StatusMessage = ptr(r.Message)
		}
		if g != nil && r.Status == replInSync {
			scope := storage.Scope{Account: accountOf(m.ARN), Region: r.Region}
			if rep, err := getSecret(ctx, g, scope, m.Name); err == nil && rep.meta.ARN == replicaARN(m.ARN, r.Region) {
				st.LastAccessedDate = rep.meta.LastAccessed
			}
		}
		out = append(out, st)
	}
	return out
}

func accountOf(arn string) string {
	// The fifth of at least six colon-separated fields (SplitN(arn, ":", 6)
	// without its slice).
	rest := arn
	for range 4 {
		i := strings.IndexByte(rest, ':')
		if i < 0 {
			return ""
		}
		rest = rest[i+1:]
	}
	i := strings.IndexByte(rest, ':')
	if i < 0 {
		return ""
	}
	return rest[:i]
}

// ReplicateSecretToRegions adds replicas of a secret in other regions (or
// changes the KMS key of existing ones, or retries failed ones). A region in
// which a secret of that name exists gets status Failed unless
// ForceOverwriteReplicaSecret replaces that secret.
func (s *Service) ReplicateSecretToRegions(ctx context.Context, in *smapi.ReplicateSecretToRegionsInput) (*smapi.ReplicateSecretToRegionsOutput, error) {
	const op = "ReplicateSecretToRegions"
	scope, err := secretScope(ctx, in.SecretId)
	if err != nil {
		return nil, err
	}
	a := replicateAccess(in)
	var name, arn string
	var after syncAfter
	err = s.store.Update(ctx, func(tx storage.Tx) error {
		sec, err := s.secretFor(ctx, tx, scope, deref(in.SecretId), a)
		if err != nil {
			return err
		}
		if sec.meta.isReplica() {
			return errReplicaOp()
		}
		if err := checkReplicaRegions(scope, in.AddReplicaRegions); err != nil {
			return err
		}
		if sec.deleted() {
			return errMarkedForDeletion()
		}
		name, arn = sec.meta.Name, sec.meta.ARN
		addReplicas(&sec.meta, scope.Region, in.AddReplicaRegions, deref(in.ForceOverwriteReplicaSecret))
		return s.saveChange(ctx, tx, sec, &after)
	})
	if err != nil {
		return nil, err
	}
	s.syncNow(ctx, after)
	st, err := s.currentStatus(ctx, scope, name, arn)
	if err != nil {
		return nil, err
	}
	return &smapi.ReplicateSecretToRegionsOutput{ARN: ptr(arn), ReplicationStatus: st}, nil
}

// currentStatus reads the replication status of the primary name (ARN arn).
func (s *Service) currentStatus(ctx context.Context, scope storage.Scope, name, arn string) ([]smapi.ReplicationStatusType, error) {
	sec, err := getSecret(ctx, s.store, scope, name)
	if err != nil {
		return nil, err
	}
	if sec.meta.ARN != arn {
		return nil, errSecretNotFound()
	}
	st := replicationStatus(ctx, nil, &sec.meta)
	if st == nil {
		st = []smapi.ReplicationStatusType{}
	}
	return st, nil
}

// RemoveRegionsFromReplication deletes the replicas of a secret in the given
// regions. Regions without a replica are ignored.
func (s *Service) RemoveRegionsFromReplication(ctx context.Context, in *smapi.RemoveRegionsFromReplicationInput) (*smapi.RemoveRegionsFromReplicationOutput, error) {
	const op = "RemoveRegionsFromReplication"
	scope, err := secretScope(ctx, in.SecretId)
	if err != nil {
		return nil, err
	}
	a := act(in.IAMAction())
	var out *smapi.RemoveRegionsFromReplicationOutput
	err = s.store.Update(ctx, func(tx storage.Tx) error {
		sec, err := s.secretFor(ctx, tx, scope, deref(in.SecretId), a)
		if err != nil {
			return err
		}
		if sec.meta.isReplica() {
			return errReplicaOp()
		}
		m := &sec.meta
		kept := m.Replicas[:0:0]
		for _, r := range m.Replicas {
			if !slices.Contains(in.RemoveReplicaRegions, r.Region) {
				kept = append(kept, r)
				continue
			}
			rscope := storage.Scope{Account: scope.Account, Region: r.Region}
			rep, err := getSecret(ctx, tx, rscope, m.Name)
			if isNotFound(err) {
				continue
			}
			if err != nil {
				return err
			}
			if rep.meta.ARN == replicaARN(m.ARN, r.Region) && rep.meta.PrimaryRegion == scope.Region {
				if err := purgeSecret(ctx, tx, rep); err != nil {
					return err
				}
			}
		}
		out = &smapi.RemoveRegionsFromReplicationOutput{ARN: ptr(m.ARN)}
		if len(kept) != len(m.Replicas) {
			m.Replicas = kept
			if len(kept) == 0 {
				m.Replicas, m.PrimaryRegion = nil, ""
			}
			if err := saveSecret(ctx, tx, sec); err != nil {
				return err
			}
		}
		out.ReplicationStatus = replicationStatus(ctx, nil, m)
		if out.ReplicationStatus == nil {
			out.ReplicationStatus = []smapi.ReplicationStatusType{}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// StopReplicationToReplica promotes a replica (called in the replica's
// region) to a standalone secret; its primary stops listing the region.
func (s *Service) StopReplicationToReplica(ctx context.Context, in *smapi.StopReplicationToReplicaInput) (*smapi.StopReplicationToReplicaOutput, error) {
	const op = "StopReplicationToReplica"
	scope, err := secretScope(ctx, in.SecretId)
	if err != nil {
		return nil, err
	}
	a := act(in.IAMAction())
	var arn string
	err = s.store.Update(ctx, func(tx storage.Tx) error {
		rep, err := s.secretFor(ctx, tx, scope, deref(in.SecretId), a)
		if err != nil {
			return err
		}
		if !rep.meta.isReplica() {
			return errInvalidRequest("The secret " + rep.meta.Name + " is not a replica secret.")
		}
		arn = rep.meta.ARN
		pscope := storage.Scope{Account: scope.Account, Region: rep.meta.PrimaryRegion}
		rep.meta.PrimaryRegion = ""
		if err := saveSecret(ctx, tx, rep); err != nil {
			return err
		}
		prim, err := getSecret(ctx, tx, pscope, rep.meta.Name)
		if isNotFound(err) {
			return nil
		}
		if err != nil {
			return err
		}
		if prim.meta.ARN != replicaARN(arn, pscope.Region) {
			return nil
		}
		i := slices.IndexFunc(prim.meta.Replicas, func(r replicaMeta) bool { return r.Region == scope.Region })
		if i < 0 {
			return nil
		}
		prim.meta.Replicas = slices.Delete(prim.meta.Replicas, i, i+1)
		if len(prim.meta.Replicas) == 0 {
			prim.meta.Replicas, prim.meta.PrimaryRegion = nil, ""
		}
		return saveSecret(ctx, tx, prim)
	})
	if err != nil {
		return nil, err
	}
	return &smapi.StopReplicationToReplicaOutput{ARN: ptr(arn)}, nil
}

// ---- the writes: refusals and queued syncs ----

// syncAfter names the primary whose replica sync a write queued in its
// transaction (the zero value: none); the write runs it once committed
// (syncNow).
type syncAfter struct {
	scope storage.Scope
	name  string
}

// queueSync records in tx, the transaction of a change to sec, that the
// replicas of sec must be brought in line with it (a durable to-do that
// commits with the change; nothing for a secret without replicas), and
// sets after for the write's syncNow. Every write that changes a secret
// calls it, except those that change only what is not replicated (access
// dates) and the replication operations' own writes to replicas.
func (s *Service) queueSync(ctx context.Context, tx storage.Tx, sec *secret, after *syncAfter) error {
	*after = syncAfter{}
	if !sec.meta.isPrimary() {
		return nil
	}
	if err := s.repl.Mark(ctx, tx, sec.rec.Scope, sec.rec.ID); err != nil {
		return wrap("queue replica sync", err)
	}
	*after = syncAfter{scope: sec.rec.Scope, name: sec.rec.ID}
	return nil
}

// saveChange saves an operation's change to sec in tx: refused on a
// replica (a replica changes only through its primary), and queueing the
// sync of a primary's replicas.
func (s *Service) saveChange(ctx context.Context, tx storage.Tx, sec *secret, after *syncAfter) error {
	if sec.meta.isReplica() {
		return errReplicaOp()
	}
	if err := saveSecret(ctx, tx, sec); err != nil {
		return err
	}
	return s.queueSync(ctx, tx, sec, after)
}

// syncNow runs the sync a committed write queued, so that the replicas are
// in line when the operation answers; when another run (of this node or
// another) holds it, it waits for that run, which includes the change
// (replication.Queue.Kick; bounded). A failure is logged: the write is
// committed and RunJobs retries the sync.
func (s *Service) syncNow(ctx context.Context, after syncAfter) {
	if after.name != "" {
		s.repl.Kick(ctx, after.scope, after.name)
	}
}

// ---- sync: make the replicas of a primary match it ----

// errStale means the records changed between planning and writing a sync.
var errStale = errors.New("secretsmanager: replication: records changed")

// syncReplicas is the replication job (package replication) of one
// primary: it brings every replica of the primary j names in line with it
// and records each replica's status on the primary, in one transaction
// that ends the job. KMS refusals (a disabled key) and a name taken in the
// replica region make that replica Failed; other errors are returned and
// the sync is retried by RunJobs.
func (s *Service) syncReplicas(ctx context.Context, j *replication.Job) error {
	// Kept across attempts, so that each version is sealed once.
	sealed := map[sealKey]sealedVersion{}
	for range 10 { // bounded: retried only when a concurrent write intervened
		err := s.syncOnce(ctx, j, sealed)
		if !errors.Is(err, errStale) && !errors.Is(err, storage.ErrConflict) {
			return err
		}
	}
	return wrap("replicate "+j.ID, errors.New("the secret kept changing"))
}

// sealKey names a version's value sealed for a replica: its region, the
// version, and the replica's KmsKeyId.
type sealKey struct {
	region, versionID, kmsKeyID string
}

// sealedVersion is a version value sealed for a replica.
type sealedVersion struct {
	sealed []byte
	keyARN string
}

// replicaPlan is what one replica needs, prepared outside the transaction.
type replicaPlan struct {
	scope storage.Scope
	arn   string
	// rev is the Rev of the record of that name in the replica region when
	// planned (0: none); conflict is set when that record is a standalone
	// secret to overwrite.
	rev      int64
	conflict bool
	// failed is the StatusMessage when the replica cannot be synced.
	failed string
	sealed map[string]sealedVersion
}

func (s *Service) syncOnce(ctx context.Context, j *replication.Job, sealed map[sealKey]sealedVersion) error {
	scope, name := j.Scope, j.ID
	prim, err := getSecret(ctx, s.store, scope, name)
	if err != nil && !isNotFound(err) {
		return err
	}
	if err != nil || !prim.meta.isPrimary() {
		return j.Complete(ctx, nil)
	}
	pctx := inRegion(ctx, scope)
	values := map[string]secretValue{}
	defer func() {
		for _, v := range values {
			clear(v.data)
		}
	}()
	plans := make([]replicaPlan, len(prim.meta.Replicas))
	for i, rep := range prim.meta.Replicas {
		if plans[i], err = s.planReplica(ctx, pctx, prim, rep, values, sealed); err != nil {
			return err
		}
	}
	now := s.now().UTC()
	return j.Complete(ctx, func(tx storage.Tx) error {
		cur, err := getSecret(ctx, tx, scope, name)
		if err != nil || cur.rec.Rev != prim.rec.Rev {
			return errStale
		}
		changed := false
		for i := range cur.meta.Replicas {
			r := &cur.meta.Replicas[i]
			st, msg := replFailed, plans[i].failed
			if msg == "" {
				if err := applyReplica(ctx, tx, cur, r, &plans[i], now); err != nil {
					return err
				}
				st, msg = replInSync, replSucceededMsg
			}
			if r.Status != st || r.Message != msg || (st == replInSync && r.Overwrite) {
				r.Status, r.Message = st, msg
				if st == replInSync {
					r.Overwrite = false
				}
				changed = true
			}
		}
		if changed {
			return saveSecret(ctx, tx, cur)
		}
		return nil
	})
}

// planReplica reads the replica region and seals, under the replica's key in
// its region, the versions the replica lacks. values caches the primary's
// decrypted values across replicas, sealed the sealed values across the
// attempts of one sync.
func (s *Service) planReplica(ctx, pctx context.Context, prim *secret, rep replicaMeta, values map[string]secretValue, sealed map[sealKey]sealedVersion) (replicaPlan, error) {
	p := replicaPlan{
		scope:  storage.Scope{Account: prim.rec.Scope.Account, Region: rep.Region},
		arn:    replicaARN(prim.meta.ARN, rep.Region),
		sealed: map[string]sealedVersion{},
	}
	var have *secret
	ex, err := getSecret(ctx, s.store, p.scope, prim.meta.Name)
	switch {
	case isNotFound(err):
	case err != nil:
		return p, err
	case ex.meta.ARN == p.arn && ex.meta.PrimaryRegion == prim.rec.Scope.Region:
		have, p.rev = ex, ex.rec.Rev
	case rep.Overwrite && !ex.meta.isReplica() && !ex.meta.isPrimary():
		p.conflict, p.rev = true, ex.rec.Rev
	default:
		p.failed = replNameExistsMsg
		return p, nil
	}
	rctx := inRegion(ctx, p.scope)
	keyRef := ""
	for _, vid := range prim.meta.orderedVersions() {
		if have != nil && have.meta.KmsKeyID == rep.KmsKeyID {
			if _, ok := have.meta.Versions[vid]; ok {
				continue
			}
		}
		k := sealKey{region: rep.Region, versionID: vid, kmsKeyID: rep.KmsKeyID}
		if sv, ok := sealed[k]; ok {
			p.sealed[vid] = sv
			continue
		}
		if keyRef == "" {
			if keyRef, err = s.kmsKeyRef(rctx, &secretMeta{KmsKeyID: rep.KmsKeyID}); err != nil {
				return p.fail(err)
			}
		}
		v, ok := values[vid]
		if !ok {
			if v, err = s.readValue(pctx, prim, vid); err != nil {
				return p.fail(err)
			}
			values[vid] = v
		}
		b, keyARN, err := s.seal(rctx, keyRef, p.arn, vid, v)
		if err != nil {
			return p.fail(err)
		}
		sealed[k] = sealedVersion{sealed: b, keyARN: keyARN}
		p.sealed[vid] = sealed[k]
	}
	return p, nil
}

// fail turns a client error (KMS refused) into a Failed replica and passes
// internal errors on.
func (p replicaPlan) fail(err error) (replicaPlan, error) {
	if e, ok := awserr.As(err); ok && e.Status < 500 {
		p.failed = "Replication failed: " + e.Message
		p.sealed = nil
		return p, nil
	}
	return p, err
}

// applyReplica writes the replica r of prim as planned.
func applyReplica(ctx context.Context, tx storage.Tx, prim *secret, r *replicaMeta, p *replicaPlan, now time.Time) error {
	ex, err := getSecret(ctx, tx, p.scope, prim.meta.Name)
	switch {
	case isNotFound(err):
		if p.rev != 0 {
			return errStale
		}
		ex = nil
	case err != nil:
		return err
	case ex.rec.Rev != p.rev:
		return errStale
	}
	if p.conflict {
		if err := purgeSecret(ctx, tx, ex); err != nil {
			return err
		}
		ex = nil
	}
	pm := &prim.meta
	rm := secretMeta{
		ARN:                p.arn,
		Name:               pm.Name,
		Description:        pm.Description,
		KmsKeyID:           r.KmsKeyID,
		Type:               pm.Type,
		Tags:               slices.Clone(pm.Tags),
		Created:            now,
		LastChanged:        pm.LastChanged,
		ResourcePolicyJSON: pm.ResourcePolicyJSON,
		PrimaryRegion:      prim.rec.Scope.Region,
		NextSeq:            pm.NextSeq,
		Versions:           make(map[string]*versionMeta, len(pm.Versions)),
	}
	if pm.Tags != nil && rm.Tags == nil {
		rm.Tags = []tag{}
	}
	rec := &storage.Record{Kind: kindSecret, Scope: p.scope, ID: pm.Name, Created: now.UnixNano()}
	if ex != nil {
		rm.Created, rm.LastAccessed, rec = ex.meta.Created, ex.meta.LastAccessed, ex.rec
	}
	for vid, v := range pm.Versions {
		nv := &versionMeta{Seq: v.Seq, Stages: slices.Clone(v.Stages), Created: v.Created}
		if nv.Stages == nil {
			nv.Stages = []string{}
		}
		if sv, ok := p.sealed[vid]; ok {
			nv.KMSKeyARNs = []string{sv.keyARN}
			if err := putVersion(ctx, tx, p.scope, pm.Name, vid, v.Created, sv.sealed); err != nil {
				return err
			}
		} else if ex == nil || ex.meta.Versions[vid] == nil {
			return errStale
		} else {
			nv.KMSKeyARNs = ex.meta.Versions[vid].KMSKeyARNs
		}
		if ex != nil && ex.meta.Versions[vid] != nil {
			nv.LastAccessed = ex.meta.Versions[vid].LastAccessed
		}
		rm.Versions[vid] = nv
	}
	if ex != nil {
		for vid := range ex.meta.Versions {
			if _, ok := pm.Versions[vid]; ok {
				continue
			}
			err := tx.Delete(ctx, kindVersion, p.scope, versionRecordID(pm.Name, vid))
			if err != nil && !errors.Is(err, storage.ErrNotFound) {
				return wrap("delete replica version", err)
			}
		}
	}
	sec := &secret{rec: rec, meta: rm}
	old := slices.Clone(rec.Data)
	if err := sec.encode(); err != nil {
		return err
	}
	if ex == nil {
		if err := tx.Insert(ctx, rec); err != nil {
			return wrap("insert replica", err)
		}
		return nil
	}
	if bytes.Equal(old, rec.Data) {
		return nil
	}
	if err := tx.Update(ctx, rec); err != nil {
		return wrap("update replica", err)
	}
	return nil
}

// putVersion stores (inserts or replaces) the sealed value of a version.
func putVersion(ctx context.Context, tx storage.Tx, scope storage.Scope, name, vid string, created time.Time, sealed []byte) error {
	id := versionRecordID(name, vid)
	rec, err := tx.Get(ctx, kindVersion, scope, id)
	if errors.Is(err, storage.ErrNotFound) {
		data, err := jsonMarshal(versionData{Created: created})
		if err != nil {
			return err
		}
		err = tx.Insert(ctx, &storage.Record{
			Kind: kindVersion, Scope: scope, ID: id, Parent: name,
			Created: created.UnixNano(), Data: data, Sealed: sealed,
		})
		if err != nil {
			return wrap("insert replica version", err)
		}
		return nil
	}
	if err != nil {
		return wrap("get replica version", err)
	}
	rec.Sealed = sealed
	if err := tx.Update(ctx, rec); err != nil {
		return wrap("update replica version", err)
	}
	return nil
}

// syncDueJobs runs, for RunJobs, the replica syncs that are due: those a
// crash, a failure or a lease that ran out left undone. A failure is
// logged and retried on the next run, and does not hold up the other jobs.
func (s *Service) syncDueJobs(ctx context.Context) {
	if err := s.repl.RunDue(ctx); err != nil {
		s.log.WarnContext(ctx, "secretsmanager: replication jobs", "err", err)
	}
}
