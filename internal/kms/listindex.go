package kms

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/keyfort/keyfort/internal/storage"
)

// maxListIndexed is the most keys (or aliases) one account and region may
// have for ListKeys (ListAliases) to keep them in memory; a larger scope is
// listed by reading the store on each page, as on a store without change
// notifications.
const maxListIndexed = 100_000

// maxListDirty is the most changed ids a sorted list remembers between two
// pages; past it the list forgets them and is read again whole on the next
// page, so that a scope written much and listed rarely costs no memory.
const maxListDirty = 4096

// listIndex keeps, per kind (keys, aliases) and per account and region, the
// ids of every record sorted in byte order (the store's order), and for
// aliases their target key and dates, so that a ListKeys or ListAliases page
// reads no record. It exists only when the store is a storage.ChangeNotifier
// (SQLite; PostgreSQL, which also hears other nodes' changes); on any
// other store the List operations read through. A scope's list is read from the store on its
// first page.
//
// It cannot serve stale state: the store marks an id dirty after every
// commit that changes its record and before that Update returns (another
// node's commit: before the request's storage.ChangeNotifier.Sync returns;
// a lost notification marks every list for a reload), and a page
// first re-reads the dirty records of its list (refresh). Refreshes of a
// list are serialized (sortedList.mu held for writing), and each takes the
// dirty set only once it holds the lock and before it reads, so a later
// refresh never applies an older read than an earlier one, and a page that
// found nothing dirty waits for a refresh in progress.
type listIndex struct {
	store storage.Store

	mu    sync.Mutex // guards lists and every sortedList's dirty and reload
	lists map[listKey]*sortedList
}

type listKey struct {
	kind  storage.Kind
	scope storage.Scope
}

// sortedList is the index of one kind in one account and region.
type sortedList struct {
	kind   storage.Kind
	scope  storage.Scope
	loaded atomic.Bool // ids holds every record (set with mu held)
	tooBig atomic.Bool // over maxListIndexed: list by reading through

	// dirty names the records changed since the last refresh; reload means
	// the changes were too many to remember (both guarded by listIndex.mu).
	dirty  map[string]struct{}
	reload bool

	mu      sync.RWMutex    // guards ids and aliases
	ids     []string        // record ids, ascending (byte order)
	aliases []aliasListItem // kindAlias only: aliases[i] belongs to ids[i]
}

// aliasListItem is what ListAliases shows of a stored alias besides its name.
type aliasListItem struct {
	target           string // the alias's target key id (record Parent)
	created, updated time.Time
}

// aliasRow is one stored alias of a ListAliases page.
type aliasRow struct {
	name string
	aliasListItem
}

func newListIndex(store storage.Store) *listIndex {
	n, ok := store.(storage.ChangeNotifier)
	if !ok {
		return nil // no change notifications: read through on every page
	}
	li := &listIndex{store: store, lists: make(map[listKey]*sortedList)}
	n.Subscribe(li.changed)
	return li
}

// changed is the store's change notification. It runs in the store's
// writer before the committing Update returns, so it only records the id.
func (li *listIndex) changed(kind storage.Kind, scope storage.Scope, id string) {
	if kind != kindKey && kind != kindAlias && kind != "" {
		return
	}
	li.mu.Lock()
	defer li.mu.Unlock()
	if kind == "" { // anything may have changed: every list is read again
		for _, l := range li.lists {
			if !l.tooBig.Load() {
				l.reload, l.dirty = true, nil
			}
		}
		return
	}
	l := li.lists[listKey{kind, scope}]
	if l == nil || l.reload || l.tooBig.Load() {
		return
	}
	if len(l.dirty) >= maxListDirty {
		l.reload = true
		l.dirty = nil
		return
	}
	if l.dirty == nil {
		l.dirty = make(map[string]struct{})
	}
	l.dirty[id] = struct{}{}
}

