package keymaterial

import "sync"

// Cache is a bounded, concurrency-safe cache from material id to what a key
// type builds from that material: the AES-GCM cipher.AEAD of a symmetric
// key (NewAEAD), an HMAC key's bytes, and later a private key. Material is
// immutable once written, so a cached value is never stale; a key that is
// deleted should be removed with Delete. When full, Add evicts an arbitrary
// entry (Go's map order), which keeps Get a read-locked lookup.
//
// The cache keeps no copy of material beyond what a value holds. The
// expanded AES key inside a cipher.AEAD cannot be zeroed from Go; eviction
// drops the last reference.
type Cache struct {
	mu  sync.RWMutex
	max int
	m   map[[16]byte]any
}

// NewCache returns a cache holding at most n values (n < 1 means 1).
func NewCache(n int) *Cache {
	if n < 1 {
		n = 1
	}
	return &Cache{max: n, m: make(map[[16]byte]any, min(n, 1024))}
}

// Get returns the value cached for material id, if any.
func (c *Cache) Get(id [16]byte) (any, bool) {
	c.mu.RLock()
	v, ok := c.m[id]
	c.mu.RUnlock()
	return v, ok
}

// Add caches v under id and returns the value now cached: v, or the value
// another caller added first (material is immutable, so it is the same
// key).
func (c *Cache) Add(id [16]byte, v any) any {
	c.mu.Lock()
	defer c.mu.Unlock()
	if old, ok := c.m[id]; ok {
		return old
	}
	for k := range c.m {
		if len(c.m) < c.max {
			break
		}
		delete(c.m, k)
	}
	c.m[id] = v
	return v
}

// Delete removes the value cached for material id, if any.
func (c *Cache) Delete(id [16]byte) {
	c.mu.Lock()
	delete(c.m, id)
	c.mu.Unlock()
}

// Len returns the number of cached values.
func (c *Cache) Len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.m)
}
