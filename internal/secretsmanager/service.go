// Package secretsmanager is Keyfort's AWS Secrets Manager: one method per
// operation of the Secrets Manager API (see smapi.Service), secret and
// version records, staging labels, deletion windows, tags and random
// passwords.
//
// The service knows nothing of HTTP or SQL. Secret values are
// envelope-encrypted through Keyfort's own KMS, as AWS does: each version's
// value is sealed with AES-256-GCM under a fresh data key from
// KMS.GenerateDataKey, and only the encrypted data key and the ciphertext
// reach storage. KMS is reached through the small KMS interface declared
// here, not through HTTP. Everything a client may see is an *awserr.Error
// with a Secrets Manager code; any other error is returned wrapped, and the
// server answers it as InternalServiceError (InternalMessage) after logging
// the cause.
package secretsmanager

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/keyfort/keyfort/internal/awserr"
	"github.com/keyfort/keyfort/internal/identity"
	"github.com/keyfort/keyfort/internal/kms/kmsapi"
	"github.com/keyfort/keyfort/internal/operation"
	"github.com/keyfort/keyfort/internal/recordcache"
	"github.com/keyfort/keyfort/internal/replication"
	"github.com/keyfort/keyfort/internal/secretsmanager/smapi"
	"github.com/keyfort/keyfort/internal/storage"
	"github.com/keyfort/keyfort/internal/uuid"

	"github.com/keyfort/keyfort/internal/metrics"
)

// Record kinds owned by the Secrets Manager service.
const (
	// kindSecret records: ID is the secret name, Data is secretMeta (JSON),
	// Due is the deletion date while the secret is scheduled for deletion.
	kindSecret storage.Kind = "sm.secret"
	// kindVersion records: ID is name + "/" + versionId, Parent is the
	// secret name, Sealed is the encrypted value (see seal.go), Data is
	// versionData (JSON).
	kindVersion storage.Kind = "sm.version"
	// kindRotation records: the to-do of a scheduled rotation started by
	// RunJobs (package job owns its Data; ID is the secret name), leased
	// by the node that invokes its steps (rotation.go).
	kindRotation storage.Kind = "sm.rotation"
)

// managedKeyService names the AWS managed key (alias/aws/secretsmanager)
// that protects secrets created without a KmsKeyId.
const managedKeyService = "secretsmanager"

// KMS is what the service needs from Keyfort's KMS. *kms.Service satisfies
// it. Errors are *awserr.Error with KMS codes for client-visible failures
// (a disabled, deleted or unknown key) and anything else for internal ones.
type KMS interface {
	// GenerateDataKey returns a data key in plaintext and encrypted.
	GenerateDataKey(ctx context.Context, in *kmsapi.GenerateDataKeyInput) (*kmsapi.GenerateDataKeyOutput, error)
	// Decrypt decrypts an encrypted data key.
	Decrypt(ctx context.Context, in *kmsapi.DecryptInput) (*kmsapi.DecryptOutput, error)
	// DescribeKey describes a key (by id, ARN, alias name or alias ARN).
	DescribeKey(ctx context.Context, in *kmsapi.DescribeKeyInput) (*kmsapi.DescribeKeyOutput, error)
	// ManagedKeyARN returns the ARN of the AWS managed key of service
	// (alias/aws/<service>) in the caller's account and region, creating
	// it on first use.
	ManagedKeyARN(ctx context.Context, service string) (string, error)
}

// viaService calls KMS as Secrets Manager does on AWS: on the caller's
// behalf, through the service (kms:ViaService is
// secretsmanager.<region>.amazonaws.com, so the AWS managed key
// aws/secretsmanager, whose policy allows only such calls, works), in the
// secret's region, and without naming KMS keys as resources of the Secrets
// Manager request's audit event (Secrets Manager's calls to KMS are KMS's
// events on AWS).
type viaService struct {
	KMS
	vias *viaCache
}

// viaCache keeps the last Via through made, which every call from the
// same region shares (nothing writes a Via once made): one entry, so it is
// bounded whatever regions callers name.
type viaCache struct{ last atomic.Pointer[identity.Via] }

