package kms

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	mrand "math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keyfort/keyfort/internal/envelope"
	"github.com/keyfort/keyfort/internal/identity"
	"github.com/keyfort/keyfort/internal/kms/kmsapi"
	"github.com/keyfort/keyfort/internal/listindex"
	"github.com/keyfort/keyfort/internal/storage"
	"github.com/keyfort/keyfort/internal/storage/sqlite"
)

// hiddenNotifier is the store without its storage.ChangeNotifier, so that a
// Service over it lists by reading the store (the reference).
type hiddenNotifier struct{ storage.Store }

// countingStore is the store with a count of the alias lists its readers
// make and of the aliases it gets one by one, so that a test sees how the
// alias list index read its page: whole again, or only what changed.
type countingStore struct {
	*sqlite.Store
	aliasLists, aliasGets atomic.Int64
}

func (s *countingStore) View(ctx context.Context, fn func(storage.Reader) error) error {
	return s.Store.View(ctx, func(r storage.Reader) error { return fn(countingReader{r, s}) })
}

func (s *countingStore) Get(ctx context.Context, kind storage.Kind, scope storage.Scope, id string) (*storage.Record, error) {
	if kind == kindAlias {
		s.aliasGets.Add(1)
	}
	return s.Store.Get(ctx, kind, scope, id)
}

type countingReader struct {
	storage.Reader
	s *countingStore
}

func (r countingReader) List(ctx context.Context, kind storage.Kind, scope storage.Scope, opts storage.ListOptions) ([]*storage.Record, error) {
	if kind == kindAlias {
		r.s.aliasLists.Add(1)
	}
	return r.Reader.List(ctx, kind, scope, opts)
}

type listEnv struct {
	store *sqlite.Store
	reads *countingStore // svc's store
	svc   *Service       // with the list index
	ref   *Service       // reading through
	ctxs  []context.Context
}

func newListEnv(t *testing.T) *listEnv {
	t.Helper()
	ctx := t.Context()
	store, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "db"), sqlite.Options{})
	if err != nil {
		t.Fatalf("sqlite.Open: %v", err)
	}
	t.Cleanup(func() { _ = store.Close() })
	root, err := envelope.GenerateRootKey(rand.Reader)
	if err != nil {
		t.Fatalf("GenerateRootKey: %v", err)
	}
	sealer := envelope.NewSealer(nil, root)
	var mu sync.Mutex
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	clock := func() time.Time { // every call a distinct time
		mu.Lock()
		defer mu.Unlock()
		now = now.Add(time.Second + 1234567)
		return now
	}
	reads := &countingStore{Store: store}
	e := &listEnv{
		store: store,
		reads: reads,
		svc:   New(Config{Store: reads, Sealer: sealer, Now: clock}),
		ref:   New(Config{Store: hiddenNotifier{store}, Sealer: sealer, Now: clock}),
	}
	if e.svc.keyList == nil || e.svc.aliasList == nil || e.ref.keyList != nil || e.ref.aliasList != nil {
		t.Fatal("the SQLite store must give the service a list index, the hidden one must not")
	}
	for _, sc := range []storage.Scope{{Account: "111111111111", Region: "us-east-1"}, {Account: "111111111111", Region: "eu-west-1"}, {Account: "222222222222", Region: "us-east-1"}} {
		e.ctxs = append(e.ctxs, identity.With(ctx, withReq(identity.Root(sc.Account, sc.Region, ""))))
	}
	return e
}

func mustOK(t *testing.T, err error, what string) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// keyPages returns every ListKeys page as JSON, following the markers.
func keyPages(t *testing.T, ctx context.Context, s *Service, limit *int32) []string {
	t.Helper()
	in := &kmsapi.ListKeysInput{Limit: limit}
	var pages []string
	for range 10000 {
		out, err := s.ListKeys(ctx, in)
		mustOK(t, err, "ListKeys")
		pages = append(pages, string(out.AppendJSON(nil)))
		if out.NextMarker == nil {
			return pages
		}
		in.Marker = out.NextMarker
	}
	t.Fatal("ListKeys did not end")
	return nil
}

