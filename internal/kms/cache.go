package kms

import (
	"context"
	"errors"
	"sync"

	"github.com/keyfort/keyfort/internal/awserr"
	"github.com/keyfort/keyfort/internal/metrics"
	"github.com/keyfort/keyfort/internal/storage"
)

// readCache keeps decoded keys and alias targets for the hot path
// (Encrypt, Decrypt, GenerateDataKey, DescribeKey) when the store is a
// storage.ChangeNotifier. It cannot serve stale state: the store invalidates
// an entry after every commit that changes its record and before that
// Update returns (another node's commit: before the request's Sync
// returns; kind "" drops every entry), and a fill is dropped if any invalidation happened since
// the read it comes from began (gen), so a slow reader cannot put back an
// old record after a newer commit.
type readCache struct {
	mu  sync.RWMutex
	gen uint64
	max int
	m   map[cacheKey]cacheEntry

	// keyfort_cache_requests_total{cache="kms_key"|"kms_alias",result}
	keyHit, keyMiss, aliasHit, aliasMiss *metrics.Counter
}

type cacheKey struct {
	kind  storage.Kind
	scope storage.Scope
	id    string
}

type cacheEntry struct {
	key    *key   // kindKey: the decoded key (read-only once cached)
	target string // kindAlias: the target key id
}

func newReadCache(store storage.Store, max int, reg *metrics.Registry) *readCache {
	n, ok := store.(storage.ChangeNotifier)
	if !ok {
		return nil // no change notifications: read through on every request
	}
	c := &readCache{max: max, m: make(map[cacheKey]cacheEntry)}
	v := reg.Counter(metrics.CacheRequests, metrics.CacheRequestsHelp, "cache", "result")
	c.keyHit, c.keyMiss = v.With("kms_key", "hit"), v.With("kms_key", "miss")
	c.aliasHit, c.aliasMiss = v.With("kms_alias", "hit"), v.With("kms_alias", "miss")
	n.Subscribe(c.invalidate)
	return c
}

func (c *readCache) invalidate(kind storage.Kind, scope storage.Scope, id string) {
	if kind != kindKey && kind != kindAlias && kind != "" {
		return
	}
	c.mu.Lock()
	c.gen++
	if kind == "" {
		clear(c.m)
	} else {
		delete(c.m, cacheKey{kind, scope, id})
	}
	c.mu.Unlock()
}

func (c *readCache) lookup(k cacheKey) (cacheEntry, uint64, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	e, ok := c.m[k]
	switch {
	case k.kind == kindKey && ok:
		c.keyHit.Inc()
	case k.kind == kindKey:
		c.keyMiss.Inc()
	case ok:
		c.aliasHit.Inc()
	default:
		c.aliasMiss.Inc()
	}
	return e, c.gen, ok
}

func (c *readCache) fill(k cacheKey, e cacheEntry, gen uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gen != gen {
		return
	}
	if len(c.m) >= c.max {
		for old := range c.m { // evict an arbitrary entry
			delete(c.m, old)
			break
		}
	}
	c.m[k] = e
}

// cachedKey returns the key with id in scope, from the cache when possible,
// and names it as a resource of the request's audit event.
// The returned key must not be modified.
func (s *Service) cachedKey(ctx context.Context, scope storage.Scope, id string) (*key, error) {
	k, err := s.readKey(ctx, scope, id)
	if err != nil {
		return nil, err
	}
	k.audit(ctx)
	return k, nil
}

// readKey is cachedKey without the audit.
func (s *Service) readKey(ctx context.Context, scope storage.Scope, id string) (*key, error) {
	if s.reads == nil {
		return getKey(ctx, s.store, scope, id)
	}
	ck := cacheKey{kindKey, scope, id}
	e, gen, ok := s.reads.lookup(ck)
	if ok {
		return e.key, nil
	}
	k, err := getKey(ctx, s.store, scope, id)
	if err != nil {
		return nil, err
	}
	// The cached key is read-only: drop the encoded metadata it was decoded
	// from (about half of an entry's memory).
	k.rec.Data = nil
	s.reads.fill(ck, cacheEntry{key: k}, gen)
	return k, nil
}

// cachedAlias returns the key id an alias points at.
func (s *Service) cachedAlias(ctx context.Context, scope storage.Scope, name string) (string, error) {
	var gen uint64
	ck := cacheKey{kindAlias, scope, name}
	if s.reads != nil {
		e, g, ok := s.reads.lookup(ck)
		if ok {
			return e.target, nil
		}
		gen = g
	}
	rec, err := s.store.Get(ctx, kindAlias, scope, name)
	if errors.Is(err, storage.ErrNotFound) {
		return "", errAliasNotFound(aliasARN(scope, name))
	}
	if err != nil {
		return "", wrap("get alias", err)
	}
	if s.reads != nil {
		s.reads.fill(ck, cacheEntry{target: rec.Parent}, gen)
	}
	return rec.Parent, nil
}

// getKey reads and decodes one key record.
func getKey(ctx context.Context, g getter, scope storage.Scope, id string) (*key, error) {
	rec, err := g.Get(ctx, kindKey, scope, id)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, errKeyNotFound(keyARN(scope, id))
	}
	if err != nil {
		return nil, wrap("get key", err)
	}
	return decodeKey(rec)
}

// lookupKey resolves a KeyId parameter outside a transaction, through the
// read cache, and authorizes a on the key (a nil a authorizes nothing: the
// operation was authorized otherwise). The returned key must not be
// modified.
func (s *Service) lookupKey(ctx context.Context, scope storage.Scope, v string, kind keyRefKind, a *access) (*key, error) {
	ref, err := parseRef(scope, v, kind)
	if err != nil {
		return nil, err
	}
	id := ref.keyID
	if ref.alias != "" {
		if id, err = s.cachedAlias(ctx, ref.scope, ref.alias); err != nil {
			return nil, hideOther(ctx, &ref, scope, a, err)
		}
	}
	k, err := s.cachedKey(ctx, ref.scope, id)
	if err != nil {
		return nil, hideOther(ctx, &ref, scope, a, err)
	}
	if a != nil {
		a.requestAlias = ref.alias
		if err := s.authorize(ctx, nil, k, a); err != nil {
			return nil, err
		}
	}
	return k, nil
}

// hideOther turns "not found" for a key of another account into the
// AccessDeniedException AWS answers there, which does not tell whether the
// key exists.
func hideOther(ctx context.Context, ref *parsedRef, caller storage.Scope, a *access, err error) error {
	if a == nil || !ref.other(caller) {
		return err
	}
	if e, ok := awserr.As(err); !ok || e.Code != codeNotFound {
		return err
	}
	c, _, cerr := callerOf(ctx)
	if cerr != nil {
		return cerr
	}
	return errCrossAccountDenied(c.ARN, a.action)
}
