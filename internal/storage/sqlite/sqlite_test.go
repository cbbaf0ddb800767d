package sqlite_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/keyfort/keyfort/internal/storage"
	"github.com/keyfort/keyfort/internal/storage/sqlite"
	"github.com/keyfort/keyfort/internal/storage/storagetest"
)

var scope = storage.Scope{Account: "123456789012", Region: "us-east-1"}

// openStore opens a store on path and closes it at cleanup.
func openStore(t testing.TB, path string, opts sqlite.Options) *sqlite.Store {
	t.Helper()
	s, err := sqlite.Open(context.Background(), path, opts)
	if err != nil {
		t.Fatalf("Open(%q) = %v, want nil", path, err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil && !errors.Is(err, storage.ErrClosed) {
			t.Errorf("Close() = %v, want nil", err)
		}
	})
	return s
}

func TestConformance(t *testing.T) {
	storagetest.Run(t, func(t *testing.T) storage.Store {
		return openStore(t, filepath.Join(t.TempDir(), "keyfort.db"), sqlite.Options{})
	})
}

// TestConformanceBatchOfOne runs the suite without group commit, so that
// every Update has a transaction to itself.
func TestConformanceBatchOfOne(t *testing.T) {
	storagetest.Run(t, func(t *testing.T) storage.Store {
		return openStore(t, filepath.Join(t.TempDir(), "keyfort.db"), sqlite.Options{MaxBatch: 1})
	})
}

func TestPath(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keyfort.db")
	if got := openStore(t, path, sqlite.Options{}).Path(); got != path {
		t.Errorf("Path() = %q, want %q", got, path)
	}
}

func TestOpenErrors(t *testing.T) {
	tests := []struct {
		name string
		path string
	}{
		{"empty path", ""},
		{"directory missing", filepath.Join(t.TempDir(), "no", "such", "dir", "keyfort.db")},
		{"path is a directory", t.TempDir()},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := sqlite.Open(t.Context(), tc.path, sqlite.Options{})
			if err == nil {
				s.Close()
				t.Fatalf("Open(%q) = nil error, want an error", tc.path)
			}
		})
	}
}

