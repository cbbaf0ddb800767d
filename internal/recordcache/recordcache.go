// Package recordcache keeps stored records, and the values the services
// decode from them, for the read paths of both services (KMS keys and
// aliases, Secrets Manager secrets and versions).
//
// A Cache is exact on a store that implements [storage.ChangeNotifier]:
// the store drops an entry once a commit changed its record (another node's
// commit: before the request's Sync returns), and a fill is dropped when any
// invalidation happened since its read began (the generation), so that a
// slow reader cannot put back a record older than a newer commit. On a store
// without notifications a Cache keeps nothing and reads through.
//
// It keeps what is stored: metadata and sealed bytes, never a plaintext or
// an opened key. Business rules and decoding belong to the services, which
// pass their decode function.
package recordcache

import (
	"context"
	"sync"

	"github.com/keyfort/keyfort/internal/metrics"
	"github.com/keyfort/keyfort/internal/storage"
)

// Source is what a read path reads records through: a transaction, the
// store, or a Cache.
type Source interface {
	Get(ctx context.Context, kind storage.Kind, scope storage.Scope, id string) (*storage.Record, error)
}

// Cache is a bounded, generation-checked cache of records of some kinds.
// It is safe for concurrent use.
type Cache struct {
	store storage.Store
	on    bool // the store notifies changes
	max   int
	kinds map[storage.Kind]counters

	mu  sync.RWMutex
	gen uint64
	m   map[key]*entry
}

type key struct {
	kind  storage.Kind
	scope storage.Scope
	id    string
}

// entry is one cached record and, once asked for, what it decodes to.
type entry struct {
	rec     storage.Record
	decoded any
}

type counters struct{ hit, miss *metrics.Counter }

var _ Source = (*Cache)(nil)

// New returns a cache of at most max records of the given kinds, read from
// store. kinds maps each kind to its label in
// keyfort_cache_requests_total{cache,result}. On a store without change
// notifications the cache reads through.
func New(store storage.Store, max int, reg *metrics.Registry, kinds map[storage.Kind]string) *Cache {
	c := &Cache{store: store, max: max, kinds: make(map[storage.Kind]counters), m: make(map[key]*entry)}
	v := reg.Counter(metrics.CacheRequests, metrics.CacheRequestsHelp, "cache", "result")
	for kind, label := range kinds {
		c.kinds[kind] = counters{v.With(label, "hit"), v.With(label, "miss")}
	}
	if n, ok := store.(storage.ChangeNotifier); ok {
		c.on = true
		n.Subscribe(c.invalidate)
	}
	return c
}

// invalidate is the store's change notification (kind "": anything may
// have changed).
func (c *Cache) invalidate(kind storage.Kind, scope storage.Scope, id string) {
	if _, ok := c.kinds[kind]; !ok && kind != "" {
		return
	}
	c.mu.Lock()
	c.gen++
	if kind == "" {
		clear(c.m)
	} else {
		delete(c.m, key{kind, scope, id})
	}
	c.mu.Unlock()
}

// lookup returns the entry of k, what it decoded to so far (nil if
// nothing), and the generation to fill it at: one read lock for all three.
func (c *Cache) lookup(k key) (*entry, any, uint64) {
	var decoded any
	c.mu.RLock()
	e, gen := c.m[k], c.gen
	if e != nil {
		decoded = e.decoded
	}
	c.mu.RUnlock()
	if n, ok := c.kinds[k.kind]; ok {
		if e != nil {
			n.hit.Inc()
		} else {
			n.miss.Inc()
		}
	}
	return e, decoded, gen
}

// fill stores e for k unless an invalidation happened since gen.
func (c *Cache) fill(k key, e *entry, gen uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gen != gen {
		return
	}
	if _, ok := c.m[k]; !ok && len(c.m) >= c.max {
		for old := range c.m { // evict an arbitrary entry
			delete(c.m, old)
			break
		}
	}
	c.m[k] = e
}

// read returns the entry of a record of a cached kind, and what it decoded
// to so far (nil if nothing), reading the store on a miss.
func (c *Cache) read(ctx context.Context, k key) (*entry, any, error) {
	e, decoded, gen := c.lookup(k)
	if e != nil {
		return e, decoded, nil
	}
	rec, err := c.store.Get(ctx, k.kind, k.scope, k.id)
	if err != nil {
		return nil, nil, err
	}
	e = &entry{rec: *rec}
	c.fill(k, e, gen)
	return e, nil, nil
}

// holds reports whether the cache keeps records of kind.
func (c *Cache) holds(kind storage.Kind) bool {
	_, ok := c.kinds[kind]
	return ok && c.on
}

// Get implements Source: a copy of the record (its byte slices are shared
// and must not be modified).
func (c *Cache) Get(ctx context.Context, kind storage.Kind, scope storage.Scope, id string) (*storage.Record, error) {
	if !c.holds(kind) {
		return c.store.Get(ctx, kind, scope, id)
	}
	e, _, err := c.read(ctx, key{kind, scope, id})
	if err != nil {
		return nil, err
	}
	rec := e.rec
	return &rec, nil
}

// Decode reads the record (kind, scope, id) through src and returns what
// decode makes of it. Through a Cache the value is decoded once per stored
// version of the record and shared by every caller: callers must not modify
// it. decode must depend on the record only.
func Decode[T any](ctx context.Context, src Source, kind storage.Kind, scope storage.Scope, id string, decode func(*storage.Record) (T, error)) (T, error) {
	c, ok := src.(*Cache)
	if !ok || !c.holds(kind) {
		rec, err := src.Get(ctx, kind, scope, id) // a Cache reads through
		if err != nil {
			var zero T
			return zero, err
		}
		return decode(rec)
	}
	k := key{kind, scope, id}
	e, decoded, err := c.read(ctx, k)
	if err != nil {
		var zero T
		return zero, err
	}
	if v, done := decoded.(T); done {
		return v, nil
	}
	rec := e.rec
	v, err := decode(&rec)
	if err != nil {
		return v, err
	}
	c.mu.Lock()
	if e.decoded == nil {
		e.decoded = v
	}
	c.mu.Unlock()
	return v, nil
}
