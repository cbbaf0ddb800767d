// Package storagetest is the conformance suite for [storage.Store]
// implementations. Every backend runs [Run] from its own tests, so that the
// services can rely on one behaviour whatever the store.
//
// Only _test.go files import this package.
package storagetest

import (
	"bytes"
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keyfort/keyfort/internal/storage"
)

// Run runs the conformance suite against the stores open returns. open must
// return a new, empty, usable store each time it is called and arrange (with
// t.Cleanup) for it to be closed; the suite closes some stores itself, so the
// cleanup must accept [storage.ErrClosed] from Close.
func Run(t *testing.T, open func(t *testing.T) storage.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s storage.Store)
	}{
		{"InsertGet", testInsertGet},
		{"InsertExists", testInsertExists},
		{"UpdateRev", testUpdateRev},
		{"UpdateConflictRetriedAndBounded", testUpdateConflictBounded},
		{"Delete", testDelete},
		{"ScopeIsolation", testScopeIsolation},
		{"List", testList},
		{"ListPaging", testListPaging},
		{"ListParentMoves", testListParentMoves},
		{"ListKeysOnly", testListKeysOnly},
		{"Scan", testScan},
		{"Export", testExport},
		{"BulkWriter", testBulkWriter},
		{"Compact", testCompact},
		{"Count", testCount},
		{"Due", testDue},
		{"DueClaimsDisjoint", testDueClaimsDisjoint},
		{"DueClaimHeld", testDueClaimHeld},
		{"DueClaimRolledBack", testDueClaimRolledBack},
		{"DueInViewClaimsNothing", testDueInViewClaimsNothing},
		{"Bytes", testBytes},
		{"UpdateErrorDiscards", testUpdateErrorDiscards},
		{"ReadYourWritesInTx", testReadYourWrites},
		{"ViewSeesCommitted", testViewSeesCommitted},
		{"ViewSnapshot", testViewSnapshot},
		{"ConcurrentCounter", testConcurrentCounter},
		{"ConcurrentFailures", testConcurrentFailures},
		{"StaleRevOutsideTx", testStaleRevOutsideTx},
		{"Context", testContext},
		{"Close", testClose},
		{"Ping", testPing},
		{"ChangeNotifier", testChangeNotifier},
		{"TrailAppendCommitsWithChange", testTrailAppend},
		{"TrailPendingEvent", testTrailPending},
		{"TrailPutEvents", testTrailPut},
		{"TrailLookup", testTrailLookup},
		{"TrailIncompleteAndPrune", testTrailIncompletePrune},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.fn(t, open(t))
		})
	}
}

// Kinds and scopes used by the suite.
const (
	kindA storage.Kind = "test.a"
	kindB storage.Kind = "test.b"
)

var (
	scope1 = storage.Scope{Account: "111111111111", Region: "us-east-1"}
	scope2 = storage.Scope{Account: "222222222222", Region: "us-east-1"}
	scope3 = storage.Scope{Account: "111111111111", Region: "eu-west-1"}
)

// timeout bounds every wait of the suite, so a hang fails rather than
// blocking until the test binary's own timeout.
const timeout = 30 * time.Second

// errTest is returned by functions that must fail.
var errTest = errors.New("storagetest: deliberate failure")

func newRecord(kind storage.Kind, scope storage.Scope, id string) *storage.Record {
	return &storage.Record{
		Kind:    kind,
		Scope:   scope,
		ID:      id,
		Created: 1700000000123456789,
		Data:    []byte(`{"id":"` + id + `"}`),
		Sealed:  []byte{0x4b, 0x46, 0x53, 0x31, 0x00, 0xff, 0x01},
	}
}

func clone(r *storage.Record) *storage.Record {
	c := *r
	c.Data = bytes.Clone(r.Data)
	c.Sealed = bytes.Clone(r.Sealed)
	return &c
}

// diff describes how got differs from want, nil-ness of byte slices
// included, or returns "".
func diff(got, want *storage.Record) string {
	switch {
	case got == nil && want == nil:
		return ""
	case got == nil || want == nil:
		return fmt.Sprintf("got %v, want %v", got, want)
	}
	var d []string
	add := func(field string, g, w any) { d = append(d, fmt.Sprintf("%s = %#v, want %#v", field, g, w)) }
	if got.Kind != want.Kind {
		add("Kind", got.Kind, want.Kind)
	}
	if got.Scope != want.Scope {
		add("Scope", got.Scope, want.Scope)
	}
	if got.ID != want.ID {
		add("ID", got.ID, want.ID)
	}
	if got.Parent != want.Parent {
		add("Parent", got.Parent, want.Parent)
	}
	if got.Due != want.Due {
		add("Due", got.Due, want.Due)
	}
	if got.Created != want.Created {
		add("Created", got.Created, want.Created)
	}
	if got.Rev != want.Rev {
		add("Rev", got.Rev, want.Rev)
	}
	if !bytes.Equal(got.Data, want.Data) || (got.Data == nil) != (want.Data == nil) {
		add("Data", got.Data, want.Data)
	}
	if !bytes.Equal(got.Sealed, want.Sealed) || (got.Sealed == nil) != (want.Sealed == nil) {
		add("Sealed", got.Sealed, want.Sealed)
	}
	return strings.Join(d, "; ")
}

func ids(recs []*storage.Record) []string {
	out := make([]string, len(recs))
	for i, r := range recs {
		out[i] = r.ID
	}
	return out
}

func mustInsert(t *testing.T, s storage.Store, recs ...*storage.Record) {
	t.Helper()
	err := s.Update(t.Context(), func(tx storage.Tx) error {
		for _, r := range recs {
			if err := tx.Insert(t.Context(), r); err != nil {
				return fmt.Errorf("Insert(%q): %w", r.ID, err)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("Update(insert %d records) = %v, want nil", len(recs), err)
	}
}

func mustGet(t *testing.T, s storage.Store, kind storage.Kind, scope storage.Scope, id string) *storage.Record {
	t.Helper()
	r, err := s.Get(t.Context(), kind, scope, id)
	if err != nil {
		t.Fatalf("Get(%q, %v, %q) = %v, want nil", kind, scope, id, err)
	}
	return r
}

func wantNotFound(t *testing.T, s storage.Store, kind storage.Kind, scope storage.Scope, id string) {
	t.Helper()
	if r, err := s.Get(t.Context(), kind, scope, id); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("Get(%q, %v, %q) = %v, %v; want ErrNotFound", kind, scope, id, r, err)
	}
}

func testInsertGet(t *testing.T, s storage.Store) {
	ctx := t.Context()
	r := newRecord(kindA, scope1, "key-1")
	r.Parent = "parent-1"
	r.Due = 1234
	r.Rev = 42 // Insert ignores it
	mustInsert(t, s, r)
	if r.Rev != 1 {
		t.Errorf("after Insert, r.Rev = %d, want 1", r.Rev)
	}
	want := clone(r)

	got := mustGet(t, s, kindA, scope1, "key-1")
	if d := diff(got, want); d != "" {
		t.Errorf("Get(key-1): %s", d)
	}
	if err := s.View(ctx, func(rd storage.Reader) error {
		got, err := rd.Get(ctx, kindA, scope1, "key-1")
		if err != nil {
			return err
		}
		if d := diff(got, want); d != "" {
			t.Errorf("View Get(key-1): %s", d)
		}
		return nil
	}); err != nil {
		t.Errorf("View = %v, want nil", err)
	}
	if err := s.Update(ctx, func(tx storage.Tx) error {
		got, err := tx.Get(ctx, kindA, scope1, "key-1")
		if err != nil {
			return err
		}
		if d := diff(got, want); d != "" {
			t.Errorf("Update Get(key-1): %s", d)
		}
		return nil
	}); err != nil {
		t.Errorf("Update = %v, want nil", err)
	}

	// The caller's slices are not aliased by the store.
	got.Data[0] = 'X'
	if again := mustGet(t, s, kindA, scope1, "key-1"); again.Data[0] != want.Data[0] {
		t.Errorf("Get after modifying a returned record's Data = %q, want %q", again.Data, want.Data)
	}

	wantNotFound(t, s, kindA, scope1, "missing")
	wantNotFound(t, s, kindB, scope1, "key-1")
	err := s.View(ctx, func(rd storage.Reader) error {
		_, err := rd.Get(ctx, kindA, scope1, "missing")
		return err
	})
	if !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("View Get(missing) = %v, want ErrNotFound", err)
	}
	err = s.Update(ctx, func(tx storage.Tx) error {
		_, err := tx.Get(ctx, kindA, scope1, "missing")
		return err
	})
	if !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("Update Get(missing) = %v, want ErrNotFound", err)
	}
}

