package secretsmanager

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/keyfort/keyfort/internal/secretsmanager/smapi"
	"github.com/keyfort/keyfort/internal/storage"
)

// maxIndexed is the most secrets one account and region may have for
// ListSecrets to keep them in memory; a larger scope is listed by reading
// every secret on each page, as on a shared store.
const maxIndexed = 100_000

// listIndex keeps, per account and region, the stored metadata of every
// secret and the secrets sorted by each SortBy, so that a ListSecrets page
// reads only what the page needs instead of every secret of the scope. It
// keeps the metadata as stored (JSON, about a quarter of its decoded size)
// and decodes only the entries a page visits. It
// exists only when the store is a storage.ChangeNotifier (every change is
// made by this process); on a shared store ListSecrets reads through.
//
// It cannot serve stale state: the store marks a secret dirty after every
// commit that changes it and before that Update returns, and a page first
// re-reads the dirty secrets of its scope (refresh). Refreshes of a scope are
// serialized, and each takes the dirty set before it reads, so a later
// refresh never applies an older read than an earlier one. Cached entries
// are never modified; a change replaces them.
type listIndex struct {
	store storage.Store

	mu     sync.Mutex // guards scopes and every scopeIndex.dirty
	scopes map[storage.Scope]*scopeIndex
}

// scopeIndex is the index of one account and region.
type scopeIndex struct {
	scope  storage.Scope
	loaded atomic.Bool // metas holds every secret (set under mu)
	tooBig atomic.Bool // over maxIndexed: list by reading through

	// dirty names the secrets changed since the last refresh (guarded by
	// listIndex.mu).
	dirty map[string]struct{}

	mu     sync.RWMutex // guards metas and orders
	metas  map[string]*indexed
	orders map[smapi.SortByType][]indexEntry // each sorted by key ascending
}

// indexed is one secret in the index: its sort fields and its stored
// metadata.
type indexed struct {
	name                       string
	created, changed, accessed int64 // Unix ns; accessed 0 when never
	deleted                    bool
	data                       []byte // record Data (secretMeta as JSON)
}

func newIndexed(rec *storage.Record) (*indexed, error) {
	sec, err := decodeSecret(rec)
	if err != nil {
		return nil, err
	}
	m := &sec.meta
	ix := &indexed{
		name:    m.Name,
		created: unixNano(m.Created),
		changed: unixNano(m.LastChanged),
		deleted: m.Deletion != nil,
		data:    bytes.Clone(rec.Data),
	}
	if m.LastAccessed != nil {
		ix.accessed = unixNano(*m.LastAccessed)
	}
	return ix, nil
}

