package recordcache_test

import (
	"context"
	"errors"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/keyfort/keyfort/internal/metrics"
	"github.com/keyfort/keyfort/internal/recordcache"
	"github.com/keyfort/keyfort/internal/storage"
	"github.com/keyfort/keyfort/internal/storage/sqlite"
)

var scope = storage.Scope{Account: "111111111111", Region: "us-east-1"}

const (
	kindA     storage.Kind = "test.a"
	kindOther storage.Kind = "test.other"
)

// hooked is a store whose Get can run a hook after it read (between a
// cache's read and its fill) and counts the reads.
type hooked struct {
	*sqlite.Store
	reads    atomic.Int64
	afterGet func()
}

func (h *hooked) Get(ctx context.Context, kind storage.Kind, scope storage.Scope, id string) (*storage.Record, error) {
	h.reads.Add(1)
	rec, err := h.Store.Get(ctx, kind, scope, id)
	if h.afterGet != nil {
		f := h.afterGet
		h.afterGet = nil
		f()
	}
	return rec, err
}

func open(t *testing.T) *hooked {
	t.Helper()
	s, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return &hooked{Store: s}
}

func put(t *testing.T, s storage.Store, id, data string) {
	t.Helper()
	err := s.Update(t.Context(), func(tx storage.Tx) error {
		rec, err := tx.Get(t.Context(), kindA, scope, id)
		if errors.Is(err, storage.ErrNotFound) {
			return tx.Insert(t.Context(), &storage.Record{Kind: kindA, Scope: scope, ID: id, Data: []byte(data)})
		}
		if err != nil {
			return err
		}
		rec.Data = []byte(data)
		return tx.Update(t.Context(), rec)
	})
	if err != nil {
		t.Fatal(err)
	}
}

func decode(rec *storage.Record) (string, error) { return string(rec.Data), nil }

func TestDecodeOncePerVersion(t *testing.T) {
	s := open(t)
	c := recordcache.New(s, 10, metrics.NewRegistry(), map[storage.Kind]string{kindA: "a"})
	put(t, s, "x", "1")
	decodes := 0
	dec := func(rec *storage.Record) (string, error) { decodes++; return decode(rec) }
	for range 3 {
		v, err := recordcache.Decode(t.Context(), c, kindA, scope, "x", dec)
		if err != nil || v != "1" {
			t.Fatalf("Decode = %q, %v; want 1", v, err)
		}
	}
	if decodes != 1 || s.reads.Load() != 1 {
		t.Errorf("3 Decodes: %d decodes, %d store reads; want 1 and 1", decodes, s.reads.Load())
	}
	put(t, s, "x", "2")
	if v, _ := recordcache.Decode(t.Context(), c, kindA, scope, "x", dec); v != "2" {
		t.Errorf("Decode after an update = %q, want 2", v)
	}
	// Through the store itself (a transaction's path) nothing is cached.
	for range 2 {
		if v, _ := recordcache.Decode(t.Context(), storage.Store(s), kindA, scope, "x", dec); v != "2" {
			t.Errorf("Decode through the store = %q, want 2", v)
		}
	}
	if decodes != 4 {
		t.Errorf("decodes = %d, want 4 (one after the update, two through the store)", decodes)
	}
}

// TestFillAfterInvalidationDropped: a read that began before a commit
// cannot put its older record back once the commit invalidated it.
func TestFillAfterInvalidationDropped(t *testing.T) {
	s := open(t)
	c := recordcache.New(s, 10, nil, map[storage.Kind]string{kindA: "a"})
	put(t, s, "x", "old")
	s.afterGet = func() { put(t, s.Store, "x", "new") }
	if v, _ := recordcache.Decode(t.Context(), c, kindA, scope, "x", decode); v != "old" {
		t.Fatalf("first Decode = %q, want old (read before the update)", v)
	}
	if v, _ := recordcache.Decode(t.Context(), c, kindA, scope, "x", decode); v != "new" {
		t.Errorf("Decode after the update = %q, want new: the stale fill was kept", v)
	}
	rec, err := c.Get(t.Context(), kindA, scope, "x")
	if err != nil || string(rec.Data) != "new" {
		t.Errorf("Get = %v, %v; want new", rec, err)
	}
}

func TestDeleteAndNotFound(t *testing.T) {
	s := open(t)
	c := recordcache.New(s, 10, nil, map[storage.Kind]string{kindA: "a"})
	put(t, s, "x", "1")
	if _, err := c.Get(t.Context(), kindA, scope, "x"); err != nil {
		t.Fatal(err)
	}
	if err := s.Update(t.Context(), func(tx storage.Tx) error { return tx.Delete(t.Context(), kindA, scope, "x") }); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Get(t.Context(), kindA, scope, "x"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("Get after delete = %v, want ErrNotFound", err)
	}
	if _, err := recordcache.Decode(t.Context(), c, kindA, scope, "x", decode); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("Decode after delete = %v, want ErrNotFound", err)
	}
}

// TestOtherKindsReadThrough: records of kinds the cache was not given are
// read from the store each time.
func TestOtherKindsReadThrough(t *testing.T) {
	s := open(t)
	c := recordcache.New(s, 10, nil, map[storage.Kind]string{kindA: "a"})
	err := s.Update(t.Context(), func(tx storage.Tx) error {
		return tx.Insert(t.Context(), &storage.Record{Kind: kindOther, Scope: scope, ID: "y", Data: []byte("1")})
	})
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if _, err := c.Get(t.Context(), kindOther, scope, "y"); err != nil {
			t.Fatal(err)
		}
	}
	if n := s.reads.Load(); n != 3 {
		t.Errorf("3 Gets of an uncached kind read the store %d times, want 3", n)
	}
}

// TestBounded: the cache keeps at most max records.
func TestBounded(t *testing.T) {
	s := open(t)
	c := recordcache.New(s, 4, nil, map[storage.Kind]string{kindA: "a"})
	for i := range 10 {
		id := string(rune('a' + i))
		put(t, s, id, id)
		if v, err := recordcache.Decode(t.Context(), c, kindA, scope, id, decode); err != nil || v != id {
			t.Fatalf("Decode(%s) = %q, %v", id, v, err)
		}
	}
	before := s.reads.Load()
	for i := range 10 {
		_, _ = c.Get(t.Context(), kindA, scope, string(rune('a'+i)))
	}
	if hits := 10 - (s.reads.Load() - before); hits > 4 {
		t.Errorf("%d of 10 records answered from a cache of 4", hits)
	}
}

// noNotify is a store without change notifications.
type noNotify struct{ storage.Store }

func TestWithoutNotificationsReadsThrough(t *testing.T) {
	s := open(t)
	c := recordcache.New(noNotify{s}, 10, nil, map[storage.Kind]string{kindA: "a"})
	put(t, s, "x", "1")
	for range 3 {
		if v, _ := recordcache.Decode(t.Context(), c, kindA, scope, "x", decode); v != "1" {
			t.Fatalf("Decode = %q", v)
		}
	}
	if n := s.reads.Load(); n != 3 {
		t.Errorf("3 Decodes on a store without notifications read it %d times, want 3", n)
	}
}