// get returns smVia(region), made again only when the region changed.
func (c *viaCache) get(region string) *identity.Via {
	if v := c.last.Load(); v != nil && v.Region == region {
		return v
	}
	v := smVia(region)
	c.last.Store(v)
	return v
}

// smVia is the service call of Secrets Manager in region.
func smVia(region string) *identity.Via {
	return &identity.Via{Service: "secretsmanager." + region + ".amazonaws.com", Region: region, InvokedBy: "secretsmanager.amazonaws.com"}
}

// through returns ctx for a call to KMS: in the region inRegion set, else
// the caller's; without the request's notes and pending audit event.
func (v viaService) through(ctx context.Context) context.Context {
	// KMS's own writes (the AWS managed key made on first use) are not the
	// Secrets Manager request's change: its event commits with the secret.
	ctx = storage.WithoutPendingEvent(operation.WithoutNotes(ctx))
	if via := v.newVia(ctx); via != nil {
		ctx = identity.WithVia(ctx, via)
	}
	return ctx
}

// newVia returns the Via of Secrets Manager's calls to KMS for the caller
// of ctx (its region's), or nil when ctx already carries one.
func (v viaService) newVia(ctx context.Context) *identity.Via {
	if identity.ViaFrom(ctx) != nil {
		return nil
	}
	region := ""
	if c := identity.From(ctx); c != nil {
		region = c.Region
	}
	return v.vias.get(region)
}

// kmsCallCtx is the context of a call to KMS that Secrets Manager records
// as an event of its own (GenerateDataKey, Decrypt): through's context with
// the event's id (operation.EventID), in one context node where
// operation.WithoutNotes, storage.WithoutPendingEvent, identity.WithVia and
// a node for the event id would make up to four (five allocations).
type kmsCallCtx struct {
	context.Context
	via     *identity.Via // nil: the parent's (it has one)
	eventID string
}

func (x *kmsCallCtx) Value(key any) any {
	if v, ok := operation.ContextValue(key, nil, &x.eventID); ok { // no notes: WithoutNotes
		return v
	}
	if v, ok := storage.WithoutPendingEventValue(key); ok {
		return v
	}
	if x.via != nil {
		if v, ok := identity.ViaContextValue(key, x.via); ok {
			return v
		}
	}
	return x.Context.Value(key)
}

// throughWithEvent is v.through(ctx) carrying the audit event id eventID
// (operation.EventID), in one context node.
func (v viaService) throughWithEvent(ctx context.Context, eventID string) context.Context {
	return &kmsCallCtx{Context: ctx, via: v.newVia(ctx), eventID: eventID}
}

// inRegion returns ctx for work on the secrets of scope (replicas in other
// regions, background jobs): KMS is called in scope's region, by the
// request's caller, or, in a background job without one, by the root of
// the secret's account, as the service acts for the account.
func inRegion(ctx context.Context, scope storage.Scope) context.Context {
	if c := identity.From(ctx); c == nil || c.Account != scope.Account {
		ctx = identity.With(ctx, identity.Root(scope.Account, scope.Region, ""))
	}
	return identity.WithVia(ctx, smVia(scope.Region))
}

// GenerateDataKey and Decrypt are recorded as CloudTrail records Secrets
// Manager's calls to KMS: a KMS event of the request, with the caller's
// identity, invokedBy, sourceIPAddress and userAgent
// secretsmanager.amazonaws.com, and the key as its resource; written whether
// or not the Secrets Manager request succeeds, as the call was made.
func (v viaService) GenerateDataKey(ctx context.Context, in *kmsapi.GenerateDataKeyInput) (*kmsapi.GenerateDataKeyOutput, error) {
	eventID := uuid.New()
	out, err := v.KMS.GenerateDataKey(v.throughWithEvent(ctx, eventID), in)
	var keyARN, material *string
	if out != nil {
		keyARN, material = out.KeyId, out.KeyMaterialId
	}
	noteKMSCall(ctx, eventID, "GenerateDataKey", in.AppendAuditJSON(nil), material, keyARN, err)
	return out, err
}

