package app

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/keyfort/keyfort/internal/config"
	"github.com/keyfort/keyfort/internal/durable"
	"github.com/keyfort/keyfort/internal/envelope"
	"github.com/keyfort/keyfort/internal/storage"
	"github.com/keyfort/keyfort/internal/storage/sqlite"
)

// ErrPostgresBackup is the error of `keyfort backup` and `keyfort restore`
// on a PostgreSQL store, whose own tools do the job.
var ErrPostgresBackup = errors.New("the store is PostgreSQL: back it up with pg_dump and restore it with pg_restore; keyfort backup and restore are for the embedded store")

// Record kinds counted in a backup's summary (the services' kms.key and
// sm.secret).
const (
	keyKind    storage.Kind = "kms.key"
	secretKind storage.Kind = "sm.secret"
)

// BackupOptions configures Backup.
type BackupOptions struct {
	// Force replaces an existing file.
	Force bool
	// Version names this program in the backup's manifest.
	Version string
	// Progress, if not nil, is told how far the backup is (bytes).
	Progress func(phase string, done, total int64)
	// Now is the clock (nil means time.Now).
	Now func() time.Time
}

// BackupSummary describes a backup: what Backup wrote, what Restore read.
type BackupSummary struct {
	Path    string
	Bytes   int64
	Created time.Time
	Version string
	// RootKeyID is the root key the backup's records are sealed under: the
	// backup does not hold it, and is of no use without it.
	RootKeyID [8]byte
	// Keys and Secrets count the KMS keys and secrets (of every account
	// and region).
	Keys, Secrets int
}

// Backup writes a consistent backup of the embedded store of cfg's data
// directory to file, while a server may be serving it: `keyfort backup`.
// It takes no lock and writes nothing in the data directory (see
// sqlite.Backup). The file is written beside its final name, checked as
// Restore checks it, synced, and renamed into place (mode 0600); an
// existing file is refused unless opts.Force. On error nothing is left
// behind. The backup holds the sealed records only, never the root key.
func Backup(ctx context.Context, cfg config.Config, file string, opts BackupOptions) (sum BackupSummary, err error) {
	if cfg.IsPostgres() {
		return sum, fmt.Errorf("app: backup: %w", ErrPostgresBackup)
	}
	src := cfg.SQLitePath()
	if _, err := os.Stat(src); errors.Is(err, fs.ErrNotExist) {
		return sum, fmt.Errorf("app: backup: no Keyfort store in %s (%s does not exist)", cfg.DataDir, src)
	}
	dst, err := filepath.Abs(file)
	if err != nil {
		return sum, fmt.Errorf("app: backup: %w", err)
	}
	switch fi, err := os.Stat(dst); {
	case err == nil && fi.IsDir():
		return sum, fmt.Errorf("app: backup: %s is a directory", file)
	case err == nil && !opts.Force:
		return sum, fmt.Errorf("app: backup: %s exists (--force replaces it)", file)
	case err != nil && !errors.Is(err, fs.ErrNotExist):
		return sum, fmt.Errorf("app: backup: %w", err)
	}
	var suffix [6]byte
	if _, err := rand.Read(suffix[:]); err != nil {
		return sum, fmt.Errorf("app: backup: %w", err)
	}
	tmp := filepath.Join(filepath.Dir(dst), "."+filepath.Base(dst)+".tmp-"+hex.EncodeToString(suffix[:]))
	defer func() {
		if err != nil {
			_ = os.Remove(tmp)
		}
	}()
	if _, err := sqlite.Backup(ctx, src, tmp, sqlite.BackupOptions{Version: opts.Version, Now: opts.Now, Progress: opts.Progress}); err != nil {
		return sum, fmt.Errorf("app: backup: %w", err)
	}
	if sum, err = verifyBackup(ctx, tmp, opts.Progress); err != nil {
		return sum, fmt.Errorf("app: backup: the copy does not verify: %w", err)
	}
	if err := os.Rename(tmp, dst); err != nil {
		return sum, fmt.Errorf("app: backup: %w", err)
	}
	if err := durable.SyncDir(filepath.Dir(dst)); err != nil {
		return sum, fmt.Errorf("app: backup: %w", err)
	}
	sum.Path = dst
	return sum, nil
}

