package secretsmanager

import (
	"context"
	"errors"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/keyfort/keyfort/internal/secretsmanager/smapi"
	"github.com/keyfort/keyfort/internal/storage"
)

// maxIndexed is the most secrets one account and region may have for
// ListSecrets to keep them in memory; a larger scope is listed by reading
// every secret on each page, as on a store without change notifications.
const maxIndexed = 100_000

// maxDirty is the most changed secrets a scope remembers between two pages;
// past it the scope forgets them and is read again whole on the next page.
const maxDirty = 4096

// listIndex keeps, per account and region, what a SecretListEntry shows of
// every secret (indexed: decoded once, when the secret is loaded or
// changes) and the secrets sorted by each SortBy, so that a ListSecrets
// page visits only the entries it needs and copies them without decoding
// any JSON. It exists only when the store is a storage.ChangeNotifier
// (SQLite, and PostgreSQL, which also hears other nodes' changes); on any
// other store ListSecrets reads through.
//
// It cannot serve stale state: the store marks a secret dirty after every
// commit that changes it and before that Update returns (another node's
// commit: before the request's Sync returns; a lost notification, or more
// than maxDirty changes, marks the scope for a reload), and a page first
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

	// dirty names the secrets changed since the last refresh; reload means
	// that anything may have changed (both guarded by listIndex.mu).
	dirty  map[string]struct{}
	reload bool

	mu     sync.RWMutex // guards metas and orders
	metas  map[string]*indexed
	orders map[smapi.SortByType][]indexEntry // each sorted by key ascending
}

// indexed is one secret in the index: its sort fields and what its
// SecretListEntry and the ListSecrets filters need, already decoded, so a
// page only copies (no JSON decoding). It is smaller than the stored
// metadata the index kept before (about 520 bytes a secret with its place in
// one sort order, against 690 for 10,000 loadgen secrets): the
// version-to-KMS-key lists, the resource policy and the rotation and
// replication state that no list entry shows are left out, and the ARN
// keeps only what follows the name.
type indexed struct {
	name                       string
	created, changed, accessed int64 // Unix ns, for sorting; accessed 0 when never
	deleted                    bool
	has                        uint8 // hasAccessed | hasDeleted | ...: which optional dates are set

	// arnTail is the ARN after arnPrefix(scope)+name (the "-" and the
	// 6-character suffix) when the ARN has that form, else extra.arn.
	arnTail     string
	description *string // shared with the decoded secret, never modified
	tags        []tag   // nil when never tagged (Tags omitted), as stored
	stages      []versionStages
	extra       *listExtra // nil for most secrets

	// Dates of the entry, in Unix ms (all the wire format keeps).
	createdMs, changedMs, accessedMs, deletedMs, rotatedMs, nextRotationMs int64
}

// listExtra is what few secrets' entries show: kept apart so that the
// index of the others stays small.
type listExtra struct {
	arn      string // the whole ARN, when it does not end the usual way
	typ      *string
	kmsKeyID string
	primary  string // secretMeta.PrimaryRegion
	rotation listRotation
}

func (ix *indexed) primaryRegion() string {
	if ix.extra == nil {
		return ""
	}
	return ix.extra.primary
}

// Bits of indexed.has.
const (
	hasAccessed = 1 << iota
	hasDeleted
	hasRotated
	hasNextRotation
)

// versionStages is a labeled version and its staging labels.
type versionStages struct {
	id     string
	stages []string // shared between entries for the common single labels
}

// listRotation is the rotation configuration a SecretListEntry shows.
type listRotation struct {
	enabled            bool
	lambdaARN          string
	days               int64
	schedule, duration string
}

func (r *listRotation) shown() bool {
	return r.enabled || r.lambdaARN != "" || r.days > 0 || r.schedule != "" || r.duration != ""
}

// One-label stage lists shared by every entry that has them.
var (
	stagesCurrent  = []string{stageCurrent}
	stagesPrevious = []string{stagePrevious}
	stagesPending  = []string{stagePending}
)

func internStages(s []string) []string {
	if len(s) == 1 {
		switch s[0] {
		case stageCurrent:
			return stagesCurrent
		case stagePrevious:
			return stagesPrevious
		case stagePending:
			return stagesPending
		}
	}
	return slices.Clone(s)
}

