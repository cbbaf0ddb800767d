// Package app wires Keyfort together: it opens the store, loads the root
// key, opens the audit trail, builds the services and the HTTP server, runs
// background jobs and shuts everything down in order. `keyfort serve` and
// the test harness (keyfortest) use the same wiring, so tests exercise what
// users run.
package app

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/keyfort/keyfort/internal/audit"
	"github.com/keyfort/keyfort/internal/clock"
	"github.com/keyfort/keyfort/internal/cloudtrail"
	"github.com/keyfort/keyfort/internal/config"
	"github.com/keyfort/keyfort/internal/credentials"
	"github.com/keyfort/keyfort/internal/envelope"
	"github.com/keyfort/keyfort/internal/metrics"
	"github.com/keyfort/keyfort/internal/seed"
	"github.com/keyfort/keyfort/internal/server"
	"github.com/keyfort/keyfort/internal/sigv4"
	"github.com/keyfort/keyfort/internal/storage"
	"github.com/keyfort/keyfort/internal/storage/sqlite"
)

// JobInterval is how often background jobs run (they also run once at
// start).
const JobInterval = 10 * time.Second

// markerTimeout bounds Start's write of the root key marker.
const markerTimeout = 30 * time.Second

// Options are the process-level dependencies of an App.
type Options struct {
	// Logger receives all logs. Nil discards them.
	Logger *slog.Logger
	// Now is the clock. Nil means time.Now.
	Now func() time.Time
	// Rand is the source of keys and nonces. Nil means crypto/rand.
	Rand io.Reader
	// LookupEnv reads the environment (KEYFORT_ROOT_KEY). Nil means
	// os.LookupEnv.
	LookupEnv func(string) (string, bool)
	// RootKey, if not empty, is the root key in standard base64; it
	// overrides KEYFORT_ROOT_KEY (but not Config.RootKeyFile).
	RootKey string
	// JobInterval overrides JobInterval (0 means the default).
	JobInterval time.Duration
	// PostgresSchema, if not empty, is the PostgreSQL schema that holds the
	// tables (created if missing), so that tests can share a database.
	PostgresSchema string
	// OnUndeclaredError is passed to the server (server.Config): called
	// for an error response its operation's model does not declare.
	OnUndeclaredError func(target, code string)
	// EventFinder is what CloudTrail's LookupEvents reads the audit trail
	// through. Nil finds no events (until the store's adapter is wired).
	EventFinder cloudtrail.Finder
}

// App is a configured Keyfort server. Create it with New, then Start and
// Run (or Close).
type App struct {
	cfg    config.Config
	log    *slog.Logger
	store  storage.Store
	audit  audit.Sink
	trail  *audit.Trail
	server *server.Server
	jobs   []jobRunner
	clock  *clock.Clock // the server's clock (see AdvanceClock)
	// advanceMu makes advances of the clock one at a time.
	advanceMu sync.Mutex
	// flushUsage writes KMS's key uses not yet stored, at shutdown.
	flushUsage func(context.Context) error
	every      time.Duration
	creds      *liveCredentials  // strict auth only
	tls        *liveTLS          // TLS only
	metrics    *metrics.Registry // --metrics-listen only, else nil
	// running is set once Start has started the jobs and cleared when
	// Close begins (GET /ready).
	running atomic.Bool

	mu       sync.Mutex
	listener net.Listener
	serveErr chan error
	stopJobs context.CancelFunc
	jobsDone chan struct{}
	// The metrics server (--metrics-listen), after Start.
	metricsSrv *http.Server

	closeOnce sync.Once
	closeErr  error
	lock      *dataDirLock // the data directory's lock
	undo      *startUndo   // what a failed start removes
	failed    bool         // New or Start failed: Close removes what they created (under mu)

	// The root key check that New made, and the marker Start writes when
	// the store has none.
	expect  storeExpectation
	sealer  *envelope.Sealer
	rootKey *envelope.RootKey
	keySrc  string
}