// aliasPages returns every ListAliases page as JSON, following the markers.
func aliasPages(t *testing.T, ctx context.Context, s *Service, limit *int32, keyID *string) []string {
	t.Helper()
	in := &kmsapi.ListAliasesInput{Limit: limit, KeyId: keyID}
	var pages []string
	for range 10000 {
		out, err := s.ListAliases(ctx, in)
		mustOK(t, err, "ListAliases")
		pages = append(pages, string(out.AppendJSON(nil)))
		if out.NextMarker == nil {
			return pages
		}
		in.Marker = out.NextMarker
	}
	t.Fatal("ListAliases did not end")
	return nil
}

// compareLists checks that every listing of every scope is, page for page
// and byte for byte, the one the read-through service gives.
func (e *listEnv) compareLists(t *testing.T, keyIDs map[int][]string) {
	t.Helper()
	limits := []*int32{nil, ptr(int32(1)), ptr(int32(3)), ptr(int32(7)), ptr(int32(100)), ptr(int32(1000))}
	for si, ctx := range e.ctxs {
		for _, lim := range limits {
			got, want := keyPages(t, ctx, e.svc, lim), keyPages(t, ctx, e.ref, lim)
			if !slices.Equal(got, want) {
				t.Fatalf("scope %d ListKeys(Limit %v) pages differ:\n got %q\nwant %q", si, deref(lim), got, want)
			}
			if deref(lim) > 100 {
				continue // ListAliases takes at most 100
			}
			got, want = aliasPages(t, ctx, e.svc, lim, nil), aliasPages(t, ctx, e.ref, lim, nil)
			if !slices.Equal(got, want) {
				t.Fatalf("scope %d ListAliases(Limit %v) pages differ:\n got %q\nwant %q", si, deref(lim), got, want)
			}
		}
		for i, id := range keyIDs[si] {
			if i%3 != 0 {
				continue
			}
			lim := limits[i%4]
			got, want := aliasPages(t, ctx, e.svc, lim, ptr(id)), aliasPages(t, ctx, e.ref, lim, ptr(id))
			if !slices.Equal(got, want) {
				t.Fatalf("scope %d ListAliases(KeyId %s, Limit %v) pages differ:\n got %q\nwant %q", si, id, deref(lim), got, want)
			}
		}
	}
}

