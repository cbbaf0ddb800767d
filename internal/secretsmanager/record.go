package secretsmanager

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"sort"
	"strings"
	"sync/atomic"
	"time"

	"github.com/keyfort/keyfort/internal/job"
	"github.com/keyfort/keyfort/internal/partition"
	"github.com/keyfort/keyfort/internal/recordcache"
	"github.com/keyfort/keyfort/internal/storage"
	"github.com/keyfort/keyfort/internal/uuid"
)

// Staging labels with a meaning to Secrets Manager.
const (
	stageCurrent  = "AWSCURRENT"
	stagePrevious = "AWSPREVIOUS"
	stagePending  = "AWSPENDING"
)

// Limits AWS documents for Secrets Manager.
const (
	maxVersions         = 100 // versions kept per secret; older unlabeled ones are dropped
	maxStagesPerVersion = 20
	maxTags             = 50
	maxTagKeyLen        = 127
	maxTagValueLen      = 255
	maxValueBytes       = 65536
	maxNameLen          = 512
)

// secretMeta is the stored, non-secret metadata of a secret (record Data).
// The versions map (with each version's staging labels) lives here so that
// one read answers DescribeSecret and picks the version GetSecretValue
// needs; the version records hold only the encrypted values.
type secretMeta struct {
	ARN         string  `json:"arn"`
	Name        string  `json:"name"`
	Description *string `json:"description,omitempty"`
	// KmsKeyID is the KmsKeyId the caller gave, as given; empty means the
	// AWS managed key aws/secretsmanager.
	KmsKeyID string  `json:"kmsKeyId,omitempty"`
	Type     *string `json:"type,omitempty"`
	// Tags is nil until the secret is first tagged (DescribeSecret then
	// omits Tags); an empty non-nil list after all tags are removed.
	Tags []tag `json:"tags"`

	Created      time.Time  `json:"created"`
	LastChanged  time.Time  `json:"lastChanged"`
	LastAccessed *time.Time `json:"lastAccessed,omitempty"`
	// Deleted is when deletion was requested (DeletedDate); Deletion is when
	// the secret will be purged. Both are nil unless the secret is
	// scheduled for deletion.
	Deleted  *time.Time `json:"deleted,omitempty"`
	Deletion *time.Time `json:"deletion,omitempty"`

	RotationEnabled    bool       `json:"rotationEnabled,omitempty"`
	RotationLambdaARN  string     `json:"rotationLambdaArn,omitempty"`
	RotationDays       int64      `json:"rotationDays,omitempty"`
	RotationSchedule   string     `json:"rotationSchedule,omitempty"`
	RotationDuration   string     `json:"rotationDuration,omitempty"`
	LastRotated        *time.Time `json:"lastRotated,omitempty"`
	NextRotation       *time.Time `json:"nextRotation,omitempty"`
	ResourcePolicyJSON string     `json:"policy,omitempty"`
	// RotationDue is when the next scheduled rotation window opens (the
	// background job rotates then); nil without rotation or a schedule.
	RotationDue *time.Time `json:"rotationDue,omitempty"`
	// RotationTokenHash is the hex SHA-256 of the RotationToken of the
	// rotation in progress, which PutSecretValue accepts (see rotation.go).
	RotationTokenHash string `json:"rotationTokenHash,omitempty"`

	// PrimaryRegion is set on a replica (the primary's region) and on a
	// primary that has replicas (its own region); see replication.go.
	PrimaryRegion string `json:"primaryRegion,omitempty"`
	// Replicas are a primary's replicas, in the order they were added.
	Replicas []replicaMeta `json:"replicas,omitempty"`

	// NextSeq numbers versions in creation order.
	NextSeq  int64                   `json:"nextSeq"`
	Versions map[string]*versionMeta `json:"versions"`

	// Seed is the seed-file entry the secret was made from (seed.go); nil
	// for secrets made through the API.
	Seed *secretSeedDef `json:"seed,omitempty"`
}