// New validates cfg and opens everything the server needs: the credentials
// file (strict auth), the TLS certificate, key and client CAs (with
// --tls-self-signed, those of <data>/tls, made in memory on first start and
// written by Start once it listens), the data directory (mode 0700), the store, the root
// key (generated beside the data on first start, with a warning; a key that
// is not the one the store is sealed under is refused, and none is
// generated when the store already holds sealed records), the audit
// trail, the services and the server. It does not listen yet; see Start.
// On error everything opened so far is closed, and what New created in the
// data directory is removed (the directory too, if New created it); nothing
// that existed before is touched.
func New(ctx context.Context, cfg config.Config, opts Options) (a *App, err error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	base := opts.Now
	if base == nil {
		base = time.Now
	}
	lookup := opts.LookupEnv
	if lookup == nil {
		lookup = os.LookupEnv
	}
	// The server's clock: real time (or Options.Now) plus the offset that
	// AdvanceClock moves in dev mode. Everything that dates a resource or
	// an event reads it; only SigV4's clock-skew check reads the base
	// clock, which the client's clock follows.
	a = &App{cfg: cfg, log: log, every: opts.JobInterval, clock: clock.New(base)}
	now := a.clock.Now
	if a.every <= 0 {
		a.every = JobInterval
	}
	if cfg.MetricsListen != "" {
		a.metrics = metrics.NewRegistry()
		metrics.RegisterRuntime(a.metrics)
	}
	opened := a // the early returns below set a to nil
	defer func() {
		if err != nil {
			opened.failed = true
			opened.closeResources()
		}
	}()

	var auth sigv4.Authenticator // nil: development mode
	if cfg.Auth == config.AuthStrict {
		creds, err := credentials.Load(cfg.Credentials)
		if err != nil {
			return nil, fmt.Errorf("app: %w", err)
		}
		a.creds = new(liveCredentials)
		a.creds.store.Store(creds)
		auth = &sigv4.Strict{Credentials: a.creds, Now: base}
		log.Info("credentials loaded", "file", cfg.Credentials,
			"principals", creds.Principals(), "access_keys", creds.Keys())
	}

	// A bad seed file is refused before anything is opened or created.
	var seedFile *seed.File
	if cfg.Seed != "" {
		if seedFile, err = seed.Load(cfg.Seed); err != nil {
			return nil, fmt.Errorf("app: %w", err)
		}
	}

	if a.tls, err = newLiveTLS(cfg, log, opts.Rand); err != nil {
		return nil, fmt.Errorf("app: %w", err)
	}

	// A start that fails removes what it created: the directories made
	// here, and what appears in the data directory while it holds the lock.
	a.undo = &startUndo{dir: cfg.DataDir}
	if a.undo.madeDirs, err = missingDirs(cfg.DataDir); err != nil {
		return nil, fmt.Errorf("app: create data directory: %w", err)
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("app: create data directory: %w", err)
	}
	if a.lock, err = lockDataDir(cfg.DataDir); err != nil {
		return nil, err
	}
	if err := a.undo.snapshot(); err != nil {
		return nil, err
	}

	if a.store, err = openStore(ctx, cfg, opts.PostgresSchema, log, a.metrics); err != nil {
		return nil, err
	}
	// The store says which root key it is sealed under (one read), before
	// any root key is loaded or generated: a new root.key is never made
	// beside existing data, and a wrong key is refused before it seals
	// anything.
	expect, err := readExpectation(ctx, a.store)
	if err != nil {
		return nil, err
	}
	envKey := opts.RootKey
	if envKey == "" {
		envKey, _ = lookup("KEYFORT_ROOT_KEY")
	}
	rootKey, created, source, err := loadRootKey(cfg, envKey, expect, opts.Rand)
	if err != nil {
		return nil, err
	}
	if created {
		msg := "generated a new root key beside the data; anyone who copies the data directory can decrypt it: " +
			"keep a copy elsewhere and use --root-key-file or KEYFORT_ROOT_KEY in production"
		if cfg.IsPostgres() {
			msg += "; every node sharing this database must use the same root key"
		}
		log.Warn(msg, "path", filepath.Join(cfg.DataDir, envelope.RootKeyFileName), "root_key", rootKey)
	}

	// The next root key of a rotation (prepared, under way or unfinished)
	// is loaded too, and its files are read again when a record or the
	// store's marker names a key this node does not hold.
	nextPaths := nextKeyPaths(cfg)
	nexts, err := loadNextRootKeys(nextPaths)
	if err != nil {
		return nil, err
	}
	for _, k := range nexts {
		if k.ID() != rootKey.ID() {
			log.Info("next root key loaded: records sealed under it open too", "next_root_key", k)
		}
	}
	sealer := envelope.NewSealer(opts.Rand, rootKey, nexts...)
	sealer.SetLoader(func() ([]*envelope.RootKey, error) {
		keys, err := loadNextRootKeys(nextPaths)
		if err != nil {
			// Open reports only that a record does not open: say why here.
			log.Error("cannot read the next root key", "error", err)
		}
		for _, k := range keys {
			if !sealer.Holds(k.ID()) {
				log.Info("next root key loaded while serving", "next_root_key", k)
			}
		}
		return keys, err
	})
	if err := checkRootKey(expect, sealer, rootKey, source); err != nil {
		return nil, err
	}
	if expect.claim != nil {
		log.Warn("a root key rotation is under way or was interrupted (keyfort rootkey rotate finishes it)",
			"from_root_key", fmt.Sprintf("%x", expect.claim.From), "to_root_key", fmt.Sprintf("%x", expect.claim.To))
	}
	var sealKey func(context.Context, storage.Tx) ([8]byte, error)
	if cfg.IsPostgres() {
		// Nodes sharing a store seal under the key its marker names, which
		// a rotation running while they serve moves.
		sealKey = markerSealKey(sealer, nextPaths)
	}
	// Start writes the marker of a new store, once it listens.
	a.expect, a.sealer, a.rootKey, a.keySrc = expect, sealer, rootKey, source

	trailStore, ok := a.store.(storage.Trail)
	if !ok {
		return nil, fmt.Errorf("app: the store %T keeps no audit trail", a.store)
	}
	trail, err := audit.OpenTrail(ctx, cfg.AuditDirectory(), trailStore, audit.TrailOptions{
		File: audit.FileOptions{
			Now:           now,
			MaxBytes:      cfg.AuditMaxFileBytes,
			MaxAge:        cfg.AuditMaxAge,
			MaxTotalBytes: cfg.AuditMaxTotalBytes,
			Logger:        log.With("component", "audit"),
			// A request's lines are in the journal before its response
			// and reach the file grouped, one write(2) per 32 KiB (or
			// after 200 ms, or before the files are read): no write(2)
			// per request (see audit's journal.go). With --audit-sync
			// they are in the file, fsynced, before the response instead.
			Journal: !cfg.AuditSync,
			Sync:    cfg.AuditSync,
		},
		Now:    now,
		Logger: log.With("component", "audit"),
		// A store only this process changes (SQLite) has no other node to
		// show the events to: it takes them when LookupEvents or the jobs
		// ask, so that no request pays for storing them.
		Lazy: !cfg.IsPostgres(),
	})
	if err != nil {
		return nil, fmt.Errorf("app: open audit trail: %w", err)
	}
	a.audit, a.trail = trail, trail

	events := opts.EventFinder
	if events == nil {
		events = trailFinder{trail: trail, store: trailStore}
	}
	xksClient, err := newXKSClient(cfg)
	if err != nil {
		return nil, err
	}
	svcs := newServices(serviceDeps{
		store:   a.store,
		sealer:  sealer,
		sealKey: sealKey,
		now:     now,
		rand:    opts.Rand,
		logger:  log,

		rotationWebhooks: cfg.RotationWebhooks,
		events:           events,
		metrics:          a.metrics,
		audit:            trail,
		xks:              xksClient,
	})
	a.flushUsage = svcs.flushUsage
	if seedFile != nil {
		// Before serving: keys and secrets the file defines and the store
		// lacks are made; those made from the same entries are left as
		// they are; a changed entry is refused (kms.Service.Seed).
		if err := svcs.seed(ctx, seedFile); err != nil {
			return nil, fmt.Errorf("app: seed %s: %w", cfg.Seed, err)
		}
		log.Info("seed file applied", "file", cfg.Seed, "keys", len(seedFile.Keys), "secrets", len(seedFile.Secrets))
	}
	a.jobs = measureJobs(a.metrics, append(svcs.jobNames, "audit"),
		append(svcs.jobs, &auditJobs{trail: trail, now: now, files: cfg.AuditMaxAge > 0 || cfg.AuditMaxTotalBytes > 0}))
	a.server, err = server.New(server.Config{
		Services: []server.Service{
			kmsServer(svcs),
			smServer(svcs),
			ctServer(svcs),
		},
		Auth:              auth,
		InsecureDevAuth:   cfg.InsecureDevAuth,
		MaxConnections:    cfg.MaxConnections,
		ReadHeaderTimeout: cfg.ReadHeaderTimeout,
		IdleTimeout:       cfg.IdleTimeout,
		Audit:             a.audit,
		Logger:            log,
		Now:               now,
		Health:            a.store.Ping,
		Sync:              syncOf(a.store),
		Ready:             a.Ready,
		Metrics:           a.metrics,
		LogRequests:       cfg.LogRequests,
		OnUndeclaredError: opts.OnUndeclaredError,
		Admin:             a.clockHandler(),
	})
	if err != nil {
		return nil, fmt.Errorf("app: %w", err)
	}
	return a, nil
}