// verifyBackup checks the backup at path (sqlite.VerifyBackup) and what a
// Keyfort store must hold: the root key marker, and every key material
// sealed under the root key the marker names (else it was taken during an
// unfinished `keyfort rootkey rotate`, and no one root key opens it).
func verifyBackup(ctx context.Context, path string, progress func(string, int64, int64)) (BackupSummary, error) {
	var sum BackupSummary
	man, err := sqlite.VerifyBackup(ctx, path, func(r storage.Reader) error {
		var err error
		sum, err = summarize(ctx, r)
		if errors.Is(err, errUnfinishedRotation) || errors.Is(err, errRotationClaimed) {
			return fmt.Errorf("%w; finish the rotation and back up again", err)
		}
		return err
	}, progress)
	if err != nil {
		return sum, err
	}
	sum.Bytes, sum.Created, sum.Version = man.Bytes, man.Created, man.Version
	return sum, nil
}

// errUnfinishedRotation is wrapped by summarize's error for a store whose
// key material is sealed under two root keys.
var errUnfinishedRotation = errors.New("an unfinished keyfort rootkey rotate left key material under two root keys")

// errRotationClaimed is summarize's error for a store that holds the claim
// of a rotation (rotationClaim): it has not finished, whatever the key
// material says.
var errRotationClaimed = errors.New("a keyfort rootkey rotate has not finished: the store holds its claim")

// summarize reads what a Keyfort store must hold and says what it holds:
// the root key marker, every key material sealed under the root key the
// marker names (else it was taken during an unfinished `keyfort rootkey
// rotate`, and no one root key opens it), and how many keys and secrets.
func summarize(ctx context.Context, r storage.Reader) (BackupSummary, error) {
	var sum BackupSummary
	marker, err := r.Get(ctx, markerKind, markerScope, markerID)
	if errors.Is(err, storage.ErrNotFound) {
		return sum, errors.New("it holds no root key marker (the store never finished starting)")
	}
	if err != nil {
		return sum, err
	}
	id, ok := envelope.SealedKeyID(marker.Sealed)
	if !ok {
		return sum, errors.New("its root key marker is malformed")
	}
	sum.RootKeyID = id
	switch _, err := r.Get(ctx, markerKind, markerScope, claimID); {
	case err == nil:
		return sum, errRotationClaimed
	case !errors.Is(err, storage.ErrNotFound):
		return sum, err
	}
	for after := (storage.Position{}); ; {
		recs, err := r.Scan(ctx, sealedKind, after, 500)
		if err != nil {
			return sum, err
		}
		for _, rec := range recs {
			if got, ok := envelope.SealedKeyID(rec.Sealed); !ok || got != id {
				return sum, fmt.Errorf("key material %s is not sealed under the marker's root key %x: %w", rec.ID, id, errUnfinishedRotation)
			}
		}
		if len(recs) < 500 {
			break
		}
		after = storage.PositionOf(recs[len(recs)-1])
	}
	for kind, n := range map[storage.Kind]*int{keyKind: &sum.Keys, secretKind: &sum.Secrets} {
		for after := (storage.Position{}); ; {
			recs, err := r.Scan(ctx, kind, after, 1000)
			if err != nil {
				return sum, err
			}
			*n += len(recs)
			if len(recs) < 1000 {
				break
			}
			after = storage.PositionOf(recs[len(recs)-1])
		}
	}
	return sum, nil
}

// RestoreOptions configures Restore.
type RestoreOptions struct {
	// Progress, if not nil, is told how far the restore is (bytes).
	Progress func(phase string, done, total int64)
}