func testInsertExists(t *testing.T, s storage.Store) {
	ctx := t.Context()
	orig := newRecord(kindA, scope1, "dup")
	mustInsert(t, s, orig)

	var insertErr error
	err := s.Update(ctx, func(tx storage.Tx) error {
		dup := newRecord(kindA, scope1, "dup")
		dup.Data = []byte("other")
		insertErr = tx.Insert(ctx, dup)
		// The transaction stays usable after ErrExists.
		if err := tx.Insert(ctx, newRecord(kindA, scope1, "after-dup")); err != nil {
			return fmt.Errorf("Insert(after-dup) = %w", err)
		}
		got, err := tx.Get(ctx, kindA, scope1, "dup")
		if err != nil {
			return fmt.Errorf("Get(dup) = %w", err)
		}
		if !bytes.Equal(got.Data, orig.Data) {
			return fmt.Errorf("Get(dup).Data = %q, want %q", got.Data, orig.Data)
		}
		return nil
	})
	if !errors.Is(insertErr, storage.ErrExists) {
		t.Errorf("Insert(dup) = %v, want ErrExists", insertErr)
	}
	if err != nil {
		t.Fatalf("Update(continue after ErrExists) = %v, want nil", err)
	}
	if d := diff(mustGet(t, s, kindA, scope1, "dup"), orig); d != "" {
		t.Errorf("Get(dup) after failed duplicate insert: %s", d)
	}
	mustGet(t, s, kindA, scope1, "after-dup")

	// A duplicate inside the same transaction.
	err = s.Update(ctx, func(tx storage.Tx) error {
		if err := tx.Insert(ctx, newRecord(kindA, scope1, "twice")); err != nil {
			return err
		}
		return tx.Insert(ctx, newRecord(kindA, scope1, "twice"))
	})
	if !errors.Is(err, storage.ErrExists) {
		t.Errorf("Update(insert twice) = %v, want ErrExists", err)
	}
	wantNotFound(t, s, kindA, scope1, "twice")
}

func testUpdateRev(t *testing.T, s storage.Store) {
	ctx := t.Context()
	r := newRecord(kindA, scope1, "rev")
	mustInsert(t, s, r)
	for want := int64(2); want <= 4; want++ {
		next := clone(r)
		next.Data = fmt.Appendf(nil, "v%d", want)
		next.Parent = fmt.Sprintf("p%d", want)
		next.Due = want * 100
		next.Created = r.Created + 1
		if err := s.Update(ctx, func(tx storage.Tx) error { return tx.Update(ctx, next) }); err != nil {
			t.Fatalf("Update(rev %d) = %v, want nil", next.Rev, err)
		}
		if next.Rev != want {
			t.Errorf("after Update, r.Rev = %d, want %d", next.Rev, want)
		}
		if d := diff(mustGet(t, s, kindA, scope1, "rev"), next); d != "" {
			t.Errorf("Get after update to rev %d: %s", want, d)
		}
		r = next
	}

	stale := clone(r)
	stale.Rev = 2
	stale.Data = []byte("stale")
	var updateErr error
	err := s.Update(ctx, func(tx storage.Tx) error {
		updateErr = tx.Update(ctx, stale)
		return nil
	})
	if err != nil {
		t.Fatalf("Update(fn ignoring its error) = %v, want nil", err)
	}
	if !errors.Is(updateErr, storage.ErrConflict) {
		t.Errorf("tx.Update(stale rev 2) = %v, want ErrConflict", updateErr)
	}
	if stale.Rev != 2 {
		t.Errorf("after failed tx.Update, r.Rev = %d, want 2 (unchanged)", stale.Rev)
	}
	if d := diff(mustGet(t, s, kindA, scope1, "rev"), r); d != "" {
		t.Errorf("Get after conflicting update: %s", d)
	}

	missing := newRecord(kindA, scope1, "no-such")
	missing.Rev = 1
	err = s.Update(ctx, func(tx storage.Tx) error { return tx.Update(ctx, missing) })
	if !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("Update(missing record) = %v, want ErrNotFound", err)
	}
	wantNotFound(t, s, kindA, scope1, "no-such")
}

func testUpdateConflictBounded(t *testing.T, s storage.Store) {
	ctx := t.Context()
	calls := 0
	err := s.Update(ctx, func(tx storage.Tx) error {
		calls++
		return fmt.Errorf("wrapped: %w", storage.ErrConflict)
	})
	if !errors.Is(err, storage.ErrConflict) {
		t.Errorf("Update(fn always ErrConflict) = %v, want ErrConflict", err)
	}
	if calls < 1 || calls > 100 {
		t.Errorf("Update(fn always ErrConflict) ran fn %d times, want between 1 and 100", calls)
	}

	// Other errors are not retried, and come back unchanged.
	calls = 0
	err = s.Update(ctx, func(tx storage.Tx) error {
		calls++
		return errTest
	})
	if err != errTest { //nolint:errorlint // the contract says unchanged
		t.Errorf("Update(fn returns errTest) = %v, want errTest unchanged", err)
	}
	if calls != 1 {
		t.Errorf("Update(fn returns errTest) ran fn %d times, want 1", calls)
	}
}

