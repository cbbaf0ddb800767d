package listindex_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keyfort/keyfort/internal/listindex"
	"github.com/keyfort/keyfort/internal/storage"
	"github.com/keyfort/keyfort/internal/storage/sqlite"
)

var (
	scope = storage.Scope{Account: "111111111111", Region: "us-east-1"}
	other = storage.Scope{Account: "111111111111", Region: "eu-west-1"}
)

const (
	kindA     storage.Kind = "test.a"
	kindOther storage.Kind = "test.other"
)

var errInjected = errors.New("injected")

// store is a SQLite store that counts the index's reads, can run a hook
// after a read (between the index's read and its use of it), can fail a
// read, and can hold back its change notifications (mute) or send kind ""
// (lose).
type store struct {
	*sqlite.Store
	lists, gets        atomic.Int64
	failGet, failList  atomic.Bool
	afterGet, afterRun func() // run once, by the next Get / View
	muted              atomic.Bool

	mu   sync.Mutex
	subs []func(storage.Kind, storage.Scope, string)
}

func open(t *testing.T) *store {
	t.Helper()
	s, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return &store{Store: s}
}

func (s *store) Subscribe(fn func(storage.Kind, storage.Scope, string)) {
	s.mu.Lock()
	s.subs = append(s.subs, fn)
	s.mu.Unlock()
	s.Store.Subscribe(func(k storage.Kind, sc storage.Scope, id string) {
		if !s.muted.Load() {
			fn(k, sc, id)
		}
	})
}

// lose tells the subscribers that anything may have changed, as a store
// does after losing notifications.
func (s *store) lose() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, fn := range s.subs {
		fn("", storage.Scope{}, "")
	}
}

func (s *store) Get(ctx context.Context, kind storage.Kind, sc storage.Scope, id string) (*storage.Record, error) {
	s.gets.Add(1)
	if s.failGet.CompareAndSwap(true, false) {
		return nil, errInjected
	}
	rec, err := s.Store.Get(ctx, kind, sc, id)
	if f := s.afterGet; f != nil {
		s.afterGet = nil
		f()
	}
	return rec, err
}

func (s *store) View(ctx context.Context, fn func(storage.Reader) error) error {
	err := s.Store.View(ctx, func(r storage.Reader) error { return fn(reader{r, s}) })
	if f := s.afterRun; f != nil {
		s.afterRun = nil
		f()
	}
	return err
}

type reader struct {
	storage.Reader
	s *store
}

func (r reader) List(ctx context.Context, kind storage.Kind, sc storage.Scope, opts storage.ListOptions) ([]*storage.Record, error) {
	r.s.lists.Add(1)
	if r.s.failList.CompareAndSwap(true, false) {
		return nil, errInjected
	}
	return r.Reader.List(ctx, kind, sc, opts)
}

// hidden is the store without its storage.ChangeNotifier.
type hidden struct{ storage.Store }

