package secretsmanager

import (
	"context"
	"errors"
	"slices"
	"sort"
	"time"

	"github.com/keyfort/keyfort/internal/awserr"
	"github.com/keyfort/keyfort/internal/kms/kmsapi"
	"github.com/keyfort/keyfort/internal/recordcache"
	"github.com/keyfort/keyfort/internal/secretsmanager/smapi"
	"github.com/keyfort/keyfort/internal/sensitive"
	"github.com/keyfort/keyfort/internal/storage"
)

// checkValue applies the rules for SecretString and SecretBinary beyond the
// model's: not both, and at most 65536 bytes. It reports whether a value was
// given.
func checkValue(str *sensitive.String, bin sensitive.Bytes) (bool, error) {
	switch {
	case str != nil && bin != nil:
		return false, errInvalidParameter("You can't specify both a binary secret value and a string secret value in the same secret.")
	case str != nil:
		if len(str.Reveal()) == 0 {
			return false, errInvalidParameter("The SecretString parameter can't be empty.")
		}
		if len(str.Reveal()) > maxValueBytes {
			return false, errInvalidParameter("The secret value exceeds the maximum size of 65536 bytes.")
		}
		return true, nil
	case bin != nil:
		if len(bin) == 0 {
			return false, errInvalidParameter("The SecretBinary parameter can't be empty.")
		}
		if len(bin) > maxValueBytes {
			return false, errInvalidParameter("The secret value exceeds the maximum size of 65536 bytes.")
		}
		return true, nil
	}
	return false, nil
}

// checkStages validates a VersionStages parameter.
func checkStages(stages []string) error {
	if stages == nil {
		return nil
	}
	if len(stages) == 0 {
		return errInvalidParameter("You must specify at least one staging label in VersionStages.")
	}
	if len(stages) > maxStagesPerVersion {
		return awserr.Newf(codeLimitExceeded, "A version can have at most %d staging labels.", maxStagesPerVersion)
	}
	seen := make(map[string]bool, len(stages))
	for _, st := range stages {
		if st == "" || len(st) > 256 {
			return errInvalidParameter("A staging label must be 1 to 256 characters long.")
		}
		if seen[st] {
			return errInvalidParameter("The VersionStages list contains duplicate staging labels.")
		}
		seen[st] = true
	}
	return nil
}

// moveStage attaches label to version to, detaching it from the version that
// had it. Moving AWSCURRENT gives the version that had it AWSPREVIOUS (taken
// from the version that had that), as Secrets Manager does.
func moveStage(m *secretMeta, label, to string) error {
	old := m.holder(label)
	if old == to {
		return nil
	}
	if old != "" {
		m.Versions[old].removeStage(label)
	}
	m.Versions[to].addStage(label)
	if label == stageCurrent && old != "" {
		if p := m.holder(stagePrevious); p != "" {
			m.Versions[p].removeStage(stagePrevious)
		}
		m.Versions[old].addStage(stagePrevious)
	}
	for _, v := range m.Versions {
		if len(v.Stages) > maxStagesPerVersion {
			return awserr.Newf(codeLimitExceeded, "A version can have at most %d staging labels.", maxStagesPerVersion)
		}
	}
	return nil
}

// newVersion is a sealed value ready to be stored as a version.
type newVersion struct {
	id     string
	sealed []byte
	keyARN string
	stages []string
}

