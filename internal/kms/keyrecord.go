package kms

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/keyfort/keyfort/internal/iam"
	"github.com/keyfort/keyfort/internal/operation"
	"github.com/keyfort/keyfort/internal/partition"
	"github.com/keyfort/keyfort/internal/storage"
)

// Key states (kmsapi.KeyState values) used by the service.
const (
	stateEnabled         = "Enabled"
	stateDisabled        = "Disabled"
	statePendingDeletion = "PendingDeletion"
	statePendingImport   = "PendingImport"
)

// keyMeta is the stored, non-secret metadata of a KMS key (record Data).
// Tags and the key policy live here so that one read gives everything a
// policy decision needs, in the same transaction as the key.
type keyMeta struct {
	ID          string     `json:"id"`
	Created     time.Time  `json:"created"`
	Description string     `json:"description"`
	State       string     `json:"state"`
	Usage       string     `json:"usage"`
	Spec        string     `json:"spec"`
	Origin      string     `json:"origin"`
	Manager     string     `json:"manager"` // CUSTOMER or AWS
	Deletion    *time.Time `json:"deletion,omitempty"`
	Window      int32      `json:"window,omitempty"` // PendingDeletionWindowInDays

	// Policy is the key policy; empty means the default key policy of the
	// key's account (most keys), which is not stored, to keep the record
	// small. Read it through effectivePolicy.
	Policy string `json:"policy,omitempty"`
	Tags   []tag  `json:"tags,omitempty"`

	// Material is the id (hex of 16 bytes) of the current key material.
	Material string `json:"material"`
	// Materials lists every key material id, oldest first.
	Materials []materialRef `json:"materials"`

	RotationEnabled bool       `json:"rotation,omitempty"`
	RotationPeriod  int32      `json:"rotationPeriod,omitempty"`
	NextRotation    *time.Time `json:"nextRotation,omitempty"`
	OnDemandCount   int        `json:"onDemand,omitempty"`

	// Seed is the seed-file entry the key was made from (seed.go); nil for
	// keys made through the API.
	Seed *seedDef `json:"seed,omitempty"`

	// MRK is the configuration of a multi-Region key (multiregion.go); nil
	// for a single-Region key.
	MRK *mrkConfig `json:"mrk,omitempty"`

	// XKS is the external key of a key in an external key store
	// (xkskeys.go); nil for other keys.
	XKS *xksRef `json:"xks,omitempty"`
}

// materialRef is one key material of a key.
type materialRef struct {
	ID      string    `json:"id"`
	Created time.Time `json:"created"`
	// Rotation is "", AUTOMATIC or ON_DEMAND (how it became current).
	Rotation string `json:"rotation,omitempty"`

	// The rest is set for imported material only (keys of origin
	// EXTERNAL; imported.go).

	// Expiration is the ExpirationModel of the material's import
	// (KEY_MATERIAL_EXPIRES or KEY_MATERIAL_DOES_NOT_EXPIRE).
	Expiration string `json:"expiration,omitempty"`
	// ValidTo is when the material expires (KEY_MATERIAL_EXPIRES).
	ValidTo *time.Time `json:"validTo,omitempty"`
	// Description is the KeyMaterialDescription of its last import.
	Description string `json:"description,omitempty"`
	// Absent: the material was deleted (DeleteImportedKeyMaterial) or
	// expired and its record is gone (ImportState PENDING_IMPORT) until
	// the same material is imported again.
	Absent bool `json:"absent,omitempty"`
	// PublicKey is the DER SubjectPublicKeyInfo of imported asymmetric
	// material, kept while the material is absent (GetPublicKey answers
	// for a key pending import).
	PublicKey []byte `json:"publicKey,omitempty"`
	// Pending: imported with ImportType NEW_KEY_MATERIAL while the key
	// had a current material, waiting for RotateKeyOnDemand to make it
	// current (KeyMaterialState PENDING_ROTATION).
	Pending bool `json:"pending,omitempty"`
}

type tag struct {
	Key   string `json:"k"`
	Value string `json:"v"`
}

// key is a loaded key record.
type key struct {
	rec  *storage.Record
	meta keyMeta
	arn  string
	// policy is the parsed meta.Policy, set on first use (keyPolicy).
	policy atomic.Pointer[iam.Policy]
	// display is the KeyMaterialId of the material last shown
	// (displayMaterial): a SHA-256 and a string each time otherwise.
	display atomic.Pointer[materialDisplay]
	// header is the ciphertext header of the current material
	// (currentHeader).
	header atomic.Pointer[keyHeader]
}

// materialDisplay is a material id, its KeyMaterialId, and the
// additionalEventData of an event that used it ({"keyMaterialId": ...}).
type materialDisplay struct {
	id, display string
	event       []byte
}

// displayMaterial is displayMaterialID(matID), remembered on k for the
// last material asked for (a key's reads name its current material).
func (k *key) displayMaterial(matID string) string { return k.material(matID).display }