// loadRootKey loads the root key from the file, the environment or
// <data>/root.key, which it generates only when the store holds nothing
// sealed (expect.ok false). source names where the key came from, for
// errors.
func loadRootKey(cfg config.Config, envKey string, expect storeExpectation, rand io.Reader) (k *envelope.RootKey, created bool, source string, err error) {
	source = rootKeySource(cfg, envKey)
	k, created, err = envelope.LoadRootKey(envelope.RootKeyOptions{
		File:       cfg.RootKeyFile,
		EnvBase64:  envKey,
		DataDir:    cfg.DataDir,
		Rand:       rand,
		NoGenerate: expect.ok,
	})
	if expect.ok && errors.Is(err, fs.ErrNotExist) && cfg.RootKeyFile == "" && envKey == "" {
		return nil, false, source, fmt.Errorf("app: %w: the store is sealed under root key %x, but no root key was given (--root-key-file or KEYFORT_ROOT_KEY) and %s does not exist; refusing to generate a new root key beside existing data",
			errNoRootKey, expect.id, source)
	}
	if err != nil {
		return nil, false, source, fmt.Errorf("app: %w", err)
	}
	return k, created, source, nil
}

// rootKeySource names where the root key comes from, for errors.
func rootKeySource(cfg config.Config, envKey string) string {
	switch {
	case cfg.RootKeyFile != "":
		return "--root-key-file " + cfg.RootKeyFile
	case envKey != "":
		return "KEYFORT_ROOT_KEY"
	default:
		return filepath.Join(cfg.DataDir, envelope.RootKeyFileName)
	}
}