func (v viaService) Decrypt(ctx context.Context, in *kmsapi.DecryptInput) (*kmsapi.DecryptOutput, error) {
	eventID := uuid.New()
	out, err := v.KMS.Decrypt(v.throughWithEvent(ctx, eventID), in)
	var keyARN, material *string
	if out != nil {
		keyARN, material = out.KeyId, out.KeyMaterialId
	}
	// Room after the parameters for the additional data (noteKMSCall).
	params := in.AppendAuditJSON(make([]byte, 0, decryptParamsSize(in)+materialDataSize))
	noteKMSCall(ctx, eventID, "Decrypt", params, material, keyARN, err)
	return out, err
}

// materialDataSize is the length of appendMaterialData's object for a
// KeyMaterialId of 64 hex digits.
const materialDataSize = len(`{"keyMaterialId":""}`) + 64

// appendMaterialData appends CloudTrail's additionalEventData of a KMS call
// that used the key material id (nil: none, and nothing is appended) to b
// and returns what it appended. Ids are hex digits: nothing to escape.
func appendMaterialData(b []byte, id *string) []byte {
	if id == nil {
		return nil
	}
	start := len(b)
	b = append(b, `{"keyMaterialId":"`...)
	b = append(b, *id...)
	b = append(b, `"}`...)
	return b[start:]
}

// decryptParamsSize is the length of in's audit requestParameters when no
// string needs escaping (an ARN, a version id, a key ARN: the inputs Secrets
// Manager makes): AppendAuditJSON appends into a buffer of that size once
// instead of growing one from nothing. Anything it misses only costs a
// grow.
func decryptParamsSize(in *kmsapi.DecryptInput) int {
	const (
		object    = len(`{}`)
		context   = len(`"encryptionContext":{}`)
		pair      = len(`"":"",`)
		keyID     = len(`,"keyId":""`)
		algorithm = len(`,"encryptionAlgorithm":""`)
	)
	n := object + context
	for k, v := range in.EncryptionContext {
		n += pair + len(k) + len(v)
	}
	if in.KeyId != nil {
		n += keyID + len(*in.KeyId)
	}
	if in.EncryptionAlgorithm != "" {
		n += algorithm + len(in.EncryptionAlgorithm)
	} else {
		n += algorithm + len(kmsapi.EncryptionAlgorithmSpecSymmetricDefault) // recorded when left out
	}
	return n
}

// kmsEventSource is the eventSource of KMS's events (kmsapi.Facts builds
// its whole table on each call); set once, never written.
var kmsEventSource = kmsapi.Facts().EventSource

// noteKMSCall adds the audit event eventID of a call to KMS operation name, made on
// the behalf of the caller of ctx, to the request's events. params are its
// requestParameters; when the call succeeds, the KeyMaterialId material
// (nil: none) is its additionalEventData, written into params' spare
// capacity. keyARN is the key
// KMS answered with (nil when it refused); err its error. An error that is not
// KMS's answer to the client (a failed store) is recorded as
// KMSInternalException, the code KMS answers it with.
func noteKMSCall(ctx context.Context, eventID, name string, params []byte, material, keyARN *string, err error) {
	n := len(params)
	rest := params[n:] // the spare capacity, for the additional data
	params = params[:n:n]
	e := operation.Event{
		EventID:           eventID,
		Source:            kmsEventSource,
		InvokedBy:         "secretsmanager.amazonaws.com",
		Always:            true,
		Name:              name,
		ReadOnly:          true,
		RequestParameters: params,
	}
	if err != nil {
		if ae, ok := awserr.As(err); ok {
			e.ErrorCode, e.ErrorMessage = ae.Code, ae.Message
		} else {
			e.ErrorCode = "KMSInternalException"
		}
	} else {
		e.AdditionalEventData = appendMaterialData(rest, material)
		if a := deref(keyARN); a != "" {
			e.Resources = []operation.Resource{{Type: "AWS::KMS::Key", ARN: a, Account: accountOf(a)}}
		}
	}
	operation.AddEvent(ctx, e)
}