// versionMeta is the metadata of one version of a secret.
type versionMeta struct {
	Seq     int64     `json:"seq"`
	Stages  []string  `json:"stages"`
	Created time.Time `json:"created"`
	// KMSKeyARNs are the KMS keys the value is encrypted under, one per
	// entry of the sealed value, newest first.
	KMSKeyARNs   []string   `json:"kmsKeyArns"`
	LastAccessed *time.Time `json:"lastAccessed,omitempty"`
	// NoValue marks the empty version RotateSecret creates (labeled
	// AWSPENDING) until the rotation function stores its value.
	NoValue bool `json:"noValue,omitempty"`
}

// versionData is the Data of a version record (the value is in Sealed).
type versionData struct {
	Created time.Time `json:"created"`
}

type tag struct {
	Key   string `json:"k"`
	Value string `json:"v"`
}

// secret is a loaded secret record.
type secret struct {
	rec  *storage.Record
	meta secretMeta
	// policy is the parsed meta.ResourcePolicyJSON, set on first use
	// (resourcePolicy).
	policy policyCache
	// lastRead is what reading the version last read needs (readOf).
	lastRead atomic.Pointer[versionRead]
	// held is the staging label last looked up and its version (holder).
	held atomic.Pointer[labelHolder]
}

// labelHolder is a staging label, the version that carried it and that
// version's metadata.
type labelHolder struct {
	label, vid string
	ver        *versionMeta
}

// holder is s.meta.holder(label) and that version's metadata (nil when no
// version carries label), without walking the versions each time: the
// version found last for label is checked to be the one s.meta.Versions
// holds and to carry the label still (a label is on at most one version),
// and looked for again if not.
func (s *secret) holder(label string) (string, *versionMeta) {
	if h := s.held.Load(); h != nil && h.label == label {
		if v := s.meta.Versions[h.vid]; v != nil && v == h.ver && v.hasStage(label) {
			return h.vid, v
		}
	}
	vid := s.meta.holder(label)
	if vid == "" {
		return "", nil
	}
	ver := s.meta.Versions[vid]
	s.held.Store(&labelHolder{label: label, vid: vid, ver: ver})
	return vid, ver
}

// versionRead is what reading a version of a secret needs besides its
// sealed value: the version record's id and the encryption context of its
// data keys. Neither is secret; both are made once per loaded secret and
// version instead of on every read (KMS only reads the context).
type versionRead struct {
	arn, name, vid string // what it was made from
	recID          string
	ec             map[string]string
}

// readOf returns the versionRead of version vid of s, remembered on s for
// the version last read (GetSecretValue reads AWSCURRENT, mostly).
func (s *secret) readOf(vid string) *versionRead {
	if r := s.lastRead.Load(); r != nil && r.vid == vid && r.arn == s.meta.ARN && r.name == s.rec.ID {
		return r
	}
	r := &versionRead{arn: s.meta.ARN, name: s.rec.ID, vid: vid,
		recID: versionRecordID(s.rec.ID, vid), ec: encryptionContext(s.meta.ARN, vid)}
	s.lastRead.Store(r)
	return r
}

func (s *secret) deleted() bool { return s.meta.Deletion != nil }

// hasStage reports whether version v carries label.
func (v *versionMeta) hasStage(label string) bool {
	for _, s := range v.Stages {
		if s == label {
			return true
		}
	}
	return false
}

func (v *versionMeta) removeStage(label string) {
	out := v.Stages[:0]
	for _, s := range v.Stages {
		if s != label {
			out = append(out, s)
		}
	}
	v.Stages = out
}

func (v *versionMeta) addStage(label string) {
	if !v.hasStage(label) {
		v.Stages = append(v.Stages, label)
	}
}

// holder returns the id of the version that carries label, or "".
func (m *secretMeta) holder(label string) string {
	for id, v := range m.Versions {
		if v.hasStage(label) {
			return id
		}
	}
	return ""
}

