package listindex

import "github.com/keyfort/keyfort/internal/storage"

// Reloading reports whether the next page of scope reads the whole list
// again (a lost notification, or more changes than MaxDirty since the last
// page). Only this package's tests ask: the services see the effect, a
// page that lists the store.
func (ix *Index[E]) Reloading(scope storage.Scope) bool {
	if ix == nil {
		return false
	}
	ix.mu.Lock()
	defer ix.mu.Unlock()
	l := ix.lists[scope]
	return l != nil && l.reload
}
