package app_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/kms"

	"github.com/keyfort/keyfort/internal/app"
	"github.com/keyfort/keyfort/internal/config"
	"github.com/keyfort/keyfort/internal/keyfortest"
	"github.com/keyfort/keyfort/internal/storage"
	"github.com/keyfort/keyfort/internal/storage/sqlite"
)

// storeWithKeys returns a data directory whose store holds two KMS keys.
func storeWithKeys(t *testing.T) config.Config {
	t.Helper()
	dir := t.TempDir()
	srv := keyfortest.Start(t, keyfortest.WithDataDir(dir))
	for range 2 {
		if _, err := srv.KMS().CreateKey(context.Background(), &kms.CreateKeyInput{}); err != nil {
			t.Fatalf("CreateKey: %v", err)
		}
	}
	srv.Close()
	cfg := config.Default()
	cfg.DataDir = dir
	return cfg
}

// editStore changes the data directory's store with fn.
func editStore(t *testing.T, cfg config.Config, fn func(ctx context.Context, tx storage.Tx) error) {
	t.Helper()
	ctx := context.Background()
	s, err := sqlite.Open(ctx, cfg.SQLitePath(), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Update(ctx, func(tx storage.Tx) error { return fn(ctx, tx) }); err != nil {
		t.Fatalf("edit the store: %v", err)
	}
}

// sealOneUnderAnotherKey changes the root key id in the header of one
// key material record of cfg's store, as an unfinished rotation leaves it.
func sealOneUnderAnotherKey(t *testing.T, cfg config.Config) {
	t.Helper()
	editStore(t, cfg, func(ctx context.Context, tx storage.Tx) error {
		recs, err := tx.Scan(ctx, "kms.material", storage.Position{}, 1)
		if err != nil || len(recs) != 1 {
			return errors.Join(err, errors.New("no material"))
		}
		recs[0].Sealed[4] ^= 0xff // the root key id of its header
		return tx.Update(ctx, recs[0])
	})
}

func TestBackupRefusesInconsistentStores(t *testing.T) {
	ctx := context.Background()
	t.Run("material under two root keys", func(t *testing.T) {
		cfg := storeWithKeys(t)
		sealOneUnderAnotherKey(t, cfg)
		file := filepath.Join(t.TempDir(), "b")
		_, err := app.Backup(ctx, cfg, file, app.BackupOptions{})
		if err == nil || !strings.Contains(err.Error(), "unfinished keyfort rootkey rotate") {
			t.Errorf("Backup of a store sealed under two root keys = %v, want it refused", err)
		}
		if des, _ := os.ReadDir(filepath.Dir(file)); len(des) != 0 {
			t.Errorf("a refused Backup left %d files", len(des))
		}
	})
	t.Run("rotation claim", func(t *testing.T) {
		// A rotation that moved the marker and re-sealed everything but was
		// stopped before it released its claim.
		cfg := storeWithKeys(t)
		editStore(t, cfg, func(ctx context.Context, tx storage.Tx) error {
			return tx.Insert(ctx, &storage.Record{Kind: "keyfort.rootkey", ID: "rotation",
				Data: []byte(`{"from":"0102030405060708","to":"0807060504030201","owner":"x","started":1,"heartbeat":0}`)})
		})
		_, err := app.Backup(ctx, cfg, filepath.Join(t.TempDir(), "b"), app.BackupOptions{})
		if err == nil || !strings.Contains(err.Error(), "keyfort rootkey rotate has not finished: the store holds its claim") {
			t.Errorf("Backup of a store with a rotation claim = %v, want it refused", err)
		}
	})
	t.Run("no marker", func(t *testing.T) {
		cfg := storeWithKeys(t)
		editStore(t, cfg, func(ctx context.Context, tx storage.Tx) error {
			return tx.Delete(ctx, "keyfort.rootkey", storage.Scope{}, "marker")
		})
		_, err := app.Backup(ctx, cfg, filepath.Join(t.TempDir(), "b"), app.BackupOptions{})
		if err == nil || !strings.Contains(err.Error(), "no root key marker") {
			t.Errorf("Backup of a store without a marker = %v, want it refused", err)
		}
	})
}

func TestRestoreRefusesAuditDirectory(t *testing.T) {
	ctx := context.Background()
	cfg := storeWithKeys(t)
	file := filepath.Join(t.TempDir(), "b")
	if _, err := app.Backup(ctx, cfg, file, app.BackupOptions{}); err != nil {
		t.Fatalf("Backup = %v", err)
	}
	target := config.Default()
	target.DataDir = filepath.Join(t.TempDir(), "new")
	target.AuditDir = t.TempDir()
	if err := os.WriteFile(filepath.Join(target.AuditDir, ".node"), []byte("old-node\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := app.Restore(ctx, target, file, app.RestoreOptions{})
	if err == nil || !strings.Contains(err.Error(), "the audit directory") {
		t.Errorf("Restore with a used audit directory = %v, want it refused", err)
	}
	if _, err := os.Stat(target.DataDir); !os.IsNotExist(err) {
		t.Errorf("a refused Restore made %s", target.DataDir)
	}
	target.AuditDir = filepath.Join(t.TempDir(), "audit")
	sum, err := app.Restore(ctx, target, file, app.RestoreOptions{})
	if err != nil || sum.Keys != 2 {
		t.Errorf("Restore = %+v, %v; want 2 keys", sum, err)
	}
}
