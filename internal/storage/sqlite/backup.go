package sqlite

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"io"
	"math"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/keyfort/keyfort/internal/storage"

	sqlite "modernc.org/sqlite"
)

// A backup (`keyfort backup`) is an SQLite database file holding a
// consistent copy of the store's tables, compacted (no free pages, so no
// bytes of deleted records), plus one table of its own, keyfort_backup:
// the format, when it was taken, by which version, and a SHA-256 digest of
// every row of every other table. PRAGMA integrity_check finds a damaged
// structure; the digest finds a damaged value (a flipped bit inside a
// sealed record, which integrity_check cannot see).
const (
	manifestTable  = "keyfort_backup"
	manifestFormat = 1
	// backupStepPages is how many pages one backup step copies (4 MiB at
	// SQLite's default 4 KiB page): the unit of the copy's progress.
	backupStepPages = 1024
)

// Phases of [Backup] and [VerifyBackup], as given to a [Progress].
const (
	PhaseCopy    = "copying"
	PhaseCompact = "compacting"
	PhaseVerify  = "verifying"
)

// Progress is told how far a long operation is: done of total bytes in
// the named phase (total 0 when unknown). It is called from the goroutine
// running the operation, at most a few times a second per phase, and last
// with done == total when the phase ends.
type Progress func(phase string, done, total int64)

// BackupOptions configures [Backup].
type BackupOptions struct {
	// Version names the program that takes the backup (kept in the
	// manifest).
	Version string
	// Now is the clock (nil means time.Now).
	Now func() time.Time
	// Progress, if not nil, is told how far the copy is.
	Progress Progress
}

// Manifest is what a backup says of itself.
type Manifest struct {
	Format  int
	Created time.Time
	Version string
	// Digest is the SHA-256 of the rows of every table but the manifest's.
	Digest []byte
	// Bytes is the size of the backup file.
	Bytes int64
}

