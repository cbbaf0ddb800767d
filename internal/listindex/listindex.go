// Package listindex keeps in memory, per account and region, every record
// of one kind, decoded by the service into the entry its List operation
// shows, so that a page reads no record and decodes nothing: KMS keys and
// aliases (ListKeys, ListAliases), Secrets Manager secrets (ListSecrets).
//
// An Index is exact on a store that implements [storage.ChangeNotifier]
// (on any other store [New] returns nil and the service reads through): the
// store marks a record dirty after every commit that changes it and before
// that Update returns (another node's commit: before the request's
// storage.ChangeNotifier.Sync returns), and a page first re-reads the dirty
// records of its list. Kind "" (anything may have changed) or more dirty
// records than [Config.MaxDirty] make the list read again whole. Refreshes of
// a list are serialized, and each takes the dirty set only once it holds the
// list's lock and before it reads, so a later refresh never applies an older
// read than an earlier one, and a record changed while a refresh reads stays
// dirty for the next page. A list past [Config.MaxIndexed] records is not
// kept: its pages read the store.
//
// Entries are kept in id order (the store's), and in the orders a service
// asks for ([Order]: built on a page's first use, then kept up to date
// change by change). Entries are shared read-only with the pages. Business
// rules, decoding and filtering belong to the services.
package listindex

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/keyfort/keyfort/internal/storage"
)

// Defaults of Config.MaxIndexed and Config.MaxDirty.
const (
	// DefaultMaxIndexed is the most records of one kind one account and
	// region may have to be indexed.
	DefaultMaxIndexed = 100_000
	// DefaultMaxDirty is the most changed records a list remembers between
	// two pages; past it the list forgets them and is read again whole on
	// the next page, so that a scope written much and listed rarely costs
	// no memory.
	DefaultMaxDirty = 4096
)

// loadBatch is the page size of a list's full read.
const loadBatch = 1000

// Config describes an Index.
type Config[E any] struct {
	// Store is read on a list's first page, on a reload and for the
	// records changed since the last page.
	Store storage.Store
	// Kind is the kind of record indexed.
	Kind storage.Kind
	// Decode returns the entry of a record of scope. It must depend on the
	// record only. An error fails the page (the record stays dirty).
	Decode func(scope storage.Scope, rec *storage.Record) (E, error)
	// KeysOnly reads the whole list without Data and Sealed
	// (storage.ListOptions.KeysOnly), for a Decode that needs only the id
	// and Parent. Records re-read one by one are whole.
	KeysOnly bool
	// MaxIndexed (0: DefaultMaxIndexed) and MaxDirty (0: DefaultMaxDirty).
	MaxIndexed, MaxDirty int
}

// Index keeps, per account and region, the records of one kind as entries
// of type E. It is safe for concurrent use. A nil *Index indexes nothing.
type Index[E any] struct {
	cfg Config[E]

	mu    sync.Mutex // guards lists and every list's dirty and reload
	lists map[storage.Scope]*list[E]
}

// list is the index of one scope.
type list[E any] struct {
	scope storage.Scope

	// Guarded by Index.mu: the records changed since the last refresh;
	// reload when they were too many to remember or unknown (kind "").
	// tooBig is set once, with mu held too, and never cleared.
	dirty  map[string]struct{}
	reload bool
	tooBig bool

	mu      sync.RWMutex // guards the fields below; held for writing by a refresh
	loaded  bool         // ids holds every record
	ids     []string     // record ids, ascending (byte order)
	entries []E          // entries[i] is the entry of ids[i]
	orders  map[*Order[E]][]Ranked[E]
}

// An Order sorts the entries of a list by a key. It is compared by
// identity: a service makes each of its orders once.
type Order[E any] struct {
	key func(E) string
}

// NewOrder returns the order of entries by key, which must be unique per
// record within a list (add the id to break ties) and depend on the entry
// only.
func NewOrder[E any](key func(E) string) *Order[E] { return &Order[E]{key: key} }

// Ranked is an entry in an Order, with its key.
type Ranked[E any] struct {
	Key   string
	Entry E
}

// New returns an index over cfg.Store, or nil when the store has no change
// notifications (the service then reads through).
func New[E any](cfg Config[E]) *Index[E] {
	n, ok := cfg.Store.(storage.ChangeNotifier)
	if !ok {
		return nil
	}
	if cfg.MaxIndexed <= 0 {
		cfg.MaxIndexed = DefaultMaxIndexed
	}
	if cfg.MaxDirty <= 0 {
		cfg.MaxDirty = DefaultMaxDirty
	}
	ix := &Index[E]{cfg: cfg, lists: make(map[storage.Scope]*list[E])}
	n.Subscribe(ix.changed)
	return ix
}

