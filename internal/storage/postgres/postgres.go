// Package postgres is the PostgreSQL implementation of [storage.Store], on
// github.com/jackc/pgx/v5, for several Keyfort nodes sharing one database.
//
// Every change is committed before [Store.Update] returns. Update runs at
// READ COMMITTED: [storage.Tx.Get] inside Update locks the row it reads
// (SELECT ... FOR UPDATE), so a read-modify-write in one transaction waits
// for a concurrent one instead of losing its update, and Tx.Update's
// "WHERE rev = $n" turns any stale revision into [storage.ErrConflict].
// Update runs fn again, a bounded number of times with a small jittered
// backoff, after ErrConflict, a serialization failure (SQLSTATE 40001) or a
// deadlock (40P01). [storage.Reader.Due] inside Update claims records with
// FOR UPDATE SKIP LOCKED, so nodes polling for background work each get
// different records.
//
// The SQL avoids extensions and advisory locks so that it stays portable to
// PostgreSQL-compatible distributed databases (CockroachDB, YugabyteDB).
// This package stores bytes and index columns only; it never validates
// business rules and never sees a plaintext (see package storage).
package postgres

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/keyfort/keyfort/internal/storage"
)

//go:embed migrations/*.sql
var migrationFS embed.FS

const (
	// maxAttempts bounds how often Update runs fn for one call.
	maxAttempts = 10
	// Backoff between attempts: full jitter over min(baseBackoff<<n, maxBackoff).
	baseBackoff = 2 * time.Millisecond
	maxBackoff  = 100 * time.Millisecond
)

// SQLSTATE codes the store acts on.
const (
	codeUniqueViolation      = "23505"
	codeFeatureNotSupported  = "0A000"
	codeSerializationFailure = "40001"
	codeDeadlockDetected     = "40P01"
	codeDuplicateSchema      = "42P06"
	codeDuplicateTable       = "42P07"
	codeDuplicateObject      = "42710" // e.g. the row type of a table created concurrently
)

// Options configures a [Store].
type Options struct {
	// Logger receives operational messages (migrations, retries). Nil
	// discards them.
	Logger *slog.Logger
	// Schema, if not empty, is created if missing and used as the
	// search_path of every connection, so the tables live there.
	Schema string
	// NoNotify sends no change notifications: for a connection that does
	// not deliver them (a pooler in transaction mode). The store is then
	// one to read through (Notifies reports false). A database without
	// LISTEN is found at Open and treated the same way.
	NoNotify bool
}

// Store is a [storage.Store] backed by a PostgreSQL database. It is safe for
// concurrent use.
type Store struct {
	pool   *pgxpool.Pool
	logger *slog.Logger
	closed atomic.Bool
	notes  *notifier
	notify bool // changes are notified (see Notifies)
}

var (
	_ storage.Store          = (*Store)(nil)
	_ storage.Compactor      = (*Store)(nil)
	_ storage.ChangeNotifier = (*Store)(nil)
)