func testDelete(t *testing.T, s storage.Store) {
	ctx := t.Context()
	mustInsert(t, s, newRecord(kindA, scope1, "del"), newRecord(kindA, scope1, "keep"))
	if err := s.Update(ctx, func(tx storage.Tx) error { return tx.Delete(ctx, kindA, scope1, "del") }); err != nil {
		t.Fatalf("Delete(del) = %v, want nil", err)
	}
	wantNotFound(t, s, kindA, scope1, "del")
	mustGet(t, s, kindA, scope1, "keep")

	err := s.Update(ctx, func(tx storage.Tx) error { return tx.Delete(ctx, kindA, scope1, "del") })
	if !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("Delete(already deleted) = %v, want ErrNotFound", err)
	}

	// A deleted identity can be inserted again, and starts over at Rev 1.
	again := newRecord(kindA, scope1, "del")
	mustInsert(t, s, again)
	if got := mustGet(t, s, kindA, scope1, "del"); got.Rev != 1 {
		t.Errorf("Get(re-inserted).Rev = %d, want 1", got.Rev)
	}

	// Delete then Insert in one transaction.
	err = s.Update(ctx, func(tx storage.Tx) error {
		if err := tx.Delete(ctx, kindA, scope1, "keep"); err != nil {
			return err
		}
		if _, err := tx.Get(ctx, kindA, scope1, "keep"); !errors.Is(err, storage.ErrNotFound) {
			return fmt.Errorf("Get(keep) after Delete in tx = %v, want ErrNotFound", err)
		}
		r := newRecord(kindA, scope1, "keep")
		r.Data = []byte("new")
		return tx.Insert(ctx, r)
	})
	if err != nil {
		t.Fatalf("Update(delete+insert) = %v, want nil", err)
	}
	if got := mustGet(t, s, kindA, scope1, "keep"); string(got.Data) != "new" || got.Rev != 1 {
		t.Errorf("Get(keep) = Data %q Rev %d, want Data \"new\" Rev 1", got.Data, got.Rev)
	}
}

func testScopeIsolation(t *testing.T, s storage.Store) {
	ctx := t.Context()
	type ident struct {
		kind  storage.Kind
		scope storage.Scope
	}
	idents := []ident{{kindA, scope1}, {kindA, scope2}, {kindA, scope3}, {kindB, scope1}}
	for i, id := range idents {
		r := newRecord(id.kind, id.scope, "same-id")
		r.Data = fmt.Appendf(nil, "record %d", i)
		r.Parent = "p"
		mustInsert(t, s, r)
	}
	for i, id := range idents {
		got := mustGet(t, s, id.kind, id.scope, "same-id")
		if want := fmt.Sprintf("record %d", i); string(got.Data) != want {
			t.Errorf("Get(%q, %v, same-id).Data = %q, want %q", id.kind, id.scope, got.Data, want)
		}
		if got.Kind != id.kind || got.Scope != id.scope {
			t.Errorf("Get(%q, %v, same-id) returned identity (%q, %v)", id.kind, id.scope, got.Kind, got.Scope)
		}
	}
	wantNotFound(t, s, kindB, scope2, "same-id")

	// Updating and deleting one leaves the others alone.
	r := mustGet(t, s, kindA, scope2, "same-id")
	r.Data = []byte("changed")
	if err := s.Update(ctx, func(tx storage.Tx) error {
		if err := tx.Update(ctx, r); err != nil {
			return err
		}
		return tx.Delete(ctx, kindA, scope3, "same-id")
	}); err != nil {
		t.Fatalf("Update(update scope2, delete scope3) = %v, want nil", err)
	}
	if got := mustGet(t, s, kindA, scope1, "same-id"); string(got.Data) != "record 0" || got.Rev != 1 {
		t.Errorf("Get(scope1) after changing scope2 = Data %q Rev %d, want \"record 0\" Rev 1", got.Data, got.Rev)
	}
	wantNotFound(t, s, kindA, scope3, "same-id")
	mustGet(t, s, kindB, scope1, "same-id")

	if err := s.View(ctx, func(rd storage.Reader) error {
		for _, tc := range []struct {
			kind  storage.Kind
			scope storage.Scope
			want  int
		}{{kindA, scope1, 1}, {kindA, scope2, 1}, {kindA, scope3, 0}, {kindB, scope1, 1}, {kindB, scope3, 0}} {
			recs, err := rd.List(ctx, tc.kind, tc.scope, storage.ListOptions{})
			if err != nil {
				return err
			}
			if len(recs) != tc.want {
				t.Errorf("List(%q, %v) = %d records, want %d", tc.kind, tc.scope, len(recs), tc.want)
			}
			for _, parent := range []string{"", "p"} {
				n, err := rd.Count(ctx, tc.kind, tc.scope, parent)
				if err != nil {
					return err
				}
				if n != tc.want {
					t.Errorf("Count(%q, %v, %q) = %d, want %d", tc.kind, tc.scope, parent, n, tc.want)
				}
			}
		}
		return nil
	}); err != nil {
		t.Errorf("View = %v, want nil", err)
	}
}

// listIDs are IDs whose byte order differs from the order of most collations
// and of UTF-16: upper case before lower case, punctuation that collations
// ignore, "b0" right after the prefix "b/", U+FF5E before U+1F600 (which
// UTF-16 sorts the other way), and U+10FFFF, the largest code point.
var listIDs = []string{
	"a", "a-b", "a_b", "aB", "ab", "B", "Z", "b/1", "b/10", "b/2", "b0", "b-", "é", "éa", "e",
	"中文", "中", "\uff5e", "😀", "x\U0010FFFF", "x\U0010FFFFa", "y", "alias/aws/kms", "alias/mine",
}

// listParent gives some of listIDs a parent.
func listParent(id string) string {
	switch {
	case strings.HasPrefix(id, "b"):
		return "parent-b"
	case strings.HasPrefix(id, "a"):
		return "parent-a"
	}
	return ""
}

func seedList(t *testing.T, s storage.Store) {
	t.Helper()
	var recs []*storage.Record
	for _, id := range listIDs {
		r := newRecord(kindA, scope1, id)
		r.Parent = listParent(id)
		recs = append(recs, r)
		// Noise in other scopes and kinds.
		recs = append(recs, newRecord(kindB, scope1, id), newRecord(kindA, scope2, id))
	}
	mustInsert(t, s, recs...)
}

// wantList filters and orders listIDs as ListOptions says.
func wantList(opts storage.ListOptions) []string {
	var out []string
	for _, id := range listIDs {
		if opts.Parent != "" && listParent(id) != opts.Parent {
			continue
		}
		if !strings.HasPrefix(id, opts.Prefix) {
			continue
		}
		if opts.After != "" && id <= opts.After {
			continue
		}
		out = append(out, id)
	}
	slices.Sort(out) // Go compares strings byte-wise
	if opts.Limit > 0 && len(out) > opts.Limit {
		out = out[:opts.Limit]
	}
	if out == nil {
		out = []string{}
	}
	return out
}