// Restore installs the backup file as the store of cfg's data directory:
// `keyfort restore`. The data directory must be new or empty (and the
// audit directory too, when it is elsewhere): a restored store starts a
// new audit trail (see docs/ARCHITECTURE.md). With the directory's lock
// held, the file is copied beside keyfort.db, verified (structure, digest,
// root key marker), stripped of its manifest, synced and renamed into
// place. On error the data directory is left as it was found (removed if
// Restore created it). The server then needs the root key the backup
// names (BackupSummary.RootKeyID), and refuses to start with another.
func Restore(ctx context.Context, cfg config.Config, file string, opts RestoreOptions) (sum BackupSummary, err error) {
	if cfg.IsPostgres() {
		return sum, fmt.Errorf("app: restore: %w", ErrPostgresBackup)
	}
	in, err := os.Open(file)
	if err != nil {
		return sum, fmt.Errorf("app: restore: %w", err)
	}
	defer in.Close()
	fi, err := in.Stat()
	if err != nil {
		return sum, fmt.Errorf("app: restore: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return sum, fmt.Errorf("app: restore: %s is not a file", file)
	}
	if dir := cfg.AuditDirectory(); !within(dir, cfg.DataDir) {
		if err := mustBeEmpty("restore", dir, "the audit directory"); err != nil {
			return sum, err
		}
	}

	made, err := missingDirs(cfg.DataDir)
	if err != nil {
		return sum, fmt.Errorf("app: restore: %w", err)
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return sum, fmt.Errorf("app: restore: create data directory: %w", err)
	}
	lock, err := lockDataDir(cfg.DataDir)
	if err != nil {
		(&startUndo{madeDirs: made}).removeDirs()
		return sum, err
	}
	tmp := cfg.SQLitePath() + ".restore"
	defer func() {
		if err == nil {
			lock.release()
			return
		}
		_ = os.Remove(tmp)
		_ = os.Remove(tmp + "-journal")
		lock.discard()
		(&startUndo{madeDirs: made}).removeDirs()
	}()
	if err := mustBeEmpty("restore", cfg.DataDir, "the data directory"); err != nil {
		return sum, err
	}

	if err := copyFile(ctx, in, tmp, fi.Size(), opts.Progress); err != nil {
		return sum, fmt.Errorf("app: restore: %w", err)
	}
	if sum, err = verifyBackup(ctx, tmp, opts.Progress); err != nil {
		return sum, fmt.Errorf("app: restore: %s: %w", file, err)
	}
	if err := sqlite.RemoveManifest(ctx, tmp); err != nil {
		return sum, fmt.Errorf("app: restore: %w", err)
	}
	if err := os.Rename(tmp, cfg.SQLitePath()); err != nil {
		return sum, fmt.Errorf("app: restore: %w", err)
	}
	if err := durable.SyncDir(cfg.DataDir); err != nil {
		return sum, fmt.Errorf("app: restore: %w", err)
	}
	sum.Path = file
	return sum, nil
}

// mustBeEmpty refuses a directory that holds anything but the lock file;
// op names the command (restore, migrate).
func mustBeEmpty(op, dir, what string) error {
	des, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("app: %s: %w", op, err)
	}
	for _, de := range des {
		if de.Name() != lockFileName {
			return fmt.Errorf("app: %s: %s %s is not empty (it holds %s): %s only into a new or empty directory", op, what, dir, de.Name(), op)
		}
	}
	return nil
}

// within reports whether path is dir or inside it.
func within(path, dir string) bool {
	p, err1 := filepath.Abs(path)
	d, err2 := filepath.Abs(dir)
	if err1 != nil || err2 != nil {
		return false
	}
	rel, err := filepath.Rel(d, p)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator))
}

// copyFile copies size bytes of in to the new file dst (mode 0600) and
// syncs it, reporting progress.
func copyFile(ctx context.Context, in io.Reader, dst string, size int64, progress func(string, int64, int64)) (err error) {
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := out.Close(); cerr != nil && err == nil {
			err = cerr
		}
	}()
	buf := make([]byte, 1<<20)
	var done int64
	if progress != nil {
		progress(sqlite.PhaseCopy, 0, size)
	}
	last := time.Time{}
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		n, rerr := in.Read(buf)
		if n > 0 {
			if _, err := out.Write(buf[:n]); err != nil {
				return err
			}
			done += int64(n)
			if progress != nil && done < size && time.Since(last) >= 100*time.Millisecond {
				last = time.Now()
				progress(sqlite.PhaseCopy, done, max(size, done))
			}
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			return rerr
		}
	}
	if progress != nil {
		progress(sqlite.PhaseCopy, done, done)
	}
	return out.Sync()
}