func TestPersistence(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "odd ?#% name.db")
	s := openStore(t, path, sqlite.Options{})
	want := []*storage.Record{
		{Kind: "kms.key", Scope: scope, ID: "k1", Parent: "p", Due: 99, Created: 5, Data: []byte("{}"), Sealed: []byte{1, 2, 3}},
		{Kind: "kms.key", Scope: scope, ID: "k2", Data: []byte{}, Sealed: nil},
	}
	if err := s.Update(ctx, func(tx storage.Tx) error {
		for _, r := range want {
			if err := tx.Insert(ctx, r); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatalf("Update(insert) = %v, want nil", err)
	}
	want[0].Data = []byte(`{"v":2}`)
	if err := s.Update(ctx, func(tx storage.Tx) error { return tx.Update(ctx, want[0]) }); err != nil {
		t.Fatalf("Update(update) = %v, want nil", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close() = %v, want nil", err)
	}

	s2 := openStore(t, path, sqlite.Options{})
	for _, w := range want {
		got, err := s2.Get(ctx, w.Kind, w.Scope, w.ID)
		if err != nil {
			t.Fatalf("Get(%q) after reopen = %v, want nil", w.ID, err)
		}
		if got.Rev != w.Rev || got.Parent != w.Parent || got.Due != w.Due || got.Created != w.Created ||
			string(got.Data) != string(w.Data) || (got.Data == nil) != (w.Data == nil) ||
			string(got.Sealed) != string(w.Sealed) || (got.Sealed == nil) != (w.Sealed == nil) {
			t.Errorf("Get(%q) after reopen = %+v, want %+v", w.ID, got, w)
		}
	}
}

// TestMigrationsIdempotent reopens a database several times and checks that
// each migration is recorded once and the data stays.
func TestMigrationsIdempotent(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "keyfort.db")
	for i := range 3 {
		s := openStore(t, path, sqlite.Options{})
		if err := s.Update(ctx, func(tx storage.Tx) error {
			return tx.Insert(ctx, &storage.Record{Kind: "k", Scope: scope, ID: fmt.Sprint(i)})
		}); err != nil {
			t.Fatalf("open %d: Update = %v, want nil", i, err)
		}
		if err := s.Close(); err != nil {
			t.Fatalf("open %d: Close() = %v, want nil", i, err)
		}
	}

	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.QueryContext(ctx, "SELECT version, count(*) FROM schema_migrations GROUP BY version ORDER BY version")
	if err != nil {
		t.Fatalf("query schema_migrations = %v", err)
	}
	defer rows.Close()
	var versions []int64
	for rows.Next() {
		var v, n int64
		if err := rows.Scan(&v, &n); err != nil {
			t.Fatal(err)
		}
		if n != 1 {
			t.Errorf("schema_migrations has version %d %d times, want once", v, n)
		}
		versions = append(versions, v)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(versions, []int64{1, 2}) {
		t.Errorf("schema_migrations versions = %v, want [1 2]", versions)
	}
	var n int
	if err := db.QueryRowContext(ctx, "SELECT count(*) FROM records").Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 3 {
		t.Errorf("records after 3 opens = %d, want 3", n)
	}
	var mode string
	if err := db.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil {
		t.Fatal(err)
	}
	if mode != "wal" {
		t.Errorf("journal_mode = %q, want \"wal\"", mode)
	}
}

// TestGroupCommit holds the writer inside one caller's fn while others queue,
// then checks that the queued calls committed and a failing one did not.
func TestGroupCommit(t *testing.T) {
	ctx := t.Context()
	s := openStore(t, filepath.Join(t.TempDir(), "keyfort.db"), sqlite.Options{MaxBatch: 8})
	entered, release := make(chan struct{}), make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		err := s.Update(ctx, func(tx storage.Tx) error {
			close(entered)
			<-release
			return tx.Insert(ctx, &storage.Record{Kind: "k", Scope: scope, ID: "blocker"})
		})
		if err != nil {
			t.Errorf("Update(blocker) = %v, want nil", err)
		}
	})
	<-entered
	const queued = 20
	var started sync.WaitGroup
	errs := make([]error, queued)
	for i := range queued {
		started.Add(1)
		wg.Go(func() {
			started.Done()
			errs[i] = s.Update(ctx, func(tx storage.Tx) error {
				if err := tx.Insert(ctx, &storage.Record{Kind: "k", Scope: scope, ID: fmt.Sprintf("q%02d", i)}); err != nil {
					return err
				}
				if i%5 == 0 {
					return fmt.Errorf("fail %d", i)
				}
				return nil
			})
		})
	}
	started.Wait()
	close(release)
	wg.Wait()
	for i, err := range errs {
		if (i%5 == 0) != (err != nil) {
			t.Errorf("Update(q%02d) = %v, want error: %v", i, err, i%5 == 0)
		}
		_, gerr := s.Get(ctx, "k", scope, fmt.Sprintf("q%02d", i))
		if want := i%5 != 0; (gerr == nil) != want {
			t.Errorf("Get(q%02d) = %v, want found: %v", i, gerr, want)
		}
	}
}

// TestGroupCommitFailuresBeforeWriting batches callers of which some fail
// before writing anything: the others commit, each fn runs exactly once (the
// batch needs no second run with savepoints), and the failed ones changed
// nothing.
func TestGroupCommitFailuresBeforeWriting(t *testing.T) {
	ctx := t.Context()
	s := openStore(t, filepath.Join(t.TempDir(), "keyfort.db"), sqlite.Options{MaxBatch: 8})
	entered, release := make(chan struct{}), make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := s.Update(ctx, func(tx storage.Tx) error {
			close(entered)
			<-release
			return nil
		}); err != nil {
			t.Errorf("Update(blocker) = %v, want nil", err)
		}
	})
	<-entered
	const queued = 16
	var started sync.WaitGroup
	errs := make([]error, queued)
	runs := make([]atomic.Int32, queued)
	for i := range queued {
		started.Add(1)
		wg.Go(func() {
			started.Done()
			errs[i] = s.Update(ctx, func(tx storage.Tx) error {
				runs[i].Add(1)
				if i%3 == 0 {
					if _, err := tx.Get(ctx, "k", scope, "missing"); !errors.Is(err, storage.ErrNotFound) {
						return fmt.Errorf("Get(missing) = %v", err)
					}
					return fmt.Errorf("refused %d", i)
				}
				return tx.Insert(ctx, &storage.Record{Kind: "k", Scope: scope, ID: fmt.Sprintf("q%02d", i)})
			})
		})
	}
	started.Wait()
	close(release)
	wg.Wait()
	for i, err := range errs {
		if want := fmt.Sprintf("refused %d", i); i%3 == 0 && (err == nil || err.Error() != want) {
			t.Errorf("Update(q%02d) = %v, want %q", i, err, want)
		}
		if i%3 != 0 && err != nil {
			t.Errorf("Update(q%02d) = %v, want nil", i, err)
		}
		if n := runs[i].Load(); n != 1 {
			t.Errorf("fn of q%02d ran %d times, want 1", i, n)
		}
		_, gerr := s.Get(ctx, "k", scope, fmt.Sprintf("q%02d", i))
		if want := i%3 != 0; (gerr == nil) != want {
			t.Errorf("Get(q%02d) = %v, want found: %v", i, gerr, want)
		}
	}
}