// unixNano is t in Unix ns, 0 for the zero time (as sortKey has it).
func unixNano(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

// key returns the secret's sortKey for sortBy.
func (ix *indexed) key(sortBy smapi.SortByType) string {
	m := secretMeta{Name: ix.name, Created: time.Unix(0, ix.created), LastChanged: time.Unix(0, ix.changed)}
	if ix.accessed != 0 {
		m.LastAccessed = ptr(time.Unix(0, ix.accessed))
	}
	return sortKey(&m, sortBy)
}

// indexEntry is a secret in one sort order.
type indexEntry struct {
	key string // sortKey of the secret for the order
	ix  *indexed
}

func newListIndex(store storage.Store) *listIndex {
	n, ok := store.(storage.ChangeNotifier)
	if !ok {
		return nil
	}
	li := &listIndex{store: store, scopes: make(map[storage.Scope]*scopeIndex)}
	n.Subscribe(li.changed)
	return li
}

// changed is the store's change notification.
func (li *listIndex) changed(kind storage.Kind, scope storage.Scope, id string) {
	if kind != kindSecret {
		return
	}
	li.mu.Lock()
	if si := li.scopes[scope]; si != nil && !si.tooBig.Load() {
		si.dirty[id] = struct{}{}
	}
	li.mu.Unlock()
}

// scopeFor returns the index of scope, registering it (so that changes are
// recorded from now on) on first use.
func (li *listIndex) scopeFor(scope storage.Scope) *scopeIndex {
	li.mu.Lock()
	defer li.mu.Unlock()
	si := li.scopes[scope]
	if si == nil {
		si = &scopeIndex{scope: scope, dirty: make(map[string]struct{})}
		li.scopes[scope] = si
	}
	return si
}

// ready brings the index of scope up to date and builds the sortBy order.
// It returns nil (and no error) when the scope is too big to index.
func (li *listIndex) ready(ctx context.Context, scope storage.Scope, sortBy smapi.SortByType) (*scopeIndex, error) {
	si := li.scopeFor(scope)
	if si.tooBig.Load() {
		return nil, nil
	}
	li.mu.Lock()
	clean := si.loaded.Load() && len(si.dirty) == 0
	li.mu.Unlock()
	if clean {
		si.mu.RLock()
		_, built := si.orders[sortBy]
		si.mu.RUnlock()
		if built {
			return si, nil
		}
	}

	si.mu.Lock()
	defer si.mu.Unlock()
	li.mu.Lock()
	dirty := si.dirty
	si.dirty = make(map[string]struct{})
	li.mu.Unlock()
	if !si.loaded.Load() {
		if err := li.load(ctx, si); err != nil {
			return nil, err
		}
		if si.tooBig.Load() {
			return nil, nil
		}
	} else if err := li.apply(ctx, si, dirty); err != nil {
		return nil, err
	}
	if _, ok := si.orders[sortBy]; !ok {
		si.orders[sortBy] = buildOrder(si.metas, sortBy)
	}
	return si, nil
}

// load reads every secret of the scope (si.mu held, dirty already taken).
func (li *listIndex) load(ctx context.Context, si *scopeIndex) error {
	metas := make(map[string]*indexed)
	err := li.store.View(ctx, func(r storage.Reader) error {
		clear(metas)
		after := ""
		for range maxIndexed/1000 + 2 { // bounded: stops past maxIndexed
			page, err := r.List(ctx, kindSecret, si.scope, storage.ListOptions{After: after, Limit: 1000})
			if err != nil {
				return wrap("list secrets", err)
			}
			for _, rec := range page {
				ix, err := newIndexed(rec)
				if err != nil {
					return err
				}
				metas[rec.ID] = ix
			}
			if len(page) < 1000 || len(metas) > maxIndexed {
				return nil
			}
			after = page[len(page)-1].ID
		}
		return nil
	})
	if err != nil {
		return err
	}
	if len(metas) > maxIndexed {
		si.tooBig.Store(true)
		return nil
	}
	si.metas = metas
	si.orders = make(map[smapi.SortByType][]indexEntry)
	si.loaded.Store(true)
	return nil
}

// apply re-reads the dirty secrets (si.mu held). On an error the secrets not
// yet re-read are marked dirty again.
func (li *listIndex) apply(ctx context.Context, si *scopeIndex, dirty map[string]struct{}) error {
	for name := range dirty {
		var ix *indexed
		rec, err := li.store.Get(ctx, kindSecret, si.scope, name)
		switch {
		case errors.Is(err, storage.ErrNotFound):
		case err != nil:
			li.redirty(si, dirty)
			return wrap("get secret", err)
		default:
			if ix, err = newIndexed(rec); err != nil {
				li.redirty(si, dirty)
				return err
			}
		}
		si.replace(name, ix)
		delete(dirty, name)
	}
	return nil
}

func (li *listIndex) redirty(si *scopeIndex, names map[string]struct{}) {
	li.mu.Lock()
	for n := range names {
		si.dirty[n] = struct{}{}
	}
	li.mu.Unlock()
}

// replace puts ix (nil: the secret is gone) in place of name's old entry in
// every built order (si.mu held).
func (si *scopeIndex) replace(name string, ix *indexed) {
	old := si.metas[name]
	for sortBy, order := range si.orders {
		if old != nil {
			k := old.key(sortBy)
			if i := sort.Search(len(order), func(i int) bool { return order[i].key >= k }); i < len(order) && order[i].key == k {
				order = append(order[:i], order[i+1:]...)
			}
		}
		if ix != nil {
			k := ix.key(sortBy)
			i := sort.Search(len(order), func(i int) bool { return order[i].key >= k })
			order = append(order, indexEntry{})
			copy(order[i+1:], order[i:])
			order[i] = indexEntry{key: k, ix: ix}
		}
		si.orders[sortBy] = order
	}
	if ix == nil {
		delete(si.metas, name)
	} else {
		si.metas[name] = ix
	}
}

func buildOrder(metas map[string]*indexed, sortBy smapi.SortByType) []indexEntry {
	order := make([]indexEntry, 0, len(metas))
	for _, ix := range metas {
		order = append(order, indexEntry{key: ix.key(sortBy), ix: ix})
	}
	sort.Slice(order, func(i, j int) bool { return order[i].key < order[j].key })
	return order
}

// page fills out with up to limit secrets of the sortBy order after the
// position after ("" for the first page), in the given direction, that keep
// passes, leaving out the secrets scheduled for deletion unless
// includeDeleted; it sets out.NextToken when more follow. It decodes only
// the secrets it visits, and visits only as far as the page needs.
func (si *scopeIndex) page(out *smapi.ListSecretsOutput, sortBy smapi.SortByType, desc bool, after string, limit int, listID string,
	includeDeleted bool, keep func(*secretMeta) bool) error {
	si.mu.RLock()
	defer si.mu.RUnlock()
	order := si.orders[sortBy]
	n := len(order)
	lastKey := ""
	var err error
	visit := func(e indexEntry) bool {
		if e.ix.deleted && !includeDeleted {
			return true
		}
		var m secretMeta
		if err = json.Unmarshal(e.ix.data, &m); err != nil {
			err = wrap("decode secret "+e.ix.name, err)
			return false
		}
		if !keep(&m) {
			return true
		}
		if len(out.SecretList) == limit {
			out.NextToken = ptr(encodeToken(listID, lastKey))
			return false
		}
		out.SecretList = append(out.SecretList, listEntry(&m))
		lastKey = e.key
		return true
	}
	if desc {
		i := n - 1
		if after != "" {
			i = sort.Search(n, func(i int) bool { return order[i].key >= after }) - 1
		}
		for ; i >= 0 && visit(order[i]); i-- {
		}
		return err
	}
	i := 0
	if after != "" {
		i = sort.Search(n, func(i int) bool { return order[i].key > after })
	}
	for ; i < n && visit(order[i]); i++ {
	}
	return err
}