func testList(t *testing.T, s storage.Store) {
	seedList(t, s)
	tests := []struct {
		name string
		opts storage.ListOptions
	}{
		{"all", storage.ListOptions{}},
		{"limit", storage.ListOptions{Limit: 3}},
		{"limit larger than result", storage.ListOptions{Limit: 1000}},
		{"prefix b/", storage.ListOptions{Prefix: "b/"}},
		{"prefix a", storage.ListOptions{Prefix: "a"}},
		{"prefix alias/", storage.ListOptions{Prefix: "alias/"}},
		{"prefix multibyte", storage.ListOptions{Prefix: "é"}},
		{"prefix cjk", storage.ListOptions{Prefix: "中"}},
		{"prefix max code point", storage.ListOptions{Prefix: "x\U0010FFFF"}},
		{"prefix whole id", storage.ListOptions{Prefix: "b/1"}},
		{"prefix no match", storage.ListOptions{Prefix: "q"}},
		{"after", storage.ListOptions{After: "b/1"}},
		{"after not stored", storage.ListOptions{After: "b/0"}},
		{"after last", storage.ListOptions{After: "😀"}},
		{"after and limit", storage.ListOptions{After: "a_b", Limit: 2}},
		{"prefix and after", storage.ListOptions{Prefix: "b", After: "b/10"}},
		{"parent", storage.ListOptions{Parent: "parent-b"}},
		{"parent none", storage.ListOptions{Parent: "no-such-parent"}},
		{"parent and prefix", storage.ListOptions{Parent: "parent-a", Prefix: "alias/"}},
		{"parent prefix after limit", storage.ListOptions{Parent: "parent-a", Prefix: "a", After: "a-b", Limit: 2}},
	}
	ctx := t.Context()
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			want := wantList(tc.opts)
			check := func(where string, recs []*storage.Record, err error) {
				t.Helper()
				if err != nil {
					t.Fatalf("%s List(%+v) = %v, want nil", where, tc.opts, err)
				}
				if got := ids(recs); !slices.Equal(got, want) {
					t.Errorf("%s List(%+v) = %q, want %q", where, tc.opts, got, want)
				}
				for _, r := range recs {
					if r.Kind != kindA || r.Scope != scope1 || r.Rev != 1 || r.Parent != listParent(r.ID) ||
						string(r.Data) != `{"id":"`+r.ID+`"}` {
						t.Errorf("%s List(%+v) returned %+v, a record not as inserted", where, tc.opts, r)
					}
				}
			}
			if err := s.View(ctx, func(rd storage.Reader) error {
				recs, err := rd.List(ctx, kindA, scope1, tc.opts)
				check("View", recs, err)
				return nil
			}); err != nil {
				t.Errorf("View = %v, want nil", err)
			}
			if err := s.Update(ctx, func(tx storage.Tx) error {
				recs, err := tx.List(ctx, kindA, scope1, tc.opts)
				check("Update", recs, err)
				return nil
			}); err != nil {
				t.Errorf("Update = %v, want nil", err)
			}
		})
	}
}

// testListKeysOnly checks that KeysOnly selects the same records, in the
// same order, with every index column but no payload.
func testListKeysOnly(t *testing.T, s storage.Store) {
	seedList(t, s)
	ctx := t.Context()
	for _, opts := range []storage.ListOptions{{}, {Limit: 3, After: "a_b"}, {Parent: "parent-b"}, {Prefix: "b/"}} {
		if err := s.View(ctx, func(rd storage.Reader) error {
			full, err := rd.List(ctx, kindA, scope1, opts)
			if err != nil {
				t.Fatalf("List(%+v) = %v", opts, err)
			}
			ko := opts
			ko.KeysOnly = true
			keys, err := rd.List(ctx, kindA, scope1, ko)
			if err != nil {
				t.Fatalf("List(%+v) = %v", ko, err)
			}
			if !slices.Equal(ids(keys), ids(full)) || len(keys) == 0 && len(wantList(opts)) > 0 {
				t.Errorf("List(%+v) = %q, want %q", ko, ids(keys), ids(full))
			}
			for i, r := range keys {
				f := full[i]
				if r.Data != nil || r.Sealed != nil || r.Kind != f.Kind || r.Scope != f.Scope || r.Parent != f.Parent ||
					r.Rev != f.Rev || r.Due != f.Due || r.Created != f.Created {
					t.Errorf("List(%+v) returned %+v, want %+v without Data and Sealed", ko, r, f)
				}
			}
			return nil
		}); err != nil {
			t.Fatalf("View = %v", err)
		}
	}
}