// TestUpdateIndexedColumnsAfterRead reads a record and updates it in the
// same transaction, with and without changes to its indexed columns (the
// store then leaves unchanged ones alone), and through a delete and a new
// insert of the same id: the parent and due indexes always answer the
// record's last values.
func TestUpdateIndexedColumnsAfterRead(t *testing.T) {
	ctx := t.Context()
	s := openStore(t, filepath.Join(t.TempDir(), "keyfort.db"), sqlite.Options{})
	rec := &storage.Record{Kind: "k", Scope: scope, ID: "r", Parent: "p1", Due: 100, Created: 7, Data: []byte("v1")}
	if err := s.Update(ctx, func(tx storage.Tx) error { return tx.Insert(ctx, rec) }); err != nil {
		t.Fatal(err)
	}
	// want checks the record and what the indexes find of it.
	want := func(step, parent string, due, created int64, data string) {
		t.Helper()
		got, err := s.Get(ctx, "k", scope, "r")
		if err != nil || got.Parent != parent || got.Due != due || got.Created != created || string(got.Data) != data {
			t.Fatalf("%s: Get = %+v, %v; want parent %q due %d created %d data %q", step, got, err, parent, due, created, data)
		}
		err = s.View(ctx, func(r storage.Reader) error {
			byParent, err := r.List(ctx, "k", scope, storage.ListOptions{Parent: parent})
			if err != nil {
				return err
			}
			if len(byParent) != 1 {
				t.Errorf("%s: List(parent %q) = %d records, want 1", step, parent, len(byParent))
			}
			due, err := r.Due(ctx, "k", 1<<40, 0)
			if err != nil {
				return err
			}
			if wantDue := got.Due != 0; (len(due) == 1) != wantDue {
				t.Errorf("%s: Due() = %d records, want due: %v", step, len(due), wantDue)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	update := func(step string, fn func(tx storage.Tx, r *storage.Record) error) {
		t.Helper()
		if err := s.Update(ctx, func(tx storage.Tx) error {
			r, err := tx.Get(ctx, "k", scope, "r")
			if err != nil {
				return err
			}
			return fn(tx, r)
		}); err != nil {
			t.Fatalf("%s: %v", step, err)
		}
	}
	update("data only", func(tx storage.Tx, r *storage.Record) error {
		r.Data = []byte("v2")
		return tx.Update(ctx, r)
	})
	want("data only", "p1", 100, 7, "v2")
	update("parent only", func(tx storage.Tx, r *storage.Record) error {
		r.Parent = "p2"
		return tx.Update(ctx, r)
	})
	want("parent only", "p2", 100, 7, "v2")
	update("due only", func(tx storage.Tx, r *storage.Record) error {
		r.Due = 0
		return tx.Update(ctx, r)
	})
	want("due only", "p2", 0, 7, "v2")
	update("created only", func(tx storage.Tx, r *storage.Record) error {
		r.Created = 8
		return tx.Update(ctx, r)
	})
	want("created only", "p2", 0, 8, "v2")
	update("twice in one transaction", func(tx storage.Tx, r *storage.Record) error {
		r.Data = []byte("v4")
		if err := tx.Update(ctx, r); err != nil {
			return err
		}
		r.Parent, r.Due, r.Data = "p3", 200, []byte("v5")
		return tx.Update(ctx, r)
	})
	want("twice in one transaction", "p3", 200, 8, "v5")
	update("deleted and inserted again", func(tx storage.Tx, r *storage.Record) error {
		if err := tx.Delete(ctx, "k", scope, "r"); err != nil {
			return err
		}
		n := &storage.Record{Kind: "k", Scope: scope, ID: "r", Parent: "p4", Due: 300, Created: 8, Data: []byte("v6")}
		if err := tx.Insert(ctx, n); err != nil {
			return err
		}
		// The old columns (p3, 200) with the new revision 1: the store must
		// write them, not trust what it read before the delete.
		r.Rev, r.Data = 1, []byte("v7")
		return tx.Update(ctx, r)
	})
	want("deleted and inserted again", "p3", 200, 8, "v7")

	// The same at revision 1, where the record read and the one inserted
	// in its place share a revision.
	r2 := &storage.Record{Kind: "k", Scope: scope, ID: "r2", Parent: "a", Data: []byte("x")}
	if err := s.Update(ctx, func(tx storage.Tx) error { return tx.Insert(ctx, r2) }); err != nil {
		t.Fatal(err)
	}
	if err := s.Update(ctx, func(tx storage.Tx) error {
		old, err := tx.Get(ctx, "k", scope, "r2")
		if err != nil {
			return err
		}
		if err := tx.Delete(ctx, "k", scope, "r2"); err != nil {
			return err
		}
		if err := tx.Insert(ctx, &storage.Record{Kind: "k", Scope: scope, ID: "r2", Parent: "b", Data: []byte("y")}); err != nil {
			return err
		}
		old.Data = []byte("z") // revision 1 again, parent "a"
		return tx.Update(ctx, old)
	}); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Get(ctx, "k", scope, "r2"); err != nil || got.Parent != "a" || string(got.Data) != "z" {
		t.Errorf("r2 after delete, insert and update = %+v, %v; want parent \"a\", data z", got, err)
	}
}

// TestCanceledWhileQueued cancels a caller whose call waits behind a busy
// writer: it returns at once, and its fn never runs.
func TestCanceledWhileQueued(t *testing.T) {
	ctx := t.Context()
	s := openStore(t, filepath.Join(t.TempDir(), "keyfort.db"), sqlite.Options{})
	entered, release := make(chan struct{}), make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- s.Update(ctx, func(tx storage.Tx) error {
			close(entered)
			<-release
			return nil
		})
	}()
	<-entered
	cctx, cancel := context.WithCancel(ctx)
	var ran atomic.Bool
	queuedDone := make(chan error, 1)
	go func() {
		queuedDone <- s.Update(cctx, func(tx storage.Tx) error {
			ran.Store(true)
			return nil
		})
	}()
	cancel()
	if err := <-queuedDone; !errors.Is(err, context.Canceled) {
		t.Errorf("Update(canceled while queued) = %v, want context.Canceled", err)
	}
	close(release)
	if err := <-done; err != nil {
		t.Errorf("Update(blocker) = %v, want nil", err)
	}
	// A later Update passes through the writer after the canceled request.
	if err := s.Update(ctx, func(storage.Tx) error { return nil }); err != nil {
		t.Errorf("Update(after) = %v, want nil", err)
	}
	if ran.Load() {
		t.Errorf("fn of a caller canceled while queued ran")
	}
}

// TestPanicInFn re-raises a panic of fn in the caller and keeps the writer.
func TestPanicInFn(t *testing.T) {
	ctx := t.Context()
	s := openStore(t, filepath.Join(t.TempDir(), "keyfort.db"), sqlite.Options{})
	func() {
		defer func() {
			if v := recover(); v != "boom" {
				t.Errorf("recover() = %v, want \"boom\"", v)
			}
		}()
		_ = s.Update(ctx, func(tx storage.Tx) error {
			if err := tx.Insert(ctx, &storage.Record{Kind: "k", Scope: scope, ID: "panic"}); err != nil {
				return err
			}
			panic("boom")
		})
	}()
	if _, err := s.Get(ctx, "k", scope, "panic"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("Get(panic) = %v, want ErrNotFound", err)
	}
	if err := s.Update(ctx, func(tx storage.Tx) error {
		return tx.Insert(ctx, &storage.Record{Kind: "k", Scope: scope, ID: "after"})
	}); err != nil {
		t.Errorf("Update after a panic = %v, want nil", err)
	}
}

// TestCloseDrainsQueue closes the store while Updates are queued: each one
// either committed (nil) or was refused with ErrClosed, and every nil is on
// disk after reopening.
func TestCloseDrainsQueue(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "keyfort.db")
	s, err := sqlite.Open(ctx, path, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	const n = 64
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			errs[i] = s.Update(ctx, func(tx storage.Tx) error {
				return tx.Insert(ctx, &storage.Record{Kind: "k", Scope: scope, ID: fmt.Sprint(i)})
			})
		})
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close() = %v, want nil", err)
	}
	wg.Wait()
	s2 := openStore(t, path, sqlite.Options{})
	for i, err := range errs {
		_, gerr := s2.Get(ctx, "k", scope, fmt.Sprint(i))
		switch {
		case err == nil && gerr != nil:
			t.Errorf("Update(%d) = nil but Get after reopen = %v", i, gerr)
		case errors.Is(err, storage.ErrClosed) && gerr == nil:
			t.Errorf("Update(%d) = ErrClosed but the record exists", i)
		case err != nil && !errors.Is(err, storage.ErrClosed):
			t.Errorf("Update(%d) = %v, want nil or ErrClosed", i, err)
		}
	}
}

