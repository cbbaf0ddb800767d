package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/keyfort/keyfort/internal/storage"
	"github.com/keyfort/keyfort/internal/storage/postgres"
	"github.com/keyfort/keyfort/internal/storage/postgres/pgtest"
	"github.com/keyfort/keyfort/internal/storage/storagetest"
)

var scope = storage.Scope{Account: "123456789012", Region: "us-east-1"}

// dsn returns the test database's DSN or skips the test.
func dsn(t testing.TB) string { return pgtest.DSN(t) }

// newSchema returns a fresh schema name and drops the schema at cleanup
// (after the stores opened later in the test have been closed).
func newSchema(t testing.TB) string { return pgtest.Schema(t, dsn(t), "keyfort_test_") }

// openStore opens a store on schema and closes it at cleanup.
func openStore(t testing.TB, schema string) *postgres.Store {
	t.Helper()
	s, err := postgres.Open(context.Background(), dsn(t), postgres.Options{Schema: schema})
	if err != nil {
		t.Fatalf("Open(schema %s) = %v, want nil", schema, err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil && !errors.Is(err, storage.ErrClosed) {
			t.Errorf("Close() = %v, want nil", err)
		}
	})
	return s
}

func TestConformance(t *testing.T) {
	dsn(t)
	storagetest.Run(t, func(t *testing.T) storage.Store {
		return openStore(t, newSchema(t))
	})
}

func TestOpenBadDSN(t *testing.T) {
	tests := []struct {
		name string
		dsn  string
	}{
		{"not a dsn", "postgres://%zz"},
		{"nobody listening", "postgres://postgres@127.0.0.1:1/test?sslmode=disable&connect_timeout=2"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := postgres.Open(t.Context(), tc.dsn, postgres.Options{})
			if err == nil {
				s.Close()
				t.Fatalf("Open(%q) = nil error, want an error", tc.dsn)
			}
		})
	}
}

// TestConcurrentOpen starts several nodes on one fresh schema at once: every
// Open succeeds and each migration is recorded once.
func TestConcurrentOpen(t *testing.T) {
	schema := newSchema(t)
	const nodes = 6
	stores := make([]*postgres.Store, nodes)
	errs := make([]error, nodes)
	var wg sync.WaitGroup
	for i := range nodes {
		wg.Go(func() {
			stores[i], errs[i] = postgres.Open(t.Context(), dsn(t), postgres.Options{Schema: schema})
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("Open #%d = %v, want nil", i, err)
			continue
		}
		t.Cleanup(func() { stores[i].Close() })
	}
	if t.Failed() {
		return
	}
	// Every node sees the others' writes.
	for i, s := range stores {
		if err := s.Update(t.Context(), func(tx storage.Tx) error {
			return tx.Insert(t.Context(), &storage.Record{Kind: "k", Scope: scope, ID: fmt.Sprint(i)})
		}); err != nil {
			t.Fatalf("node %d: Update = %v, want nil", i, err)
		}
	}
	if err := stores[0].View(t.Context(), func(rd storage.Reader) error {
		n, err := rd.Count(t.Context(), "k", scope, "")
		if err != nil {
			return err
		}
		if n != nodes {
			t.Errorf("Count = %d, want %d", n, nodes)
		}
		return nil
	}); err != nil {
		t.Errorf("View = %v, want nil", err)
	}

	versions := migrationVersions(t, schema)
	if !slices.Equal(versions, []int64{0, 1, 2, 3}) {
		t.Errorf("schema_migrations versions = %v, want [0 1 2 3] (lock row, 0001 to 0003)", versions)
	}
}

// TestMigrationsIdempotent reopens the same schema and checks nothing is
// applied twice and the data stays.
func TestMigrationsIdempotent(t *testing.T) {
	schema := newSchema(t)
	for i := range 3 {
		s := openStore(t, schema)
		if err := s.Update(t.Context(), func(tx storage.Tx) error {
			return tx.Insert(t.Context(), &storage.Record{Kind: "k", Scope: scope, ID: fmt.Sprint(i)})
		}); err != nil {
			t.Fatalf("open %d: Update = %v, want nil", i, err)
		}
		if err := s.Close(); err != nil {
			t.Fatalf("open %d: Close() = %v, want nil", i, err)
		}
	}
	s := openStore(t, schema)
	if err := s.View(t.Context(), func(rd storage.Reader) error {
		recs, err := rd.List(t.Context(), "k", scope, storage.ListOptions{})
		if err != nil {
			return err
		}
		if len(recs) != 3 {
			t.Errorf("List after 3 opens = %d records, want 3", len(recs))
		}
		return nil
	}); err != nil {
		t.Errorf("View = %v, want nil", err)
	}
	if v := migrationVersions(t, schema); !slices.Equal(v, []int64{0, 1, 2, 3}) {
		t.Errorf("schema_migrations versions = %v, want [0 1 2 3]", v)
	}
}

func migrationVersions(t *testing.T, schema string) []int64 {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), dsn(t))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	rows, err := conn.Query(t.Context(),
		"SELECT version FROM "+pgx.Identifier{schema, "schema_migrations"}.Sanitize()+" ORDER BY version")
	if err != nil {
		t.Fatal(err)
	}
	v, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// TestDueSkipLocked shows that two transactions polling Due at once claim