// useMaterial records that ctx's request used material matID of k (its
// event's additionalEventData, {"keyMaterialId": ...}, as CloudTrail gives
// it) and returns the material's KeyMaterialId.
func (k *key) useMaterial(ctx context.Context, matID string) string {
	d := k.material(matID)
	operation.SetAdditionalEventData(ctx, d.event)
	return d.display
}

// material returns the materialDisplay of matID, remembered on k.
func (k *key) material(matID string) *materialDisplay {
	if d := k.display.Load(); d != nil && d.id == matID {
		return d
	}
	display := displayMaterialID(matID)
	d := &materialDisplay{id: matID, display: display}
	if x := k.meta.XKS; x != nil {
		// CloudTrail names the custom key store and the external key of
		// a key in an external key store. Both are letters, digits and
		// "-_.": nothing to escape.
		d.event = materialEventData("keyMaterialId", display, "customKeyStoreId", x.Store, "xksKeyId", x.KeyID)
	} else {
		d.event = materialEventData("keyMaterialId", display)
	}
	k.display.Store(d)
	return d
}

// materialEventData is the JSON object {name: id, ...} of the names and
// KeyMaterialIds given in pairs, in that order. Both are letters and hex
// digits (displayMaterialID): nothing to escape.
func materialEventData(pairs ...string) []byte {
	b := append(make([]byte, 0, 96*len(pairs)/2), '{')
	for i := 0; i+1 < len(pairs); i += 2 {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, '"')
		b = append(b, pairs[i]...)
		b = append(b, `":"`...)
		b = append(b, pairs[i+1]...)
		b = append(b, '"')
	}
	return append(b, '}')
}

// materialHex is the hex material id of a ciphertext's header: the string
// k's Materials holds when it lists the material (no allocation), else a
// new one (which then names no material of k).
func (k *key) materialHex(id *[16]byte) string {
	var buf [32]byte
	hex.Encode(buf[:], id[:])
	for _, m := range k.meta.Materials {
		if m.ID == string(buf[:]) {
			return m.ID
		}
	}
	return string(buf[:])
}

func (k *key) scope() storage.Scope { return k.rec.Scope }

// due returns the next time background work is due for the key: the
// earliest of its deletion, its next automatic rotation and the expiry of
// an imported material it holds.
func (m *keyMeta) due() int64 {
	var t time.Time
	earliest := func(c *time.Time) {
		if c != nil && (t.IsZero() || c.Before(t)) {
			t = *c
		}
	}
	if m.State == statePendingDeletion {
		earliest(m.Deletion)
	} else if m.RotationEnabled {
		earliest(m.NextRotation)
	}
	earliest(m.nextExpiry())
	if t.IsZero() {
		return 0
	}
	return t.Unix()
}

// nextExpiry is the earliest ValidTo of the imported materials the key
// holds, nil if none expires.
func (m *keyMeta) nextExpiry() *time.Time {
	var t *time.Time
	for i := range m.Materials {
		r := &m.Materials[i]
		if r.ValidTo != nil && !r.Absent && (t == nil || r.ValidTo.Before(*t)) {
			t = r.ValidTo
		}
	}
	return t
}

// materialRef returns the entry of material id, nil if the key has none.
func (m *keyMeta) materialRef(id string) *materialRef {
	for i := range m.Materials {
		if m.Materials[i].ID == id {
			return &m.Materials[i]
		}
	}
	return nil
}

func keyARN(scope storage.Scope, id string) string {
	return partition.ARN(scope.Region, "kms:"+scope.Region+":"+scope.Account+":key/"+id)
}

func aliasARN(scope storage.Scope, name string) string {
	return partition.ARN(scope.Region, "kms:"+scope.Region+":"+scope.Account+":"+name)
}

func decodeKey(rec *storage.Record) (*key, error) {
	k := &key{rec: rec}
	if err := json.Unmarshal(rec.Data, &k.meta); err != nil {
		return nil, wrap("decode key "+rec.ID, err)
	}
	k.arn = keyARN(rec.Scope, rec.ID)
	return k, nil
}

func (k *key) encode() error {
	b, err := json.Marshal(&k.meta)
	if err != nil {
		return wrap("encode key", err)
	}
	k.rec.Data = b
	k.rec.Due = k.meta.due()
	return nil
}

// keyRefKind says which forms of key identifier an operation accepts (a
// set of flags).
type keyRefKind int

const (
	// refKeyOnly accepts a key id or key ARN.
	refKeyOnly keyRefKind = 0
	// refAliasOK also accepts an alias name or alias ARN.
	refAliasOK keyRefKind = 1 << iota
	// refCrossAccount accepts the key ARN (or alias ARN, with refAliasOK)
	// of another account: the operations AWS lets principals use on keys
	// of other accounts (cryptographic operations, DescribeKey, grants,
	// GetKeyRotationStatus).
	refCrossAccount
)

// parsedRef is a key identifier taken apart.
type parsedRef struct {
	keyID string // set for key id / key ARN
	alias string // "alias/..." for alias name / alias ARN
	arn   bool
	raw   string
	// scope is where the key lives: the caller's, or the account of an ARN
	// when the operation accepts other accounts' keys.
	scope storage.Scope
}

