// Package kms is Keyfort's AWS Key Management Service: one method per
// operation of the KMS API (see kmsapi.Service), the key-state machine, key
// and alias resolution, tagging, rotation and key policies.
//
// The service knows nothing of HTTP or SQL. It reads and writes records
// through storage.Store, seals key material with envelope.Sealer before it
// reaches storage, and returns *awserr.Error for everything a client may see.
// Any other error (a storage failure, a record that will not open) is
// returned wrapped, and the server answers it as KMSInternalException after
// logging the cause (MapError in errors.go is the one mapping of such errors
// to a client-visible code).
package kms

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/keyfort/keyfort/internal/envelope"
	"github.com/keyfort/keyfort/internal/identity"
	"github.com/keyfort/keyfort/internal/keymaterial"
	"github.com/keyfort/keyfort/internal/kms/kmsapi"
	"github.com/keyfort/keyfort/internal/storage"
	"github.com/keyfort/keyfort/internal/xks"

	"github.com/keyfort/keyfort/internal/listindex"
	"github.com/keyfort/keyfort/internal/metrics"
	"github.com/keyfort/keyfort/internal/recordcache"
)

// Record kinds owned by the KMS service.
const (
	kindKey      storage.Kind = "kms.key"
	kindAlias    storage.Kind = "kms.alias"
	kindMaterial storage.Kind = "kms.material"
)

// Config holds the dependencies of a Service.
type Config struct {
	// Store keeps keys, aliases and sealed key material.
	Store storage.Store
	// Sealer seals key material before it is stored.
	Sealer *envelope.Sealer
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Rand is the source of key material and nonces; nil means crypto/rand.
	Rand io.Reader
	// Logger receives internal errors; nil discards.
	Logger *slog.Logger
	// MaterialCacheSize bounds the number of opened key materials kept in
	// memory (default 4096).
	MaterialCacheSize int
	// Metrics, if set, receives the read cache's hits and misses
	// (keyfort_cache_requests_total, cache kms_key and kms_alias). Nil
	// records nothing.
	Metrics *metrics.Registry
	// SealKey, if set, is called in every transaction that seals key
	// material, before it seals, and returns the id of the root key to
	// seal under (Sealer.SealUnder); nil seals under the Sealer's current
	// key. Nodes sharing a store seal under the key the store's root key
	// marker names, read there under a shared lock (internal/app), so that
	// a root key rotation moving the marker waits for them.
	SealKey func(ctx context.Context, tx storage.Tx) ([8]byte, error)
	// ServiceEvents, if set, records the service events of the background
	// work RunJobs did (DeleteKey, RotateKey, DeleteExpiredKeyMaterial),
	// once it committed, in the audit trail. Nil records none.
	ServiceEvents func(ctx context.Context, events []ServiceEvent) error
	// ServiceEventRecord, if set, returns the store's record of a service
	// event (incomplete until its line is in the audit file), which the
	// job's transaction appends with the change it records, so that a
	// process that dies before ServiceEvents wrote it loses nothing: the
	// trail finishes it at the next start (audit.Trail.Record, Finish).
	ServiceEventRecord func(ServiceEvent) *storage.EventRecord
	// XKS calls the proxies of external key stores (the app gives an
	// xksclient.Client); nil reaches none: every call fails as a proxy
	// that cannot be reached.
	XKS XKSClient
}

// XKSClient calls external key store proxies (the XKS Proxy API); package
// xksclient implements it over HTTPS. KMS knows nothing of HTTP.
type XKSClient interface {
	Health(ctx context.Context, p xks.Proxy, md xks.RequestMetadata) (*xks.Health, error)
	KeyMetadata(ctx context.Context, p xks.Proxy, keyID string, md xks.RequestMetadata) (*xks.KeyMetadata, error)
	Encrypt(ctx context.Context, p xks.Proxy, keyID string, md xks.RequestMetadata, plaintext, aad []byte) (*xks.Ciphertext, error)
	Decrypt(ctx context.Context, p xks.Proxy, keyID string, md xks.RequestMetadata, ct *xks.Ciphertext, aad []byte) ([]byte, error)
}

// noProxies is the XKSClient of a service given none.
type noProxies struct{}

func unreachable(op string) error {
	return &xks.Error{Kind: xks.KindUnreachable, Op: op, Message: "no client of external key store proxies"}
}

func (noProxies) Health(context.Context, xks.Proxy, xks.RequestMetadata) (*xks.Health, error) {
	return nil, unreachable(xks.OpGetHealthStatus)
}

func (noProxies) KeyMetadata(context.Context, xks.Proxy, string, xks.RequestMetadata) (*xks.KeyMetadata, error) {
	return nil, unreachable(xks.OpGetKeyMetadata)
}

