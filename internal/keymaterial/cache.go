package keymaterial

import (
	"crypto/cipher"
	"sync"
)

// AEADCache is a bounded, concurrency-safe cache from material id to the
// AES-GCM AEAD built from that material. Material is immutable once
// written, so a cached AEAD is never stale; a key that is deleted should be
// removed with Delete. When full, Put evicts an arbitrary entry (Go's map
// order), which keeps Get a read-locked lookup.
//
// The cache keeps no copy of the material bytes. The expanded AES key inside
// a cipher.AEAD cannot be zeroed from Go; eviction drops the last reference.
type AEADCache struct {
	mu  sync.RWMutex
	max int
	m   map[[16]byte]cipher.AEAD
}

// NewAEADCache returns a cache holding at most n AEADs (n < 1 means 1).
func NewAEADCache(n int) *AEADCache {
	if n < 1 {
		n = 1
	}
	return &AEADCache{max: n, m: make(map[[16]byte]cipher.AEAD, min(n, 1024))}
}

// Get returns the AEAD cached for material id, if any.
func (c *AEADCache) Get(id [16]byte) (cipher.AEAD, bool) {
	c.mu.RLock()
	a, ok := c.m[id]
	c.mu.RUnlock()
	return a, ok
}

// Put builds the AEAD for material (32 bytes), caches it under id and
// returns it. If id is already cached, the cached AEAD is returned (material
// is immutable, so it is the same key). The caller may zero material after
// Put returns.
func (c *AEADCache) Put(id [16]byte, material []byte) (cipher.AEAD, error) {
	if a, ok := c.Get(id); ok {
		return a, nil
	}
	a, err := NewAEAD(material)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if old, ok := c.m[id]; ok {
		return old, nil
	}
	for k := range c.m {
		if len(c.m) < c.max {
			break
		}
		delete(c.m, k)
	}
	c.m[id] = a
	return a, nil
}

// Delete removes the AEAD cached for material id, if any.
func (c *AEADCache) Delete(id [16]byte) {
	c.mu.Lock()
	delete(c.m, id)
	c.mu.Unlock()
}

// Len returns the number of cached AEADs.
func (c *AEADCache) Len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.m)
}
