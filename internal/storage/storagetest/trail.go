package storagetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/keyfort/keyfort/internal/storage"
)

// trailOf returns s's Trail; every backend keeps the audit trail.
func trailOf(t *testing.T, s storage.Store) storage.Trail {
	t.Helper()
	tr, ok := s.(storage.Trail)
	if !ok {
		t.Fatalf("%T does not implement storage.Trail", s)
	}
	return tr
}

func event(id string, tm int64) *storage.EventRecord {
	return &storage.EventRecord{
		ID: id, Time: tm, Account: scope1.Account, Region: scope1.Region,
		Source: "kms.amazonaws.com", Name: "CreateKey", Username: "alice", AccessKeyID: "AKIAEXAMPLE",
		Resources: []storage.EventResource{{Type: "AWS::KMS::Key", Name: "arn:aws:kms:us-east-1:111111111111:key/" + id}},
		Node:      "node-1", Complete: true, JSON: []byte(`{"eventID":"` + id + `"}`),
	}
}

// lookupIDs returns the ids LookupEvents answers for q.
func lookupIDs(t *testing.T, tr storage.Trail, q storage.EventQuery) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	evs, err := tr.LookupEvents(ctx, q)
	if err != nil {
		t.Fatalf("LookupEvents(%+v): %v", q, err)
	}
	out := make([]string, len(evs))
	for i, e := range evs {
		out[i] = e.ID
	}
	return out
}

func allOf(q storage.EventQuery) storage.EventQuery {
	q.Account, q.Region = scope1.Account, scope1.Region
	if q.To == 0 {
		q.To = 1 << 62
	}
	if q.Limit == 0 {
		q.Limit = 100
	}
	return q
}