func openStore(ctx context.Context, cfg config.Config, schema string, log *slog.Logger, reg *metrics.Registry) (storage.Store, error) {
	if cfg.IsPostgres() {
		return openPostgres(ctx, cfg.Store, schema, cfg.StoreReadThrough, log)
	}
	s, err := sqlite.Open(ctx, cfg.SQLitePath(), sqlite.Options{Logger: log.With("store", "sqlite"), Metrics: reg})
	if err != nil {
		return nil, fmt.Errorf("app: open store: %w", err)
	}
	return s, nil
}

// Start listens on the configured address (port 0 picks a free port),
// serves in the background and starts the background jobs (which run once
// immediately). A non-loopback address with dev auth is refused unless
// InsecureDevAuth is set. With TLS the listener serves HTTPS only (TLS 1.2
// or later, HTTP/2 and HTTP/1.1); with --tls-self-signed, Start writes the
// CA and server certificate New made, if any, and logs how to trust the CA.
// On a new store it then records which root key the store is sealed under.
// If Start fails, Close removes what New and Start created in the data
// directory, as a failed New does.
func (a *App) Start() (err error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.listener != nil {
		return errors.New("app: already started")
	}
	defer func() {
		if err != nil {
			a.failed = true // Close removes what New created
		}
	}()
	l, err := net.Listen("tcp", a.cfg.Listen)
	if err != nil {
		return fmt.Errorf("app: listen: %w", err)
	}
	if err := a.server.CheckListener(l.Addr()); err != nil {
		l.Close()
		return fmt.Errorf("app: %w", err)
	}
	tlsMode := "off"
	if a.tls != nil {
		if err := a.tls.persist(); err != nil {
			l.Close()
			return fmt.Errorf("app: %w", err)
		}
		// Requests over it have r.TLS set: aws:SecureTransport is true.
		l = tls.NewListener(l, a.tls.listenerConfig())
		tlsMode = "on"
		if a.cfg.TLSSelfSigned {
			tlsMode = "self-signed"
		}
		if a.cfg.TLSClientCA != "" {
			tlsMode += ", mutual"
		}
	}
	// Last before serving: a new store records which root key it is
	// sealed under (a store shared with a node that wrote it first is
	// checked against it).
	ctx, cancel := context.WithTimeout(context.Background(), markerTimeout)
	err = ensureMarker(ctx, a.store, a.expect, a.sealer, a.rootKey, a.keySrc)
	cancel()
	if err != nil {
		l.Close()
		return err
	}
	if err := a.startMetrics(); err != nil {
		l.Close()
		return err
	}
	a.listener = l
	a.serveErr = make(chan error, 1)
	go func() { a.serveErr <- a.server.Serve(l) }()

	ctx, cancel = context.WithCancel(context.Background())
	a.stopJobs = cancel
	a.jobsDone = make(chan struct{})
	go a.runJobs(ctx)
	a.running.Store(true)

	a.log.Info("keyfort listening", "addr", l.Addr().String(), "auth", a.cfg.Auth, "tls", tlsMode, "data", a.cfg.DataDir)
	a.warnInsecureDevAuth(l.Addr())
	return nil
}