// testScan pages through one kind in every scope in (account, region, id)
// order, from View and from Update.
func testScan(t *testing.T, s storage.Store) {
	var want []storage.Position
	var recs []*storage.Record
	for _, sc := range []storage.Scope{scope2, scope1, scope3} {
		for _, id := range []string{"b", "a", "a/1", "é"} {
			recs = append(recs, &storage.Record{Kind: kindA, Scope: sc, ID: id, Data: []byte(id)})
			want = append(want, storage.Position{Scope: sc, ID: id})
		}
	}
	recs = append(recs, &storage.Record{Kind: kindB, Scope: scope1, ID: "other-kind"})
	mustInsert(t, s, recs...)
	slices.SortFunc(want, func(a, b storage.Position) int {
		return cmp.Or(cmp.Compare(a.Scope.Account, b.Scope.Account), cmp.Compare(a.Scope.Region, b.Scope.Region), cmp.Compare(a.ID, b.ID))
	})
	ctx := t.Context()
	scanAll := func(r storage.Reader, limit int) []storage.Position {
		var got []storage.Position
		var after storage.Position
		for range 100 {
			page, err := r.Scan(ctx, kindA, after, limit)
			if err != nil {
				t.Fatalf("Scan(after %+v, %d) = %v", after, limit, err)
			}
			for _, rec := range page {
				if string(rec.Data) != rec.ID || rec.Kind != kindA {
					t.Errorf("Scan returned %+v, not as inserted", rec)
				}
				got = append(got, storage.PositionOf(rec))
			}
			if limit == 0 || len(page) < limit {
				return got
			}
			after = storage.PositionOf(page[len(page)-1])
		}
		t.Fatal("Scan did not end")
		return nil
	}
	for _, limit := range []int{0, 1, 5, 12} {
		if err := s.View(ctx, func(r storage.Reader) error {
			if got := scanAll(r, limit); !slices.Equal(got, want) {
				t.Errorf("View Scan by %d = %v, want %v", limit, got, want)
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Update(ctx, func(tx storage.Tx) error {
		if got := scanAll(tx, 2); !slices.Equal(got, want) {
			t.Errorf("Update Scan by 2 = %v, want %v", got, want)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}

// testCompact checks that a store's Compact (if it has one) keeps every
// record and leaves the store usable.
func testCompact(t *testing.T, s storage.Store) {
	c, ok := s.(storage.Compactor)
	if !ok {
		t.Skip("the store does not implement storage.Compactor")
	}
	ctx := t.Context()
	mustInsert(t, s, &storage.Record{Kind: kindA, Scope: scope1, ID: "keep", Data: []byte("v1"), Sealed: []byte{1, 2}},
		&storage.Record{Kind: kindA, Scope: scope1, ID: "drop", Data: []byte("gone")})
	if err := s.Update(ctx, func(tx storage.Tx) error {
		r, err := tx.Get(ctx, kindA, scope1, "keep")
		if err != nil {
			return err
		}
		r.Data = []byte("v2")
		if err := tx.Update(ctx, r); err != nil {
			return err
		}
		return tx.Delete(ctx, kindA, scope1, "drop")
	}); err != nil {
		t.Fatal(err)
	}
	if err := c.Compact(ctx); err != nil {
		t.Fatalf("Compact = %v, want nil", err)
	}
	if r := mustGet(t, s, kindA, scope1, "keep"); string(r.Data) != "v2" || r.Rev != 2 || !bytes.Equal(r.Sealed, []byte{1, 2}) {
		t.Errorf("after Compact, Get = %+v", r)
	}
	wantNotFound(t, s, kindA, scope1, "drop")
	mustInsert(t, s, &storage.Record{Kind: kindA, Scope: scope1, ID: "after"})
}

func testListPaging(t *testing.T, s storage.Store) {
	seedList(t, s)
	ctx := t.Context()
	for _, tc := range []struct {
		name   string
		prefix string
		limit  int
	}{
		{"page 1", "", 1},
		{"page 2", "", 2},
		{"page 5", "", 5},
		{"page 2 prefix b", "b", 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			after := ""
			for range len(listIDs) + 2 {
				var page []*storage.Record
				err := s.View(ctx, func(rd storage.Reader) error {
					var err error
					page, err = rd.List(ctx, kindA, scope1, storage.ListOptions{Prefix: tc.prefix, After: after, Limit: tc.limit})
					return err
				})
				if err != nil {
					t.Fatalf("List(after %q) = %v, want nil", after, err)
				}
				if len(page) > tc.limit {
					t.Fatalf("List(limit %d) returned %d records", tc.limit, len(page))
				}
				got = append(got, ids(page)...)
				if len(page) < tc.limit {
					break
				}
				after = page[len(page)-1].ID
			}
			if want := wantList(storage.ListOptions{Prefix: tc.prefix}); !slices.Equal(got, want) {
				t.Errorf("paging by %d = %q, want %q", tc.limit, got, want)
			}
		})
	}
}

func testListParentMoves(t *testing.T, s storage.Store) {
	ctx := t.Context()
	r := newRecord(kindA, scope1, "alias/x")
	r.Parent = "key-1"
	mustInsert(t, s, r)
	r.Parent = "key-2"
	if err := s.Update(ctx, func(tx storage.Tx) error { return tx.Update(ctx, r) }); err != nil {
		t.Fatalf("Update(reparent) = %v, want nil", err)
	}
	if err := s.View(ctx, func(rd storage.Reader) error {
		for parent, want := range map[string][]string{"key-1": {}, "key-2": {"alias/x"}} {
			recs, err := rd.List(ctx, kindA, scope1, storage.ListOptions{Parent: parent})
			if err != nil {
				return err
			}
			if got := ids(recs); !slices.Equal(got, want) {
				t.Errorf("List(parent %q) = %q, want %q", parent, got, want)
			}
		}
		return nil
	}); err != nil {
		t.Errorf("View = %v, want nil", err)
	}
}

func testCount(t *testing.T, s storage.Store) {
	seedList(t, s)
	ctx := t.Context()
	tests := []struct {
		name   string
		kind   storage.Kind
		scope  storage.Scope
		parent string
		want   int
	}{
		{"all", kindA, scope1, "", len(listIDs)},
		{"parent-a", kindA, scope1, "parent-a", len(wantList(storage.ListOptions{Parent: "parent-a"}))},
		{"parent-b", kindA, scope1, "parent-b", len(wantList(storage.ListOptions{Parent: "parent-b"}))},
		{"no such parent", kindA, scope1, "nope", 0},
		{"other scope has no parents", kindA, scope2, "parent-a", 0},
		{"other scope all", kindA, scope2, "", len(listIDs)},
		{"empty scope", kindA, scope3, "", 0},
		{"unknown kind", "test.none", scope1, "", 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for _, where := range []string{"View", "Update"} {
				var got int
				count := func(rd storage.Reader) error {
					var err error
					got, err = rd.Count(ctx, tc.kind, tc.scope, tc.parent)
					return err
				}
				var err error
				if where == "View" {
					err = s.View(ctx, count)
				} else {
					err = s.Update(ctx, func(tx storage.Tx) error { return count(tx) })
				}
				if err != nil {
					t.Fatalf("%s Count(%q, %v, %q) = %v, want nil", where, tc.kind, tc.scope, tc.parent, err)
				}
				if got != tc.want {
					t.Errorf("%s Count(%q, %v, %q) = %d, want %d", where, tc.kind, tc.scope, tc.parent, got, tc.want)
				}
			}
		})
	}
}

func testDue(t *testing.T, s storage.Store) {
	ctx := t.Context()
	mk := func(kind storage.Kind, scope storage.Scope, id string, due int64) *storage.Record {
		r := newRecord(kind, scope, id)
		r.Due = due
		return r
	}
	mustInsert(t, s,
		mk(kindA, scope1, "none", 0),
		mk(kindA, scope1, "d100", 100),
		mk(kindA, scope2, "d50", 50),
		mk(kindA, scope3, "d150", 150), // == before: included
		mk(kindA, scope1, "d151", 151),
		mk(kindA, scope2, "d200", 200),
		mk(kindA, scope2, "d1", 1),
		mk(kindB, scope1, "other-kind", 10),
	)
	tests := []struct {
		name   string
		kind   storage.Kind
		before int64
		limit  int
		want   []string
	}{
		{"before 150", kindA, 150, 10, []string{"d1", "d50", "d100", "d150"}},
		{"limit", kindA, 150, 2, []string{"d1", "d50"}},
		{"limit 1", kindA, 1000, 1, []string{"d1"}},
		{"no limit", kindA, 1000, 0, []string{"d1", "d50", "d100", "d150", "d151", "d200"}},
		{"nothing due", kindA, 0, 10, []string{}},
		{"other kind", kindB, 150, 10, []string{"other-kind"}},
		{"unknown kind", "test.none", 150, 10, []string{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for _, where := range []string{"View", "Update"} {
				var recs []*storage.Record
				due := func(rd storage.Reader) error {
					var err error
					recs, err = rd.Due(ctx, tc.kind, tc.before, tc.limit)
					return err
				}
				var err error
				if where == "View" {
					err = s.View(ctx, due)
				} else {
					err = s.Update(ctx, func(tx storage.Tx) error { return due(tx) })
				}
				if err != nil {
					t.Fatalf("%s Due(%q, %d, %d) = %v, want nil", where, tc.kind, tc.before, tc.limit, err)
				}
				got := ids(recs)
				if got == nil {
					got = []string{}
				}
				if !slices.Equal(got, tc.want) {
					t.Errorf("%s Due(%q, %d, %d) = %q, want %q", where, tc.kind, tc.before, tc.limit, got, tc.want)
				}
				for _, r := range recs {
					if r.Due == 0 || r.Due > tc.before || r.Kind != tc.kind {
						t.Errorf("%s Due(%q, %d) returned %q with Kind %q Due %d", where, tc.kind, tc.before, r.ID, r.Kind, r.Due)
					}
				}
			}
		})
	}

	// Clearing Due takes a record out; the scope comes back intact.
	r := mustGet(t, s, kindA, scope2, "d1")
	r.Due = 0
	if err := s.Update(ctx, func(tx storage.Tx) error { return tx.Update(ctx, r) }); err != nil {
		t.Fatalf("Update(clear due) = %v, want nil", err)
	}
	err := s.View(ctx, func(rd storage.Reader) error {
		recs, err := rd.Due(ctx, kindA, 150, 1)
		if err != nil {
			return err
		}
		if len(recs) != 1 || recs[0].ID != "d50" || recs[0].Scope != scope2 {
			t.Errorf("Due after clearing d1 = %v, want [d50 in %v]", recs, scope2)
		}
		return nil
	})
	if err != nil {
		t.Errorf("View = %v, want nil", err)
	}
}

func testBytes(t *testing.T, s storage.Store) {
	ctx := t.Context()
	big := make([]byte, 256<<10)
	for i := range big {
		big[i] = byte(i * 7)
	}
	tests := []struct {
		name         string
		data, sealed []byte
	}{
		{"nil nil", nil, nil},
		{"empty empty", []byte{}, []byte{}},
		{"nil empty", nil, []byte{}},
		{"empty nil", []byte{}, nil},
		{"zero byte", []byte{0}, []byte{0, 0}},
		{"binary", []byte{0xff, 0x00, 0x80, 0x7f, '\''}, []byte("\x00KFS1\xff\xfe")},
		{"invalid utf-8", []byte{0xc3, 0x28, 0xa0, 0xa1}, []byte{0xed, 0xa0, 0x80}},
		{"large", big, big[:1<<16]},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			id := "bytes/" + strings.ReplaceAll(tc.name, " ", "-")
			r := newRecord(kindA, scope1, id)
			r.Data, r.Sealed = bytes.Clone(tc.data), bytes.Clone(tc.sealed)
			r.Due = 5
			mustInsert(t, s, r)
			check := func(where string, got *storage.Record) {
				t.Helper()
				if (got.Data == nil) != (tc.data == nil) || !bytes.Equal(got.Data, tc.data) {
					t.Errorf("%s: Data = %s, want %s", where, describe(got.Data), describe(tc.data))
				}
				if (got.Sealed == nil) != (tc.sealed == nil) || !bytes.Equal(got.Sealed, tc.sealed) {
					t.Errorf("%s: Sealed = %s, want %s", where, describe(got.Sealed), describe(tc.sealed))
				}
			}
			check("Get", mustGet(t, s, kindA, scope1, id))
			if err := s.View(ctx, func(rd storage.Reader) error {
				got, err := rd.Get(ctx, kindA, scope1, id)
				if err != nil {
					return err
				}
				check("View Get", got)
				recs, err := rd.List(ctx, kindA, scope1, storage.ListOptions{Prefix: id})
				if err != nil {
					return err
				}
				if len(recs) != 1 {
					return fmt.Errorf("List(prefix %q) = %d records, want 1", id, len(recs))
				}
				check("List", recs[0])
				due, err := rd.Due(ctx, kindA, 5, 0)
				if err != nil {
					return err
				}
				for _, d := range due {
					if d.ID == id {
						check("Due", d)
					}
				}
				return nil
			}); err != nil {
				t.Errorf("View = %v, want nil", err)
			}
			// Update with the same values, then swapped.
			if err := s.Update(ctx, func(tx storage.Tx) error {
				got, err := tx.Get(ctx, kindA, scope1, id)
				if err != nil {
					return err
				}
				check("tx Get", got)
				got.Data, got.Sealed = tc.sealed, tc.data
				return tx.Update(ctx, got)
			}); err != nil {
				t.Fatalf("Update = %v, want nil", err)
			}
			got := mustGet(t, s, kindA, scope1, id)
			if (got.Data == nil) != (tc.sealed == nil) || !bytes.Equal(got.Data, tc.sealed) ||
				(got.Sealed == nil) != (tc.data == nil) || !bytes.Equal(got.Sealed, tc.data) {
				t.Errorf("after swapping: Data = %s, Sealed = %s; want %s, %s",
					describe(got.Data), describe(got.Sealed), describe(tc.sealed), describe(tc.data))
			}
		})
	}
}

func describe(b []byte) string {
	switch {
	case b == nil:
		return "nil"
	case len(b) > 16:
		return fmt.Sprintf("%d bytes %x...", len(b), b[:16])
	}
	return fmt.Sprintf("%#v", b)
}

func testUpdateErrorDiscards(t *testing.T, s storage.Store) {
	ctx := t.Context()
	upd := newRecord(kindA, scope1, "to-update")
	mustInsert(t, s, upd, newRecord(kindA, scope1, "to-delete"))
	want := clone(upd)

	err := s.Update(ctx, func(tx storage.Tx) error {
		if err := tx.Insert(ctx, newRecord(kindA, scope1, "inserted")); err != nil {
			return err
		}
		u := clone(upd)
		u.Data = []byte("changed")
		if err := tx.Update(ctx, u); err != nil {
			return err
		}
		if err := tx.Delete(ctx, kindA, scope1, "to-delete"); err != nil {
			return err
		}
		return errTest
	})
	if err != errTest { //nolint:errorlint // the contract says unchanged
		t.Fatalf("Update(fn fails after writes) = %v, want errTest unchanged", err)
	}
	wantNotFound(t, s, kindA, scope1, "inserted")
	if d := diff(mustGet(t, s, kindA, scope1, "to-update"), want); d != "" {
		t.Errorf("Get(to-update) after discarded update: %s", d)
	}
	mustGet(t, s, kindA, scope1, "to-delete")
	if err := s.View(ctx, func(rd storage.Reader) error {
		n, err := rd.Count(ctx, kindA, scope1, "")
		if err != nil {
			return err
		}
		if n != 2 {
			t.Errorf("Count after discarded update = %d, want 2", n)
		}
		return nil
	}); err != nil {
		t.Errorf("View = %v, want nil", err)
	}

	// The store keeps working after a failed fn.
	mustInsert(t, s, newRecord(kindA, scope1, "later"))
}

func testReadYourWrites(t *testing.T, s storage.Store) {
	ctx := t.Context()
	err := s.Update(ctx, func(tx storage.Tx) error {
		r := newRecord(kindA, scope1, "ryw")
		r.Parent = "p"
		r.Due = 7
		if err := tx.Insert(ctx, r); err != nil {
			return err
		}
		got, err := tx.Get(ctx, kindA, scope1, "ryw")
		if err != nil {
			return fmt.Errorf("Get after Insert in tx = %w", err)
		}
		if d := diff(got, r); d != "" {
			return fmt.Errorf("Get after Insert in tx: %s", d)
		}
		recs, err := tx.List(ctx, kindA, scope1, storage.ListOptions{Parent: "p"})
		if err != nil || len(recs) != 1 {
			return fmt.Errorf("List after Insert in tx = %d records, %v; want 1", len(recs), err)
		}
		n, err := tx.Count(ctx, kindA, scope1, "p")
		if err != nil || n != 1 {
			return fmt.Errorf("Count after Insert in tx = %d, %v; want 1", n, err)
		}
		due, err := tx.Due(ctx, kindA, 7, 10)
		if err != nil || len(due) != 1 {
			return fmt.Errorf("Due after Insert in tx = %d records, %v; want 1", len(due), err)
		}
		got.Data = []byte("v2")
		if err := tx.Update(ctx, got); err != nil {
			return err
		}
		if got.Rev != 2 {
			return fmt.Errorf("Rev after Insert+Update in tx = %d, want 2", got.Rev)
		}
		again, err := tx.Get(ctx, kindA, scope1, "ryw")
		if err != nil {
			return err
		}
		if again.Rev != 2 || string(again.Data) != "v2" {
			return fmt.Errorf("Get after Update in tx = Rev %d Data %q, want 2 \"v2\"", again.Rev, again.Data)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("Update = %v, want nil", err)
	}
	if got := mustGet(t, s, kindA, scope1, "ryw"); got.Rev != 2 {
		t.Errorf("Get(ryw).Rev = %d, want 2", got.Rev)
	}
}

func testViewSeesCommitted(t *testing.T, s storage.Store) {
	ctx := t.Context()
	for i := range 5 {
		id := fmt.Sprintf("v%d", i)
		mustInsert(t, s, newRecord(kindA, scope1, id))
		err := s.View(ctx, func(rd storage.Reader) error {
			if _, err := rd.Get(ctx, kindA, scope1, id); err != nil {
				return fmt.Errorf("Get(%q) = %w", id, err)
			}
			n, err := rd.Count(ctx, kindA, scope1, "")
			if err != nil {
				return err
			}
			if n != i+1 {
				return fmt.Errorf("Count = %d, want %d", n, i+1)
			}
			return nil
		})
		if err != nil {
			t.Fatalf("View after committing %q = %v, want nil", id, err)
		}
	}
	// View returns fn's error unchanged.
	if err := s.View(ctx, func(storage.Reader) error { return errTest }); err != errTest { //nolint:errorlint
		t.Errorf("View(fn returns errTest) = %v, want errTest unchanged", err)
	}
}

// testViewSnapshot commits a change while a View is open: the View keeps
// reading the snapshot it started with.
func testViewSnapshot(t *testing.T, s storage.Store) {
	ctx := t.Context()
	r := newRecord(kindA, scope1, "snap")
	mustInsert(t, s, r)
	err := s.View(ctx, func(rd storage.Reader) error {
		before, err := rd.Get(ctx, kindA, scope1, "snap")
		if err != nil {
			return err
		}
		// Commit from another goroutine, as another request would.
		done := make(chan error, 1)
		go func() {
			done <- s.Update(ctx, func(tx storage.Tx) error {
				u := clone(r)
				u.Data = []byte("changed")
				if err := tx.Update(ctx, u); err != nil {
					return err
				}
				return tx.Insert(ctx, newRecord(kindA, scope1, "snap-2"))
			})
		}()
		select {
		case err := <-done:
			if err != nil {
				return fmt.Errorf("Update during View = %w", err)
			}
		case <-time.After(timeout):
			return fmt.Errorf("Update during View did not return within %v", timeout)
		}
		after, err := rd.Get(ctx, kindA, scope1, "snap")
		if err != nil {
			return err
		}
		if d := diff(after, before); d != "" {
			t.Errorf("Get in View after a concurrent commit: %s (want the View's snapshot)", d)
		}
		if _, err := rd.Get(ctx, kindA, scope1, "snap-2"); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("Get(snap-2) in View after a concurrent commit = %v, want ErrNotFound", err)
		}
		n, err := rd.Count(ctx, kindA, scope1, "")
		if err != nil {
			return err
		}
		if n != 1 {
			t.Errorf("Count in View after a concurrent commit = %d, want 1", n)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("View = %v, want nil", err)
	}
	if got := mustGet(t, s, kindA, scope1, "snap"); string(got.Data) != "changed" {
		t.Errorf("Get(snap) after the View = Data %q, want \"changed\"", got.Data)
	}
}

// counter encodes n as a record's Data.
func counter(n uint64) []byte { return binary.BigEndian.AppendUint64(nil, n) }

func testConcurrentCounter(t *testing.T, s storage.Store) {
	const workers, perWorker = 16, 50
	ctx := t.Context()
	c := newRecord(kindA, scope1, "counter")
	c.Data = counter(0)
	mustInsert(t, s, c)

	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Go(func() {
			for i := range perWorker {
				err := s.Update(ctx, func(tx storage.Tx) error {
					r, err := tx.Get(ctx, kindA, scope1, "counter")
					if err != nil {
						return err
					}
					if len(r.Data) != 8 {
						return fmt.Errorf("counter Data = %x, want 8 bytes", r.Data)
					}
					r.Data = counter(binary.BigEndian.Uint64(r.Data) + 1)
					return tx.Update(ctx, r)
				})
				if err != nil {
					errs <- fmt.Errorf("worker %d update %d: %w", w, i, err)
					return
				}
			}
		})
	}
	waitGroup(t, &wg)
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	got := mustGet(t, s, kindA, scope1, "counter")
	if n := binary.BigEndian.Uint64(got.Data); n != workers*perWorker {
		t.Errorf("counter = %d, want %d", n, workers*perWorker)
	}
	if got.Rev != workers*perWorker+1 {
		t.Errorf("counter Rev = %d, want %d", got.Rev, workers*perWorker+1)
	}
}

func testConcurrentFailures(t *testing.T, s storage.Store) {
	const workers, perWorker = 16, 12
	ctx := t.Context()
	var wg sync.WaitGroup
	type outcome struct {
		id   string
		fail bool
		err  error
	}
	results := make(chan outcome, workers*perWorker)
	for w := range workers {
		wg.Go(func() {
			for i := range perWorker {
				id := fmt.Sprintf("w%02d-%02d", w, i)
				fail := (w+i)%3 == 0
				err := s.Update(ctx, func(tx storage.Tx) error {
					if err := tx.Insert(ctx, newRecord(kindA, scope1, id)); err != nil {
						return err
					}
					if fail {
						return errTest
					}
					return nil
				})
				results <- outcome{id, fail, err}
			}
		})
	}
	waitGroup(t, &wg)
	close(results)
	wantIDs := []string{}
	for res := range results {
		switch {
		case res.fail && res.err != errTest: //nolint:errorlint // unchanged
			t.Errorf("Update(%s, fn fails) = %v, want errTest", res.id, res.err)
		case !res.fail && res.err != nil:
			t.Errorf("Update(%s) = %v, want nil", res.id, res.err)
		case !res.fail:
			wantIDs = append(wantIDs, res.id)
		}
	}
	slices.Sort(wantIDs)
	if err := s.View(ctx, func(rd storage.Reader) error {
		recs, err := rd.List(ctx, kindA, scope1, storage.ListOptions{})
		if err != nil {
			return err
		}
		if got := ids(recs); !slices.Equal(got, wantIDs) {
			t.Errorf("List after concurrent batch = %d records %q, want %d records %q", len(got), got, len(wantIDs), wantIDs)
		}
		return nil
	}); err != nil {
		t.Errorf("View = %v, want nil", err)
	}
}

// testStaleRevOutsideTx reads outside the transaction and writes inside it:
// a stale read must surface as ErrConflict and never as a lost update.
func testStaleRevOutsideTx(t *testing.T, s storage.Store) {
	ctx := t.Context()
	mustInsert(t, s, newRecord(kindA, scope1, "shared"))
	first := mustGet(t, s, kindA, scope1, "shared")
	second := mustGet(t, s, kindA, scope1, "shared")
	first.Data = []byte("first")
	if err := s.Update(ctx, func(tx storage.Tx) error { return tx.Update(ctx, first) }); err != nil {
		t.Fatalf("Update(first) = %v, want nil", err)
	}
	second.Data = []byte("second")
	err := s.Update(ctx, func(tx storage.Tx) error { return tx.Update(ctx, clone(second)) })
	if !errors.Is(err, storage.ErrConflict) {
		t.Errorf("Update(stale second) = %v, want ErrConflict", err)
	}
	if got := mustGet(t, s, kindA, scope1, "shared"); string(got.Data) != "first" || got.Rev != 2 {
		t.Errorf("Get(shared) = Data %q Rev %d, want \"first\" Rev 2", got.Data, got.Rev)
	}
	// A fn that re-reads on retry succeeds.
	err = s.Update(ctx, func(tx storage.Tx) error {
		cur, err := tx.Get(ctx, kindA, scope1, "shared")
		if err != nil {
			return err
		}
		cur.Data = []byte("third")
		return tx.Update(ctx, cur)
	})
	if err != nil {
		t.Errorf("Update(re-read) = %v, want nil", err)
	}
}

func testContext(t *testing.T, s storage.Store) {
	mustInsert(t, s, newRecord(kindA, scope1, "exists"))
	canceled, cancel := context.WithCancel(t.Context())
	cancel()

	within(t, "Update(canceled ctx)", func() {
		called := false
		err := s.Update(canceled, func(tx storage.Tx) error {
			called = true
			return tx.Insert(canceled, newRecord(kindA, scope1, "canceled"))
		})
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Update(canceled ctx) = %v, want context.Canceled (fn called: %v)", err, called)
		}
	})
	wantNotFound(t, s, kindA, scope1, "canceled")

	within(t, "View(canceled ctx)", func() {
		err := s.View(canceled, func(rd storage.Reader) error {
			_, err := rd.Get(canceled, kindA, scope1, "exists")
			return err
		})
		if !errors.Is(err, context.Canceled) {
			t.Errorf("View(canceled ctx) = %v, want context.Canceled", err)
		}
	})
	within(t, "Get(canceled ctx)", func() {
		if _, err := s.Get(canceled, kindA, scope1, "exists"); !errors.Is(err, context.Canceled) {
			t.Errorf("Get(canceled ctx) = %v, want context.Canceled", err)
		}
	})

	// Canceled while fn runs: the tx refuses work, and nothing commits.
	within(t, "Update(ctx canceled inside fn)", func() {
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		err := s.Update(ctx, func(tx storage.Tx) error {
			if err := tx.Insert(ctx, newRecord(kindA, scope1, "half")); err != nil {
				return err
			}
			cancel()
			_, err := tx.Get(ctx, kindA, scope1, "exists")
			if err == nil {
				return errors.New("Get with a canceled ctx inside fn = nil error, want an error")
			}
			return err
		})
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Update(ctx canceled inside fn) = %v, want context.Canceled", err)
		}
	})
	wantNotFound(t, s, kindA, scope1, "half")

	// Deadline in the past.
	within(t, "Update(expired deadline)", func() {
		ctx, cancel := context.WithDeadline(t.Context(), time.Unix(1, 0))
		defer cancel()
		err := s.Update(ctx, func(tx storage.Tx) error { return tx.Insert(ctx, newRecord(kindA, scope1, "late")) })
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Update(expired deadline) = %v, want context.DeadlineExceeded", err)
		}
	})
	wantNotFound(t, s, kindA, scope1, "late")

	// The store still works.
	mustInsert(t, s, newRecord(kindA, scope1, "after-cancel"))
}

func testClose(t *testing.T, s storage.Store) {
	ctx := t.Context()
	mustInsert(t, s, newRecord(kindA, scope1, "x"))
	if err := s.Close(); err != nil {
		t.Fatalf("Close() = %v, want nil", err)
	}
	checks := []struct {
		name string
		call func() error
	}{
		{"Update", func() error { return s.Update(ctx, func(storage.Tx) error { return nil }) }},
		{"View", func() error { return s.View(ctx, func(storage.Reader) error { return nil }) }},
		{"Get", func() error { _, err := s.Get(ctx, kindA, scope1, "x"); return err }},
		{"Ping", func() error { return s.Ping(ctx) }},
		{"Close", s.Close},
	}
	for _, c := range checks {
		within(t, c.name+" after Close", func() {
			if err := c.call(); !errors.Is(err, storage.ErrClosed) {
				t.Errorf("%s after Close = %v, want ErrClosed", c.name, err)
			}
		})
	}
}

func testPing(t *testing.T, s storage.Store) {
	if err := s.Ping(t.Context()); err != nil {
		t.Errorf("Ping() = %v, want nil", err)
	}
}

// within runs fn and fails the test if it does not return in time.
func within(t *testing.T, what string, fn func()) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn()
	}()
	select {
	case <-done:
	case <-time.After(timeout):
		t.Fatalf("%s did not return within %v", what, timeout)
	}
}