// changed is the store's change notification. It runs in the store's
// writer before the committing Update returns, so it only records the id.
func (ix *Index[E]) changed(kind storage.Kind, scope storage.Scope, id string) {
	if kind != ix.cfg.Kind && kind != "" {
		return
	}
	ix.mu.Lock()
	defer ix.mu.Unlock()
	if kind == "" { // anything may have changed: every list is read again
		for _, l := range ix.lists {
			if !l.tooBig {
				l.reload, l.dirty = true, nil
			}
		}
		return
	}
	if l := ix.lists[scope]; l != nil {
		ix.markDirty(l, id)
	}
}

// markDirty records that id changed (ix.mu held).
func (ix *Index[E]) markDirty(l *list[E], id string) {
	if l.reload || l.tooBig {
		return
	}
	if len(l.dirty) >= ix.cfg.MaxDirty {
		l.reload, l.dirty = true, nil
		return
	}
	if l.dirty == nil {
		l.dirty = make(map[string]struct{})
	}
	l.dirty[id] = struct{}{}
}

// listOf returns the list of scope, registering it on first use so that
// its changes are recorded from then on (before it is first read).
func (ix *Index[E]) listOf(scope storage.Scope) *list[E] {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	l := ix.lists[scope]
	if l == nil {
		l = &list[E]{scope: scope}
		ix.lists[scope] = l
	}
	return l
}

// clean reports whether l has no change to apply (ix.mu taken here).
func (ix *Index[E]) clean(l *list[E]) (clean, tooBig bool) {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	return !l.reload && len(l.dirty) == 0, l.tooBig
}

// View is a list, up to date, as a page reads it: every id, entry and
// order is shared and valid only during the call that received it.
type View[E any] struct{ l *list[E] }

// IDs returns the ids of the list, ascending (byte order). The slice must
// not be modified.
func (v View[E]) IDs() []string { return v.l.ids }

// Entries returns the entries of the list, Entries()[i] being the entry of
// IDs()[i]. The slice must not be modified.
func (v View[E]) Entries() []E { return v.l.entries }

// After returns the position in IDs of the first id greater than after
// (0 when after is empty).
func (v View[E]) After(after string) int {
	i, found := slices.BinarySearch(v.l.ids, after)
	if found {
		i++
	}
	return i
}

// Sorted returns the entries in order o, ascending by key, if the page
// asked for o; nil otherwise. The slice must not be modified.
func (v View[E]) Sorted(o *Order[E]) []Ranked[E] { return v.l.orders[o] }

// Read brings the list of scope up to date with every change heard before
// it was called, builds order o if not nil, and calls page with it (the
// list read-locked or, after a refresh, write-locked: page must not call
// the Index). It returns false, without calling page, when ix is nil or the
// scope has too many records to index: the caller then reads the store.
func (ix *Index[E]) Read(ctx context.Context, scope storage.Scope, o *Order[E], page func(View[E])) (bool, error) {
	if ix == nil {
		return false, nil
	}
	l := ix.listOf(scope)
	// Holding the read lock, no refresh is in progress: clean means every
	// change heard before now has been applied.
	l.mu.RLock()
	clean, tooBig := ix.clean(l)
	_, built := l.orders[o]
	if tooBig || (clean && l.loaded && (o == nil || built)) {
		if !tooBig {
			page(View[E]{l})
		}
		l.mu.RUnlock()
		return !tooBig, nil
	}
	l.mu.RUnlock()

	l.mu.Lock()
	defer l.mu.Unlock()
	if err := ix.refresh(ctx, l); err != nil {
		return false, err
	}
	if !l.loaded { // too big
		return false, nil
	}
	if o != nil {
		if _, ok := l.orders[o]; !ok {
			l.orders[o] = l.build(o)
		}
	}
	page(View[E]{l})
	return true, nil
}

// refresh applies the changes heard so far to l (l.mu held for writing).
func (ix *Index[E]) refresh(ctx context.Context, l *list[E]) error {
	ix.mu.Lock()
	dirty, reload, tooBig := l.dirty, l.reload, l.tooBig
	l.dirty, l.reload = nil, false
	ix.mu.Unlock()
	if tooBig {
		return nil
	}
	if reload || !l.loaded {
		if err := ix.load(ctx, l); err != nil {
			ix.mu.Lock()
			l.reload, l.dirty = true, nil
			ix.mu.Unlock()
			return err
		}
		return nil
	}
	for id := range dirty {
		if err := ix.reread(ctx, l, id); err != nil {
			ix.mu.Lock()
			for id := range dirty { // those not yet re-read, this one too
				ix.markDirty(l, id)
			}
			ix.mu.Unlock()
			return err
		}
		delete(dirty, id)
	}
	return nil
}

