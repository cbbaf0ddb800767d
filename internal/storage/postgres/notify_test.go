package postgres_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/keyfort/keyfort/internal/storage"
	"github.com/keyfort/keyfort/internal/storage/postgres"
)

// heard collects what one store's subscriber hears; kind "" is kept as "*".
type heard struct {
	mu  sync.Mutex
	got []string
}

func (h *heard) fn(kind storage.Kind, scope storage.Scope, id string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if kind == "" {
		h.got = append(h.got, "*")
		return
	}
	h.got = append(h.got, string(kind)+"/"+id)
}

// take returns what was heard since the last take, without the "*" calls
// unless all is set.
func (h *heard) take(all bool) []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []string
	for _, g := range h.got {
		if g != "*" || all {
			out = append(out, g)
		}
	}
	h.got = nil
	return out
}

func put(t *testing.T, s storage.Store, ids ...string) {
	t.Helper()
	err := s.Update(t.Context(), func(tx storage.Tx) error {
		for _, id := range ids {
			if err := tx.Insert(t.Context(), &storage.Record{Kind: "k", Scope: scope, ID: id, Data: []byte("v")}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("insert %v: %v", ids, err)
	}
}

// TestSyncHearsOtherNodes: once another node's Update has returned, Sync
// on this node returns only after its subscribers heard that change; a
// store on another schema hears nothing.
func TestSyncHearsOtherNodes(t *testing.T) {
	schema := newSchema(t)
	a, b, other := openStore(t, schema), openStore(t, schema), openStore(t, newSchema(t))
	var hb, ho heard
	b.Subscribe(hb.fn)
	other.Subscribe(ho.fn)
	ctx := t.Context()
	// Listening starts with a start over (*); from then on changes are
	// heard one by one.
	if err := b.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	hb.take(true)
	for i := range 50 {
		id := "r" + strings.Repeat("x", i)
		put(t, a, id)
		if err := b.Sync(ctx); err != nil {
			t.Fatalf("Sync = %v", err)
		}
		if got := hb.take(false); len(got) != 1 || got[0] != "k/"+id {
			t.Fatalf("after a's insert of %s and b.Sync, b heard %v", id, got)
		}
	}
	// Another node's delete, and a rolled-back change, which is not heard.
	err := a.Update(ctx, func(tx storage.Tx) error { return tx.Delete(ctx, "k", scope, "r") })
	if err != nil {
		t.Fatal(err)
	}
	_ = a.Update(ctx, func(tx storage.Tx) error {
		_ = tx.Delete(ctx, "k", scope, "rx")
		return context.Canceled
	})
	if err := b.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if got := hb.take(false); len(got) != 1 || got[0] != "k/r" {
		t.Errorf("after a delete and a rolled-back delete, b heard %v, want [k/r]", got)
	}
	if err := other.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if got := ho.take(false); len(got) != 0 {
		t.Errorf("a store on another schema heard %v", got)
	}
}

// TestSyncConcurrentWriters: many writers on one node, many Sync callers on
// another; each caller, having seen a write return, finds it heard.
func TestSyncConcurrentWriters(t *testing.T) {
	schema := newSchema(t)
	a, b := openStore(t, schema), openStore(t, schema)
	var mu sync.Mutex
	seen := map[string]bool{}
	b.Subscribe(func(kind storage.Kind, scope storage.Scope, id string) {
		mu.Lock()
		seen[id] = true
		mu.Unlock()
	})
	if err := b.Sync(t.Context()); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan string, 100)
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 25 {
				id := string(rune('a'+w)) + strings.Repeat("-", i)
				put(t, a, id)
				if err := b.Sync(t.Context()); err != nil {
					errs <- err.Error()
					return
				}
				mu.Lock()
				ok := seen[id]
				mu.Unlock()
				if !ok {
					errs <- "write " + id + " returned before Sync, yet not heard after it"
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
}

// TestListenerLostStartsOver: when the listening connection is killed,
// Sync waits for a new one, and the subscribers hear "anything may have
// changed" before Sync returns.
func TestListenerLostStartsOver(t *testing.T) {
	schema := newSchema(t)
	a, b := openStore(t, schema), openStore(t, schema)
	var hb heard
	b.Subscribe(hb.fn)
	ctx := t.Context()
	if err := b.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	hb.take(true)
	conn, err := pgx.Connect(ctx, dsn(t))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	// The session LISTENing on this schema's channel and its own: b's (a
	// never subscribed or synced, so it does not listen). Only it: other
	// tests' stores share the database.
	channel, err := postgres.ChannelName(ctx, b.Pool())
	if err != nil {
		t.Fatal(err)
	}
	var killed int
	err = conn.QueryRow(ctx, `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
		WHERE datname = current_database() AND query LIKE $1 AND state = 'idle' AND pid <> pg_backend_pid()`,
		`LISTEN "`+channel+`"; LISTEN "`+channel+`_%`).Scan(&killed)
	if err != nil {
		t.Fatal(err)
	}
	if killed == 0 {
		t.Fatal("found no listening session to terminate")
	}
	put(t, a, "while-down")
	sctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if err := b.Sync(sctx); err != nil {
		t.Fatalf("Sync after the listener was killed = %v", err)
	}
	got := hb.take(true)
	if !strings.Contains(strings.Join(got, ","), "*") {
		t.Errorf("after the listener was lost, b heard %v; want a start over (*)", got)
	}
}

// TestLargeChangeStartsOver: a transaction whose changes do not fit in one
// notification makes the other nodes start over.
func TestLargeChangeStartsOver(t *testing.T) {
	schema := newSchema(t)
	a, b := openStore(t, schema), openStore(t, schema)
	var hb heard
	b.Subscribe(hb.fn)
	if err := b.Sync(t.Context()); err != nil {
		t.Fatal(err)
	}
	hb.take(true)
	var ids []string
	for i := range 40 {
		ids = append(ids, strings.Repeat("y", 200)+string(rune('A'+i)))
	}
	put(t, a, ids...)
	if err := b.Sync(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got := hb.take(true); len(got) != 1 || got[0] != "*" {
		t.Errorf("after a transaction of 40 long ids, b heard %d calls (%.80v); want one start over", len(got), got)
	}
}

// TestNoNotify: a store opened with NoNotify says so, sends no
// notifications (a listening store hears none of its writes) and refuses to
// Sync, since it cannot vouch for other nodes' writes.
func TestNoNotify(t *testing.T) {
	schema := newSchema(t)
	quiet, err := postgres.Open(t.Context(), dsn(t), postgres.Options{Schema: schema, NoNotify: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { quiet.Close() })
	if quiet.Notifies() {
		t.Fatal("Notifies() = true with NoNotify")
	}
	listener := openStore(t, schema)
	if !listener.Notifies() {
		t.Fatal("Notifies() = false on PostgreSQL without NoNotify")
	}
	var h heard
	listener.Subscribe(h.fn)
	if err := listener.Sync(t.Context()); err != nil {
		t.Fatal(err)
	}
	h.take(true)
	put(t, quiet, "unheard")
	if err := listener.Sync(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got := h.take(false); len(got) != 0 {
		t.Errorf("a listening store heard %v from a NoNotify store", got)
	}
	if _, err := listener.Get(t.Context(), "k", scope, "unheard"); err != nil {
		t.Errorf("the NoNotify store's write is not in the store: %v", err)
	}
	if err := quiet.Sync(t.Context()); err == nil {
		t.Error("Sync on a NoNotify store = nil, want an error")
	}
}
