// Package sqlite is the embedded implementation of [storage.Store], on
// modernc.org/sqlite (pure Go, builds with CGO_ENABLED=0).
//
// The database runs in WAL mode with synchronous=FULL, so a transaction is on
// disk before [Store.Update] returns. There is one writer connection, owned by
// a single goroutine, and a bounded pool of read-only connections for
// [Store.Get] and [Store.View]. Writes use group commit: the writer takes every
// Update call already queued (up to [Options.MaxBatch]; when the previous
// batch was larger it waits up to 150 µs for as many), runs the callers'
// functions inside one BEGIN IMMEDIATE transaction, and commits them with one
// COMMIT (one fsync for the batch). A caller whose function fails before
// writing just gets its error; if one fails after writing, the batch is
// rolled back and run again with each function in its own SAVEPOINT, so that
// the failed one's writes are undone alone and the others commit. An Update
// of a record the function read leaves the indexed columns alone when they
// do not change, so that it writes no index page.
//
// This package stores bytes and index columns only; it never validates
// business rules and never sees a plaintext (see package storage).
package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/keyfort/keyfort/internal/storage"

	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver

	"github.com/keyfort/keyfort/internal/metrics"
)

//go:embed migrations/*.sql
var migrationFS embed.FS

const (
	// defaultMaxBatch is the number of Update calls one commit takes at most
	// when Options.MaxBatch is 0.
	defaultMaxBatch = 128
	// maxConflictRetries bounds how often the writer runs one caller's fn
	// again after it returned storage.ErrConflict.
	maxConflictRetries = 10
	// busyTimeoutMS is how long a connection waits for a lock held by
	// another process before it fails with SQLITE_BUSY.
	busyTimeoutMS = 5000
	// readerCacheKiB is each reader connection's page cache. The readers
	// share the operating system's file cache, so small private caches keep
	// the process small (SQLite's default is 2,000 KiB per connection).
	readerCacheKiB = 256
	// writerCacheKiB is the writer connection's page cache: the pages a
	// commit changes, and the B-tree's upper levels, which stay hot. Half
	// SQLite's default; the file cache serves the rest.
	writerCacheKiB = 1024
)

// Options configures a [Store].
type Options struct {
	// Logger receives operational messages (migrations, commit failures).
	// Nil discards them.
	Logger *slog.Logger
	// MaxBatch is the largest number of Update calls committed together
	// (0 means 128).
	MaxBatch int
	// Metrics, if set, receives the writer's commit latency
	// (keyfort_store_commit_duration_seconds) and batch sizes
	// (keyfort_store_commit_batch_size). Nil records nothing.
	Metrics *metrics.Registry
}

// Store is a [storage.Store] backed by one SQLite database file. It is safe
// for concurrent use.
type Store struct {
	path   string
	logger *slog.Logger

	wdb   *sql.DB   // one connection, owned by the writer goroutine
	wconn *sql.Conn // the writer's connection
	wq    *queries  // statements prepared on wconn
	rdb   *sql.DB   // read-only pool
	rq    *queries  // statements prepared on rdb

	maxBatch int
	queue    chan *request

	commitDur  *metrics.Histogram // COMMIT (the fsync) of a batch
	batchSize  *metrics.Histogram // Update calls in a committed batch
	commitFail *metrics.Counter
	done       chan struct{} // closed when the writer goroutine has drained the queue

	mu      sync.RWMutex // guards closing against sends on queue
	closing bool
	closed  atomic.Bool

	subMu sync.RWMutex
	subs  []func(kind storage.Kind, scope storage.Scope, id string)
}

var (
	_ storage.Store          = (*Store)(nil)
	_ storage.ChangeNotifier = (*Store)(nil)
	_ storage.Compactor      = (*Store)(nil)
)

// Open opens (creating if needed) the database file at path, applies the
// embedded migrations and starts the writer.
func Open(ctx context.Context, path string, opts Options) (*Store, error) {
	if path == "" {
		return nil, errors.New("sqlite: open: empty path")
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("sqlite: open: %w", err)
	}
	s := &Store{
		path:     path,
		logger:   opts.Logger,
		maxBatch: opts.MaxBatch,
		done:     make(chan struct{}),
	}
	if s.logger == nil {
		s.logger = slog.New(slog.DiscardHandler)
	}
	if s.maxBatch <= 0 {
		s.maxBatch = defaultMaxBatch
	}
	reg := opts.Metrics
	s.commitDur = reg.Histogram("keyfort_store_commit_duration_seconds",
		"Time of the embedded store's COMMIT of a write batch (the fsync).", metrics.DurationBuckets, "store").With("sqlite")
	s.batchSize = reg.Histogram("keyfort_store_commit_batch_size",
		"Update calls committed together by the embedded store's writer (group commit).",
		[]float64{1, 2, 4, 8, 16, 32, 64, 128, 256}, "store").With("sqlite")
	s.commitFail = reg.Counter("keyfort_store_commit_failures_total",
		"Write batches whose COMMIT failed.", "store").With("sqlite")
	s.queue = make(chan *request, 4*s.maxBatch)

	if err := s.open(ctx, abs); err != nil {
		s.closeConns()
		return nil, err
	}
	go s.writer()
	return s, nil
}

