package sqlite_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keyfort/keyfort/internal/storage"
	"github.com/keyfort/keyfort/internal/storage/sqlite"
)

// TestBackupWhileWriting takes a backup while a writer commits: the backup
// holds every record committed before it began, only whole transactions
// (each writes a pair), and verifies; the live store is not changed by it.
func TestBackupWhileWriting(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := openStore(t, filepath.Join(dir, "keyfort.db"), sqlite.Options{})
	payload := bytes.Repeat([]byte("x"), 3000)
	writePair := func(i int) error {
		return s.Update(ctx, func(tx storage.Tx) error {
			for _, kind := range []storage.Kind{"a", "b"} {
				if err := tx.Insert(ctx, &storage.Record{Kind: kind, Scope: scope, ID: fmt.Sprintf("%06d", i), Sealed: payload}); err != nil {
					return err
				}
			}
			return nil
		})
	}
	for i := range 2000 {
		if err := writePair(i); err != nil {
			t.Fatalf("Update = %v", err)
		}
	}
	var next atomic.Int64
	next.Store(2000)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			i := int(next.Add(1) - 1)
			if err := writePair(i); err != nil {
				t.Errorf("Update during the backup = %v", err)
				return
			}
		}
	}()
	for next.Load() < 2050 {
		time.Sleep(time.Millisecond) // let the writer get going
	}
	before := int(next.Load()) - 1 // every pair below was committed before the backup began

	dst := filepath.Join(dir, "backup.db")
	phases := map[string]int{}
	man, err := sqlite.Backup(ctx, filepath.Join(dir, "keyfort.db"), dst, sqlite.BackupOptions{
		Version: "test",
		Progress: func(phase string, done, total int64) {
			phases[phase]++
			if total > 0 && done > total {
				t.Errorf("progress %s: %d of %d", phase, done, total)
			}
		},
	})
	close(stop)
	wg.Wait()
	if err != nil {
		t.Fatalf("Backup = %v", err)
	}
	if phases[sqlite.PhaseCopy] == 0 || phases[sqlite.PhaseCompact] == 0 {
		t.Errorf("progress phases = %v, want copying and compacting", phases)
	}
	fi, err := os.Stat(dst)
	if err != nil || fi.Mode().Perm() != 0o600 || fi.Size() != man.Bytes {
		t.Errorf("backup file: %v, %v; want mode 0600 and %d bytes", fi, err, man.Bytes)
	}
	for _, leftover := range []string{dst + ".raw", dst + "-journal", dst + ".raw-wal"} {
		if _, err := os.Stat(leftover); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s left beside the backup", leftover)
		}
	}

	counts := map[storage.Kind]map[string]bool{"a": {}, "b": {}}
	got, err := sqlite.VerifyBackup(ctx, dst, func(r storage.Reader) error {
		for kind := range counts {
			recs, err := r.Scan(ctx, kind, storage.Position{}, 0)
			if err != nil {
				return err
			}
			for _, rec := range recs {
				counts[kind][rec.ID] = true
			}
		}
		return nil
	}, nil)
	if err != nil {
		t.Fatalf("VerifyBackup = %v", err)
	}
	if got.Version != "test" || !bytes.Equal(got.Digest, man.Digest) {
		t.Errorf("VerifyBackup manifest = %+v, want %+v", got, man)
	}
	for i := range before {
		if id := fmt.Sprintf("%06d", i); !counts["a"][id] {
			t.Fatalf("record %s committed before the backup is not in it", id)
		}
	}
	for id := range counts["a"] {
		if !counts["b"][id] {
			t.Errorf("record a/%s is in the backup without b/%s: half a transaction", id, id)
		}
	}
	if len(counts["a"]) != len(counts["b"]) {
		t.Errorf("backup holds %d a and %d b records", len(counts["a"]), len(counts["b"]))
	}
	t.Logf("backup of %d pairs (%d committed before it began, %d in all): %d bytes", len(counts["a"]), before, next.Load(), man.Bytes)

	// It refuses to overwrite, and leaves the existing file alone.
	if _, err := sqlite.Backup(ctx, filepath.Join(dir, "keyfort.db"), dst, sqlite.BackupOptions{}); err == nil {
		t.Errorf("Backup onto an existing file = nil, want an error")
	}
	if _, err := sqlite.VerifyBackup(ctx, dst, nil, nil); err != nil {
		t.Errorf("the existing backup after a refused Backup: %v", err)
	}
}

func TestVerifyBackupRefuses(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	src := filepath.Join(dir, "keyfort.db")
	s := openStore(t, src, sqlite.Options{})
	secret := bytes.Repeat([]byte("SEALED-RECORD-BYTES-"), 20)
	if err := s.Update(ctx, func(tx storage.Tx) error {
		return tx.Insert(ctx, &storage.Record{Kind: "k", Scope: scope, ID: "one", Sealed: secret})
	}); err != nil {
		t.Fatal(err)
	}
	good := filepath.Join(dir, "good.db")
	if _, err := sqlite.Backup(ctx, src, good, sqlite.BackupOptions{}); err != nil {
		t.Fatalf("Backup = %v", err)
	}
	orig, err := os.ReadFile(good)
	if err != nil {
		t.Fatal(err)
	}
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	flipped := bytes.Clone(orig)
	i := bytes.Index(flipped, secret)
	if i < 0 {
		t.Fatal("the record's bytes are not in the backup file")
	}
	flipped[i+5] ^= 1
	live, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, path, want string
	}{
		{"value flipped", write("flipped.db", flipped), "do not match the digest"},
		{"truncated", write("truncated.db", orig[:len(orig)/2]), "not a usable Keyfort backup"},
		{"not sqlite", write("text.db", bytes.Repeat([]byte("hello "), 100)), "not an SQLite database"},
		{"live WAL database", write("live.db", live), "write-ahead-log"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := sqlite.VerifyBackup(ctx, tt.path, nil, nil)
			if !errors.Is(err, sqlite.ErrNotBackup) || !strings.Contains(err.Error(), tt.want) || strings.Contains(err.Error(), "\n") {
				t.Errorf("VerifyBackup(%s) = %v, want one line with %q", tt.name, err, tt.want)
			}
		})
	}
	// The check of the layer above is run and its error returned.
	sentinel := errors.New("no marker")
	if _, err := sqlite.VerifyBackup(ctx, good, func(storage.Reader) error { return sentinel }, nil); !errors.Is(err, sentinel) || !errors.Is(err, sqlite.ErrNotBackup) {
		t.Errorf("VerifyBackup with a failing check = %v, want it wrapped", err)
	}
	// RemoveManifest leaves a store that opens with every record.
	if err := sqlite.RemoveManifest(ctx, good); err != nil {
		t.Fatalf("RemoveManifest = %v", err)
	}
	restored := openStore(t, good, sqlite.Options{})
	rec, err := restored.Get(ctx, "k", scope, "one")
	if err != nil || !bytes.Equal(rec.Sealed, secret) {
		t.Errorf("restored Get = %v, %v", rec, err)
	}
}