// addVersion stores a new version of sec in tx, moves the staging labels to
// it, drops the oldest unlabeled (deprecated) versions beyond the limit and
// saves sec.
func addVersion(ctx context.Context, tx storage.Tx, sec *secret, nv newVersion, now time.Time) error {
	m := &sec.meta
	kept := []string{}
	first := len(m.Versions) == 0
	if old, dup := m.Versions[nv.id]; dup {
		if !old.NoValue {
			return errVersionExists(nv.id, m.ARN)
		}
		kept = old.Stages // the empty AWSPENDING version of a rotation gets its value
		first = len(m.Versions) == 1
	}
	if first && !slices.Contains(nv.stages, stageCurrent) {
		// "If this operation creates the first version for the secret, then
		// Secrets Manager automatically attaches the staging label
		// AWSCURRENT to it" (PutSecretValue), whatever VersionStages says.
		nv.stages = append(slices.Clip(nv.stages), stageCurrent)
	}
	if slices.Contains(nv.stages, stageCurrent) {
		// A new value that takes AWSCURRENT from a version that also has
		// AWSPENDING (a finished rotation leaves both on one version) takes
		// AWSPENDING off it too, as AWS does; otherwise the label would stay
		// on the AWSPREVIOUS version and the next RotateSecret would take it
		// for a rotation in progress.
		if old := m.holder(stageCurrent); old != "" && old != nv.id {
			m.Versions[old].removeStage(stagePending)
		}
	}
	m.NextSeq++
	m.Versions[nv.id] = &versionMeta{Seq: m.NextSeq, Created: now, KMSKeyARNs: []string{nv.keyARN}, Stages: kept}
	for _, st := range nv.stages {
		if err := moveStage(m, st, nv.id); err != nil {
			return err
		}
	}
	data, err := jsonMarshal(versionData{Created: now})
	if err != nil {
		return err
	}
	err = tx.Insert(ctx, &storage.Record{
		Kind:    kindVersion,
		Scope:   sec.rec.Scope,
		ID:      versionRecordID(sec.rec.ID, nv.id),
		Parent:  sec.rec.ID,
		Created: now.UnixNano(),
		Data:    data,
		Sealed:  nv.sealed,
	})
	if errors.Is(err, storage.ErrExists) {
		return errVersionExists(nv.id, m.ARN)
	}
	if err != nil {
		return wrap("insert version", err)
	}
	if err := pruneVersions(ctx, tx, sec, now); err != nil {
		return err
	}
	m.LastChanged = now
	return saveSecret(ctx, tx, sec)
}

// errVersionExists is AWS's answer to a ClientRequestToken that names an
// existing version of the secret arn with a different value, in
// CreateSecret, PutSecretValue and UpdateSecret.
func errVersionExists(token, arn string) error {
	return awserr.Newf(codeExists, "You can't use ClientRequestToken %s because that value is already in use for a version of secret %s.", token, arn)
}

// minVersionAge is how long a version is kept whatever its labels: AWS
// removes versions without staging labels once a secret has more than
// maxVersions, "but it does not remove versions created less than 24 hours
// ago" (Secrets Manager quotas).
const minVersionAge = 24 * time.Hour

// pruneVersions removes the oldest deprecated (unlabeled) versions created
// at least minVersionAge before now while the secret has more than
// maxVersions. When none can go, the new version would exceed the quota:
// LimitExceededException, and the caller's transaction changes nothing.
func pruneVersions(ctx context.Context, tx storage.Tx, sec *secret, now time.Time) error {
	m := &sec.meta
	for len(m.Versions) > maxVersions {
		ids := m.orderedVersions()
		drop := ""
		for i := len(ids) - 1; i >= 0; i-- {
			v := m.Versions[ids[i]]
			if len(v.Stages) == 0 && !v.Created.After(now.Add(-minVersionAge)) {
				drop = ids[i]
				break
			}
		}
		if drop == "" {
			return errTooManyVersions()
		}
		delete(m.Versions, drop)
		err := tx.Delete(ctx, kindVersion, sec.rec.Scope, versionRecordID(sec.rec.ID, drop))
		if err != nil && !errors.Is(err, storage.ErrNotFound) {
			return wrap("delete version", err)
		}
	}
	return nil
}

func errTooManyVersions() error {
	return awserr.Newf(codeLimitExceeded, "The secret has reached the quota of %d versions. Secrets Manager removes versions "+
		"without staging labels once they are more than 24 hours old.", maxVersions)
}

// readValue decrypts version vid of sec.
func (s *Service) readValue(ctx context.Context, sec *secret, vid string) (secretValue, error) {
	return s.readVersion(ctx, sec, vid, sec.meta.Versions[vid])
}