// Open connects to the database at dsn (a postgres:// URL or key=value
// string), creates opts.Schema if set, and applies the embedded migrations.
// Several nodes may open the same database at once: migrations are
// serialized by a row lock in schema_migrations.
func Open(ctx context.Context, dsn string, opts Options) (*Store, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("postgres: open: %w", err)
	}
	if opts.Schema != "" {
		cfg.ConnConfig.RuntimeParams["search_path"] = pgx.Identifier{opts.Schema}.Sanitize()
	}
	s := &Store{logger: opts.Logger}
	if s.logger == nil {
		s.logger = slog.New(slog.DiscardHandler)
	}
	s.pool, err = pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: open: %w", err)
	}
	if err := s.pool.Ping(ctx); err != nil {
		s.pool.Close()
		return nil, fmt.Errorf("postgres: open: %w", err)
	}
	if opts.Schema != "" {
		err := retryDuplicate(ctx, func() error {
			_, err := s.pool.Exec(ctx, "CREATE SCHEMA IF NOT EXISTS "+pgx.Identifier{opts.Schema}.Sanitize())
			return err
		})
		if err != nil {
			s.pool.Close()
			return nil, fmt.Errorf("postgres: open: create schema: %w", err)
		}
	}
	if err := migrate(ctx, s.pool, s.logger); err != nil {
		s.pool.Close()
		return nil, fmt.Errorf("postgres: open: %w", err)
	}
	channel, err := channelName(ctx, s.pool)
	if err != nil {
		s.pool.Close()
		return nil, fmt.Errorf("postgres: open: %w", err)
	}
	s.notes = newNotifier(s.pool, channel, s.logger)
	s.notify = !opts.NoNotify
	if s.notify {
		if _, err := s.pool.Exec(ctx, "LISTEN "+pgx.Identifier{channel}.Sanitize()+"; UNLISTEN "+pgx.Identifier{channel}.Sanitize()); err != nil {
			var pgErr *pgconn.PgError
			if !errors.As(err, &pgErr) || pgErr.Code != codeFeatureNotSupported {
				s.pool.Close()
				return nil, fmt.Errorf("postgres: open: listen: %w", err)
			}
			s.logger.Warn("postgres: the database has no LISTEN/NOTIFY: every request reads the store (no caches)", "err", err)
			s.notify = false
		}
	}
	return s, nil
}

// Get reads one record outside a transaction. It returns
// [storage.ErrNotFound] if the record does not exist and [storage.ErrClosed]
// after Close.
func (s *Store) Get(ctx context.Context, kind storage.Kind, scope storage.Scope, id string) (*storage.Record, error) {
	if s.closed.Load() {
		return nil, storage.ErrClosed
	}
	rec, err := (&reader{q: s.pool}).Get(ctx, kind, scope, id)
	if err != nil {
		return nil, s.mapErr(err)
	}
	return rec, nil
}