// waitGroup waits for wg, failing the test if it takes too long.
func waitGroup(t *testing.T, wg *sync.WaitGroup) {
	t.Helper()
	within(t, "workers", wg.Wait)
}

// recorder collects what a subscriber hears, without the "anything may have
// changed" calls (kind "") a shared store makes when it starts listening.
type recorder struct {
	mu  sync.Mutex
	got []string
}

func (r *recorder) heard(kind storage.Kind, scope storage.Scope, id string) {
	if kind == "" {
		return
	}
	r.mu.Lock()
	r.got = append(r.got, string(kind)+"/"+scope.Account+"/"+scope.Region+"/"+id)
	r.mu.Unlock()
}

func (r *recorder) take() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	got := strings.Join(r.got, ",")
	r.got = nil
	return got
}

// testChangeNotifier: a store that notifies tells its subscribers about
// each record its own commits write before the committing Update returns,
// nothing about a rolled-back fn, and Sync returns (ErrClosed once closed).
func testChangeNotifier(t *testing.T, s storage.Store) {
	n, ok := s.(storage.ChangeNotifier)
	if !ok {
		t.Skipf("%T does not implement storage.ChangeNotifier", s)
	}
	ctx := t.Context()
	var rec recorder
	n.Subscribe(rec.heard)
	err := s.Update(ctx, func(tx storage.Tx) error {
		r := newRecord(kindA, scope1, "a")
		if err := tx.Insert(ctx, r); err != nil {
			return err
		}
		r.Data = []byte("2")
		if err := tx.Update(ctx, r); err != nil {
			return err
		}
		return tx.Insert(ctx, newRecord(kindB, scope3, "b"))
	})
	if err != nil {
		t.Fatal(err)
	}
	want := "test.a/111111111111/us-east-1/a,test.a/111111111111/us-east-1/a,test.b/111111111111/eu-west-1/b"
	if got := rec.take(); got != want {
		t.Errorf("heard after insert, update, insert = %q, want %q", got, want)
	}
	failed := errors.New("boom")
	err = s.Update(ctx, func(tx storage.Tx) error {
		if err := tx.Delete(ctx, kindA, scope1, "a"); err != nil {
			return err
		}
		return failed
	})
	if !errors.Is(err, failed) {
		t.Fatalf("Update = %v, want %v", err, failed)
	}
	if err := n.Sync(ctx); err != nil {
		t.Fatalf("Sync = %v", err)
	}
	if got := rec.take(); got != "" {
		t.Errorf("a rolled-back fn was heard: %q", got)
	}
	if err := s.Update(ctx, func(tx storage.Tx) error { return tx.Delete(ctx, kindA, scope1, "a") }); err != nil {
		t.Fatal(err)
	}
	if got, want := rec.take(), "test.a/111111111111/us-east-1/a"; got != want {
		t.Errorf("heard after delete = %q, want %q", got, want)
	}
	if err := s.Update(ctx, func(tx storage.Tx) error { _, err := tx.Get(ctx, kindB, scope3, "b"); return err }); err != nil {
		t.Fatal(err)
	}
	if got := rec.take(); got != "" {
		t.Errorf("an Update that wrote nothing was heard: %q", got)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := n.Sync(ctx); !errors.Is(err, storage.ErrClosed) {
		t.Errorf("Sync after Close = %v, want ErrClosed", err)
	}
}