// readVersion is readValue of a version whose metadata the caller has.
func (s *Service) readVersion(ctx context.Context, sec *secret, vid string, ver *versionMeta) (secretValue, error) {
	r := sec.readOf(vid)
	sealed, err := recordcache.Decode(ctx, s.reads, kindVersion, sec.rec.Scope, r.recID, sealedOf)
	if errors.Is(err, storage.ErrNotFound) {
		return secretValue{}, errNoValueForVersion(vid)
	}
	if err != nil {
		return secretValue{}, wrap("get version", err)
	}
	var keyARNs []string
	if ver != nil {
		keyARNs = ver.KMSKeyARNs
	}
	return s.open(ctx, sec.meta.ARN, vid, r.ec, keyARNs, sealed)
}

// sealedOf is the sealed value of a version record: through the read
// cache, the cached record's own bytes (no copy of the record), which
// must not be modified.
func sealedOf(rec *storage.Record) ([]byte, error) { return rec.Sealed, nil }

// putValue is the shared body of PutSecretValue and UpdateSecret with a
// value: idempotency through the ClientRequestToken, encryption outside the
// transaction, then the version is added under the secret's current state.
// It returns the version id and whether a new version was made.
func (s *Service) putValue(ctx context.Context, op string, scope storage.Scope, sec *secret, token *string, v secretValue, stages []string, kmsKeyID *string) (string, []string, error) {
	vid := deref(token)
	if vid == "" {
		var err error
		if vid, err = newUUID(s.rand); err != nil {
			return "", nil, err
		}
	}
	if have, ok := sec.meta.Versions[vid]; ok && !have.NoValue {
		old, err := s.readValue(ctx, sec, vid)
		if err != nil {
			return "", nil, err
		}
		defer clear(old.data)
		if !old.equal(v) {
			return "", nil, errVersionExists(vid, sec.meta.ARN)
		}
		return vid, append([]string{}, have.Stages...), nil // idempotent retry
	}
	meta := sec.meta
	if kmsKeyID != nil {
		meta.KmsKeyID = *kmsKeyID
	}
	keyRef, err := s.kmsKeyRef(ctx, &meta)
	if err != nil {
		return "", nil, err
	}
	sealed, keyARN, err := s.seal(ctx, keyRef, sec.meta.ARN, vid, v)
	if err != nil {
		return "", nil, err
	}
	var outStages []string
	var after syncAfter
	err = s.store.Update(ctx, func(tx storage.Tx) error {
		cur, err := getSecret(ctx, tx, scope, sec.rec.ID)
		if err != nil {
			return err
		}
		if cur.meta.ARN != sec.meta.ARN {
			return errSecretNotFound() // deleted and re-created meanwhile
		}
		if cur.deleted() {
			return errMarkedForDeletion()
		}
		if cur.meta.isReplica() {
			return errReplicaOp()
		}
		if kmsKeyID != nil {
			cur.meta.KmsKeyID = *kmsKeyID
		}
		if err := addVersion(ctx, tx, cur, newVersion{id: vid, sealed: sealed, keyARN: keyARN, stages: stages}, s.now().UTC()); err != nil {
			return err
		}
		outStages = append([]string{}, cur.meta.Versions[vid].Stages...)
		return s.queueSync(ctx, tx, cur, &after)
	})
	if err != nil {
		return "", nil, err
	}
	s.syncNow(ctx, after)
	return vid, outStages, nil
}