func newIndexed(scope storage.Scope, rec *storage.Record) (*indexed, error) {
	sec, err := decodeSecret(rec)
	if err != nil {
		return nil, err
	}
	return indexMeta(scope, &sec.meta), nil
}

// indexMeta returns the index entry of a secret of scope with metadata m.
func indexMeta(scope storage.Scope, m *secretMeta) *indexed {
	ix := &indexed{
		name:        m.Name,
		created:     unixNano(m.Created),
		changed:     unixNano(m.LastChanged),
		deleted:     m.Deletion != nil,
		description: m.Description,
		tags:        m.Tags,
		createdMs:   m.Created.UnixMilli(),
		changedMs:   m.LastChanged.UnixMilli(),
	}
	x := listExtra{typ: m.Type, kmsKeyID: m.KmsKeyID, primary: m.PrimaryRegion, rotation: listRotation{enabled: m.RotationEnabled,
		lambdaARN: m.RotationLambdaARN, days: m.RotationDays, schedule: m.RotationSchedule, duration: m.RotationDuration}}
	if tail, ok := strings.CutPrefix(m.ARN, arnPrefix(scope)+m.Name); ok {
		ix.arnTail = tail
	} else {
		x.arn = m.ARN
	}
	if x.arn != "" || x.typ != nil || x.kmsKeyID != "" || x.primary != "" || x.rotation.shown() {
		ix.extra = &x
	}
	if m.LastAccessed != nil {
		ix.accessed = unixNano(*m.LastAccessed)
		ix.accessedMs = m.LastAccessed.UnixMilli()
		ix.has |= hasAccessed
	}
	if m.Deleted != nil {
		ix.deletedMs = m.Deleted.UnixMilli()
		ix.has |= hasDeleted
	}
	if m.LastRotated != nil {
		ix.rotatedMs = m.LastRotated.UnixMilli()
		ix.has |= hasRotated
	}
	if m.NextRotation != nil {
		ix.nextRotationMs = m.NextRotation.UnixMilli()
		ix.has |= hasNextRotation
	}
	for id, v := range m.Versions {
		if len(v.Stages) > 0 {
			ix.stages = append(ix.stages, versionStages{id: id, stages: internStages(v.Stages)})
		}
	}
	return ix
}

// entryBuf holds the dates and ARNs of a page's entries, so that a page
// allocates them a few at a time rather than one by one.
type entryBuf struct {
	times []time.Time
	strs  []string
}

func (b *entryBuf) str(s string) *string {
	if len(b.strs) == cap(b.strs) {
		b.strs = make([]string, 0, 64)
	}
	b.strs = append(b.strs, s)
	return &b.strs[len(b.strs)-1]
}

func (b *entryBuf) time(ms int64) *time.Time {
	if len(b.times) == cap(b.times) {
		b.times = make([]time.Time, 0, 64)
	}
	b.times = append(b.times, time.UnixMilli(ms))
	return &b.times[len(b.times)-1]
}