// other reports whether the reference names another account's key.
func (r *parsedRef) other(caller storage.Scope) bool { return r.scope.Account != caller.Account }

// splitARN is strings.SplitN(arn, ":", 6) when that has six parts (ok),
// without allocating the slice.
func splitARN(arn string) (parts [6]string, ok bool) {
	rest := arn
	for i := range 5 {
		j := strings.IndexByte(rest, ':')
		if j < 0 {
			return parts, false
		}
		parts[i], rest = rest[:j], rest[j+1:]
	}
	parts[5] = rest
	return parts, true
}

// parseRef parses a KeyId parameter in the caller's scope. An ARN of another
// region is NotFoundException, as on AWS: the key cannot be seen from here.
// An ARN of another account is NotFoundException too, unless kind has
// refCrossAccount: then the reference is resolved in that account.
func parseRef(scope storage.Scope, v string, kind keyRefKind) (parsedRef, error) {
	r := parsedRef{raw: v, scope: scope}
	switch {
	case strings.HasPrefix(v, "arn:"):
		parts, ok := splitARN(v)
		if !ok || parts[1] != partition.For(scope.Region) || parts[2] != "kms" || parts[3] == "" || parts[4] == "" {
			return r, errInvalidArn(v)
		}
		res := parts[5]
		r.arn = true
		switch {
		case strings.HasPrefix(res, "key/"):
			r.keyID = strings.TrimPrefix(res, "key/")
			if parts[3] != scope.Region {
				return r, errOtherRegionArn(parts[3])
			}
			if parts[4] != scope.Account {
				if kind&refCrossAccount == 0 || !iam.IsAccountID(parts[4]) {
					return r, errKeyNotFound(v)
				}
				r.scope.Account = parts[4]
			}
			if !validKeyID(r.keyID) {
				return r, errKeyNotFound(v)
			}
		case strings.HasPrefix(res, "alias/"):
			if kind&refAliasOK == 0 {
				return r, errAliasNotSupported()
			}
			r.alias = res
			if parts[3] != scope.Region {
				return r, errAliasNotFound(v)
			}
			if parts[4] != scope.Account {
				if kind&refCrossAccount == 0 || !iam.IsAccountID(parts[4]) {
					return r, errAliasNotFound(v)
				}
				r.scope.Account = parts[4]
			}
		default:
			return r, errInvalidArn(v)
		}
	case strings.HasPrefix(v, "alias/"):
		if kind&refAliasOK == 0 {
			return r, errAliasNotSupported()
		}
		r.alias = v
	default:
		if !validKeyID(v) {
			return r, errInvalidKeyID(v)
		}
		r.keyID = v
	}
	return r, nil
}

// getter is what key lookup needs: a transaction reader or the store itself.
type getter interface {
	Get(ctx context.Context, kind storage.Kind, scope storage.Scope, id string) (*storage.Record, error)
}

// resolveKey loads the key a KeyId parameter names (inside a transaction,
// or from the store without the cache).
func resolveKey(ctx context.Context, g getter, scope storage.Scope, v string, kind keyRefKind) (*key, error) {
	ref, err := parseRef(scope, v, kind)
	if err != nil {
		return nil, err
	}
	id := ref.keyID
	if ref.alias != "" {
		rec, err := g.Get(ctx, kindAlias, ref.scope, ref.alias)
		if errors.Is(err, storage.ErrNotFound) {
			return nil, errAliasNotFound(aliasARN(ref.scope, ref.alias))
		}
		if err != nil {
			return nil, wrap("get alias", err)
		}
		id = rec.Parent
	}
	k, err := getKey(ctx, g, ref.scope, id)
	if err != nil {
		return nil, err
	}
	k.audit(ctx)
	return k, nil
}

// resourceKey is CloudTrail's resource type for keys and aliases.
const resourceKey = "AWS::KMS::Key"

// audit names the key as a resource of the request in its audit event.
func (k *key) audit(ctx context.Context) { auditResource(ctx, k.rec.Scope, k.arn) }

// auditResource names the key or alias arn of scope as a resource of the
// request's audit event.
func auditResource(ctx context.Context, scope storage.Scope, arn string) {
	operation.AddResource(ctx, operation.Resource{Type: resourceKey, ARN: arn, Account: scope.Account})
}

// auditKeyIDResponse sets the audit event's responseElements to the key ARN,
// as CloudTrail records it for EnableKey, DisableKey, CreateAlias and
// UpdateAlias although they return nothing.
func auditKeyIDResponse(ctx context.Context, arn string) {
	operation.SetResponseElements(ctx, []byte(`{"keyId":`+strconv.Quote(arn)+`}`))
}

// auditAlias names an alias as a resource of the request in its audit event,
// as CloudTrail does for the alias operations.
func auditAlias(ctx context.Context, scope storage.Scope, name string) {
	auditResource(ctx, scope, aliasARN(scope, name))
}