// TestListIndexMatchesReadThrough drives random key and alias changes in
// three scopes and checks after each round that every ListKeys and
// ListAliases listing equals the read-through one.
func TestListIndexMatchesReadThrough(t *testing.T) {
	e := newListEnv(t)
	rng := mrand.New(mrand.NewPCG(3, 4))
	keyIDs := map[int][]string{}
	aliases := map[int][]string{}
	e.compareLists(t, keyIDs) // empty scopes: lists loaded before any write
	for round := range 6 {
		for i := range 40 {
			si := rng.IntN(len(e.ctxs))
			ctx := e.ctxs[si]
			switch op := rng.IntN(10); {
			case op <= 2 || len(keyIDs[si]) == 0:
				out, err := e.svc.CreateKey(ctx, &kmsapi.CreateKeyInput{})
				mustOK(t, err, "CreateKey")
				keyIDs[si] = append(keyIDs[si], *out.KeyMetadata.KeyId)
			case op <= 5:
				// Names around the predefined alias/aws/* ones too.
				name := fmt.Sprintf("alias/%s%02d-%02d", []string{"a", "aws-", "z", "b/"}[rng.IntN(4)], round, i)
				target := keyIDs[si][rng.IntN(len(keyIDs[si]))]
				_, err := e.svc.CreateAlias(ctx, &kmsapi.CreateAliasInput{AliasName: ptr(name), TargetKeyId: ptr(target)})
				if err != nil && strings.Contains(err.Error(), "pending deletion") {
					continue
				}
				mustOK(t, err, "CreateAlias")
				aliases[si] = append(aliases[si], name)
			case op == 6 && len(aliases[si]) > 0:
				name := aliases[si][rng.IntN(len(aliases[si]))]
				target := keyIDs[si][rng.IntN(len(keyIDs[si]))]
				_, err := e.svc.UpdateAlias(ctx, &kmsapi.UpdateAliasInput{AliasName: ptr(name), TargetKeyId: ptr(target)})
				if err != nil && strings.Contains(err.Error(), "pending deletion") {
					continue
				}
				mustOK(t, err, "UpdateAlias")
			case op == 7 && len(aliases[si]) > 0:
				j := rng.IntN(len(aliases[si]))
				_, err := e.svc.DeleteAlias(ctx, &kmsapi.DeleteAliasInput{AliasName: ptr(aliases[si][j])})
				mustOK(t, err, "DeleteAlias")
				aliases[si] = slices.Delete(aliases[si], j, j+1)
			case op == 8:
				// An AWS managed key and its predefined alias.
				_, err := e.svc.ManagedKeyARN(ctx, []string{"s3", "ebs", "secretsmanager"}[rng.IntN(3)])
				mustOK(t, err, "ManagedKeyARN")
			default:
				// A key's record goes away (as at the end of its deletion
				// window); its aliases stay until deleted.
				j := rng.IntN(len(keyIDs[si]))
				id := keyIDs[si][j]
				scope, _, _ := scopeOf(ctx)
				mustOK(t, e.store.Update(ctx, func(tx storage.Tx) error { return tx.Delete(ctx, kindKey, scope, id) }), "delete key")
				keyIDs[si] = slices.Delete(keyIDs[si], j, j+1)
			}
		}
		e.compareLists(t, keyIDs)
	}
}

// TestListIndexReloadsAfterManyChanges writes more changes between two pages
// than the index remembers, in one commit, and checks the lists.
func TestListIndexReloadsAfterManyChanges(t *testing.T) {
	e := newListEnv(t)
	ctx := e.ctxs[0]
	out, err := e.svc.CreateKey(ctx, &kmsapi.CreateKeyInput{})
	mustOK(t, err, "CreateKey")
	target := *out.KeyMetadata.KeyId
	e.compareLists(t, nil)
	scope, _, _ := scopeOf(ctx)
	now := time.Date(2026, 4, 1, 0, 0, 0, 0, time.UTC)
	err = e.store.Update(ctx, func(tx storage.Tx) error {
		for i := range listindex.DefaultMaxDirty + 10 {
			data, _ := json.Marshal(aliasMeta{Created: now, Updated: now.Add(time.Duration(i))})
			if err := tx.Insert(ctx, &storage.Record{Kind: kindAlias, Scope: scope, ID: fmt.Sprintf("alias/bulk-%05d", i), Parent: target, Data: data}); err != nil {
				return err
			}
			if err := tx.Insert(ctx, &storage.Record{Kind: kindKey, Scope: scope, ID: fmt.Sprintf("bulk-%05d", i), Data: []byte("{}")}); err != nil {
				return err
			}
		}
		return nil
	})
	mustOK(t, err, "bulk insert")
	// Too many changes to remember: the next page reads the alias list
	// whole again instead of each changed alias.
	lists, gets := e.reads.aliasLists.Load(), e.reads.aliasGets.Load()
	_, err = e.svc.ListAliases(ctx, &kmsapi.ListAliasesInput{Limit: ptr(int32(1))})
	mustOK(t, err, "ListAliases")
	if n, m := e.reads.aliasLists.Load()-lists, e.reads.aliasGets.Load()-gets; n == 0 || m != 0 {
		t.Fatalf("after %d changes the next alias page listed the store %d times and read %d aliases one by one, want the list read again whole",
			listindex.DefaultMaxDirty+10, n, m)
	}
	e.compareLists(t, map[int][]string{0: {target}})
	// A few more changes after the reload go through the dirty set.
	err = e.store.Update(ctx, func(tx storage.Tx) error {
		for i := range 20 {
			if err := tx.Delete(ctx, kindAlias, scope, fmt.Sprintf("alias/bulk-%05d", i*7)); err != nil {
				return err
			}
			if err := tx.Delete(ctx, kindKey, scope, fmt.Sprintf("bulk-%05d", i*11)); err != nil {
				return err
			}
		}
		return nil
	})
	mustOK(t, err, "bulk delete")
	e.compareLists(t, map[int][]string{0: {target}})
}

