package secretsmanager

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/keyfort/keyfort/internal/listindex"
	"github.com/keyfort/keyfort/internal/secretsmanager/smapi"
	"github.com/keyfort/keyfort/internal/storage"
)

// ListSecrets lists the secrets of the caller's account and region, without
// those scheduled for deletion unless IncludePlannedDeletion is set. Filters
// are ANDed, the values of one filter ORed; a value starting with "!"
// negates. Secrets are sorted by SortBy (default created-date) in SortOrder:
// ascending (oldest first, or A to Z) unless SortOrder is desc, as AWS lists
// them by CreatedDate, oldest first, when neither is given. How each filter
// matches is in listfilter.go.
func (s *Service) ListSecrets(ctx context.Context, in *smapi.ListSecretsInput) (*smapi.ListSecretsOutput, error) {
	const op = "ListSecrets"
	scope, err := scopeOf(ctx)
	if err != nil {
		return nil, err
	}
	if err := s.authorizeAccount(ctx, act(in.IAMAction())); err != nil {
		return nil, err
	}
	limit, err := maxResults(in.MaxResults)
	if err != nil {
		return nil, err
	}
	for _, f := range in.Filters {
		if f.Key == "" {
			return nil, errInvalidParameter("A filter must have a Key.")
		}
		if len(f.Values) == 0 {
			return nil, errInvalidParameter("A filter must have at least one value.")
		}
	}
	filters := compileFilters(in.Filters)
	sortBy := in.SortBy
	if sortBy == "" {
		sortBy = smapi.SortByTypeCreatedDate
	}
	desc := in.SortOrder == smapi.SortOrderTypeDesc
	listID := listIdentity(in, sortBy, desc)
	after := ""
	if in.NextToken != nil {
		if after, err = decodeToken(listID, *in.NextToken); err != nil {
			return nil, err
		}
	}

	if s.lists != nil {
		out := &smapi.ListSecretsOutput{}
		o := s.lists.order(sortBy)
		indexed, err := s.lists.secrets.Read(ctx, scope, o, func(v listindex.View[*indexed]) {
			listPage(out, v.Sorted(o), arnPrefix(scope), desc, after, limit, listID, deref(in.IncludePlannedDeletion), filters)
		})
		if err != nil {
			return nil, wrap("list secrets", err)
		}
		if indexed {
			return out, nil
		}
	}

	recs, err := s.listAll(ctx, scope)
	if err != nil {
		return nil, err
	}
	type item struct {
		key  string
		meta *secretMeta
	}
	items := make([]item, 0, len(recs))
	for _, rec := range recs {
		sec, err := decodeSecret(rec)
		if err != nil {
			return nil, err
		}
		if sec.deleted() && !deref(in.IncludePlannedDeletion) {
			continue
		}
		if !matchAll(&sec.meta, filters) {
			continue
		}
		items = append(items, item{key: sortKey(&sec.meta, sortBy), meta: &sec.meta})
	}
	sort.Slice(items, func(i, j int) bool {
		if desc {
			return items[i].key > items[j].key
		}
		return items[i].key < items[j].key
	})
	out := &smapi.ListSecretsOutput{SecretList: []smapi.SecretListEntry{}}
	lastKey := ""
	for _, it := range items {
		if after != "" && ((desc && it.key >= after) || (!desc && it.key <= after)) {
			continue
		}
		if len(out.SecretList) == limit {
			out.NextToken = ptr(encodeToken(listID, lastKey))
			break
		}
		out.SecretList = append(out.SecretList, listEntry(it.meta))
		lastKey = it.key
	}
	return out, nil
}

// listAll reads every secret record of scope, in pages.
func (s *Service) listAll(ctx context.Context, scope storage.Scope) ([]*storage.Record, error) {
	var all []*storage.Record
	err := s.store.View(ctx, func(r storage.Reader) error {
		all = all[:0]
		after := ""
		for range 1 << 20 { // bounded by the number of pages
			page, err := r.List(ctx, kindSecret, scope, storage.ListOptions{After: after, Limit: 1000})
			if err != nil {
				return wrap("list secrets", err)
			}
			all = append(all, page...)
			if len(page) < 1000 {
				return nil
			}
			after = page[len(page)-1].ID
		}
		return nil
	})
	return all, err
}

// sortKey returns a string that sorts secrets as sortBy asks, unique per
// secret (the name breaks ties; times are fixed-width).
func sortKey(m *secretMeta, sortBy smapi.SortByType) string {
	var t time.Time
	switch sortBy {
	case smapi.SortByTypeName:
		return m.Name
	case smapi.SortByTypeLastChangedDate:
		t = m.LastChanged
	case smapi.SortByTypeLastAccessedDate:
		if m.LastAccessed != nil {
			t = *m.LastAccessed
		}
	default:
		t = m.Created
	}
	var ns int64
	if !t.IsZero() {
		ns = t.UnixNano()
	}
	return fmt.Sprintf("%020d\x00%s", ns, m.Name)
}

// listIdentity names a ListSecrets listing for its page tokens.
func listIdentity(in *smapi.ListSecretsInput, sortBy smapi.SortByType, desc bool) string {
	var b strings.Builder
	fmt.Fprintf(&b, "secrets\x00%s\x00%t\x00%t", sortBy, desc, deref(in.IncludePlannedDeletion))
	for _, f := range in.Filters {
		fmt.Fprintf(&b, "\x00%s", f.Key)
		for _, v := range f.Values {
			fmt.Fprintf(&b, "\x01%s", v)
		}
	}
	return b.String()
}