func (noProxies) Encrypt(context.Context, xks.Proxy, string, xks.RequestMetadata, []byte, []byte) (*xks.Ciphertext, error) {
	return nil, unreachable(xks.OpEncrypt)
}

func (noProxies) Decrypt(context.Context, xks.Proxy, string, xks.RequestMetadata, *xks.Ciphertext, []byte) ([]byte, error) {
	return nil, unreachable(xks.OpDecrypt)
}

// ServiceEvent is what KMS records in CloudTrail of work it did on its
// own (eventType AwsServiceEvent): its name, when, the key it acted on,
// and the serviceEventDetails (a JSON object, or nil).
type ServiceEvent struct {
	// ID is the event's eventID, chosen when the job logged it: the id
	// of its record in the store (Config.ServiceEventRecord).
	ID      string
	Name    string
	Time    time.Time
	Account string
	Region  string
	KeyARN  string
	Details []byte
}

// Service implements kmsapi.Service.
type Service struct {
	kmsapi.UnimplementedService

	store   storage.Store
	sealer  *envelope.Sealer
	sealKey func(ctx context.Context, tx storage.Tx) ([8]byte, error)
	now     func() time.Time
	rand    io.Reader
	log     *slog.Logger
	cache   *keymaterial.Cache // what each key material opens to, by material id
	reads   *recordcache.Cache // keys and aliases for the read paths
	// keyList and aliasList are the ListKeys and ListAliases indexes, nil
	// when the store has no change notifications (listindex.go).
	keyList   *listindex.Index[struct{}]
	aliasList *listindex.Index[aliasListItem]
	marker    markerCodec
	// maxGrants is the most grants a key may have (AWS's quota,
	// maxGrantsPerKey; lower in tests).
	maxGrants int
	// tokenKey authenticates grant tokens.
	tokenKey []byte
	// defaults caches each account's parsed default key policy.
	defaults defaultPolicies
	// usage holds the key uses GetKeyLastUsage reports that are not in the
	// store yet (lastusage.go).
	usage *usageTracker
	// serviceEvents is Config.ServiceEvents; serviceEventRecord is
	// Config.ServiceEventRecord.
	serviceEvents      func(ctx context.Context, events []ServiceEvent) error
	serviceEventRecord func(ServiceEvent) *storage.EventRecord
	// xks is Config.XKS.
	xks XKSClient
}

var _ kmsapi.Service = (*Service)(nil)

// New returns a KMS service.
func New(cfg Config) *Service {
	s := &Service{
		store:   cfg.Store,
		sealer:  cfg.Sealer,
		sealKey: cfg.SealKey,
		now:     cfg.Now,
		rand:    cfg.Rand,
		log:     cfg.Logger,

		serviceEvents:      cfg.ServiceEvents,
		serviceEventRecord: cfg.ServiceEventRecord,
		xks:                cfg.XKS,
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.rand == nil {
		s.rand = rand.Reader
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.xks == nil {
		s.xks = noProxies{}
	}
	n := cfg.MaterialCacheSize
	if n <= 0 {
		n = 4096
	}
	s.cache = keymaterial.NewCache(n)
	s.reads = recordcache.New(cfg.Store, 2048, cfg.Metrics, map[storage.Kind]string{kindKey: "kms_key", kindAlias: "kms_alias"})
	s.keyList, s.aliasList = newListIndexes(cfg.Store)
	s.marker = markerCodec{key: cfg.Sealer.DeriveKey("keyfort/kms/marker/v1")}
	s.tokenKey = cfg.Sealer.DeriveKey("keyfort/kms/grant-token/v1")
	s.maxGrants = maxGrantsPerKey
	s.usage = newUsageTracker(s.now())
	return s
}

// scopeOf returns the caller's account and region. Requests always carry a
// caller (the server's authentication puts it there); a missing caller is an
// internal error rather than a default account.
//
// A call another service makes on the caller's behalf (identity.WithVia)
// acts in the region it names.
func scopeOf(ctx context.Context) (storage.Scope, *identity.Caller, error) {
	c := identity.From(ctx)
	if c == nil || c.Account == "" || c.Region == "" {
		return storage.Scope{}, nil, errors.New("kms: request has no caller identity")
	}
	region := c.Region
	if v := identity.ViaFrom(ctx); v != nil && v.Region != "" {
		region = v.Region
	}
	return storage.Scope{Account: c.Account, Region: region}, c, nil
}

// wrap returns fmt.Errorf with the package prefix.
func wrap(op string, err error) error { return fmt.Errorf("kms: %s: %w", op, err) }