// View runs fn in a read-only REPEATABLE READ transaction: every read of fn
// sees the same snapshot. fn's error is returned unchanged.
func (s *Store) View(ctx context.Context, fn func(r storage.Reader) error) error {
	if s.closed.Load() {
		return storage.ErrClosed
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	tx, err := s.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return s.mapErr(opErr(ctx, "view: begin", err))
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // read-only: nothing to keep or lose
	if err := fn(&reader{q: tx}); err != nil {
		return err
	}
	if err := tx.Commit(ctx); err != nil {
		return s.mapErr(opErr(ctx, "view: commit", err))
	}
	return nil
}

// Update runs fn in a READ COMMITTED transaction and commits it. If fn
// returns an error the transaction is rolled back and the error is returned
// unchanged, except that fn runs again (up to 10 times in all, with a
// jittered backoff) when the error is [storage.ErrConflict], a serialization
// failure or a deadlock; the same holds for a commit that fails with one of
// the last two. A panic in fn rolls the transaction back and propagates.
func (s *Store) Update(ctx context.Context, fn func(tx storage.Tx) error) error {
	if s.closed.Load() {
		return storage.ErrClosed
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	fn, committed := storage.BindPendingEvent(ctx, fn)
	for attempt := 1; ; attempt++ {
		changes, err := s.updateOnce(ctx, fn)
		if err == nil {
			committed()
			s.notes.tell(changes)
			return nil
		}
		if !retryable(err) || attempt >= maxAttempts || ctx.Err() != nil {
			return err
		}
		s.logger.Debug("postgres: retrying update", "attempt", attempt, "err", err)
		d := rand.N(min(baseBackoff<<(attempt-1), maxBackoff)) + time.Millisecond
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return err
		}
	}
}

// updateOnce runs fn once in its own transaction and returns the records it
// wrote. A transaction that wrote records notifies the other nodes (see
// notify.go): the NOTIFY is delivered when, and only if, it commits.
func (s *Store) updateOnce(ctx context.Context, fn func(tx storage.Tx) error) ([]change, error) {
	tx, err := s.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.ReadCommitted})
	if err != nil {
		return nil, s.mapErr(opErr(ctx, "begin", err))
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // no-op after Commit
	wtx := &writeTx{reader: reader{q: tx, write: true}}
	if err := fn(wtx); err != nil {
		return nil, err
	}
	if len(wtx.changed) > 0 && s.notify {
		if _, err := tx.Exec(ctx, "SELECT pg_notify($1, $2)", s.notes.channel, s.notes.payload(wtx.changed)); err != nil {
			return nil, s.mapErr(opErr(ctx, "notify", err))
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return nil, s.mapErr(opErr(ctx, "commit", err))
	}
	return wtx.changed, nil
}

// Notifies reports whether the store notifies changes: false with
// Options.NoNotify or on a database without LISTEN, where Subscribe hears
// only this Store's own commits and Sync cannot vouch for other nodes', so
// the store must be used as one without notifications (read through).
func (s *Store) Notifies() bool { return s.notify }

// Subscribe implements [storage.ChangeNotifier]: fn hears every change
// committed by any node on this database and schema (this Store's own at
// commit, the other nodes' through LISTEN), and kind "" after the listening
// connection was lost.
func (s *Store) Subscribe(fn func(kind storage.Kind, scope storage.Scope, id string)) {
	if !s.notify {
		s.notes.add(fn) // this Store's own commits only
		return
	}
	s.notes.subscribe(fn)
}

// Sync implements [storage.ChangeNotifier]: it returns once every change
// committed before the call, on any node, has reached the subscribers.
func (s *Store) Sync(ctx context.Context) error {
	if s.closed.Load() {
		return storage.ErrClosed
	}
	if !s.notify {
		return errors.New("postgres: sync: this store does not notify changes (see Notifies)")
	}
	return s.notes.sync(ctx)
}

// Ping reports whether the database answers.
func (s *Store) Ping(ctx context.Context) error {
	if s.closed.Load() {
		return storage.ErrClosed
	}
	if err := s.pool.Ping(ctx); err != nil {
		return s.mapErr(opErr(ctx, "ping", err))
	}
	return nil
}

// Compact implements [storage.Compactor] with VACUUM FULL, which rewrites
// the records table so that no old row version keeps overwritten bytes. It
// locks the table while it runs: a maintenance operation.
func (s *Store) Compact(ctx context.Context) error {
	if s.closed.Load() {
		return storage.ErrClosed
	}
	if _, err := s.pool.Exec(ctx, "VACUUM FULL records"); err != nil {
		return s.mapErr(opErr(ctx, "compact", err))
	}
	return nil
}

// Close closes the connection pool, waiting for connections in use to be
// released. Calls after Close (Close included) return [storage.ErrClosed].
func (s *Store) Close() error {
	if !s.closed.CompareAndSwap(false, true) {
		return storage.ErrClosed
	}
	s.notes.close()
	s.pool.Close()
	return nil
}

// mapErr reports ErrClosed for any failure once the store is closed.
func (s *Store) mapErr(err error) error {
	if err != nil && s.closed.Load() && !errors.Is(err, storage.ErrNotFound) {
		return storage.ErrClosed
	}
	return err
}

// retryable reports whether Update should run fn again after err.
func retryable(err error) bool {
	if errors.Is(err, storage.ErrConflict) {
		return true
	}
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) &&
		(pgErr.Code == codeSerializationFailure || pgErr.Code == codeDeadlockDetected)
}

// retryDuplicate runs a CREATE ... IF NOT EXISTS statement, again when a
// concurrent node created the same object between the check and the insert
// into the catalog (which PostgreSQL reports as a unique violation, or as
// the table's row type already existing).
func retryDuplicate(ctx context.Context, fn func() error) error {
	var err error
	for range 5 {
		err = fn()
		var pgErr *pgconn.PgError
		if !errors.As(err, &pgErr) || (pgErr.Code != codeUniqueViolation &&
			pgErr.Code != codeDuplicateSchema && pgErr.Code != codeDuplicateTable && pgErr.Code != codeDuplicateObject) {
			return err
		}
		if ctx.Err() != nil {
			return err
		}
	}
	return err
}