// open opens the writer, migrates, then opens the reader pool.
func (s *Store) open(ctx context.Context, abs string) error {
	name := "file:" + (&url.URL{Path: abs}).EscapedPath()
	wdsn := name + fmt.Sprintf("?_pragma=busy_timeout(%d)&_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)&_pragma=cache_size(-%d)", busyTimeoutMS, writerCacheKiB)
	rdsn := name + fmt.Sprintf("?_pragma=busy_timeout(%d)&_pragma=query_only(1)&_pragma=cache_size(-%d)", busyTimeoutMS, readerCacheKiB)

	var err error
	s.wdb, err = sql.Open("sqlite", wdsn)
	if err != nil {
		return fmt.Errorf("sqlite: open %s: %w", s.path, err)
	}
	s.wdb.SetMaxOpenConns(1)
	s.wdb.SetMaxIdleConns(1)
	s.wdb.SetConnMaxLifetime(0)
	s.wdb.SetConnMaxIdleTime(0)
	s.wconn, err = s.wdb.Conn(ctx)
	if err != nil {
		return fmt.Errorf("sqlite: open %s: %w", s.path, err)
	}
	var mode string
	if err := s.wconn.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil {
		return fmt.Errorf("sqlite: open %s: journal mode: %w", s.path, err)
	}
	if mode != "wal" {
		return fmt.Errorf("sqlite: open %s: journal mode is %q, want \"wal\"", s.path, mode)
	}
	var syncMode int
	if err := s.wconn.QueryRowContext(ctx, "PRAGMA synchronous").Scan(&syncMode); err != nil {
		return fmt.Errorf("sqlite: open %s: synchronous: %w", s.path, err)
	}
	if syncMode != 2 { // FULL
		return fmt.Errorf("sqlite: open %s: synchronous is %d, want 2 (FULL)", s.path, syncMode)
	}
	if err := migrate(ctx, s.wconn, s.logger); err != nil {
		return fmt.Errorf("sqlite: open %s: %w", s.path, err)
	}
	s.wq, err = prepareQueries(ctx, s.wconn, true)
	if err != nil {
		return fmt.Errorf("sqlite: open %s: %w", s.path, err)
	}

	s.rdb, err = sql.Open("sqlite", rdsn)
	if err != nil {
		return fmt.Errorf("sqlite: open %s: readers: %w", s.path, err)
	}
	n := max(4, 2*runtime.GOMAXPROCS(0))
	s.rdb.SetMaxOpenConns(n)
	s.rdb.SetMaxIdleConns(n)
	s.rdb.SetConnMaxLifetime(0)
	s.rdb.SetConnMaxIdleTime(0)
	s.rq, err = prepareQueries(ctx, s.rdb, false)
	if err != nil {
		return fmt.Errorf("sqlite: open %s: readers: %w", s.path, err)
	}
	return nil
}

// Path returns the path of the database file, as given to [Open].
func (s *Store) Path() string { return s.path }

// Get reads one record on the reader pool. It returns [storage.ErrNotFound]
// if the record does not exist and [storage.ErrClosed] after Close.
func (s *Store) Get(ctx context.Context, kind storage.Kind, scope storage.Scope, id string) (*storage.Record, error) {
	if s.closed.Load() {
		return nil, storage.ErrClosed
	}
	r, err := scanRecord(s.rq.get.QueryRowContext(ctx, string(kind), scope.Account, scope.Region, id))
	if err != nil {
		return nil, s.readErr(ctx, "get", err)
	}
	return r, nil
}

// View runs fn in a read-only transaction on the reader pool. The snapshot is
// taken by fn's first read and holds until fn returns. fn's error is returned
// unchanged.
func (s *Store) View(ctx context.Context, fn func(r storage.Reader) error) error {
	if s.closed.Load() {
		return storage.ErrClosed
	}
	tx, err := s.rdb.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return s.readErr(ctx, "view: begin", err)
	}
	defer tx.Rollback() //nolint:errcheck // read-only: nothing to keep or lose
	return fn(&reader{q: s.rq, tx: tx})
}