// orderedVersions returns the version ids newest first.
func (m *secretMeta) orderedVersions() []string {
	ids := make([]string, 0, len(m.Versions))
	for id := range m.Versions {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return m.Versions[ids[i]].Seq > m.Versions[ids[j]].Seq })
	return ids
}

// stagesMap returns version id -> staging labels for labeled versions (the
// unlabeled ones are deprecated and not shown), or nil when there are none.
func (m *secretMeta) stagesMap() map[string][]string {
	var out map[string][]string
	for id, v := range m.Versions {
		if len(v.Stages) == 0 {
			continue
		}
		if out == nil {
			out = make(map[string][]string)
		}
		out[id] = append([]string(nil), v.Stages...)
	}
	return out
}

func versionRecordID(name, versionID string) string { return name + "/" + versionID }

func decodeSecret(rec *storage.Record) (*secret, error) {
	s := &secret{rec: rec}
	if err := json.Unmarshal(rec.Data, &s.meta); err != nil {
		return nil, wrap("decode secret "+rec.ID, err)
	}
	if s.meta.Versions == nil {
		s.meta.Versions = make(map[string]*versionMeta)
	}
	return s, nil
}

// encode writes meta into the record's Data and Due columns.
func (s *secret) encode() error {
	b, err := json.Marshal(&s.meta)
	if err != nil {
		return wrap("encode secret", err)
	}
	s.rec.Data = b
	s.rec.Due = 0
	if s.meta.Deletion != nil {
		s.rec.Due = s.meta.Deletion.Unix()
		if s.meta.Deletion.Nanosecond() > 0 {
			s.rec.Due++ // never purge before the deletion date
		}
	}
	if r := s.meta.RotationDue; r != nil && s.meta.RotationEnabled && s.meta.Deletion == nil {
		due := r.Unix()
		if r.Nanosecond() > 0 {
			due++
		}
		if s.rec.Due == 0 || due < s.rec.Due {
			s.rec.Due = due
		}
	}
	return nil
}

// nameChars reports whether s is not empty and has only the characters a
// secret name may have: ASCII letters, digits and /_+=.@- (the regexp
// ^[a-zA-Z0-9/_+=.@-]+$, checked without one: it runs on every read).
func nameChars(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !isAlnum(c) && !strings.ContainsRune("/_+=.@-", rune(c)) {
			return false
		}
	}
	return true
}

func isAlnum(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
}

// hasARNSuffix reports whether s ends with the suffix of a secret ARN: "-"
// and 6 ASCII letters or digits (checked without a regexp: it runs on every
// read).
func hasARNSuffix(s string) bool {
	if len(s) < 7 || s[len(s)-7] != '-' {
		return false
	}
	for i := len(s) - 6; i < len(s); i++ {
		if !isAlnum(s[i]) {
			return false
		}
	}
	return true
}

// checkName applies AWS's secret name rules beyond the model's length:
// ASCII letters, digits and /_+=.@- (ValidationException otherwise).
func checkName(name string) error {
	if len(name) == 0 || len(name) > maxNameLen || !nameChars(name) {
		return errInvalidName()
	}
	return nil
}

func arnPrefix(scope storage.Scope) string {
	return partition.ARN(scope.Region, "secretsmanager:"+scope.Region+":"+scope.Account+":secret:")
}

const suffixAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

// newARN returns a secret ARN with 6 random alphanumeric characters.
func newARN(r io.Reader, scope storage.Scope, name string) (string, error) {
	var out [6]byte
	var buf [16]byte
	n := 0
	for range 16 { // bounded: rejection sampling needs ~1.1 bytes per char
		if _, err := io.ReadFull(r, buf[:]); err != nil {
			return "", wrap("arn suffix", err)
		}
		for _, b := range buf {
			if b >= 248 { // 248 = 4*62: keep the distribution uniform
				continue
			}
			out[n] = suffixAlphabet[int(b)%len(suffixAlphabet)]
			n++
			if n == len(out) {
				return arnPrefix(scope) + name + "-" + string(out[:]), nil
			}
		}
	}
	return "", wrap("arn suffix", errors.New("random source too biased"))
}