// Backup writes a consistent copy of the database file src, which another
// process may be serving, to dst, which must not exist; dst is created with
// mode 0600 and synced to disk. It never writes to src, its log or its
// directory: it reads through a read-only connection, whose one read
// transaction pins a snapshot while SQLite's online backup copies the
// pages (writers go on meanwhile; the write-ahead log cannot be
// checkpointed past the snapshot until the copy ends). The copy is then
// compacted (VACUUM INTO dst) away from the live database and the manifest
// added. On error nothing is left at dst nor beside it.
func Backup(ctx context.Context, src, dst string, opts BackupOptions) (man Manifest, err error) {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	progress := opts.Progress
	if progress == nil {
		progress = func(string, int64, int64) {}
	}
	fi, err := os.Stat(src)
	if err != nil {
		return man, fmt.Errorf("sqlite: backup: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return man, fmt.Errorf("sqlite: backup: %s is not a file", src)
	}
	if err := createEmpty(dst); err != nil {
		return man, fmt.Errorf("sqlite: backup: %w", err)
	}
	raw := dst + ".raw"
	defer func() {
		removeDB(raw)
		if err != nil {
			removeDB(dst)
		}
	}()
	if err := createEmpty(raw); err != nil {
		return man, fmt.Errorf("sqlite: backup: %w", err)
	}
	if err := copyPages(ctx, src, raw, progress); err != nil {
		return man, err
	}
	if err := compactInto(ctx, raw, dst, progress); err != nil {
		return man, err
	}
	removeDB(raw)
	man = Manifest{Format: manifestFormat, Created: opts.Now().UTC().Truncate(time.Second), Version: opts.Version}
	if err := writeManifest(ctx, dst, &man); err != nil {
		return man, err
	}
	if err := syncFile(dst); err != nil {
		return man, fmt.Errorf("sqlite: backup: sync %s: %w", dst, err)
	}
	if fi, err := os.Stat(dst); err == nil {
		man.Bytes = fi.Size()
	}
	return man, nil
}

// copyPages copies src page by page into the empty file raw inside one
// read transaction of a read-only connection.
func copyPages(ctx context.Context, src, raw string, progress Progress) error {
	abs, err := filepath.Abs(src)
	if err != nil {
		return fmt.Errorf("sqlite: backup: %w", err)
	}
	db, err := sql.Open("sqlite", fileURI(abs)+fmt.Sprintf("?mode=ro&_pragma=busy_timeout(%d)", busyTimeoutMS))
	if err != nil {
		return fmt.Errorf("sqlite: backup: open %s: %w", src, err)
	}
	defer db.Close()
	conn, err := db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("sqlite: backup: open %s: %w", src, err)
	}
	defer conn.Close()
	// The snapshot: BEGIN is deferred, the first read takes it, and the
	// backup's steps run inside it (so no commit of another process
	// restarts the copy).
	if _, err := conn.ExecContext(ctx, "BEGIN"); err != nil {
		return fmt.Errorf("sqlite: backup: begin: %w", err)
	}
	defer conn.ExecContext(context.WithoutCancel(ctx), "ROLLBACK") //nolint:errcheck // read only
	var tables int
	if err := conn.QueryRowContext(ctx, "SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name IN ('schema_migrations', 'records')").Scan(&tables); err != nil {
		return fmt.Errorf("sqlite: backup: read %s: %w", src, err)
	}
	if tables != 2 {
		return fmt.Errorf("sqlite: backup: %s is not a Keyfort store (no records table)", src)
	}
	var pageSize, pages int64
	if err := conn.QueryRowContext(ctx, "PRAGMA page_size").Scan(&pageSize); err != nil {
		return fmt.Errorf("sqlite: backup: read %s: %w", src, err)
	}
	if err := conn.QueryRowContext(ctx, "PRAGMA page_count").Scan(&pages); err != nil {
		return fmt.Errorf("sqlite: backup: read %s: %w", src, err)
	}
	return conn.Raw(func(dc any) error {
		b, ok := dc.(interface {
			NewBackup(string) (*sqlite.Backup, error)
		})
		if !ok {
			return fmt.Errorf("sqlite: backup: driver connection %T has no online backup", dc)
		}
		bk, err := b.NewBackup(fileURI(raw))
		if err != nil {
			return fmt.Errorf("sqlite: backup: start: %w", err)
		}
		progress(PhaseCopy, 0, pages*pageSize)
		last := time.Time{}
		for {
			if err := ctx.Err(); err != nil {
				_ = bk.Finish()
				return fmt.Errorf("sqlite: backup: %w", err)
			}
			more, err := bk.Step(backupStepPages)
			if err != nil {
				_ = bk.Finish()
				return fmt.Errorf("sqlite: backup: copy: %w", err)
			}
			total := int64(bk.PageCount())
			if !more {
				progress(PhaseCopy, total*pageSize, total*pageSize)
				break
			}
			if now := time.Now(); now.Sub(last) >= 100*time.Millisecond {
				last = now
				progress(PhaseCopy, (total-int64(bk.Remaining()))*pageSize, total*pageSize)
			}
		}
		if err := bk.Finish(); err != nil {
			return fmt.Errorf("sqlite: backup: finish: %w", err)
		}
		return nil
	})
}

// compactInto rewrites the private copy raw into the empty file dst with
// VACUUM INTO, reporting dst's growth against the expected size.
func compactInto(ctx context.Context, raw, dst string, progress Progress) error {
	db, err := sql.Open("sqlite", fileURI(raw)+"?_pragma=journal_mode(OFF)")
	if err != nil {
		return fmt.Errorf("sqlite: backup: compact: %w", err)
	}
	defer db.Close()
	var pages, free, pageSize int64
	for q, v := range map[string]*int64{"PRAGMA page_count": &pages, "PRAGMA freelist_count": &free, "PRAGMA page_size": &pageSize} {
		if err := db.QueryRowContext(ctx, q).Scan(v); err != nil {
			return fmt.Errorf("sqlite: backup: compact: %s: %w", q, err)
		}
	}
	total := (pages - free) * pageSize
	progress(PhaseCompact, 0, total)
	stop := make(chan struct{})
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		t := time.NewTicker(200 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				if fi, err := os.Stat(dst); err == nil {
					progress(PhaseCompact, min(fi.Size(), total), total)
				}
			}
		}
	}()
	_, err = db.ExecContext(ctx, "VACUUM INTO ?", dst)
	close(stop)
	<-watched
	if err != nil {
		return fmt.Errorf("sqlite: backup: compact: %w", err)
	}
	progress(PhaseCompact, total, total)
	return nil
}