// GetSecretValue returns the value of one version of a secret: by
// VersionId, by VersionStage, or the AWSCURRENT version.
func (s *Service) GetSecretValue(ctx context.Context, in *smapi.GetSecretValueInput) (*smapi.GetSecretValueOutput, error) {
	const op = "GetSecretValue"
	scope, err := secretScope(ctx, in.SecretId)
	if err != nil {
		return nil, err
	}
	a := getValueAccess(in)
	sec, err := s.secretFor(ctx, s.reads, scope, deref(in.SecretId), &a)
	if err != nil {
		return nil, err
	}
	if sec.deleted() {
		return nil, errMarkedForDeletion()
	}
	vid, ver, err := pickVersion(sec, in.VersionId, in.VersionStage)
	if err != nil {
		return nil, err
	}
	v, err := s.readVersion(ctx, sec, vid, ver)
	if err != nil {
		return nil, err
	}
	// The output and the values its pointers point at are one allocation.
	g := &getValueOutput{arn: sec.meta.ARN, name: sec.meta.Name, vid: vid, created: ver.Created}
	out := &g.out
	out.ARN, out.Name, out.VersionId, out.CreatedDate = &g.arn, &g.name, &g.vid, &g.created
	out.VersionStages = append(g.stages[:0], ver.Stages...)
	if v.kind == kindString {
		g.str = sensitive.String(v.data)
		out.SecretString = &g.str
		clear(v.data)
	} else {
		out.SecretBinary = sensitive.Bytes(v.data)
	}
	s.touch(ctx, sec, vid, ver)
	return out, nil
}

// getValueOutput is a GetSecretValueOutput with room for what its pointers
// point at, and for a version's usual staging labels.
type getValueOutput struct {
	out            smapi.GetSecretValueOutput
	arn, name, vid string
	str            sensitive.String
	created        time.Time
	stages         [2]string
}

// pickVersion chooses the version GetSecretValue reads, and returns its
// metadata.
func pickVersion(sec *secret, versionID, stage *string) (string, *versionMeta, error) {
	m := &sec.meta
	if versionID != nil {
		ver, ok := m.Versions[*versionID]
		if !ok {
			return "", nil, errNoValueForVersion(*versionID)
		}
		if stage != nil && !ver.hasStage(*stage) {
			return "", nil, errStageMismatch()
		}
		return *versionID, ver, nil
	}
	label := stageCurrent
	if stage != nil {
		label = *stage
	}
	vid, ver := sec.holder(label)
	if vid == "" {
		return "", nil, errNoValueForStage(label)
	}
	return vid, ver, nil
}

// touch records the access date (a day, as AWS keeps it) of the secret and
// the version vid (whose metadata is ver). It writes at most once a day per
// version; a failure is logged and does not fail the read.
func (s *Service) touch(ctx context.Context, sec *secret, vid string, ver *versionMeta) {
	day := s.now().UTC().Truncate(24 * time.Hour)
	if ver.LastAccessed != nil && ver.LastAccessed.Equal(day) && sec.meta.LastAccessed != nil && sec.meta.LastAccessed.Equal(day) {
		return
	}
	s.writeAccess(ctx, sec, vid, day)
}

// writeAccess is touch's write, apart so that the closure's day escapes
// only when there is one.
func (s *Service) writeAccess(ctx context.Context, sec *secret, vid string, day time.Time) {
	err := s.store.Update(ctx, func(tx storage.Tx) error {
		cur, err := getSecret(ctx, tx, sec.rec.Scope, sec.rec.ID)
		if err != nil {
			return err
		}
		v, ok := cur.meta.Versions[vid]
		if !ok || cur.meta.ARN != sec.meta.ARN {
			return nil
		}
		v.LastAccessed = &day
		cur.meta.LastAccessed = &day
		return saveSecret(ctx, tx, cur)
	})
	if err != nil {
		s.log.WarnContext(ctx, "secretsmanager: record access date", "err", err)
	}
}