// newUUID returns a random (version 4) UUID in canonical form.
func newUUID(r io.Reader) (string, error) {
	id, err := uuid.NewV4(r)
	if err != nil {
		return "", wrap("version id", err)
	}
	return id, nil
}

// getter is what secret lookup needs: a transaction reader or the store.
type getter interface {
	Get(ctx context.Context, kind storage.Kind, scope storage.Scope, id string) (*storage.Record, error)
}

// resolveSecret loads the secret a SecretId names: a name, a full ARN, or a
// partial ARN (an ARN without the 6-character suffix). A SecretId that is
// not an ARN and has characters no name can have is ValidationException, as
// on AWS. An ARN of another account or region names no secret here
// (ResourceNotFoundException). Secrets scheduled for deletion are returned;
// callers decide what they allow.
//
// A full ARN is tried first; when it names no secret, the whole resource
// part is taken as a name (a partial ARN). So for a secret whose own name
// ends with a hyphen and six characters, its partial ARN still finds it,
// where AWS takes such an ARN as a complete one and warns of "unexpected
// results".
func resolveSecret(ctx context.Context, g getter, scope storage.Scope, id string) (*secret, error) {
	if !strings.HasPrefix(id, "arn:") {
		if id != "" && len(id) <= maxNameLen && !nameChars(id) {
			return nil, errInvalidName()
		}
		return getSecret(ctx, g, scope, id)
	}
	prefix := arnPrefix(scope)
	rest, ok := strings.CutPrefix(id, prefix)
	if !ok || rest == "" {
		return nil, errSecretNotFound()
	}
	if hasARNSuffix(rest) && len(rest) > 7 {
		s, err := getSecret(ctx, g, scope, rest[:len(rest)-7])
		if err == nil && s.meta.ARN == id {
			return s, nil
		}
		if err != nil && !isNotFound(err) {
			return nil, err
		}
	}
	// A partial ARN: the name without the suffix.
	return getSecret(ctx, g, scope, rest)
}

func getSecret(ctx context.Context, g getter, scope storage.Scope, name string) (*secret, error) {
	if name == "" || len(name) > maxNameLen {
		return nil, errSecretNotFound()
	}
	// Through the read cache the secret is shared with other readers and
	// must not be modified; a write path reads its own in its transaction.
	sec, err := recordcache.Decode(ctx, g, kindSecret, scope, name, decodeSecret)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, errSecretNotFound()
	}
	if err != nil {
		return nil, wrap("get secret", err)
	}
	return sec, nil
}

func isNotFound(err error) bool { return isCode(err, codeNotFound) }

// saveSecret writes s back (optimistic: fails with storage.ErrConflict if
// the record changed since it was read).
func saveSecret(ctx context.Context, tx storage.Tx, s *secret) error {
	if err := s.encode(); err != nil {
		return err
	}
	if err := tx.Update(ctx, s.rec); err != nil {
		return wrap("update secret", err)
	}
	return nil
}

// purgeSecret deletes a secret and all its version records.
func purgeSecret(ctx context.Context, tx storage.Tx, s *secret) error {
	scope := s.rec.Scope
	recs, err := tx.List(ctx, kindVersion, scope, storage.ListOptions{Parent: s.rec.ID})
	if err != nil {
		return wrap("list versions", err)
	}
	for _, r := range recs {
		if err := tx.Delete(ctx, kindVersion, scope, r.ID); err != nil && !errors.Is(err, storage.ErrNotFound) {
			return wrap("delete version", err)
		}
	}
	if err := tx.Delete(ctx, kindSecret, scope, s.rec.ID); err != nil && !errors.Is(err, storage.ErrNotFound) {
		return wrap("delete secret", err)
	}
	return job.Unmark(ctx, tx, kindRotation, scope, s.rec.ID) // a rotation it had in flight
}
