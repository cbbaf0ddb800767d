package kms

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"time"

	"github.com/keyfort/keyfort/internal/listindex"
	"github.com/keyfort/keyfort/internal/storage"
)

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

// newListIndexes returns the ListKeys index (key ids only) and the
// ListAliases index (ids, targets and dates) of store (internal/listindex),
// both nil when the store has no change notifications: the List operations
// then read through.
func newListIndexes(store storage.Store) (*listindex.Index[struct{}], *listindex.Index[aliasListItem]) {
	keys := listindex.New(listindex.Config[struct{}]{
		Store:    store,
		Kind:     kindKey,
		Decode:   func(storage.Scope, *storage.Record) (struct{}, error) { return struct{}{}, nil },
		KeysOnly: true,
	})
	aliases := listindex.New(listindex.Config[aliasListItem]{
		Store:  store,
		Kind:   kindAlias,
		Decode: func(_ storage.Scope, rec *storage.Record) (aliasListItem, error) { return aliasItemOf(rec), nil },
	})
	return keys, aliases
}

// aliasItemOf returns the list item of a stored alias. Its dates are those
// ListAliases showed when it read the record itself (zero if the metadata
// does not decode).
func aliasItemOf(rec *storage.Record) aliasListItem {
	var m aliasMeta
	_ = json.Unmarshal(rec.Data, &m)
	return aliasListItem{target: rec.Parent, created: m.Created, updated: m.Updated}
}

// listKeyIDs returns up to n key ids of scope after after, ascending: from
// the list index when the store has one, else from the store.
func (s *Service) listKeyIDs(ctx context.Context, scope storage.Scope, after string, n int) ([]string, error) {
	var ids []string
	indexed, err := s.keyList.Read(ctx, scope, nil, func(v listindex.View[struct{}]) {
		all := v.IDs()
		i := v.After(after)
		ids = slices.Clone(all[i:min(i+n, len(all))])
	})
	if err != nil {
		return nil, wrap("list keys", err)
	}
	if indexed {
		return ids, nil
	}
	var recs []*storage.Record
	err = s.store.View(ctx, func(r storage.Reader) error {
		var err error
		recs, err = r.List(ctx, kindKey, scope, storage.ListOptions{After: after, Limit: n, KeysOnly: true})
		return err
	})
	if err != nil {
		return nil, err
	}
	ids = make([]string, len(recs))
	for i, rec := range recs {
		ids[i] = rec.ID
	}
	return ids, nil
}

// listAliasRows returns up to n stored aliases of scope named after after,
// ascending, only those pointing at target when it is not empty: from the
// list index when the store has one, else from the store.
func (s *Service) listAliasRows(ctx context.Context, scope storage.Scope, after, target string, n int) ([]aliasRow, error) {
	var rows []aliasRow
	indexed, err := s.aliasList.Read(ctx, scope, nil, func(v listindex.View[aliasListItem]) {
		ids, items := v.IDs(), v.Entries()
		for i := v.After(after); i < len(ids) && len(rows) < n; i++ {
			if target != "" && items[i].target != target {
				continue
			}
			if rows == nil {
				rows = make([]aliasRow, 0, min(n, len(ids)-i))
			}
			rows = append(rows, aliasRow{name: ids[i], aliasListItem: items[i]})
		}
	})
	if err != nil {
		return nil, wrap("list aliases", err)
	}
	if indexed {
		return rows, nil
	}
	var recs []*storage.Record
	err = s.store.View(ctx, func(r storage.Reader) error {
		var err error
		recs, err = r.List(ctx, kindAlias, scope, storage.ListOptions{After: after, Parent: target, Limit: n})
		return err
	})
	if err != nil {
		return nil, err
	}
	rows = make([]aliasRow, len(recs))
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