// PutSecretValue stores a new version of a secret's value. Without
// VersionStages the new version becomes AWSCURRENT (the old one becomes
// AWSPREVIOUS); the first version of a secret is AWSCURRENT whatever its
// VersionStages. A ClientRequestToken that names an existing version is an
// idempotent retry when the value is the same, ResourceExistsException
// otherwise.
func (s *Service) PutSecretValue(ctx context.Context, in *smapi.PutSecretValueInput) (*smapi.PutSecretValueOutput, error) {
	const op = "PutSecretValue"
	scope, err := secretScope(ctx, in.SecretId)
	if err != nil {
		return nil, err
	}
	a := &access{action: in.IAMAction(), value: true}
	has, err := checkValue(in.SecretString, in.SecretBinary)
	if err != nil {
		return nil, err
	}
	if !has {
		return nil, errInvalidRequest("You must provide either SecretString or SecretBinary.")
	}
	if err := checkStages(in.VersionStages); err != nil {
		return nil, err
	}
	stages := in.VersionStages
	if stages == nil {
		stages = []string{stageCurrent}
	}
	sec, err := s.secretFor(ctx, s.store, scope, deref(in.SecretId), a)
	if err != nil {
		return nil, err
	}
	if sec.deleted() {
		return nil, errMarkedForDeletion()
	}
	if in.RotationToken != nil && !sec.meta.rotationTokenValid(in.RotationToken.Reveal()) {
		return nil, errBadRotationToken() // see rotation.go
	}
	if sec.meta.isReplica() {
		return nil, errReplicaOp() // before the value is encrypted
	}
	vid, outStages, err := s.putValue(ctx, op, scope, sec, in.ClientRequestToken, valueOf(in.SecretString, in.SecretBinary), stages, nil)
	if err != nil {
		return nil, err
	}
	return &smapi.PutSecretValueOutput{
		ARN:           ptr(sec.meta.ARN),
		Name:          ptr(sec.meta.Name),
		VersionId:     ptr(vid),
		VersionStages: outStages,
	}, nil
}

// ListSecretVersionIds lists the versions of a secret, newest first. Without
// IncludeDeprecated, versions without staging labels are left out.
func (s *Service) ListSecretVersionIds(ctx context.Context, in *smapi.ListSecretVersionIdsInput) (*smapi.ListSecretVersionIdsOutput, error) {
	const op = "ListSecretVersionIds"
	scope, err := secretScope(ctx, in.SecretId)
	if err != nil {
		return nil, err
	}
	a := act(in.IAMAction())
	limit, err := maxResults(in.MaxResults)
	if err != nil {
		return nil, err
	}
	sec, err := s.secretFor(ctx, s.store, scope, deref(in.SecretId), a)
	if err != nil {
		return nil, err
	}
	listID := "versions\x00" + sec.meta.ARN + "\x00" + boolString(deref(in.IncludeDeprecated))
	after := int64(-1)
	if in.NextToken != nil {
		pos, err := decodeToken(listID, *in.NextToken)
		if err != nil {
			return nil, err
		}
		if after, err = parseSeq(pos); err != nil {
			return nil, errInvalidNextToken()
		}
	}
	out := &smapi.ListSecretVersionIdsOutput{
		ARN:      ptr(sec.meta.ARN),
		Name:     ptr(sec.meta.Name),
		Versions: []smapi.SecretVersionsListEntry{},
	}
	var managed *string // the managed key's ARN, looked up once when needed
	for _, id := range sec.meta.orderedVersions() {
		v := sec.meta.Versions[id]
		if after >= 0 && v.Seq >= after {
			continue
		}
		if len(v.Stages) == 0 && !deref(in.IncludeDeprecated) {
			continue
		}
		if len(out.Versions) == limit {
			last := sec.meta.Versions[deref(out.Versions[limit-1].VersionId)]
			out.NextToken = ptr(encodeToken(listID, formatSeq(last.Seq)))
			break
		}
		e := smapi.SecretVersionsListEntry{
			VersionId:        ptr(id),
			CreatedDate:      ptr(v.Created),
			LastAccessedDate: v.LastAccessed,
		}
		// A deprecated version (no staging labels) has no VersionStages
		// member at all, as AWS answers; an empty list would be "[]".
		if len(v.Stages) > 0 {
			e.VersionStages = append([]string{}, v.Stages...)
		}
		if len(v.KMSKeyARNs) > 0 {
			e.KmsKeyIds = make([]string, len(v.KMSKeyARNs))
			for i, k := range v.KMSKeyARNs {
				if managed == nil {
					managed = ptr(s.managedKeyARNIfExists(ctx))
				}
				if k == *managed {
					k = defaultKeyName
				}
				e.KmsKeyIds[i] = k
			}
		}
		out.Versions = append(out.Versions, e)
	}
	return out, nil
}