// load reads every record of l (l.mu held for writing, dirty taken).
func (ix *Index[E]) load(ctx context.Context, l *list[E]) error {
	var ids []string
	var entries []E
	err := ix.cfg.Store.View(ctx, func(r storage.Reader) error {
		ids, entries = ids[:0], entries[:0]
		after := ""
		for range ix.cfg.MaxIndexed/loadBatch + 2 { // bounded: stops past MaxIndexed
			page, err := r.List(ctx, ix.cfg.Kind, l.scope, storage.ListOptions{After: after, Limit: loadBatch, KeysOnly: ix.cfg.KeysOnly})
			if err != nil {
				return fmt.Errorf("listindex: list %s: %w", ix.cfg.Kind, err)
			}
			for _, rec := range page {
				e, err := ix.cfg.Decode(l.scope, rec)
				if err != nil {
					return err
				}
				ids = append(ids, rec.ID)
				entries = append(entries, e)
			}
			if len(page) < loadBatch || len(ids) > ix.cfg.MaxIndexed {
				return nil
			}
			after = page[len(page)-1].ID
		}
		return nil
	})
	if err != nil {
		return err
	}
	if len(ids) > ix.cfg.MaxIndexed {
		ix.mu.Lock()
		l.tooBig, l.dirty, l.reload = true, nil, false
		ix.mu.Unlock()
		l.loaded, l.ids, l.entries, l.orders = false, nil, nil, nil
		return nil
	}
	l.ids, l.entries = slices.Clip(ids), slices.Clip(entries)
	l.orders = make(map[*Order[E]][]Ranked[E])
	l.loaded = true
	return nil
}

// reread reads the record id again and puts its entry in place of the old
// one (l.mu held for writing).
func (ix *Index[E]) reread(ctx context.Context, l *list[E], id string) error {
	rec, err := ix.cfg.Store.Get(ctx, ix.cfg.Kind, l.scope, id)
	if errors.Is(err, storage.ErrNotFound) {
		l.remove(id)
		return nil
	}
	if err != nil {
		return fmt.Errorf("listindex: get %s: %w", ix.cfg.Kind, err)
	}
	e, err := ix.cfg.Decode(l.scope, rec)
	if err != nil {
		return err
	}
	l.put(id, e)
	return nil
}

// put inserts or replaces the entry of id, in id order and every built
// order.
func (l *list[E]) put(id string, e E) {
	i, found := slices.BinarySearch(l.ids, id)
	if found {
		l.unrank(l.entries[i])
		l.entries[i] = e
	} else {
		l.ids = slices.Insert(l.ids, i, id)
		l.entries = slices.Insert(l.entries, i, e)
	}
	for o, order := range l.orders {
		k := o.key(e)
		j := sort.Search(len(order), func(j int) bool { return order[j].Key >= k })
		l.orders[o] = slices.Insert(order, j, Ranked[E]{Key: k, Entry: e})
	}
}

// remove deletes the entry of id, if any, from id order and every built
// order.
func (l *list[E]) remove(id string) {
	i, found := slices.BinarySearch(l.ids, id)
	if !found {
		return
	}
	l.unrank(l.entries[i])
	l.ids = slices.Delete(l.ids, i, i+1)
	l.entries = slices.Delete(l.entries, i, i+1)
}

// unrank deletes e from every built order.
func (l *list[E]) unrank(e E) {
	for o, order := range l.orders {
		k := o.key(e)
		if j := sort.Search(len(order), func(j int) bool { return order[j].Key >= k }); j < len(order) && order[j].Key == k {
			l.orders[o] = slices.Delete(order, j, j+1)
		}
	}
}

// build returns the entries of l in order o.
func (l *list[E]) build(o *Order[E]) []Ranked[E] {
	order := make([]Ranked[E], len(l.entries))
	for i, e := range l.entries {
		order[i] = Ranked[E]{Key: o.key(e), Entry: e}
	}
	slices.SortFunc(order, func(a, b Ranked[E]) int { return strings.Compare(a.Key, b.Key) })
	return order
}
