package app

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"

	"github.com/keyfort/keyfort/internal/audit"
	"github.com/keyfort/keyfort/internal/config"
	"github.com/keyfort/keyfort/internal/durable"
	"github.com/keyfort/keyfort/internal/storage"
	"github.com/keyfort/keyfort/internal/storage/sqlite"
)

// errLocked means another keyfort process holds the data directory (where
// the system can lock it: lock.go).
var errLocked = errors.New("the data directory is in use by another keyfort process")

// MigrateOptions configures Migrate.
type MigrateOptions struct {
	// Postgres is the URL of the PostgreSQL store (postgres:// or
	// postgresql://; a search_path parameter picks the schema).
	Postgres string
	// FromPostgres copies Postgres into a new embedded store in the data
	// directory; otherwise the data directory's embedded store is copied
	// to Postgres.
	FromPostgres bool
	// Logger receives the stores' operational messages (nil discards).
	Logger *slog.Logger
	// Progress, if set, is told how many records and audit events were
	// copied so far, and how many there are.
	Progress func(done, total int64)
}

// MigrateSummary says what Migrate copied.
type MigrateSummary struct {
	// Records and Events count what was copied: every record of every
	// kind, and every audit event.
	Records, Events int
	// Keys and Secrets count the KMS keys and secrets among the records.
	Keys, Secrets int
	// RootKeyID is the root key the records are sealed under: the
	// destination needs the same one.
	RootKeyID [8]byte
}

// Migrate copies a whole store to a new store of the other kind: `keyfort
// migrate`. Every record of every kind (found in the data, see
// storage.Exporter) is copied with its identity, Parent, Due, Created, Data
// and Sealed bytes as they are: sealed records are not opened, so no root
// key is needed, and they open in the destination under the same root key
// (their AAD names the record, not the store). Revisions start anew at 1:
// a Rev is only ever compared with one read a moment before, never stored
// elsewhere. The audit events (storage.Trail) are copied too, so
// LookupEvents answers alike.
//
// The source is read in one snapshot (View). An embedded source is held
// with the data directory's lock, which a serving server refuses us, and
// its audit trail is caught up first (what LookupEvents would do), so the
// store holds every event of the files. A PostgreSQL source may be served
// meanwhile: what its nodes write after the snapshot is not copied.
//
// The destination must hold no record and no event. It becomes usable only
// once the copy is whole: PostgreSQL is written in one transaction; the
// embedded store is written to <data>/keyfort.db.migrate, closed and renamed
// to keyfort.db. On error nothing is left (the migrated tables of an empty
// PostgreSQL schema aside, as `serve` would create them; the data directory
// is left as found, removed if Migrate created it).
func Migrate(ctx context.Context, cfg config.Config, opts MigrateOptions) (sum MigrateSummary, err error) {
	if !(config.Config{Store: opts.Postgres}).IsPostgres() {
		return sum, errors.New("app: migrate: the PostgreSQL store must be a postgres:// or postgresql:// URL")
	}
	if cfg.DataDir == "" {
		return sum, errors.New("app: migrate: the data directory must not be empty")
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if opts.FromPostgres {
		return migrateToEmbedded(ctx, cfg, opts.Postgres, log, opts.Progress)
	}
	return migrateToPostgres(ctx, cfg, opts.Postgres, log, opts.Progress)
}

// migrateToPostgres copies the embedded store of cfg.DataDir to dsn.
func migrateToPostgres(ctx context.Context, cfg config.Config, dsn string, log *slog.Logger, progress func(int64, int64)) (sum MigrateSummary, err error) {
	if _, err := os.Stat(cfg.SQLitePath()); errors.Is(err, fs.ErrNotExist) {
		return sum, fmt.Errorf("app: migrate: no Keyfort store in %s (%s does not exist)", cfg.DataDir, cfg.SQLitePath())
	}
	lock, err := lockDataDir(cfg.DataDir)
	if errors.Is(err, errLocked) {
		return sum, fmt.Errorf("app: migrate: %s is in use by another keyfort process (a server?): stop it first; the store must not change during the copy", cfg.DataDir)
	}
	if err != nil {
		return sum, fmt.Errorf("app: migrate: %w", err)
	}
	defer lock.release()
	src, err := openStore(ctx, config.Config{DataDir: cfg.DataDir}, "", log, nil)
	if err != nil {
		return sum, fmt.Errorf("app: migrate: %w", err)
	}
	defer closeStore(src, &err)
	// A lazy trail leaves events in the files until LookupEvents asks:
	// store them now, so the copy holds what LookupEvents shows.
	trail, err := audit.OpenTrail(ctx, cfg.AuditDirectory(), src.(storage.Trail), audit.TrailOptions{Lazy: true, Logger: log})
	if err != nil {
		return sum, fmt.Errorf("app: migrate: open the audit trail: %w", err)
	}
	err = trail.CatchUp(ctx)
	if cerr := trail.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return sum, fmt.Errorf("app: migrate: catch up the audit trail: %w", err)
	}
	dst, err := openPostgres(ctx, dsn, "", false, log)
	if err != nil {
		return sum, fmt.Errorf("app: migrate: %w", err)
	}
	defer closeStore(dst, &err)
	if sum, err = copyStore(ctx, src, dst, "the PostgreSQL store", progress); err != nil {
		return sum, fmt.Errorf("app: migrate: %w", err)
	}
	return sum, nil
}