// TestListIndexSeesAnsweredWrites runs writers and listers at once (run it
// with -race): after each write has answered, the writer's next listing
// must show it.
func TestListIndexSeesAnsweredWrites(t *testing.T) {
	e := newListEnv(t)
	ctx := e.ctxs[0]
	scope, _, _ := scopeOf(ctx)
	var wg sync.WaitGroup
	done := make(chan struct{})
	for range 2 { // listers, keeping the index busy
		wg.Go(func() {
			for {
				select {
				case <-done:
					return
				default:
				}
				if _, err := e.svc.ListKeys(ctx, &kmsapi.ListKeysInput{Limit: ptr(int32(5))}); err != nil {
					t.Errorf("ListKeys: %v", err)
					return
				}
				if _, err := e.svc.ListAliases(ctx, &kmsapi.ListAliasesInput{Limit: ptr(int32(5))}); err != nil {
					t.Errorf("ListAliases: %v", err)
					return
				}
			}
		})
	}
	var writers sync.WaitGroup
	for w := range 4 {
		writers.Go(func() {
			for i := range 12 {
				out, err := e.svc.CreateKey(ctx, &kmsapi.CreateKeyInput{})
				if err != nil {
					t.Errorf("CreateKey: %v", err)
					return
				}
				id := *out.KeyMetadata.KeyId
				// The key sorts right after its own id less its last byte.
				ids, err := e.svc.listKeyIDs(ctx, scope, id[:len(id)-1], 1)
				if err != nil || len(ids) != 1 || ids[0] != id {
					t.Errorf("after CreateKey %s the key list has %q, %v", id, ids, err)
					return
				}
				name := fmt.Sprintf("alias/w%d-%02d", w, i)
				if _, err := e.svc.CreateAlias(ctx, &kmsapi.CreateAliasInput{AliasName: ptr(name), TargetKeyId: ptr(id)}); err != nil {
					t.Errorf("CreateAlias: %v", err)
					return
				}
				la, err := e.svc.ListAliases(ctx, &kmsapi.ListAliasesInput{KeyId: ptr(id)})
				if err != nil || len(la.Aliases) != 1 || *la.Aliases[0].AliasName != name {
					t.Errorf("after CreateAlias %s ListAliases(KeyId) = %+v, %v", name, la, err)
					return
				}
				if i%2 == 0 {
					if _, err := e.svc.DeleteAlias(ctx, &kmsapi.DeleteAliasInput{AliasName: ptr(name)}); err != nil {
						t.Errorf("DeleteAlias: %v", err)
						return
					}
					la, err := e.svc.ListAliases(ctx, &kmsapi.ListAliasesInput{KeyId: ptr(id)})
					if err != nil || len(la.Aliases) != 0 {
						t.Errorf("after DeleteAlias %s ListAliases(KeyId) = %+v, %v", name, la, err)
						return
					}
				}
			}
		})
	}
	writers.Wait()
	close(done)
	wg.Wait()
	if t.Failed() {
		return
	}
	e.compareLists(t, nil)
	var buf bytes.Buffer
	for _, p := range keyPages(t, ctx, e.svc, nil) {
		buf.WriteString(p)
	}
	if n := strings.Count(buf.String(), `"KeyId"`); n != 4*12 {
		t.Fatalf("ListKeys lists %d keys, want %d", n, 4*12)
	}
}

// withReq gives a test caller a request id.
func withReq(c *identity.Caller) *identity.Caller {
	c.RequestID = "test"
	return c
}