// ready returns the sorted list of kind in scope, up to date with every
// change committed before it was called. It returns nil (and no error) when
// the scope is too big to index.
func (li *listIndex) ready(ctx context.Context, kind storage.Kind, scope storage.Scope) (*sortedList, error) {
	k := listKey{kind, scope}
	li.mu.Lock()
	l := li.lists[k]
	if l == nil {
		// Registered before it is read, so that no change is missed.
		l = &sortedList{kind: kind, scope: scope}
		li.lists[k] = l
	}
	clean := l.loaded.Load() && !l.reload && len(l.dirty) == 0
	li.mu.Unlock()
	if l.tooBig.Load() {
		return nil, nil
	}
	if clean {
		return l, nil
	}

	l.mu.Lock()
	defer l.mu.Unlock()
	li.mu.Lock()
	dirty, reload := l.dirty, l.reload
	l.dirty, l.reload = nil, false
	li.mu.Unlock()
	if reload || !l.loaded.Load() {
		if err := li.load(ctx, l); err != nil {
			li.mu.Lock()
			l.reload = true
			li.mu.Unlock()
			return nil, err
		}
		if l.tooBig.Load() {
			return nil, nil
		}
		return l, nil
	}
	if err := li.apply(ctx, l, dirty); err != nil {
		return nil, err
	}
	return l, nil
}

// load reads every record of the list (l.mu held, dirty already taken).
func (li *listIndex) load(ctx context.Context, l *sortedList) error {
	const batch = 1000
	var ids []string
	var aliases []aliasListItem
	err := li.store.View(ctx, func(r storage.Reader) error {
		ids, aliases = ids[:0], aliases[:0]
		after := ""
		for range maxListIndexed/batch + 2 { // bounded: stops past maxListIndexed
			page, err := r.List(ctx, l.kind, l.scope, storage.ListOptions{After: after, Limit: batch, KeysOnly: l.kind == kindKey})
			if err != nil {
				return wrap("list", err)
			}
			for _, rec := range page {
				ids = append(ids, rec.ID)
				if l.kind == kindAlias {
					aliases = append(aliases, aliasItemOf(rec))
				}
			}
			if len(page) < batch || len(ids) > maxListIndexed {
				return nil
			}
			after = page[len(page)-1].ID
		}
		return nil
	})
	if err != nil {
		return err
	}
	if len(ids) > maxListIndexed {
		l.tooBig.Store(true)
		l.ids, l.aliases = nil, nil
		return nil
	}
	l.ids = slices.Clip(ids)
	if l.kind == kindAlias {
		l.aliases = slices.Clip(aliases)
	}
	l.loaded.Store(true)
	return nil
}

// aliasItemOf returns the list item of a stored alias. Its dates are those
// ListAliases showed when it read the record itself (zero if the metadata
// does not decode).
func aliasItemOf(rec *storage.Record) aliasListItem {
	var m aliasMeta
	_ = json.Unmarshal(rec.Data, &m)
	return aliasListItem{target: rec.Parent, created: m.Created, updated: m.Updated}
}

// apply re-reads the dirty records (l.mu held). On an error the records not
// yet re-read are marked dirty again.
func (li *listIndex) apply(ctx context.Context, l *sortedList, dirty map[string]struct{}) error {
	for id := range dirty {
		rec, err := li.store.Get(ctx, l.kind, l.scope, id)
		switch {
		case errors.Is(err, storage.ErrNotFound):
			l.remove(id)
		case err != nil:
			li.redirty(l, dirty)
			return wrap("get", err)
		default:
			l.put(rec)
		}
		delete(dirty, id)
	}
	return nil
}

func (li *listIndex) redirty(l *sortedList, ids map[string]struct{}) {
	li.mu.Lock()
	defer li.mu.Unlock()
	if l.reload {
		return
	}
	if l.dirty == nil {
		l.dirty = make(map[string]struct{})
	}
	for id := range ids {
		l.dirty[id] = struct{}{}
	}
}

// put inserts or replaces rec in the list (l.mu held).
func (l *sortedList) put(rec *storage.Record) {
	i, found := slices.BinarySearch(l.ids, rec.ID)
	if !found {
		l.ids = slices.Insert(l.ids, i, rec.ID)
	}
	if l.kind != kindAlias {
		return
	}
	item := aliasItemOf(rec)
	if found {
		l.aliases[i] = item
	} else {
		l.aliases = slices.Insert(l.aliases, i, item)
	}
}

// remove deletes id from the list, if present (l.mu held).
func (l *sortedList) remove(id string) {
	i, found := slices.BinarySearch(l.ids, id)
	if !found {
		return
	}
	l.ids = slices.Delete(l.ids, i, i+1)
	if l.kind == kindAlias {
		l.aliases = slices.Delete(l.aliases, i, i+1)
	}
}