// writeManifest adds the manifest table to the backup dst, with the digest
// of its other tables.
func writeManifest(ctx context.Context, dst string, man *Manifest) error {
	db, err := sql.Open("sqlite", fileURI(dst)+"?_pragma=journal_mode(OFF)")
	if err != nil {
		return fmt.Errorf("sqlite: backup: manifest: %w", err)
	}
	defer db.Close()
	if man.Digest, err = digestTables(ctx, db); err != nil {
		return fmt.Errorf("sqlite: backup: manifest: %w", err)
	}
	if _, err := db.ExecContext(ctx, `CREATE TABLE `+manifestTable+` (
		format  INTEGER NOT NULL,
		created INTEGER NOT NULL,
		version TEXT    NOT NULL,
		digest  BLOB    NOT NULL
	) STRICT`); err != nil {
		return fmt.Errorf("sqlite: backup: manifest: %w", err)
	}
	if _, err := db.ExecContext(ctx, "INSERT INTO "+manifestTable+" (format, created, version, digest) VALUES (?, ?, ?, ?)",
		man.Format, man.Created.Unix(), man.Version, man.Digest); err != nil {
		return fmt.Errorf("sqlite: backup: manifest: %w", err)
	}
	if err := db.Close(); err != nil {
		return fmt.Errorf("sqlite: backup: manifest: %w", err)
	}
	return nil
}

// digestTables returns the SHA-256 of every row of every table but the
// manifest, tables by name, rows in rowid order (in the order of all their
// columns for a WITHOUT ROWID table), each value tagged with its type and
// length-prefixed.
func digestTables(ctx context.Context, db *sql.DB) ([]byte, error) {
	rows, err := db.QueryContext(ctx, "SELECT name, wr FROM pragma_table_list WHERE schema = 'main' AND type = 'table' "+
		"AND name NOT LIKE 'sqlite_%' AND name <> ? ORDER BY name", manifestTable)
	if err != nil {
		return nil, fmt.Errorf("digest: list tables: %w", err)
	}
	type table struct {
		name  string
		noRow bool
	}
	var tables []table
	for rows.Next() {
		var t table
		if err := rows.Scan(&t.name, &t.noRow); err != nil {
			rows.Close()
			return nil, fmt.Errorf("digest: list tables: %w", err)
		}
		tables = append(tables, t)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("digest: list tables: %w", err)
	}
	h := sha256.New()
	for _, t := range tables {
		if err := digestTable(ctx, db, h, t.name, t.noRow); err != nil {
			return nil, err
		}
	}
	return h.Sum(nil), nil
}