// Update runs fn in a read-write transaction on the writer goroutine, batched
// with other callers' functions into one durable commit (see the package
// comment). fn runs in its own savepoint: if it returns an error its changes
// are rolled back and the error is returned unchanged. If fn returns
// [storage.ErrConflict] it is run again (up to 10 times) in a new savepoint,
// since the writer is the only writer and the retry sees the latest data. If
// ctx is done before fn runs, fn is skipped and ctx.Err() is returned. fn must
// not call Update itself (the writer would wait for itself) and must not use
// tx after it returns. A commit failure is returned to every caller of the
// batch whose fn succeeded.
func (s *Store) Update(ctx context.Context, fn func(tx storage.Tx) error) error {
	if s.closed.Load() {
		return storage.ErrClosed
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	fn, committed := storage.BindPendingEvent(ctx, fn)
	if err := s.enqueue(ctx, &request{ctx: ctx, fn: fn, done: make(chan result, 1)}); err != nil {
		return err
	}
	committed()
	return nil
}

// enqueue hands req to the writer and waits for its answer.
func (s *Store) enqueue(ctx context.Context, req *request) error {
	if s.closed.Load() {
		return storage.ErrClosed
	}
	s.mu.RLock()
	if s.closing {
		s.mu.RUnlock()
		return storage.ErrClosed
	}
	select {
	case s.queue <- req:
		s.mu.RUnlock()
	case <-ctx.Done():
		s.mu.RUnlock()
		return ctx.Err()
	}
	var res result
	select {
	case res = <-req.done:
	case <-ctx.Done():
		if req.state.CompareAndSwap(stateQueued, stateAbandoned) {
			// The writer has not taken it and never will.
			return ctx.Err()
		}
		// The request is running or has run: wait for its outcome so that
		// the answer is the truth.
		res = <-req.done
	}
	if res.panicked {
		panic(res.panicVal)
	}
	return res.err
}

// Compact implements [storage.Compactor]: it checkpoints the write-ahead
// log into the database, rewrites the database with VACUUM (no free page
// keeps old record bytes) and truncates the log. It runs on the writer, so
// writes wait for it.
func (s *Store) Compact(ctx context.Context) error {
	return s.enqueue(ctx, &request{ctx: ctx, raw: func(ctx context.Context) error {
		for _, q := range []string{"PRAGMA wal_checkpoint(TRUNCATE)", "VACUUM", "PRAGMA wal_checkpoint(TRUNCATE)"} {
			if _, err := s.wconn.ExecContext(context.WithoutCancel(ctx), q); err != nil {
				return fmt.Errorf("sqlite: compact: %s: %w", q, err)
			}
		}
		return nil
	}, done: make(chan result, 1)})
}

// Ping reports whether the database answers a query on the reader pool.
func (s *Store) Ping(ctx context.Context) error {
	if s.closed.Load() {
		return storage.ErrClosed
	}
	var one int
	if err := s.rq.ping.QueryRowContext(ctx).Scan(&one); err != nil {
		return s.readErr(ctx, "ping", err)
	}
	return nil
}

// Close stops accepting calls, lets the writer finish every Update already
// queued, and closes the connections. Calls after Close (Close included)
// return [storage.ErrClosed].
func (s *Store) Close() error {
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		return storage.ErrClosed
	}
	s.closing = true
	s.closed.Store(true)
	close(s.queue)
	s.mu.Unlock()
	<-s.done
	if err := s.closeConns(); err != nil {
		return fmt.Errorf("sqlite: close %s: %w", s.path, err)
	}
	return nil
}

// closeConns closes whatever open managed to open.
func (s *Store) closeConns() error {
	var errs []error
	if s.rq != nil {
		errs = append(errs, s.rq.close())
	}
	if s.rdb != nil {
		errs = append(errs, s.rdb.Close())
	}
	if s.wq != nil {
		errs = append(errs, s.wq.close())
	}
	if s.wconn != nil {
		errs = append(errs, s.wconn.Close())
	}
	if s.wdb != nil {
		errs = append(errs, s.wdb.Close())
	}
	return errors.Join(errs...)
}

// readErr turns an error from the reader pool into the contract's errors.
func (s *Store) readErr(ctx context.Context, op string, err error) error {
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return storage.ErrNotFound
	case s.closed.Load():
		return storage.ErrClosed
	case ctx.Err() != nil:
		return fmt.Errorf("sqlite: %s: %w", op, ctx.Err())
	}
	return fmt.Errorf("sqlite: %s: %w", op, err)
}
