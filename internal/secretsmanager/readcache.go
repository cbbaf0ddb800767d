package secretsmanager

import (
	"context"
	"errors"
	"sync"

	"github.com/keyfort/keyfort/internal/storage"

	"github.com/keyfort/keyfort/internal/metrics"
)

// maxCachedRecords bounds the read cache (secret and version records).
const maxCachedRecords = 4096

// maxDecodedSecrets bounds the decoded secrets the read cache keeps (a
// decoded secret takes several times its stored size).
const maxDecodedSecrets = 1024

// recordCache keeps secret and version records, as stored, for the read
// path (GetSecretValue, DescribeSecret) when the store is a
// storage.ChangeNotifier. It holds only what is on disk: metadata and
// sealed values, never a plaintext or a data key, so every read of a value
// still asks KMS to decrypt its data key and a disabled or deleted KMS key
// takes effect at once.
//
// It cannot serve stale state: the store invalidates an entry after every
// commit that changes its record and before that Update returns (another
// node's commit: before the request's storage.ChangeNotifier.Sync
// returns; kind "" drops every entry), and a fill
// is dropped if any invalidation happened since the read it comes from
// began (gen), so a slow reader cannot put back an old record after a newer
// commit. Callers get a copy of the Record (its slices are shared and never
// modified: encode replaces Data rather than writing into it).
type recordCache struct {
	store storage.Store

	mu  sync.RWMutex
	gen uint64
	m   map[recordKey]*storage.Record
	// decoded keeps secrets already decoded from their records, for the
	// read path, which never modifies them (a write path reads its own copy
	// in its transaction). Invalidated with m.
	decoded map[recordKey]*secret

	// keyfort_cache_requests_total{cache="sm_secret"|"sm_record",result}
	secretHit, secretMiss, recordHit, recordMiss *metrics.Counter
}

type recordKey struct {
	kind  storage.Kind
	scope storage.Scope
	id    string
}

var _ getter = (*recordCache)(nil)

func newRecordCache(store storage.Store, reg *metrics.Registry) *recordCache {
	n, ok := store.(storage.ChangeNotifier)
	if !ok {
		return nil // no change notifications: read through on every request
	}
	c := &recordCache{store: store, m: make(map[recordKey]*storage.Record), decoded: make(map[recordKey]*secret)}
	v := reg.Counter(metrics.CacheRequests, metrics.CacheRequestsHelp, "cache", "result")
	c.secretHit, c.secretMiss = v.With("sm_secret", "hit"), v.With("sm_secret", "miss")
	c.recordHit, c.recordMiss = v.With("sm_record", "hit"), v.With("sm_record", "miss")
	n.Subscribe(c.invalidate)
	return c
}

func (c *recordCache) invalidate(kind storage.Kind, scope storage.Scope, id string) {
	if kind != kindSecret && kind != kindVersion && kind != "" {
		return
	}
	c.mu.Lock()
	c.gen++
	if kind == "" {
		clear(c.m)
		clear(c.decoded)
	} else {
		delete(c.m, recordKey{kind, scope, id})
		delete(c.decoded, recordKey{kind, scope, id})
	}
	c.mu.Unlock()
}

// secret returns the decoded secret name in scope, shared with other
// readers: callers must not modify it. Decoding the metadata is most of a
// GetSecretValue's own work, so a hit skips it.
func (c *recordCache) secret(ctx context.Context, scope storage.Scope, name string) (*secret, error) {
	k := recordKey{kindSecret, scope, name}
	c.mu.RLock()
	sec, ok := c.decoded[k]
	gen := c.gen
	c.mu.RUnlock()
	if ok {
		c.secretHit.Inc()
		return sec, nil
	}
	c.secretMiss.Inc()
	rec, err := c.Get(ctx, kindSecret, scope, name)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, errSecretNotFound()
	}
	if err != nil {
		return nil, wrap("get secret", err)
	}
	sec, err = decodeSecret(rec)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	if c.gen == gen {
		if len(c.decoded) >= maxDecodedSecrets {
			for old := range c.decoded { // evict an arbitrary entry
				delete(c.decoded, old)
				break
			}
		}
		c.decoded[k] = sec
	}
	c.mu.Unlock()
	return sec, nil
}

// Get implements getter: the record from the cache, or from the store.
func (c *recordCache) Get(ctx context.Context, kind storage.Kind, scope storage.Scope, id string) (*storage.Record, error) {
	k := recordKey{kind, scope, id}
	c.mu.RLock()
	rec, ok := c.m[k]
	gen := c.gen
	c.mu.RUnlock()
	if ok {
		c.recordHit.Inc()
		cp := *rec
		return &cp, nil
	}
	c.recordMiss.Inc()
	rec, err := c.store.Get(ctx, kind, scope, id)
	if err != nil {
		return nil, err
	}
	cached := *rec
	c.mu.Lock()
	if c.gen == gen {
		if len(c.m) >= maxCachedRecords {
			for old := range c.m { // evict an arbitrary entry
				delete(c.m, old)
				break
			}
		}
		c.m[k] = &cached
	}
	c.mu.Unlock()
	return rec, nil
}

// reader returns what the read path reads records through: the cache when
// there is one, else the store.
func (s *Service) reader() getter {
	if s.reads == nil {
		return s.store
	}
	return s.reads
}