func digestTable(ctx context.Context, db *sql.DB, h hash.Hash, name string, withoutRowid bool) error {
	quoted := `"` + strings.ReplaceAll(name, `"`, `""`) + `"`
	var ncols int
	if err := db.QueryRowContext(ctx, "SELECT count(*) FROM pragma_table_info(?)", name).Scan(&ncols); err != nil {
		return fmt.Errorf("digest: %s: %w", name, err)
	}
	order := "rowid"
	if withoutRowid {
		cols := make([]string, ncols)
		for i := range cols {
			cols[i] = fmt.Sprint(i + 1)
		}
		order = strings.Join(cols, ", ")
	}
	rows, err := db.QueryContext(ctx, "SELECT * FROM "+quoted+" ORDER BY "+order)
	if err != nil {
		return fmt.Errorf("digest: %s: %w", name, err)
	}
	defer rows.Close()
	writeTagged(h, 't', []byte(name))
	vals := make([]any, ncols)
	ptrs := make([]any, ncols)
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			return fmt.Errorf("digest: %s: %w", name, err)
		}
		writeTagged(h, 'r', nil)
		for _, v := range vals {
			switch v := v.(type) {
			case nil:
				writeTagged(h, 'n', nil)
			case int64:
				writeTagged(h, 'i', binary.BigEndian.AppendUint64(nil, uint64(v)))
			case float64:
				writeTagged(h, 'f', binary.BigEndian.AppendUint64(nil, math.Float64bits(v)))
			case string:
				writeTagged(h, 's', []byte(v))
			case []byte:
				writeTagged(h, 'b', v)
			case time.Time:
				writeTagged(h, 'd', []byte(v.UTC().Format(time.RFC3339Nano)))
			default:
				return fmt.Errorf("digest: %s: a value of type %T", name, v)
			}
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("digest: %s: %w", name, err)
	}
	return nil
}

func writeTagged(w io.Writer, tag byte, b []byte) {
	var hdr [9]byte
	hdr[0] = tag
	binary.BigEndian.PutUint64(hdr[1:], uint64(len(b)))
	w.Write(hdr[:]) //nolint:errcheck // a hash does not fail
	w.Write(b)      //nolint:errcheck
}

// ErrNotBackup is wrapped by the errors of [VerifyBackup] for a file that
// is not a sound Keyfort backup (damaged, truncated, not made by `keyfort
// backup`, or made by a newer Keyfort).
var ErrNotBackup = errors.New("not a usable Keyfort backup")

// VerifyBackup checks that the file at path is a sound backup: an SQLite
// database whose structure passes PRAGMA integrity_check, with a manifest
// whose digest matches its rows, and only schema migrations this program
// knows. Then it runs check on a read-only view of its records (for the
// checks of the layers above), and returns the manifest. progress, if not
// nil, is told when the digest (the longest step) begins. It never writes
// to path.
func VerifyBackup(ctx context.Context, path string, check func(r storage.Reader) error, progress Progress) (man Manifest, err error) {
	notBackup := func(format string, args ...any) error {
		return fmt.Errorf("sqlite: %w: %s", ErrNotBackup, fmt.Sprintf(format, args...))
	}
	f, err := os.Open(path)
	if err != nil {
		return man, fmt.Errorf("sqlite: verify backup: %w", err)
	}
	head := make([]byte, 100)
	n, _ := io.ReadFull(f, head)
	fi, serr := f.Stat()
	f.Close()
	if serr != nil {
		return man, fmt.Errorf("sqlite: verify backup: %w", serr)
	}
	if n < 100 || !bytes.HasPrefix(head, []byte("SQLite format 3\x00")) {
		return man, notBackup("not an SQLite database")
	}
	if head[18] == 2 || head[19] == 2 {
		return man, notBackup("a database in write-ahead-log mode, as a live data directory holds (take a backup with keyfort backup)")
	}
	man.Bytes = fi.Size()

	// immutable: no locks, no journal, nothing written beside the file.
	db, err := sql.Open("sqlite", fileURI(path)+"?mode=ro&immutable=1")
	if err != nil {
		return man, fmt.Errorf("sqlite: verify backup: %w", err)
	}
	defer db.Close()
	rows, err := db.QueryContext(ctx, "PRAGMA integrity_check(5)")
	if err != nil {
		return man, notBackup("%v", err)
	}
	var problems []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			rows.Close()
			return man, notBackup("%v", err)
		}
		if s != "ok" {
			problems = append(problems, s)
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return man, notBackup("%v", err)
	}
	if len(problems) > 0 {
		return man, notBackup("damaged: %s", strings.Join(problems, "; "))
	}

	var created int64
	err = db.QueryRowContext(ctx, "SELECT format, created, version, digest FROM "+manifestTable).Scan(&man.Format, &created, &man.Version, &man.Digest)
	if err != nil {
		return man, notBackup("no manifest (not made by keyfort backup): %v", err)
	}
	man.Created = time.Unix(created, 0).UTC()
	if man.Format != manifestFormat {
		return man, notBackup("backup format %d; this keyfort reads format %d", man.Format, manifestFormat)
	}
	if err := checkMigrations(ctx, db); err != nil {
		return man, notBackup("%v", err)
	}
	if progress != nil {
		progress(PhaseVerify, 0, 0)
	}
	digest, err := digestTables(ctx, db)
	if err != nil {
		return man, notBackup("%v", err)
	}
	if !bytes.Equal(digest, man.Digest) {
		return man, notBackup("damaged: its rows do not match the digest taken when it was made")
	}
	if check == nil {
		return man, nil
	}
	q, err := prepareQueries(ctx, db, false)
	if err != nil {
		return man, notBackup("%v", err)
	}
	defer q.close()
	tx, err := db.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return man, fmt.Errorf("sqlite: verify backup: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // read only
	if err := check(&reader{q: q, tx: tx}); err != nil {
		return man, fmt.Errorf("sqlite: %w: %w", ErrNotBackup, err)
	}
	return man, nil
}