// defaultKeyName is how ListSecretVersionIds names the AWS managed key
// aws/secretsmanager in KmsKeyIds, as AWS does.
const defaultKeyName = "DefaultEncryptionKey"

// managedKeyARNIfExists returns the ARN of the caller's AWS managed key
// aws/secretsmanager, or "" when it does not exist yet or cannot be
// described. Unlike kmsKeyRef it never creates the key: listing versions
// must not change the account.
func (s *Service) managedKeyARNIfExists(ctx context.Context) string {
	out, err := s.kms.DescribeKey(ctx, &kmsapi.DescribeKeyInput{KeyId: ptr("alias/aws/" + managedKeyService)})
	if err != nil || out.KeyMetadata == nil {
		return ""
	}
	return deref(out.KeyMetadata.Arn)
}

// UpdateSecretVersionStage moves a staging label to a version
// (MoveToVersionId), removes it from one (RemoveFromVersionId), or both.
func (s *Service) UpdateSecretVersionStage(ctx context.Context, in *smapi.UpdateSecretVersionStageInput) (*smapi.UpdateSecretVersionStageOutput, error) {
	const op = "UpdateSecretVersionStage"
	scope, err := secretScope(ctx, in.SecretId)
	if err != nil {
		return nil, err
	}
	a := act(in.IAMAction()).with("secretsmanager:versionstage", deref(in.VersionStage))
	label := deref(in.VersionStage)
	if label == "" || len(label) > 256 {
		return nil, errInvalidParameter("A staging label must be 1 to 256 characters long.")
	}
	if in.MoveToVersionId == nil && in.RemoveFromVersionId == nil {
		return nil, errInvalidParameter("You must specify MoveToVersionId, RemoveFromVersionId, or both.")
	}
	var sec *secret
	var after syncAfter
	err = s.store.Update(ctx, func(tx storage.Tx) error {
		var err error
		sec, err = s.secretFor(ctx, tx, scope, deref(in.SecretId), a)
		if err != nil {
			return err
		}
		if sec.deleted() {
			return errMarkedForDeletion()
		}
		m := &sec.meta
		holder := m.holder(label)
		move, remove := deref(in.MoveToVersionId), deref(in.RemoveFromVersionId)
		if in.MoveToVersionId != nil {
			if _, ok := m.Versions[move]; !ok {
				return errInvalidParameter("Not a valid version: " + move)
			}
		}
		if in.RemoveFromVersionId != nil {
			if _, ok := m.Versions[remove]; !ok {
				return errInvalidParameter("Not a valid version: " + remove)
			}
			if holder != remove {
				return errInvalidParameter("The staging label " + label + " is not attached to version " + remove + ".")
			}
		}
		if in.MoveToVersionId == nil {
			if label == stageCurrent {
				return errInvalidParameter("You can't remove the staging label AWSCURRENT from a version without moving it to another version with MoveToVersionId.")
			}
			m.Versions[remove].removeStage(label)
		} else {
			if holder != "" && holder != move && in.RemoveFromVersionId == nil {
				return errInvalidParameter("The parameter RemoveFromVersionId can't be empty. Staging label " + label +
					" is currently attached to version " + holder + ", so you must explicitly reference that version in RemoveFromVersionId.")
			}
			if err := moveStage(m, label, move); err != nil {
				return err
			}
		}
		m.LastChanged = s.now().UTC()
		return s.saveChange(ctx, tx, sec, &after)
	})
	if err != nil {
		return nil, err
	}
	s.syncNow(ctx, after)
	return &smapi.UpdateSecretVersionStageOutput{ARN: ptr(sec.meta.ARN), Name: ptr(sec.meta.Name)}, nil
}

func boolString(b bool) string {
	if b {
		return "1"
	}
	return "0"
}

// sortedTags returns tags sorted by key.
func sortedTags(tags []tag) []tag {
	out := append([]tag(nil), tags...)
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out
}