// entry returns the secret's SecretListEntry, as listEntry gives it from
// the decoded metadata (prefix is arnPrefix of the index's scope). The
// entry shares the index's strings and slices: it must not be modified.
func (ix *indexed) entry(prefix string, buf *entryBuf) smapi.SecretListEntry {
	x := ix.extra
	var arn *string
	if x != nil && x.arn != "" {
		arn = &x.arn
	} else {
		arn = buf.str(prefix + ix.name + ix.arnTail)
	}
	e := smapi.SecretListEntry{
		ARN:             arn,
		Name:            &ix.name,
		Description:     ix.description,
		LastChangedDate: buf.time(ix.changedMs),
		CreatedDate:     buf.time(ix.createdMs),
	}
	if ix.has&hasAccessed != 0 {
		e.LastAccessedDate = buf.time(ix.accessedMs)
	}
	if ix.has&hasDeleted != 0 {
		e.DeletedDate = buf.time(ix.deletedMs)
	}
	if ix.has&hasRotated != 0 {
		e.LastRotatedDate = buf.time(ix.rotatedMs)
	}
	if ix.has&hasNextRotation != 0 {
		e.NextRotationDate = buf.time(ix.nextRotationMs)
	}
	if len(ix.stages) > 0 {
		e.SecretVersionsToStages = make(map[string][]string, len(ix.stages))
		for _, v := range ix.stages {
			e.SecretVersionsToStages[v.id] = v.stages
		}
	}
	if ix.tags != nil {
		e.Tags = make([]smapi.Tag, len(ix.tags))
		for i := range ix.tags {
			e.Tags[i] = smapi.Tag{Key: &ix.tags[i].Key, Value: &ix.tags[i].Value}
		}
	}
	if x == nil {
		return e
	}
	e.Type = x.typ
	if x.primary != "" {
		e.PrimaryRegion = &x.primary
	}
	if x.kmsKeyID != "" {
		e.KmsKeyId = &x.kmsKeyID
	}
	if r := &x.rotation; r.shown() {
		if r.enabled || r.lambdaARN != "" {
			e.RotationEnabled = &r.enabled
		}
		if r.lambdaARN != "" {
			e.RotationLambdaARN = &r.lambdaARN
		}
		if r.days > 0 || r.schedule != "" || r.duration != "" {
			rr := &smapi.RotationRulesType{}
			if r.days > 0 {
				rr.AutomaticallyAfterDays = &r.days
			}
			if r.schedule != "" {
				rr.ScheduleExpression = &r.schedule
			}
			if r.duration != "" {
				rr.Duration = &r.duration
			}
			e.RotationRules = rr
		}
	}
	return e
}

// filterView returns the part of the secret's metadata the ListSecrets
// filters read (matchAll).
func (ix *indexed) filterView() secretMeta {
	return secretMeta{Name: ix.name, Description: ix.description, Tags: ix.tags, PrimaryRegion: ix.primaryRegion()}
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
	if kind != kindSecret && kind != "" {
		return
	}
	li.mu.Lock()
	defer li.mu.Unlock()
	if kind == "" { // anything may have changed: every scope is read again
		for _, si := range li.scopes {
			si.reload = true
			clear(si.dirty)
		}
		return
	}
	if si := li.scopes[scope]; si != nil && !si.tooBig.Load() && !si.reload {
		if len(si.dirty) >= maxDirty {
			si.reload = true
			clear(si.dirty)
			return
		}
		si.dirty[id] = struct{}{}
	}
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
	clean := si.loaded.Load() && len(si.dirty) == 0 && !si.reload
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
	dirty, reload := si.dirty, si.reload
	si.dirty, si.reload = make(map[string]struct{}), false
	li.mu.Unlock()
	if !si.loaded.Load() || reload {
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
				ix, err := newIndexed(si.scope, rec)
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
			if ix, err = newIndexed(si.scope, rec); err != nil {
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
// position after ("" for the first page), in the given direction, that
// match filters, leaving out the secrets scheduled for deletion unless
// includeDeleted; it sets out.NextToken when more follow. It visits only as
// far as the page needs.
func (si *scopeIndex) page(out *smapi.ListSecretsOutput, sortBy smapi.SortByType, desc bool, after string, limit int, listID string,
	includeDeleted bool, filters []listFilter) {
	si.mu.RLock()
	defer si.mu.RUnlock()
	order := si.orders[sortBy]
	n := len(order)
	prefix := arnPrefix(si.scope)
	buf := &entryBuf{times: make([]time.Time, 0, 2*min(limit, n)+8), strs: make([]string, 0, min(limit, n))}
	out.SecretList = make([]smapi.SecretListEntry, 0, min(limit, n))
	lastKey := ""
	visit := func(e indexEntry) bool {
		if e.ix.deleted && !includeDeleted {
			return true
		}
		if len(filters) > 0 {
			if m := e.ix.filterView(); !matchAll(&m, filters) {
				return true
			}
		}
		if len(out.SecretList) == limit {
			out.NextToken = ptr(encodeToken(listID, lastKey))
			return false
		}
		out.SecretList = append(out.SecretList, e.ix.entry(prefix, buf))
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
		return
	}
	i := 0
	if after != "" {
		i = sort.Search(n, func(i int) bool { return order[i].key > after })
	}
	for ; i < n && visit(order[i]); i++ {
	}
}