func (v viaService) DescribeKey(ctx context.Context, in *kmsapi.DescribeKeyInput) (*kmsapi.DescribeKeyOutput, error) {
	return v.KMS.DescribeKey(v.through(ctx), in)
}

func (v viaService) ManagedKeyARN(ctx context.Context, service string) (string, error) {
	return v.KMS.ManagedKeyARN(v.through(ctx), service)
}

// Config holds the dependencies of a Service.
type Config struct {
	// Store keeps secrets and their encrypted versions.
	Store storage.Store
	// KMS encrypts and decrypts the data keys of secret values.
	KMS KMS
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Rand is the source of ARN suffixes, version ids, nonces and random
	// passwords; nil means crypto/rand.
	Rand io.Reader
	// Logger receives internal errors; nil discards.
	Logger *slog.Logger
	// Rotation delivers the steps of secret rotations to rotation
	// functions (see rotation.go); nil means no function can be invoked.
	Rotation RotationInvoker
	// RotationLease is how long a node holds a scheduled rotation whose
	// steps it invokes: if it dies meanwhile, another node reattempts the
	// rotation (same version id) when the lease has run out. It should
	// exceed the time the four steps can take. 0 means
	// DefaultRotationLease.
	RotationLease time.Duration
	// Metrics, if set, receives the read cache's hits and misses
	// (keyfort_cache_requests_total, cache sm_secret and sm_record). Nil
	// records nothing.
	Metrics *metrics.Registry
}

// Service implements smapi.Service. Operations not implemented yet answer
// NotImplementedException through the embedded smapi.UnimplementedService.
type Service struct {
	smapi.UnimplementedService

	store storage.Store
	kms   KMS
	now   func() time.Time
	rand  io.Reader
	log   *slog.Logger
	// rotator invokes rotation functions; nil when none are configured.
	rotator RotationInvoker
	// rotationLease is Config.RotationLease or its default.
	rotationLease time.Duration

	// lists is the in-memory ListSecrets index (nil on a store without
	// change notifications).
	lists *secretIndex
	// reads caches secret and version records for the read path (nil on
	// a store without change notifications).
	reads *recordcache.Cache
	// repl is the queue of replica syncs (replication.go).
	repl *replication.Queue
}

var _ smapi.Service = (*Service)(nil)

// New returns a Secrets Manager service.
func New(cfg Config) *Service {
	s := &Service{
		store: cfg.Store,
		kms:   viaService{KMS: cfg.KMS, vias: &viaCache{}},
		now:   cfg.Now,
		rand:  cfg.Rand,
		log:   cfg.Logger,
		lists: newSecretIndex(cfg.Store),

		rotator:       cfg.Rotation,
		rotationLease: cfg.RotationLease,
		reads:         newReadCache(cfg.Store, cfg.Metrics),
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.rotationLease <= 0 {
		s.rotationLease = DefaultRotationLease
	}
	if s.rand == nil {
		s.rand = rand.Reader
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	s.repl = replication.New(replication.Config{Store: s.store, Kind: kindReplSync, Sync: s.syncReplicas, Now: s.now, Logger: s.log})
	return s
}

// scopeOf returns the caller's account and region. Requests always carry a
// caller (the server's authentication puts it there); a missing caller is an
// internal error rather than a default account.
func scopeOf(ctx context.Context) (storage.Scope, error) {
	c := identity.From(ctx)
	if c == nil || c.Account == "" || c.Region == "" {
		return storage.Scope{}, errors.New("secretsmanager: request has no caller identity")
	}
	return storage.Scope{Account: c.Account, Region: c.Region}, nil
}

// wrap returns err with the package prefix and an operation.
func wrap(op string, err error) error { return fmt.Errorf("secretsmanager: %s: %w", op, err) }

func deref[T any](p *T) T {
	var z T
	if p == nil {
		return z
	}
	return *p
}

func ptr[T any](v T) *T { return &v }
