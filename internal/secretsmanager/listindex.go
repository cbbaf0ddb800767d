package secretsmanager

import (
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/keyfort/keyfort/internal/listindex"
	"github.com/keyfort/keyfort/internal/secretsmanager/smapi"
	"github.com/keyfort/keyfort/internal/storage"
)

// secretIndex is the ListSecrets index (internal/listindex): per account
// and region, what a SecretListEntry shows of every secret (indexed:
// decoded once, when the secret is loaded or changes) and the secrets sorted
// by each SortBy (built on the first page that asks for it), so that a
// ListSecrets page visits only the entries it needs and copies them without
// decoding any JSON. It exists only when the store is a
// storage.ChangeNotifier (SQLite, and PostgreSQL, which also hears other
// nodes' changes); on any other store ListSecrets reads through. Index
// entries are never modified; a change replaces them.
type secretIndex struct {
	secrets *listindex.Index[*indexed]
	orders  map[smapi.SortByType]*listindex.Order[*indexed]
}

func newSecretIndex(store storage.Store) *secretIndex {
	ix := listindex.New(listindex.Config[*indexed]{Store: store, Kind: kindSecret, Decode: newIndexed})
	if ix == nil {
		return nil
	}
	si := &secretIndex{secrets: ix, orders: make(map[smapi.SortByType]*listindex.Order[*indexed])}
	for _, sortBy := range smapi.SortByType("").Values() {
		si.orders[sortBy] = listindex.NewOrder(func(ix *indexed) string { return ix.key(sortBy) })
	}
	return si
}

// order returns the order of sortBy (created-date for a value the model
// does not know, as sortKey sorts it).
func (si *secretIndex) order(sortBy smapi.SortByType) *listindex.Order[*indexed] {
	if o, ok := si.orders[sortBy]; ok {
		return o
	}
	return si.orders[smapi.SortByTypeCreatedDate]
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

// listPage fills out with up to limit secrets of order (one SortBy's, read
// from the index while it is locked) after the position after ("" for the first page), in the given direction, that
// match filters, leaving out the secrets scheduled for deletion unless
// includeDeleted; it sets out.NextToken when more follow. It visits only as
// far as the page needs.
func listPage(out *smapi.ListSecretsOutput, order []listindex.Ranked[*indexed], prefix string, desc bool, after string, limit int, listID string,
	includeDeleted bool, filters []listFilter) {
	n := len(order)
	buf := &entryBuf{times: make([]time.Time, 0, 2*min(limit, n)+8), strs: make([]string, 0, min(limit, n))}
	out.SecretList = make([]smapi.SecretListEntry, 0, min(limit, n))
	lastKey := ""
	visit := func(e listindex.Ranked[*indexed]) bool {
		if e.Entry.deleted && !includeDeleted {
			return true
		}
		if len(filters) > 0 {
			if m := e.Entry.filterView(); !matchAll(&m, filters) {
				return true
			}
		}
		if len(out.SecretList) == limit {
			out.NextToken = ptr(encodeToken(listID, lastKey))
			return false
		}
		out.SecretList = append(out.SecretList, e.Entry.entry(prefix, buf))
		lastKey = e.Key
		return true
	}
	if desc {
		i := n - 1
		if after != "" {
			i = sort.Search(n, func(i int) bool { return order[i].Key >= after }) - 1
		}
		for ; i >= 0 && visit(order[i]); i-- {
		}
		return
	}
	i := 0
	if after != "" {
		i = sort.Search(n, func(i int) bool { return order[i].Key > after })
	}
	for ; i < n && visit(order[i]); i++ {
	}
}