// start returns the index of the first id after after (all ids when after
// is empty), l.mu held.
func (l *sortedList) start(after string) int {
	i, found := slices.BinarySearch(l.ids, after)
	if found {
		i++
	}
	return i
}

// keysAfter returns up to n key ids after after, ascending.
func (l *sortedList) keysAfter(after string, n int) []string {
	l.mu.RLock()
	defer l.mu.RUnlock()
	i := l.start(after)
	return slices.Clone(l.ids[i:min(i+n, len(l.ids))])
}

// aliasesAfter returns up to n aliases named after after, ascending, only
// those pointing at target when it is not empty.
func (l *sortedList) aliasesAfter(after, target string, n int) []aliasRow {
	l.mu.RLock()
	defer l.mu.RUnlock()
	var rows []aliasRow
	for i := l.start(after); i < len(l.ids) && len(rows) < n; i++ {
		if target != "" && l.aliases[i].target != target {
			continue
		}
		if rows == nil {
			rows = make([]aliasRow, 0, min(n, len(l.ids)-i))
		}
		rows = append(rows, aliasRow{name: l.ids[i], aliasListItem: l.aliases[i]})
	}
	return rows
}

// listKeyIDs returns up to n key ids of scope after after, ascending: from
// the list index when the store has one, else from the store.
func (s *Service) listKeyIDs(ctx context.Context, scope storage.Scope, after string, n int) ([]string, error) {
	if s.lists != nil {
		l, err := s.lists.ready(ctx, kindKey, scope)
		if err != nil {
			return nil, err
		}
		if l != nil {
			return l.keysAfter(after, n), nil
		}
	}
	var recs []*storage.Record
	err := s.store.View(ctx, func(r storage.Reader) error {
		var err error
		recs, err = r.List(ctx, kindKey, scope, storage.ListOptions{After: after, Limit: n, KeysOnly: true})
		return err
	})
	if err != nil {
		return nil, err
	}
	ids := make([]string, len(recs))
	for i, rec := range recs {
		ids[i] = rec.ID
	}
	return ids, nil
}

// listAliasRows returns up to n stored aliases of scope named after after,
// ascending, only those pointing at target when it is not empty: from the
// list index when the store has one, else from the store.
func (s *Service) listAliasRows(ctx context.Context, scope storage.Scope, after, target string, n int) ([]aliasRow, error) {
	if s.lists != nil {
		l, err := s.lists.ready(ctx, kindAlias, scope)
		if err != nil {
			return nil, err
		}
		if l != nil {
			return l.aliasesAfter(after, target, n), nil
		}
	}
	var recs []*storage.Record
	err := s.store.View(ctx, func(r storage.Reader) error {
		var err error
		recs, err = r.List(ctx, kindAlias, scope, storage.ListOptions{After: after, Parent: target, Limit: n})
		return err
	})
	if err != nil {
		return nil, err
	}
	rows := make([]aliasRow, len(recs))
	for i, rec := range recs {
		rows[i] = aliasRow{name: rec.ID, aliasListItem: aliasItemOf(rec)}
	}
	return rows, nil
}

// pool hands out pointers to values kept in one slice allocated up front, so
// that the n pointer members of a page's entries cost one allocation
// instead of n. It never grows its slice (earlier pointers stay valid): past
// its capacity it allocates each value on its own.
type pool[T any] []T

func newPool[T any](n int) pool[T] { return make(pool[T], 0, n) }

func (p *pool[T]) ptr(v T) *T {
	if len(*p) == cap(*p) {
		x := new(T)
		*x = v
		return x
	}
	*p = append(*p, v)
	return &(*p)[len(*p)-1]
}

// prefixed returns prefix+s for every s of names, all in one allocation
// (ARNs of a page).
func prefixed(prefix string, names []string) []string {
	n := 0
	for _, s := range names {
		n += len(prefix) + len(s)
	}
	var b strings.Builder
	b.Grow(n)
	for _, s := range names {
		b.WriteString(prefix)
		b.WriteString(s)
	}
	all := b.String()
	out := make([]string, len(names))
	off := 0
	for i, s := range names {
		end := off + len(prefix) + len(s)
		out[i] = all[off:end]
		off = end
	}
	return out
}