// checkMigrations refuses a database with migrations this program does not
// know (made by a newer version) or without the records table.
func checkMigrations(ctx context.Context, db *sql.DB) error {
	ms, err := loadMigrations()
	if err != nil {
		return err
	}
	known := make(map[int64]bool, len(ms))
	for _, m := range ms {
		known[m.version] = true
	}
	rows, err := db.QueryContext(ctx, "SELECT version, name FROM schema_migrations ORDER BY version")
	if err != nil {
		return fmt.Errorf("no schema_migrations table: %w", err)
	}
	defer rows.Close()
	seen := 0
	for rows.Next() {
		var v int64
		var name string
		if err := rows.Scan(&v, &name); err != nil {
			return err
		}
		if !known[v] {
			return fmt.Errorf("it holds schema migration %s, which this keyfort does not know: restore it with the version that made it (or a newer one)", name)
		}
		seen++
	}
	if err := rows.Err(); err != nil {
		return err
	}
	if seen == 0 {
		return errors.New("no schema migrations applied")
	}
	return nil
}

// RemoveManifest drops the manifest table from the verified backup at
// path (a private copy about to become a store), so that the store holds
// exactly the tables it was taken from, and syncs the file.
func RemoveManifest(ctx context.Context, path string) error {
	db, err := sql.Open("sqlite", fileURI(path)+"?_pragma=journal_mode(DELETE)&_pragma=synchronous(FULL)")
	if err != nil {
		return fmt.Errorf("sqlite: remove manifest: %w", err)
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, "DROP TABLE IF EXISTS "+manifestTable); err != nil {
		return fmt.Errorf("sqlite: remove manifest: %w", err)
	}
	if err := db.Close(); err != nil {
		return fmt.Errorf("sqlite: remove manifest: %w", err)
	}
	if err := syncFile(path); err != nil {
		return fmt.Errorf("sqlite: remove manifest: %w", err)
	}
	return nil
}

// fileURI is the file: URI of path for the driver.
func fileURI(path string) string {
	return "file:" + (&url.URL{Path: path}).EscapedPath()
}

// createEmpty creates the empty file path with mode 0600; it fails if path
// exists.
func createEmpty(path string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	return f.Close()
}

// syncFile fsyncs the file at path.
func syncFile(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// removeDB removes the database file path and the files SQLite may keep
// beside it.
func removeDB(path string) {
	for _, suffix := range []string{"", "-journal", "-wal", "-shm"} {
		_ = os.Remove(path + suffix)
	}
}