func testTrailAppend(t *testing.T, s storage.Store) {
	tr := trailOf(t, s)
	ctx := context.Background()
	// An event appended in a transaction that fails is not kept.
	boom := errors.New("boom")
	err := s.Update(ctx, func(tx storage.Tx) error {
		if err := tx.Insert(ctx, newRecord(kindA, scope1, "r1")); err != nil {
			return err
		}
		if err := tx.AppendEvent(ctx, event("e-failed", 10)); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("Update = %v, want boom", err)
	}
	if got := lookupIDs(t, tr, allOf(storage.EventQuery{})); len(got) != 0 {
		t.Fatalf("events after a failed transaction = %v, want none", got)
	}
	wantNotFound(t, s, kindA, scope1, "r1")
	// Committed with the change; the same id again is ErrExists.
	if err := s.Update(ctx, func(tx storage.Tx) error {
		if err := tx.Insert(ctx, newRecord(kindA, scope1, "r1")); err != nil {
			return err
		}
		return tx.AppendEvent(ctx, event("e1", 10))
	}); err != nil {
		t.Fatal(err)
	}
	mustGet(t, s, kindA, scope1, "r1")
	if got := lookupIDs(t, tr, allOf(storage.EventQuery{})); !slices.Equal(got, []string{"e1"}) {
		t.Fatalf("events = %v, want [e1]", got)
	}
	err = s.Update(ctx, func(tx storage.Tx) error { return tx.AppendEvent(ctx, event("e1", 11)) })
	if !errors.Is(err, storage.ErrExists) {
		t.Fatalf("AppendEvent of a taken id = %v, want ErrExists", err)
	}
	evs, err := tr.LookupEvents(ctx, allOf(storage.EventQuery{}))
	if err != nil || len(evs) != 1 {
		t.Fatalf("LookupEvents = %v, %v", evs, err)
	}
	want := event("e1", 10)
	got := evs[0]
	if got.Time != want.Time || got.Source != want.Source || got.Name != want.Name || got.Username != want.Username ||
		got.AccessKeyID != want.AccessKeyID || got.Node != want.Node || !got.Complete || got.ReadOnly ||
		string(got.JSON) != string(want.JSON) || !slices.Equal(got.Resources, want.Resources) {
		t.Fatalf("stored event = %+v, want %+v", got, want)
	}
}

func testTrailPending(t *testing.T, s storage.Store) {
	tr := trailOf(t, s)
	calls := 0
	p := &storage.PendingEvent{Record: func() *storage.EventRecord {
		calls++
		e := event("p1", 20)
		e.Complete = false
		e.Resources = append(e.Resources, storage.EventResource{Type: "call", Name: fmt.Sprint(calls)})
		return e
	}}
	ctx := storage.WithPendingEvent(context.Background(), p)
	boom := errors.New("boom")
	// A failed Update keeps nothing and leaves the event pending.
	if err := s.Update(ctx, func(tx storage.Tx) error { return boom }); !errors.Is(err, boom) {
		t.Fatalf("Update = %v", err)
	}
	if p.Committed() || len(lookupIDs(t, tr, allOf(storage.EventQuery{}))) != 0 {
		t.Fatal("a failed Update committed the pending event")
	}
	// An Update that writes nothing is not the request's change.
	if err := s.Update(ctx, func(tx storage.Tx) error {
		_, err := tx.Get(ctx, kindA, scope1, "absent")
		if errors.Is(err, storage.ErrNotFound) {
			return nil
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if p.Committed() || len(lookupIDs(t, tr, allOf(storage.EventQuery{}))) != 0 {
		t.Fatal("an Update that wrote nothing committed the pending event")
	}
	// Nor is work done for it without its event.
	if err := s.Update(storage.WithoutPendingEvent(ctx), func(tx storage.Tx) error {
		return tx.Insert(ctx, newRecord(kindB, scope1, "other"))
	}); err != nil {
		t.Fatal(err)
	}
	if p.Committed() || len(lookupIDs(t, tr, allOf(storage.EventQuery{}))) != 0 {
		t.Fatal("an Update without the pending event committed it")
	}
	// The first Update that writes and commits carries it; later ones do not.
	for i := range 2 {
		if err := s.Update(ctx, func(tx storage.Tx) error {
			return tx.Insert(ctx, newRecord(kindA, scope1, fmt.Sprint("p", i)))
		}); err != nil {
			t.Fatal(err)
		}
		if !p.Committed() {
			t.Fatal("Committed() = false after a committed Update")
		}
	}
	if got := lookupIDs(t, tr, allOf(storage.EventQuery{})); !slices.Equal(got, []string{"p1"}) {
		t.Fatalf("events = %v, want [p1] once", got)
	}
	inc, err := tr.IncompleteEvents(context.Background(), "node-1", storage.EventCursor{}, 10)
	if err != nil || len(inc) != 1 || inc[0].ID != "p1" {
		t.Fatalf("IncompleteEvents = %v, %v; want [p1]", inc, err)
	}
	// The event is made when the change commits, not when it was bound.
	if r := inc[0].Resources; len(r) != 2 || r[1].Type != "call" || r[1].Name == "0" {
		t.Fatalf("resources = %v: Record was not called in the transaction", r)
	}
}

func testTrailPut(t *testing.T, s storage.Store) {
	tr := trailOf(t, s)
	ctx := context.Background()
	inc := event("x1", 30)
	inc.Complete = false
	inc.JSON = []byte(`{"partial":true}`)
	if err := s.Update(ctx, func(tx storage.Tx) error { return tx.AppendEvent(ctx, inc) }); err != nil {
		t.Fatal(err)
	}
	full := event("x1", 30)
	full.JSON = []byte(`{"complete":true}`)
	other := event("x2", 31)
	if err := tr.PutEvents(ctx, []*storage.EventRecord{full, other}); err != nil {
		t.Fatal(err)
	}
	// A complete event is never replaced (PutEvents may be retried).
	again := event("x1", 30)
	again.JSON = []byte(`{"again":true}`)
	if err := tr.PutEvents(ctx, []*storage.EventRecord{again}); err != nil {
		t.Fatal(err)
	}
	evs, err := tr.LookupEvents(ctx, allOf(storage.EventQuery{}))
	if err != nil || len(evs) != 2 {
		t.Fatalf("LookupEvents = %v, %v", evs, err)
	}
	if evs[0].ID != "x2" || evs[1].ID != "x1" || string(evs[1].JSON) != `{"complete":true}` || !evs[1].Complete {
		t.Fatalf("events = %+v %+v", evs[0], evs[1])
	}
	if left, err := tr.IncompleteEvents(ctx, "node-1", storage.EventCursor{}, 10); err != nil || len(left) != 0 {
		t.Fatalf("IncompleteEvents = %v, %v; want none", left, err)
	}
	// One id twice in a batch (an event's line written twice): stored once,
	// complete whichever comes first.
	for _, order := range []string{"complete-first", "incomplete-first"} {
		id := "dup-" + order
		c, i := event(id, 40), event(id, 40)
		c.JSON, i.JSON, i.Complete = []byte(`{"complete":true}`), []byte(`{"partial":true}`), false
		batch := []*storage.EventRecord{c, i}
		if order == "incomplete-first" {
			batch = []*storage.EventRecord{i, c}
		}
		if err := tr.PutEvents(ctx, batch); err != nil {
			t.Fatalf("PutEvents(%s) = %v", order, err)
		}
		evs, err := tr.LookupEvents(ctx, allOf(storage.EventQuery{}))
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, e := range evs {
			if e.ID == id {
				n++
				if !e.Complete || string(e.JSON) != `{"complete":true}` {
					t.Errorf("%s: stored %+v, want the complete event", order, e)
				}
			}
		}
		if n != 1 {
			t.Errorf("%s: %d events stored, want 1", order, n)
		}
	}
}

func testTrailLookup(t *testing.T, s storage.Store) {
	tr := trailOf(t, s)
	ctx := context.Background()
	var evs []*storage.EventRecord
	for i := range 6 {
		e := event(fmt.Sprintf("l%d", i), int64(100+i/2)) // two events per time
		switch i {
		case 1:
			e.Name, e.ReadOnly, e.Source = "Encrypt", true, "kms.amazonaws.com"
		case 2:
			e.Source, e.Name, e.Username, e.AccessKeyID = "secretsmanager.amazonaws.com", "CreateSecret", "bob", "AKIABOB"
			e.Resources = []storage.EventResource{{Type: "AWS::SecretsManager::Secret", Name: "arn:secret:a"}}
		case 3:
			e.Resources = append(e.Resources, storage.EventResource{Type: "AWS::KMS::Alias", Name: "alias/x"})
		case 4:
			e.Region = scope3.Region
		case 5:
			e.Account = scope2.Account
		}
		evs = append(evs, e)
	}
	if err := tr.PutEvents(ctx, evs); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		q    storage.EventQuery
		want []string
	}{
		{"all of the account and region, newest first", storage.EventQuery{}, []string{"l3", "l2", "l1", "l0"}},
		{"EventId", storage.EventQuery{Attribute: storage.AttrEventID, Value: "l2"}, []string{"l2"}},
		{"EventName", storage.EventQuery{Attribute: storage.AttrEventName, Value: "CreateKey"}, []string{"l3", "l0"}},
		{"ReadOnly true", storage.EventQuery{Attribute: storage.AttrReadOnly, Value: "true"}, []string{"l1"}},
		{"ReadOnly false", storage.EventQuery{Attribute: storage.AttrReadOnly, Value: "false"}, []string{"l3", "l2", "l0"}},
		{"Username", storage.EventQuery{Attribute: storage.AttrUsername, Value: "bob"}, []string{"l2"}},
		{"EventSource", storage.EventQuery{Attribute: storage.AttrEventSource, Value: "secretsmanager.amazonaws.com"}, []string{"l2"}},
		{"AccessKeyId", storage.EventQuery{Attribute: storage.AttrAccessKeyID, Value: "AKIAEXAMPLE"}, []string{"l3", "l1", "l0"}},
		{"ResourceType", storage.EventQuery{Attribute: storage.AttrResourceType, Value: "AWS::KMS::Alias"}, []string{"l3"}},
		{"ResourceType is whole", storage.EventQuery{Attribute: storage.AttrResourceType, Value: "AWS::KMS"}, nil},
		{"ResourceName", storage.EventQuery{Attribute: storage.AttrResourceName, Value: "arn:secret:a"}, []string{"l2"}},
		{"ResourceName is whole", storage.EventQuery{Attribute: storage.AttrResourceName, Value: "arn:secret"}, nil},
		{"ResourceName of the second resource", storage.EventQuery{Attribute: storage.AttrResourceName, Value: "alias/x"}, []string{"l3"}},
		{"time range inclusive", storage.EventQuery{From: 100, To: 100}, []string{"l1", "l0"}},
		{"from", storage.EventQuery{From: 101}, []string{"l3", "l2"}},
		{"limit", storage.EventQuery{Limit: 3}, []string{"l3", "l2", "l1"}},
		{"after a cursor at a tied time", storage.EventQuery{Before: storage.EventCursor{Time: 101, ID: "l3"}}, []string{"l2", "l1", "l0"}},
		{"after a cursor", storage.EventQuery{Before: storage.EventCursor{Time: 101, ID: "l2"}, Limit: 1}, []string{"l1"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := lookupIDs(t, tr, allOf(tc.q)); !slices.Equal(got, tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
		})
	}
	q := allOf(storage.EventQuery{})
	q.Region = scope3.Region
	if got := lookupIDs(t, tr, q); !slices.Equal(got, []string{"l4"}) {
		t.Fatalf("other region: %v, want [l4]", got)
	}
	if _, err := tr.LookupEvents(ctx, allOf(storage.EventQuery{Attribute: "Nope", Value: "x"})); err == nil {
		t.Fatal("unknown attribute: no error")
	}
}

func testTrailIncompletePrune(t *testing.T, s storage.Store) {
	tr := trailOf(t, s)
	ctx := context.Background()
	for i := range 3 {
		e := event(fmt.Sprintf("i%d", i), int64(200+i))
		e.Complete = false
		if i == 2 {
			e.Node = "node-2"
		}
		if err := s.Update(ctx, func(tx storage.Tx) error { return tx.AppendEvent(ctx, e) }); err != nil {
			t.Fatal(err)
		}
	}
	inc, err := tr.IncompleteEvents(ctx, "node-1", storage.EventCursor{}, 10)
	if err != nil || len(inc) != 2 || inc[0].ID != "i0" || inc[1].ID != "i1" {
		t.Fatalf("IncompleteEvents(node-1) = %v, %v; want i0, i1", inc, err)
	}
	if inc, _ := tr.IncompleteEvents(ctx, "node-1", storage.EventCursor{}, 1); len(inc) != 1 || inc[0].ID != "i0" {
		t.Fatalf("limit 1: %v", inc)
	}
	if inc, _ := tr.IncompleteEvents(ctx, "node-1", storage.EventCursor{Time: 200, ID: "i0"}, 10); len(inc) != 1 || inc[0].ID != "i1" {
		t.Fatalf("after i0: %v, want [i1]", inc)
	}
	n, err := tr.PruneEvents(ctx, 202)
	if err != nil || n != 2 {
		t.Fatalf("PruneEvents = %d, %v; want 2", n, err)
	}
	if got := lookupIDs(t, tr, allOf(storage.EventQuery{})); !slices.Equal(got, []string{"i2"}) {
		t.Fatalf("after prune: %v, want [i2]", got)
	}
}

// testExport checks storage.Exporter on View's Reader: every kind with its
// count, and every event (incomplete ones too) in ID order, field for field.
func testExport(t *testing.T, s storage.Store) {
	ctx := t.Context()
	exporter := func(r storage.Reader) storage.Exporter {
		ex, ok := r.(storage.Exporter)
		if !ok {
			t.Fatalf("View's Reader %T does not implement storage.Exporter", r)
		}
		return ex
	}
	if err := s.View(ctx, func(r storage.Reader) error {
		kinds, err := exporter(r).Kinds(ctx)
		if err != nil || len(kinds) != 0 {
			t.Errorf("Kinds of an empty store = %v, %v; want none", kinds, err)
		}
		if n, err := exporter(r).CountEvents(ctx); err != nil || n != 0 {
			t.Errorf("CountEvents of an empty store = %d, %v; want 0", n, err)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}

	var recs []*storage.Record
	for i, sc := range []storage.Scope{scope1, scope2, scope3} {
		for j := range i + 1 {
			recs = append(recs, newRecord(kindB, sc, fmt.Sprint("b", j)))
		}
	}
	recs = append(recs, newRecord(kindA, scope1, "a"), &storage.Record{Kind: "z.other", ID: "marker"})
	mustInsert(t, s, recs...)
	var events []*storage.EventRecord
	for i := range 7 {
		e := event(fmt.Sprintf("ev-%02d", 6-i), int64(100+i))
		e.Complete = i%3 != 0
		e.ReadOnly = i%2 == 0
		e.Resources = append(e.Resources, storage.EventResource{Type: "AWS::KMS::Alias", Name: fmt.Sprint("alias/", i)})
		events = append(events, e)
	}
	if err := s.Update(ctx, func(tx storage.Tx) error {
		for _, e := range events {
			if err := tx.AppendEvent(ctx, e); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	slices.SortFunc(events, func(a, b *storage.EventRecord) int { return strings.Compare(a.ID, b.ID) })

	wantKinds := []storage.KindCount{{Kind: kindA, Records: 1}, {Kind: kindB, Records: 6}, {Kind: "z.other", Records: 1}}
	if err := s.View(ctx, func(r storage.Reader) error {
		ex := exporter(r)
		kinds, err := ex.Kinds(ctx)
		if err != nil || !slices.Equal(kinds, wantKinds) {
			t.Errorf("Kinds = %v, %v; want %v", kinds, err, wantKinds)
		}
		if n, err := ex.CountEvents(ctx); err != nil || n != len(events) {
			t.Errorf("CountEvents = %d, %v; want %d", n, err, len(events))
		}
		for _, limit := range []int{0, 1, 3, 7} {
			var got []*storage.EventRecord
			for after := ""; ; {
				page, err := ex.ScanEvents(ctx, after, limit)
				if err != nil {
					t.Fatalf("ScanEvents(%q, %d) = %v", after, limit, err)
				}
				got = append(got, page...)
				if limit == 0 || len(page) < limit || len(got) > len(events) {
					break
				}
				after = page[len(page)-1].ID
			}
			if !slices.EqualFunc(got, events, func(a, b *storage.EventRecord) bool {
				return fmt.Sprintf("%+v", *a) == fmt.Sprintf("%+v", *b)
			}) {
				t.Errorf("ScanEvents by %d:\n%s\nwant\n%s", limit, dumpEvents(got), dumpEvents(events))
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}

func dumpEvents(evs []*storage.EventRecord) string {
	var b strings.Builder
	for _, e := range evs {
		fmt.Fprintf(&b, "%+v\n", *e)
	}
	return b.String()
}

// testBulkWriter checks InsertAll, on stores whose Tx has it: what it
// writes reads back as Insert and AppendEvent would have written it, and a
// taken identity is ErrExists (the Update then commits nothing).
func testBulkWriter(t *testing.T, s storage.Store) {
	ctx := t.Context()
	var (
		bulk  bool
		mu    sync.Mutex
		heard []string
	)
	if cn, ok := s.(storage.ChangeNotifier); ok {
		cn.Subscribe(func(kind storage.Kind, scope storage.Scope, id string) {
			if kind == "" {
				return // anything may have changed (a listener connected)
			}
			mu.Lock()
			heard = append(heard, id)
			mu.Unlock()
		})
	}
	a := newRecord(kindA, scope1, "a")
	b := newRecord(kindB, scope2, "b")
	b.Data, b.Sealed, b.Parent, b.Due = nil, []byte{}, "a", 42
	evs := []*storage.EventRecord{event("e1", 10), event("e2", 11)}
	evs[1].Complete = false
	err := s.Update(ctx, func(tx storage.Tx) error {
		bw, ok := tx.(storage.BulkWriter)
		if !ok {
			return nil
		}
		bulk = true
		return bw.InsertAll(ctx, []*storage.Record{clone(a), clone(b)}, evs)
	})
	if err != nil {
		t.Fatalf("InsertAll = %v", err)
	}
	if !bulk {
		t.Skipf("%T's Tx does not implement storage.BulkWriter", s)
	}
	for _, want := range []*storage.Record{a, b} {
		want.Rev = 1
		if d := diff(mustGet(t, s, want.Kind, want.Scope, want.ID), want); d != "" {
			t.Errorf("record %s after InsertAll: %s", want.ID, d)
		}
	}
	if _, ok := s.(storage.ChangeNotifier); ok {
		mu.Lock()
		got := slices.Sorted(slices.Values(heard))
		mu.Unlock()
		if !slices.Equal(got, []string{"a", "b"}) {
			t.Errorf("subscribers heard %v of InsertAll, want [a b]", got)
		}
	}
	if got := lookupIDs(t, trailOf(t, s), allOf(storage.EventQuery{})); !slices.Equal(got, []string{"e2", "e1"}) {
		t.Errorf("events after InsertAll = %v, want [e2 e1]", got)
	}
	c := newRecord(kindA, scope1, "c")
	err = s.Update(ctx, func(tx storage.Tx) error {
		return tx.(storage.BulkWriter).InsertAll(ctx, []*storage.Record{clone(c), clone(a)}, nil)
	})
	if !errors.Is(err, storage.ErrExists) {
		t.Errorf("InsertAll of a taken identity = %v, want ErrExists", err)
	}
	wantNotFound(t, s, kindA, scope1, "c")
	err = s.Update(ctx, func(tx storage.Tx) error {
		return tx.(storage.BulkWriter).InsertAll(ctx, []*storage.Record{clone(c)}, []*storage.EventRecord{event("e1", 12)})
	})
	if !errors.Is(err, storage.ErrExists) {
		t.Errorf("InsertAll of a taken event id = %v, want ErrExists", err)
	}
	wantNotFound(t, s, kindA, scope1, "c")
}