// warnInsecureDevAuth logs, loudly, that --insecure-dev-auth lets anyone
// who reaches the port act as an account root: at error level when the
// address is not loopback, where it takes effect.
func (a *App) warnInsecureDevAuth(addr net.Addr) {
	if !a.cfg.InsecureDevAuth || a.cfg.Auth == config.AuthStrict {
		return
	}
	const risk = "credentials are not verified, so any caller that reaches this port is the root of an AWS account " +
		"(every key, policy and secret); use --auth strict with --credentials outside a trusted machine"
	if ta, ok := addr.(*net.TCPAddr); ok && ta.IP.IsLoopback() {
		a.log.Warn("--insecure-dev-auth is set (on a loopback address, where dev auth needs no flag): "+risk, "addr", addr.String())
		return
	}
	a.log.Error("INSECURE: --insecure-dev-auth on a non-loopback address: "+risk, "addr", addr.String())
}

// auditJobs keeps the trail: it completes the events a failed file write
// left incomplete in the store (each run after one), and at most once an hour deletes
// the stored events LookupEvents no longer shows and, when retention is
// configured, the audit files past their age or the trail's size (the sink
// also does at each rotation), so old files go while little is written.
type auditJobs struct {
	trail *audit.Trail
	now   func() time.Time
	files bool

	mu   sync.Mutex // the ticker and App.RunJobs may run it at once
	last time.Time
}

// RunJobs implements jobRunner.
func (r *auditJobs) RunJobs(ctx context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	t := r.now()
	// A request's change and event commit together; its line is in the
	// file a moment later, unless the write failed: then Finish writes it
	// (past a minute, so that no request still on its way is taken).
	if r.trail.Failed() {
		if _, err := r.trail.Finish(ctx, t.Add(-time.Minute)); err != nil {
			return fmt.Errorf("app: audit: %w", err)
		}
	}
	if r.last.IsZero() || t.Sub(r.last) >= time.Hour {
		r.last = t
		if _, err := r.trail.Prune(ctx); err != nil {
			return fmt.Errorf("app: audit: %w", err)
		}
		if r.files {
			if err := r.trail.ApplyRetention(); err != nil {
				return fmt.Errorf("app: audit retention: %w", err)
			}
		}
	}
	return nil
}