// migrateToEmbedded copies the PostgreSQL store dsn into a new embedded
// store in cfg.DataDir.
func migrateToEmbedded(ctx context.Context, cfg config.Config, dsn string, log *slog.Logger, progress func(int64, int64)) (sum MigrateSummary, err error) {
	// A new store starts a new audit trail, as a restored one does.
	if dir := cfg.AuditDirectory(); !within(dir, cfg.DataDir) {
		if err := mustBeEmpty("migrate", dir, "the audit directory"); err != nil {
			return sum, err
		}
	}
	made, err := missingDirs(cfg.DataDir)
	if err != nil {
		return sum, fmt.Errorf("app: migrate: %w", err)
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return sum, fmt.Errorf("app: migrate: create data directory: %w", err)
	}
	lock, err := lockDataDir(cfg.DataDir)
	if err != nil {
		(&startUndo{madeDirs: made}).removeDirs()
		return sum, fmt.Errorf("app: migrate: %w", err)
	}
	tmp := cfg.SQLitePath() + ".migrate"
	var dst storage.Store
	defer func() {
		if err == nil {
			lock.release()
			return
		}
		if dst != nil {
			_ = dst.Close()
		}
		for _, suffix := range []string{"", "-wal", "-shm", "-journal"} {
			_ = os.Remove(tmp + suffix)
		}
		lock.discard()
		(&startUndo{madeDirs: made}).removeDirs()
	}()
	if err := mustBeEmpty("migrate", cfg.DataDir, "the data directory"); err != nil {
		return sum, err
	}
	src, err := openPostgres(ctx, dsn, "", false, log)
	if err != nil {
		return sum, fmt.Errorf("app: migrate: %w", err)
	}
	defer closeStore(src, &err)
	if dst, err = sqlite.Open(ctx, tmp, sqlite.Options{Logger: log.With("store", "sqlite")}); err != nil {
		return sum, fmt.Errorf("app: migrate: %w", err)
	}
	if sum, err = copyStore(ctx, src, dst, cfg.DataDir, progress); err != nil {
		return sum, fmt.Errorf("app: migrate: %w", err)
	}
	// Closing the last connection checkpoints the write-ahead log into the
	// file and removes it: the file alone is the store.
	err, dst = dst.Close(), nil
	if err != nil {
		return sum, fmt.Errorf("app: migrate: %w", err)
	}
	if _, err := os.Stat(tmp + "-wal"); !errors.Is(err, fs.ErrNotExist) {
		return sum, fmt.Errorf("app: migrate: %s-wal is left after close (%v): the copy is not in one file", filepath.Base(tmp), err)
	}
	if err := syncFile(tmp); err != nil {
		return sum, fmt.Errorf("app: migrate: %w", err)
	}
	if err := os.Rename(tmp, cfg.SQLitePath()); err != nil {
		return sum, fmt.Errorf("app: migrate: %w", err)
	}
	if err := durable.SyncDir(cfg.DataDir); err != nil {
		return sum, fmt.Errorf("app: migrate: %w", err)
	}
	return sum, nil
}

// copyPage is how many rows copyStore reads and writes at a time (one
// PostgreSQL round trip each).
const copyPage = 500