// different records, and a View still sees them all.
func TestDueSkipLocked(t *testing.T) {
	ctx := t.Context()
	s := openStore(t, newSchema(t))
	if err := s.Update(ctx, func(tx storage.Tx) error {
		for i := range 4 {
			r := &storage.Record{Kind: "job", Scope: scope, ID: fmt.Sprintf("j%d", i), Due: int64(10 + i)}
			if err := tx.Insert(ctx, r); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}

	claimed, release := make(chan []string, 1), make(chan struct{})
	holderDone := make(chan error, 1)
	go func() {
		sent := false
		holderDone <- s.Update(ctx, func(tx storage.Tx) error {
			recs, err := tx.Due(ctx, "job", 100, 2)
			if err != nil {
				return err
			}
			if !sent { // fn may be retried; announce once
				sent = true
				ids := make([]string, len(recs))
				for i, r := range recs {
					ids[i] = r.ID
				}
				claimed <- ids
				<-release
			}
			return nil
		})
	}()
	first := <-claimed
	if want := []string{"j0", "j1"}; !slices.Equal(first, want) {
		t.Errorf("first Due = %q, want %q", first, want)
	}

	var second []string
	err := s.Update(ctx, func(tx storage.Tx) error {
		recs, err := tx.Due(ctx, "job", 100, 2)
		if err != nil {
			return err
		}
		second = second[:0]
		for _, r := range recs {
			second = append(second, r.ID)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("second Update = %v, want nil", err)
	}
	if want := []string{"j2", "j3"}; !slices.Equal(second, want) {
		t.Errorf("second Due while the first holds its claim = %q, want %q", second, want)
	}
	if err := s.View(ctx, func(rd storage.Reader) error {
		recs, err := rd.Due(ctx, "job", 100, 0)
		if err != nil {
			return err
		}
		if len(recs) != 4 {
			t.Errorf("View Due = %d records, want 4 (a View claims nothing and skips nothing)", len(recs))
		}
		return nil
	}); err != nil {
		t.Errorf("View = %v, want nil", err)
	}
	close(release)
	if err := <-holderDone; err != nil {
		t.Errorf("first Update = %v, want nil", err)
	}
}

func BenchmarkGet(b *testing.B) {
	ctx := context.Background()
	s := openStore(b, newSchema(b))
	if err := s.Update(ctx, func(tx storage.Tx) error {
		return tx.Insert(ctx, &storage.Record{Kind: "kms.key", Scope: scope, ID: "key", Data: make([]byte, 400)})
	}); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := s.Get(ctx, "kms.key", scope, "key"); err != nil {
			b.Fatal(err)
		}
	}
}

// TestGetShared checks the lock GetShared takes: a second reader does not
// wait for the first, a writer of the record waits for both to end.
func TestGetShared(t *testing.T) {
	ctx := t.Context()
	s := openStore(t, newSchema(t))
	if err := s.Update(ctx, func(tx storage.Tx) error {
		return tx.Insert(ctx, &storage.Record{Kind: "marker", ID: "m", Data: []byte(`"old"`)})
	}); err != nil {
		t.Fatal(err)
	}
	getShared := func(tx storage.Tx) (*storage.Record, error) {
		return tx.(storage.SharedGetter).GetShared(ctx, "marker", storage.Scope{}, "m")
	}
	holding, release := make(chan struct{}), make(chan struct{})
	holderDone := make(chan error, 1)
	go func() {
		sent := false
		holderDone <- s.Update(ctx, func(tx storage.Tx) error {
			if _, err := getShared(tx); err != nil {
				return err
			}
			if !sent {
				sent = true
				close(holding)
				<-release
			}
			return nil
		})
	}()
	<-holding

	// A second shared reader goes through while the first holds its lock
	// (an exclusive lock would make it wait until the timeout).
	short, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	err := s.Update(short, func(tx storage.Tx) error {
		rec, err := tx.(storage.SharedGetter).GetShared(short, "marker", storage.Scope{}, "m")
		if err == nil && string(rec.Data) != `"old"` {
			err = fmt.Errorf("GetShared read %s", rec.Data)
		}
		return err
	})
	if err != nil {
		t.Fatalf("second GetShared while the first holds its lock = %v", err)
	}

	// A writer waits for the shared lock to be released.
	var released atomic.Bool
	writerDone := make(chan error, 1)
	go func() {
		writerDone <- s.Update(ctx, func(tx storage.Tx) error {
			rec, err := tx.Get(ctx, "marker", storage.Scope{}, "m")
			if err != nil {
				return err
			}
			if !released.Load() {
				return errors.New("the writer locked the record while a shared lock was held")
			}
			rec.Data = []byte(`"new"`)
			return tx.Update(ctx, rec)
		})
	}()
	select {
	case err := <-writerDone:
		t.Fatalf("the writer finished while a shared lock was held: %v", err)
	case <-time.After(300 * time.Millisecond):
	}
	released.Store(true)
	close(release)
	if err := <-holderDone; err != nil {
		t.Errorf("first Update = %v", err)
	}
	if err := <-writerDone; err != nil {
		t.Errorf("writer = %v", err)
	}
	// A shared read after the writer sees its change.
	if err := s.Update(ctx, func(tx storage.Tx) error {
		rec, err := getShared(tx)
		if err == nil && string(rec.Data) != `"new"` {
			err = fmt.Errorf("GetShared after the update read %s", rec.Data)
		}
		return err
	}); err != nil {
		t.Error(err)
	}
}

// TestPointLookupUsesPrimaryKey: before the table was first analyzed, the
// planner answered a lookup by primary key with the index by parent,
// walking every record of the kind in the scope, so reads slowed as records
// were added. The query plan of a Get names the primary key, and a List by
// parent the index by parent, with no statistics yet.
func TestPointLookupUsesPrimaryKey(t *testing.T) {
	schema := newSchema(t)
	s := openStore(t, schema)
	ctx := t.Context()
	err := s.Update(ctx, func(tx storage.Tx) error {
		for i := range 3000 {
			r := &storage.Record{Kind: "sm.version", Scope: scope, ID: fmt.Sprintf("s%04d/v", i), Parent: fmt.Sprintf("s%04d", i), Data: []byte("{}")}
			if err := tx.Insert(ctx, r); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(ctx, dsn(t))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, "SET search_path = "+pgx.Identifier{schema}.Sanitize()); err != nil {
		t.Fatal(err)
	}
	plan := func(q string, args ...any) string {
		rows, err := conn.Query(ctx, "EXPLAIN "+q, args...)
		if err != nil {
			t.Fatal(err)
		}
		lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			t.Fatal(err)
		}
		return strings.Join(lines, "\n")
	}
	get := plan("SELECT * FROM records WHERE kind = $1 AND account = $2 AND region = $3 AND id = $4", "sm.version", scope.Account, scope.Region, "s0042/v")
	if !strings.Contains(get, "records_pkey") {
		t.Errorf("a lookup by primary key is planned as:\n%s\nwant the primary key", get)
	}
	byParent := plan("SELECT * FROM records WHERE kind = $1 AND account = $2 AND region = $3 AND parent = $4 AND parent <> '' ORDER BY id", "sm.version", scope.Account, scope.Region, "s0042")
	if !strings.Contains(byParent, "records_by_parent") {
		t.Errorf("a lookup by parent is planned as:\n%s\nwant records_by_parent", byParent)
	}
}