// runJobs calls every job runner once now and then every interval until ctx
// is cancelled.
func (a *App) runJobs(ctx context.Context) {
	defer close(a.jobsDone)
	if len(a.jobs) == 0 {
		return
	}
	t := time.NewTicker(a.every)
	defer t.Stop()
	for {
		for _, j := range a.jobs {
			if err := j.RunJobs(ctx); err != nil && ctx.Err() == nil {
				a.log.Error("background job failed", "error", err)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// RunJobs runs every service's due background work once (deleting keys
// whose window has passed, automatic rotations) and returns the first
// error. The ticker calls the same runners; tests call RunJobs after moving
// the clock.
func (a *App) RunJobs(ctx context.Context) error {
	var first error
	for _, j := range a.jobs {
		if err := j.RunJobs(ctx); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// Addr returns the address the server listens on (after Start), e.g.
// "127.0.0.1:40123", or "" before Start.
func (a *App) Addr() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.listener == nil {
		return ""
	}
	return a.listener.Addr().String()
}

// URL returns the server's base URL after Start: "https://" and the address
// with TLS, else "http://"; "" before Start.
func (a *App) URL() string {
	addr := a.Addr()
	switch {
	case addr == "":
		return ""
	case a.tls != nil:
		return "https://" + addr
	default:
		return "http://" + addr
	}
}

// TLSCAFile returns the path of the CA certificate that clients trust with
// --tls-self-signed (<data>/tls/ca.pem), or "" without it. The file exists
// once Start has returned.
func (a *App) TLSCAFile() string {
	if a.tls == nil {
		return ""
	}
	return a.tls.caFile
}

// Run starts the app if it is not started, blocks until ctx is done or the
// server fails, then shuts down gracefully: stop accepting, finish in-flight
// requests (bounded by ShutdownTimeout), stop jobs, close the audit trail
// and the store.
func (a *App) Run(ctx context.Context) error {
	if a.Addr() == "" {
		if err := a.Start(); err != nil {
			a.Close()
			return err
		}
	}
	var serveErr error
	select {
	case <-ctx.Done():
	case serveErr = <-a.serveErr:
		a.serveErr <- serveErr // for Close
	}
	a.log.Info("keyfort shutting down")
	err := a.Close()
	return errors.Join(serveErr, err)
}

// Close shuts the app down gracefully (see Run). It is safe to call more
// than once and before Start.
func (a *App) Close() error {
	a.closeOnce.Do(func() {
		a.running.Store(false) // GET /ready answers 503 from here on
		var errs []error
		a.mu.Lock()
		started := a.listener != nil
		metricsSrv := a.metricsSrv
		a.mu.Unlock()
		if started {
			ctx, cancel := context.WithTimeout(context.Background(), a.cfg.ShutdownTimeout)
			if err := a.server.Shutdown(ctx); err != nil {
				errs = append(errs, fmt.Errorf("app: %w", err))
			}
			cancel()
			if err := <-a.serveErr; err != nil {
				errs = append(errs, fmt.Errorf("app: %w", err))
			}
			a.stopJobs()
			<-a.jobsDone
			ctx, cancel = context.WithTimeout(context.Background(), a.cfg.ShutdownTimeout)
			if a.flushUsage != nil {
				if err := a.flushUsage(ctx); err != nil {
					errs = append(errs, fmt.Errorf("app: %w", err))
				}
			}
			cancel()
		}
		if metricsSrv != nil {
			// Last of the listeners: a scrape sees the shutdown through.
			_ = metricsSrv.Close()
		}
		errs = append(errs, a.closeResources())
		a.closeErr = errors.Join(errs...)
	})
	return a.closeErr
}

// closeResources closes the audit trail and the store and releases the data
// directory. After a failed New or Start it removes what they created in
// it, and the directory itself if they created it.
func (a *App) closeResources() error {
	var errs []error
	a.mu.Lock()
	failed := a.failed
	a.mu.Unlock()
	if a.audit != nil {
		if err := a.audit.Close(); err != nil {
			errs = append(errs, fmt.Errorf("app: close audit trail: %w", err))
		}
	}
	if a.store != nil {
		if err := a.store.Close(); err != nil {
			errs = append(errs, fmt.Errorf("app: close store: %w", err))
		}
	}
	if a.lock != nil {
		if failed {
			errs = append(errs, a.undo.removeNew()) // still holding the lock
			a.lock.discard()
		} else {
			a.lock.release()
		}
	}
	if failed && a.undo != nil {
		a.undo.removeDirs()
	}
	return errors.Join(errs...)
}

// syncOf returns the store's Sync (see storage.ChangeNotifier), which each
// request calls before it runs, or nil for a store without caches.
func syncOf(store storage.Store) func(ctx context.Context) error {
	if n, ok := store.(storage.ChangeNotifier); ok {
		return n.Sync
	}
	return nil
}