func BenchmarkGet(b *testing.B) {
	ctx := context.Background()
	s := openStore(b, filepath.Join(b.TempDir(), "keyfort.db"), sqlite.Options{})
	const n = 1000
	data := make([]byte, 400)
	sealed := make([]byte, 80)
	if err := s.Update(ctx, func(tx storage.Tx) error {
		for i := range n {
			r := &storage.Record{Kind: "kms.key", Scope: scope, ID: fmt.Sprintf("key-%04d", i), Data: data, Sealed: sealed}
			if err := tx.Insert(ctx, r); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		b.Fatal(err)
	}
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("key-%04d", i)
	}
	b.ResetTimer()
	i := 0
	for b.Loop() {
		if _, err := s.Get(ctx, "kms.key", scope, ids[i%n]); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

func BenchmarkGetParallel(b *testing.B) {
	ctx := context.Background()
	s := openStore(b, filepath.Join(b.TempDir(), "keyfort.db"), sqlite.Options{})
	if err := s.Update(ctx, func(tx storage.Tx) error {
		return tx.Insert(ctx, &storage.Record{Kind: "kms.key", Scope: scope, ID: "key", Data: make([]byte, 400)})
	}); err != nil {
		b.Fatal(err)
	}
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := s.Get(ctx, "kms.key", scope, "key"); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkUpdateParallel inserts new records from many goroutines; the
// MaxBatch=1 case shows what group commit saves.
func BenchmarkUpdateParallel(b *testing.B) {
	for _, maxBatch := range []int{0, 1} {
		b.Run(fmt.Sprintf("MaxBatch=%d", maxBatch), func(b *testing.B) {
			ctx := context.Background()
			s := openStore(b, filepath.Join(b.TempDir(), "keyfort.db"), sqlite.Options{MaxBatch: maxBatch})
			var next atomic.Int64
			data := make([]byte, 400)
			sealed := make([]byte, 80)
			b.SetParallelism(8) // 8 callers per CPU: enough to fill batches
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					id := fmt.Sprintf("rec-%d", next.Add(1))
					err := s.Update(ctx, func(tx storage.Tx) error {
						return tx.Insert(ctx, &storage.Record{Kind: "kms.key", Scope: scope, ID: id, Data: data, Sealed: sealed})
					})
					if err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}

// BenchmarkCommit times one durable commit of a small update, one caller at
// a time: the floor of every write's latency on this disk (the WAL's sync).
func BenchmarkCommit(b *testing.B) {
	s := openStore(b, filepath.Join(b.TempDir(), "keyfort.db"), sqlite.Options{})
	ctx := context.Background()
	rec := &storage.Record{Kind: "k", Scope: scope, ID: "r", Data: make([]byte, 400)}
	if err := s.Update(ctx, func(tx storage.Tx) error { return tx.Insert(ctx, rec) }); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for range b.N {
		if err := s.Update(ctx, func(tx storage.Tx) error { return tx.Update(ctx, rec) }); err != nil {
			b.Fatal(err)
		}
	}
}