// write commits the given changes in one Update: id=value puts, id= deletes.
func write(t testing.TB, s storage.Store, sc storage.Scope, kind storage.Kind, changes ...string) {
	t.Helper()
	ctx := context.Background()
	err := s.Update(ctx, func(tx storage.Tx) error {
		for _, c := range changes {
			id, val, _ := strings.Cut(c, "=")
			rec, err := tx.Get(ctx, kind, sc, id)
			switch {
			case errors.Is(err, storage.ErrNotFound) && val == "":
				err = nil // nothing to delete
			case errors.Is(err, storage.ErrNotFound):
				err = tx.Insert(ctx, &storage.Record{Kind: kind, Scope: sc, ID: id, Data: []byte(val)})
			case err != nil:
			case val == "":
				err = tx.Delete(ctx, kind, sc, id)
			default:
				rec.Data = []byte(val)
				err = tx.Update(ctx, rec)
			}
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("write %v: %v", changes, err)
	}
}

// entry is the tests' decoded record.
type entry struct{ id, val string }

func newIndex(s storage.Store, maxIndexed, maxDirty int) *listindex.Index[entry] {
	return listindex.New(listindex.Config[entry]{
		Store: s,
		Kind:  kindA,
		Decode: func(_ storage.Scope, rec *storage.Record) (entry, error) {
			if string(rec.Data) == "bad" {
				return entry{}, errors.New("bad record")
			}
			return entry{rec.ID, string(rec.Data)}, nil
		},
		MaxIndexed: maxIndexed,
		MaxDirty:   maxDirty,
	})
}

// snapshot returns the list of sc as "id=value" in id order (nil, false
// when the scope is not indexed).
func snapshot(t testing.TB, ix *listindex.Index[entry], sc storage.Scope) ([]string, bool) {
	t.Helper()
	var got []string
	ok, err := ix.Read(context.Background(), sc, nil, func(v listindex.View[entry]) {
		ids, es := v.IDs(), v.Entries()
		got = make([]string, 0, len(ids))
		for i, id := range ids {
			if es[i].id != id {
				t.Errorf("entry %d is %q's, at id %q", i, es[i].id, id)
			}
			got = append(got, id+"="+es[i].val)
		}
	})
	if err != nil {
		t.Fatalf("Read: %v", err)
	}
	return got, ok
}

func expect(t *testing.T, ix *listindex.Index[entry], sc storage.Scope, want ...string) {
	t.Helper()
	got, ok := snapshot(t, ix, sc)
	if !ok {
		t.Fatalf("Read(%v): not indexed", sc)
	}
	if !slices.Equal(got, want) && (len(got) != 0 || len(want) != 0) {
		t.Fatalf("Read(%v) = %q, want %q", sc, got, want)
	}
}

func TestPageRereadsOnlyDirtyRecords(t *testing.T) {
	s := open(t)
	ix := newIndex(s, 0, 0)
	write(t, s, scope, kindA, "a=1", "b=1", "c=1", "d=1")
	expect(t, ix, scope, "a=1", "b=1", "c=1", "d=1")
	lists, gets := s.lists.Load(), s.gets.Load()

	write(t, s, scope, kindA, "b=2", "c=", "e=1")
	write(t, s, scope, kindOther, "b=x")   // another kind
	write(t, s, other, kindA, "a=x", "b=") // another scope
	expect(t, ix, scope, "a=1", "b=2", "d=1", "e=1")
	if n := s.lists.Load() - lists; n != 0 {
		t.Errorf("the page listed the store %d times, want 0 (only dirty records re-read)", n)
	}
	if n := s.gets.Load() - gets; n != 3 {
		t.Errorf("the page read %d records, want 3 (b, c and e)", n)
	}
	expect(t, ix, other, "a=x")
}

func TestReloadOnKindEmpty(t *testing.T) {
	s := open(t)
	ix := newIndex(s, 0, 0)
	write(t, s, scope, kindA, "a=1", "b=1")
	expect(t, ix, scope, "a=1", "b=1")
	expect(t, ix, other)

	s.muted.Store(true) // changes the index does not hear one by one
	write(t, s, scope, kindA, "a=", "b=2", "c=1")
	write(t, s, other, kindA, "z=1")
	s.muted.Store(false)
	expect(t, ix, scope, "a=1", "b=1") // nothing heard: nothing read

	s.lose()
	if !ix.Reloading(scope) || !ix.Reloading(other) {
		t.Fatal("after kind \"\" the lists are not marked for reload")
	}
	expect(t, ix, scope, "b=2", "c=1")
	expect(t, ix, other, "z=1")
}

func TestReloadPastMaxDirty(t *testing.T) {
	s := open(t)
	ix := newIndex(s, 0, 3)
	write(t, s, scope, kindA, "a=1", "b=1")
	expect(t, ix, scope, "a=1", "b=1")
	lists, gets := s.lists.Load(), s.gets.Load()

	write(t, s, scope, kindA, "a=2", "b=", "c=1", "d=1", "e=1")
	if !ix.Reloading(scope) {
		t.Fatal("after 5 changes (MaxDirty 3) the list is not marked for reload")
	}
	expect(t, ix, scope, "a=2", "c=1", "d=1", "e=1")
	if s.lists.Load() == lists || s.gets.Load() != gets {
		t.Errorf("the page listed %d times and read %d records, want a reload and no record read",
			s.lists.Load()-lists, s.gets.Load()-gets)
	}
	write(t, s, scope, kindA, "c=2", "f=1") // back under the bound: re-read one by one
	if ix.Reloading(scope) {
		t.Fatal("2 changes mark the list for reload")
	}
	expect(t, ix, scope, "a=2", "c=2", "d=1", "e=1", "f=1")
}

// TestChangeDuringLoadNotLost commits a change after a load read the
// store and before it is applied: the next page must show it.
func TestChangeDuringLoadNotLost(t *testing.T) {
	s := open(t)
	ix := newIndex(s, 0, 0)
	write(t, s, scope, kindA, "a=1", "b=1")
	s.afterRun = func() { write(t, s, scope, kindA, "a=2", "c=1") }
	if _, ok := snapshot(t, ix, scope); !ok {
		t.Fatal("not indexed")
	}
	expect(t, ix, scope, "a=2", "b=1", "c=1")

	// The same during a reload.
	s.lose()
	s.afterRun = func() { write(t, s, scope, kindA, "b=") }
	snapshot(t, ix, scope)
	expect(t, ix, scope, "a=2", "c=1")
}

// TestChangeDuringRereadNotLost commits a change after a page re-read a
// dirty record and before it applied it.
func TestChangeDuringRereadNotLost(t *testing.T) {
	s := open(t)
	ix := newIndex(s, 0, 0)
	write(t, s, scope, kindA, "a=1")
	expect(t, ix, scope, "a=1")
	write(t, s, scope, kindA, "a=2")
	s.afterGet = func() { write(t, s, scope, kindA, "a=3") }
	snapshot(t, ix, scope)
	expect(t, ix, scope, "a=3")
}

// TestOlderReadNeverWins starts a second page while the first holds an
// older read of the same record: refreshes are serialized, so the newer
// read is applied last.
func TestOlderReadNeverWins(t *testing.T) {
	s := open(t)
	ix := newIndex(s, 0, 0)
	write(t, s, scope, kindA, "a=1")
	expect(t, ix, scope, "a=1")
	write(t, s, scope, kindA, "a=2")
	var wg sync.WaitGroup
	s.afterGet = func() { // the first page has read a=2
		write(t, s, scope, kindA, "a=3")
		wg.Go(func() { snapshot(t, ix, scope) }) // must wait for the first
		time.Sleep(50 * time.Millisecond)
	}
	snapshot(t, ix, scope)
	wg.Wait()
	lists, gets := s.lists.Load(), s.gets.Load()
	expect(t, ix, scope, "a=3")
	if s.lists.Load() != lists || s.gets.Load() != gets {
		t.Fatal("the last page read the store: a=3 was left dirty, not applied by the second page")
	}
}

func TestTooBig(t *testing.T) {
	s := open(t)
	ix := newIndex(s, 3, 0)
	write(t, s, scope, kindA, "a=1", "b=1", "c=1")
	expect(t, ix, scope, "a=1", "b=1", "c=1")
	write(t, s, scope, kindA, "d=1")
	s.lose() // the bound is checked when the list is read whole
	called := false
	ok, err := ix.Read(t.Context(), scope, nil, func(listindex.View[entry]) { called = true })
	if err != nil || ok || called {
		t.Fatalf("Read of 4 records (MaxIndexed 3) = %v, %v (page called: %v), want false, nil, not called", ok, err, called)
	}
	lists := s.lists.Load()
	if ok, _ := ix.Read(t.Context(), scope, nil, func(listindex.View[entry]) { called = true }); ok || called || s.lists.Load() != lists {
		t.Fatal("a scope found too big is read again")
	}
	write(t, s, other, kindA, "a=1", "b=1", "c=1", "d=1", "e=1")
	if _, ok := snapshot(t, ix, other); ok {
		t.Fatal("a scope of 5 records (MaxIndexed 3) is indexed on its first page")
	}
}

func TestReadErrorsKeepChanges(t *testing.T) {
	s := open(t)
	ix := newIndex(s, 0, 0)
	write(t, s, scope, kindA, "a=1", "b=1")
	expect(t, ix, scope, "a=1", "b=1")

	write(t, s, scope, kindA, "a=2", "b=2")
	s.failGet.Store(true)
	if _, err := ix.Read(t.Context(), scope, nil, func(listindex.View[entry]) {}); !errors.Is(err, errInjected) {
		t.Fatalf("Read with a failing Get = %v, want the error", err)
	}
	expect(t, ix, scope, "a=2", "b=2")

	// A reload that fails is tried again on the next page.
	s.muted.Store(true)
	write(t, s, scope, kindA, "a=3")
	s.muted.Store(false)
	s.lose()
	s.failList.Store(true)
	if _, err := ix.Read(t.Context(), scope, nil, func(listindex.View[entry]) {}); !errors.Is(err, errInjected) {
		t.Fatalf("Read with a failing List = %v, want the error", err)
	}
	expect(t, ix, scope, "a=3", "b=2")

	// A record that does not decode fails the page until it is fixed.
	write(t, s, scope, kindA, "c=bad")
	if _, err := ix.Read(t.Context(), scope, nil, func(listindex.View[entry]) {}); err == nil {
		t.Fatal("Read of an undecodable record: no error")
	}
	write(t, s, scope, kindA, "c=ok")
	expect(t, ix, scope, "a=3", "b=2", "c=ok")
}

func TestWithoutNotifications(t *testing.T) {
	s := open(t)
	if ix := newIndex(hidden{s}, 0, 0); ix != nil {
		t.Fatal("New over a store without change notifications returned an index")
	}
	var ix *listindex.Index[entry]
	if ok, err := ix.Read(t.Context(), scope, nil, func(listindex.View[entry]) { t.Error("page called") }); ok || err != nil {
		t.Fatalf("nil Index: Read = %v, %v, want false, nil", ok, err)
	}
}

// sortedRef returns the entries of s in scope sorted by key, read from the
// store.
func sortedRef(t *testing.T, s storage.Store, key func(entry) string) []string {
	t.Helper()
	var recs []*storage.Record
	err := s.View(t.Context(), func(r storage.Reader) error {
		var err error
		recs, err = r.List(t.Context(), kindA, scope, storage.ListOptions{Limit: 10000})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, rec := range recs {
		keys = append(keys, key(entry{rec.ID, string(rec.Data)}))
	}
	slices.Sort(keys)
	return keys
}

// TestOrdersFollowChanges makes random changes and checks id order and two
// orders (one built from the start, one built late) against the store.
func TestOrdersFollowChanges(t *testing.T) {
	s := open(t)
	ix := newIndex(s, 0, 8)
	byVal := listindex.NewOrder(func(e entry) string { return e.val + "\x00" + e.id })
	byRev := listindex.NewOrder(func(e entry) string { return fmt.Sprintf("%08d\x00%s", 99999999-len(e.val)*1000, e.id) })
	rng := rand.New(rand.NewPCG(5, 6))
	for round := range 40 {
		var changes []string
		for range rng.IntN(12) {
			id := fmt.Sprintf("r%02d", rng.IntN(30))
			if rng.IntN(4) == 0 {
				changes = append(changes, id+"=")
			} else {
				changes = append(changes, fmt.Sprintf("%s=v%d", id, rng.IntN(1000)))
			}
		}
		write(t, s, scope, kindA, changes...)
		orders := []*listindex.Order[entry]{byVal}
		keys := []func(entry) string{func(e entry) string { return e.val + "\x00" + e.id }}
		if round >= 20 {
			orders = append(orders, byRev)
			keys = append(keys, func(e entry) string { return fmt.Sprintf("%08d\x00%s", 99999999-len(e.val)*1000, e.id) })
		}
		for i, o := range orders {
			var got []string
			ok, err := ix.Read(t.Context(), scope, o, func(v listindex.View[entry]) {
				for _, r := range v.Sorted(o) {
					if r.Key != keys[i](r.Entry) {
						t.Errorf("ranked key %q, entry %v", r.Key, r.Entry)
					}
					got = append(got, r.Key)
				}
			})
			if err != nil || !ok {
				t.Fatalf("Read: %v, %v", ok, err)
			}
			if want := sortedRef(t, s, keys[i]); !slices.Equal(got, want) {
				t.Fatalf("round %d, order %d: %q, want %q", round, i, got, want)
			}
		}
		want := sortedRef(t, s, func(e entry) string { return e.id + "=" + e.val })
		expect(t, ix, scope, want...)
	}
}

// TestConcurrentPagesSeeAnsweredWrites runs writers and readers at once
// (run with -race): after its write returned, a writer's next page shows it.
func TestConcurrentPagesSeeAnsweredWrites(t *testing.T) {
	s := open(t)
	ix := newIndex(s, 0, 16)
	byVal := listindex.NewOrder(func(e entry) string { return e.val + "\x00" + e.id })
	stop := make(chan struct{})
	var readers sync.WaitGroup
	for r := range 3 {
		readers.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				if r == 0 && i%20 == 0 {
					s.lose()
				}
				_, err := ix.Read(context.Background(), scope, byVal, func(v listindex.View[entry]) {
					if len(v.Sorted(byVal)) != len(v.IDs()) {
						t.Errorf("order has %d entries, list %d", len(v.Sorted(byVal)), len(v.IDs()))
					}
				})
				if err != nil {
					t.Errorf("Read: %v", err)
					return
				}
			}
		})
	}
	var writers sync.WaitGroup
	for w := range 4 {
		writers.Go(func() {
			for i := range 25 {
				id := fmt.Sprintf("w%d-%02d", w, i%10)
				val := fmt.Sprintf("v%d", i)
				if i%4 == 3 {
					val = ""
				}
				write(t, s, scope, kindA, id+"="+val)
				var found *entry
				_, err := ix.Read(context.Background(), scope, byVal, func(v listindex.View[entry]) {
					if j, ok := slices.BinarySearch(v.IDs(), id); ok {
						e := v.Entries()[j]
						found = &e
					}
				})
				if err != nil {
					t.Errorf("Read: %v", err)
					return
				}
				if (val == "") != (found == nil) || (found != nil && found.val != val) {
					t.Errorf("after writing %s=%s the page has %v", id, val, found)
					return
				}
			}
		})
	}
	writers.Wait()
	close(stop)
	readers.Wait()
	want := sortedRef(t, s, func(e entry) string { return e.id + "=" + e.val })
	expect(t, ix, scope, want...)
}
