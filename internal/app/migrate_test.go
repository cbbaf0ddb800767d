package app_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/keyfort/keyfort/internal/app"
	"github.com/keyfort/keyfort/internal/storage"
	"github.com/keyfort/keyfort/internal/storage/postgres"
	"github.com/keyfort/keyfort/internal/storage/postgres/pgtest"
)

// migrateSchema returns the URL of a new, empty PostgreSQL schema, dropped
// at cleanup.
func migrateSchema(t *testing.T) string {
	t.Helper()
	return pgtest.CreateSchema(t, pgtest.DSN(t), "keyfort_migrate_")
}

// pgHolds returns how many records and events the PostgreSQL store holds.
func pgHolds(t *testing.T, dsn string) (records, events int) {
	t.Helper()
	ctx := context.Background()
	s, err := postgres.Open(ctx, dsn, postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	err = s.View(ctx, func(r storage.Reader) error {
		kinds, err := r.(storage.Exporter).Kinds(ctx)
		for _, k := range kinds {
			records += k.Records
		}
		if err == nil {
			events, err = r.(storage.Exporter).CountEvents(ctx)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return records, events
}

// TestMigrateFailuresLeaveNothing fails a migration in the middle of the
// copy, each way, and checks that the destination holds nothing: the
// PostgreSQL transaction rolled back, the new data directory removed.
func TestMigrateFailuresLeaveNothing(t *testing.T) {
	ctx := context.Background()
	cfg := storeWithKeys(t)
	dsn := migrateSchema(t)

	// A record PostgreSQL cannot hold (its text columns are UTF-8), sorted
	// after every other kind: the copy fails after writing the rest.
	editStore(t, cfg, func(ctx context.Context, tx storage.Tx) error {
		return tx.Insert(ctx, &storage.Record{Kind: "zz.test", ID: "not utf-8 \xff"})
	})
	var copied int64
	_, err := app.Migrate(ctx, cfg, app.MigrateOptions{Postgres: dsn, Progress: func(done, _ int64) { copied = done }})
	if err == nil || !strings.Contains(err.Error(), "copy zz.test") {
		t.Fatalf("Migrate of a record PostgreSQL refuses = %v, want it to fail", err)
	}
	if copied < 5 {
		t.Errorf("the failing copy wrote %d records before failing; the test means little", copied)
	}
	if n, e := pgHolds(t, dsn); n != 0 || e != 0 {
		t.Errorf("after a failed Migrate the PostgreSQL store holds %d records and %d events, want none", n, e)
	}

	editStore(t, cfg, func(ctx context.Context, tx storage.Tx) error {
		return tx.Delete(ctx, "zz.test", storage.Scope{}, "not utf-8 \xff")
	})
	sum, err := app.Migrate(ctx, cfg, app.MigrateOptions{Postgres: dsn})
	if err != nil || sum.Keys != 2 || sum.Records < 5 || sum.Events < 2 {
		t.Fatalf("Migrate = %+v, %v; want 2 keys and their records and events", sum, err)
	}
	if n, e := pgHolds(t, dsn); n != sum.Records || e != sum.Events {
		t.Errorf("the PostgreSQL store holds %d records and %d events, Migrate said %d and %d", n, e, sum.Records, sum.Events)
	}

	// Back into a new directory, canceled half-way.
	back := cfg
	back.DataDir = filepath.Join(t.TempDir(), "new", "data")
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	_, err = app.Migrate(cctx, back, app.MigrateOptions{Postgres: dsn, FromPostgres: true, Progress: func(done, total int64) {
		if done == total/2 {
			cancel()
		}
	}})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Migrate canceled half-way = %v, want context.Canceled", err)
	}
	if _, err := os.Stat(filepath.Dir(back.DataDir)); !os.IsNotExist(err) {
		t.Errorf("a failed Migrate left %s (%v), want the directories it made removed", filepath.Dir(back.DataDir), err)
	}
	got, err := app.Migrate(ctx, back, app.MigrateOptions{Postgres: dsn, FromPostgres: true})
	if err != nil || got != sum {
		t.Fatalf("Migrate back = %+v, %v; want %+v", got, err, sum)
	}
	des, err := os.ReadDir(back.DataDir)
	if err != nil || len(des) != 2 || des[0].Name() != "keyfort.db" || des[1].Name() != "keyfort.lock" {
		t.Errorf("data directory after Migrate = %v, %v; want keyfort.db and keyfort.lock", des, err)
	}
}

// TestMigrateRefusesInconsistentSources refuses, as backup does, a store
// whose key material is under two root keys (an unfinished rotation) and
// one without the root key marker.
func TestMigrateRefusesInconsistentSources(t *testing.T) {
	ctx := context.Background()
	dsn := migrateSchema(t)
	cfg := storeWithKeys(t)
	sealOneUnderAnotherKey(t, cfg)
	if _, err := app.Migrate(ctx, cfg, app.MigrateOptions{Postgres: dsn}); err == nil || !strings.Contains(err.Error(), "unfinished keyfort rootkey rotate") {
		t.Errorf("Migrate of a store sealed under two root keys = %v, want it refused", err)
	}
	cfg = storeWithKeys(t)
	editStore(t, cfg, func(ctx context.Context, tx storage.Tx) error {
		return tx.Delete(ctx, "keyfort.rootkey", storage.Scope{}, "marker")
	})
	if _, err := app.Migrate(ctx, cfg, app.MigrateOptions{Postgres: dsn}); err == nil || !strings.Contains(err.Error(), "no root key marker") {
		t.Errorf("Migrate of a store without a marker = %v, want it refused", err)
	}
	if n, e := pgHolds(t, dsn); n != 0 || e != 0 {
		t.Errorf("refused Migrates wrote %d records and %d events", n, e)
	}
}