// copyStore copies every record and every event of src, read in one
// snapshot, into dst in one transaction, after checking that dst holds
// nothing (dstName names it in errors). The source must be a Keyfort store
// (summarize). Within the transaction the destination's kinds and counts are
// checked against the source's before it commits.
func copyStore(ctx context.Context, src, dst storage.Store, dstName string, progress func(int64, int64)) (MigrateSummary, error) {
	var sum MigrateSummary
	err := src.View(ctx, func(r storage.Reader) error {
		ex, kinds, events, err := contents(ctx, r, "source")
		if err != nil {
			return err
		}
		s, err := summarize(ctx, r)
		if err != nil {
			return fmt.Errorf("the source: %w", err)
		}
		sum = MigrateSummary{Keys: s.Keys, Secrets: s.Secrets, RootKeyID: s.RootKeyID}
		total := int64(events)
		for _, k := range kinds {
			total += int64(k.Records)
		}
		if err := mustHoldNothing(ctx, dst, dstName); err != nil {
			return err
		}
		return dst.Update(ctx, func(tx storage.Tx) error {
			done := int64(0)
			report := func() {
				if progress != nil {
					progress(done, total)
				}
			}
			report()
			exists := func(err error) error {
				if errors.Is(err, storage.ErrExists) {
					return fmt.Errorf("%s was written to during the copy (%w): is a server running on it?", dstName, err)
				}
				return err
			}
			bw, ok := tx.(storage.BulkWriter)
			if !ok {
				return fmt.Errorf("the destination store (%T) cannot be written in bulk", tx)
			}
			sum.Records, sum.Events = 0, 0 // fn may run again
			for _, k := range kinds {
				for after := (storage.Position{}); ; {
					recs, err := r.Scan(ctx, k.Kind, after, copyPage)
					if err != nil {
						return err
					}
					if err := bw.InsertAll(ctx, recs, nil); err != nil {
						return exists(fmt.Errorf("copy %s records: %w", k.Kind, err))
					}
					done += int64(len(recs))
					sum.Records += len(recs)
					report()
					if len(recs) < copyPage {
						break
					}
					after = storage.PositionOf(recs[len(recs)-1])
				}
			}
			for after := ""; ; {
				evs, err := ex.ScanEvents(ctx, after, copyPage)
				if err != nil {
					return err
				}
				if err := bw.InsertAll(ctx, nil, evs); err != nil {
					return exists(fmt.Errorf("copy audit events: %w", err))
				}
				done += int64(len(evs))
				sum.Events += len(evs)
				report()
				if len(evs) < copyPage {
					break
				}
				after = evs[len(evs)-1].ID
			}
			// The snapshot cannot change; what was written must be what
			// it held.
			_, got, gotEvents, err := contents(ctx, tx, "destination")
			if err != nil {
				return err
			}
			if !slices.Equal(got, kinds) || gotEvents != events {
				return fmt.Errorf("the copy holds %v and %d events, the source %v and %d events", got, gotEvents, kinds, events)
			}
			return nil
		})
	})
	return sum, err
}

// mustHoldNothing refuses a destination that holds a record or an event.
func mustHoldNothing(ctx context.Context, dst storage.Store, name string) error {
	return dst.View(ctx, func(r storage.Reader) error {
		_, kinds, events, err := contents(ctx, r, "destination")
		if err != nil {
			return err
		}
		if len(kinds) > 0 || events > 0 {
			n := 0
			for _, k := range kinds {
				n += k.Records
			}
			return fmt.Errorf("%s already holds %d records and %d audit events: migrate only into an empty store", name, n, events)
		}
		return nil
	})
}

// contents returns r as a storage.Exporter, the kinds it holds (with their
// counts) and its number of audit events; which ("source", "destination")
// names the store in errors.
func contents(ctx context.Context, r storage.Reader, which string) (storage.Exporter, []storage.KindCount, int, error) {
	ex, ok := r.(storage.Exporter)
	if !ok {
		return nil, nil, 0, fmt.Errorf("the %s store (%T) cannot be read whole", which, r)
	}
	kinds, err := ex.Kinds(ctx)
	if err != nil {
		return nil, nil, 0, err
	}
	events, err := ex.CountEvents(ctx)
	if err != nil {
		return nil, nil, 0, err
	}
	return ex, kinds, events, nil
}

// closeStore closes s, reporting its error in *err if there is none yet.
func closeStore(s storage.Store, err *error) {
	if cerr := s.Close(); cerr != nil && *err == nil {
		*err = fmt.Errorf("app: migrate: close store: %w", cerr)
	}
}

// syncFile fsyncs the file at path.
func syncFile(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}
