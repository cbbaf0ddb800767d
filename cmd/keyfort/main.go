// Command keyfort serves the AWS KMS and AWS Secrets Manager APIs.
//
//	keyfort serve [flags]   run the server (see keyfort serve -h)
//	keyfort rootkey rotate  re-seal everything under a new root key
//	keyfort backup FILE     write a backup of the embedded store, while it serves
//	keyfort restore FILE    restore a backup into a new data directory
//	keyfort migrate         copy the embedded store to PostgreSQL, or back
//	keyfort clock advance DURATION --endpoint URL
//	                        move a dev server's clock forward (8d, 36h)
//	keyfort version         print the version
//	keyfort help            print this help
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"syscall"
	"time"

	"github.com/keyfort/keyfort/internal/app"
	"github.com/keyfort/keyfort/internal/config"
	"github.com/keyfort/keyfort/internal/heapfloor"
	"github.com/keyfort/keyfort/internal/progress"
)

// version is set at build time with -ldflags "-X main.version=v1.2.3".
var version = "dev"

const usage = `keyfort serves the AWS KMS and AWS Secrets Manager APIs.

Usage:
  keyfort serve [flags]   run the server (keyfort serve -h lists the flags)
  keyfort rootkey rotate [flags]
                          re-seal every stored key under a new root key
                          (embedded store: stop the server first; PostgreSQL:
                          while the nodes serve; keyfort rootkey rotate -h)
  keyfort backup FILE [flags]
                          write a consistent backup of the embedded store to
                          FILE, while the server runs (keyfort backup -h)
  keyfort restore FILE [flags]
                          restore a backup into a new or empty data
                          directory (keyfort restore -h)
  keyfort migrate --data DIR --to postgres://...
  keyfort migrate --from postgres://... --data DIR
                          copy every key, secret and audit event from the
                          embedded store to PostgreSQL, or back into a new
                          data directory (keyfort migrate -h)
  keyfort clock advance DURATION [--endpoint URL]
                          move the clock of a running dev server forward
                          (8d, 36h, 1d12h) and run the work that fell due
  keyfort clock show [--endpoint URL]
                          print the server's time and its offset
  keyfort version         print the version
  keyfort help            print this help

Settings come from flags, then KEYFORT_* environment variables, then the
YAML file given by --config, then defaults. With --auth strict, requests
must be signed with an access key of the --credentials file. With
--tls-cert/--tls-key (or --tls-self-signed) the server speaks HTTPS only.
SIGHUP reloads the credentials file and the TLS certificate, key and
client CAs.
`

func main() {
	os.Exit(Main(context.Background(), os.Args[1:], os.Stdout, os.Stderr, os.LookupEnv))
}

// Main runs the keyfort command with args (without the program name) and
// returns the exit status: 0 on success, 1 when the server fails, 2 for
// bad usage or configuration.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer, lookup func(string) (string, bool)) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	switch args[0] {
	case "serve":
		return serve(ctx, args[1:], stderr, lookup)
	case "rootkey":
		if len(args) < 2 || args[1] != "rotate" {
			fmt.Fprintln(stderr, "keyfort: usage: keyfort rootkey rotate [flags]")
			return 2
		}
		return rotate(ctx, args[2:], stdout, stderr, lookup)
	case "backup":
		return backup(ctx, args[1:], stdout, stderr, lookup)
	case "restore":
		return restore(ctx, args[1:], stdout, stderr, lookup)
	case "migrate":
		return migrate(ctx, args[1:], stdout, stderr, lookup)
	case "clock":
		return clockCmd(ctx, args[1:], stdout, stderr)
	case "version", "-version", "--version":
		fmt.Fprintln(stdout, "keyfort", version)
		return 0
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "keyfort: unknown command %q (try keyfort help)\n", args[0])
		return 2
	}
}

// loadStatus is a command's exit status after config.Load or LoadCommand
// failed: 0 for -h (fs printed the usage), else 2, printing a config error
// (flag errors were already printed by fs, with the usage).
func loadStatus(err error, stderr io.Writer) int {
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	var ce *config.Error
	if errors.As(err, &ce) {
		fmt.Fprintln(stderr, "keyfort:", err)
	}
	return 2
}

// heapFloor is the least heap goal the server's collector works to while
// a memory limit is in effect: 3/10 of the default limit. It keeps a small
// live heap (2 MiB with a few hundred keys and secrets) from being
// collected every few hundred requests, and adds little where the live heap
// is larger (about 5 MiB with 10,000 keys and 10,000 secrets, whose goal is
// already 10 MiB).
const heapFloor = 12 << 20

func serve(ctx context.Context, args []string, stderr io.Writer, lookup func(string) (string, bool)) int {
	fs := flag.NewFlagSet("keyfort serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfg, err := config.Load(fs, args, lookup)
	if err != nil {
		return loadStatus(err, stderr)
	}
	if err := cfg.Validate(); err != nil {
		fmt.Fprintln(stderr, "keyfort:", err)
		return 2
	}
	log := app.NewLogger(stderr, cfg.LogLevel, cfg.LogFormat)
	if _, set := lookup("GOMEMLIMIT"); !set && cfg.MemoryLimit > 0 {
		debug.SetMemoryLimit(cfg.MemoryLimit)
	}

	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	if _, set := lookup("GOGC"); !set && debug.SetMemoryLimit(-1) != math.MaxInt64 {
		// Under a memory limit, and with GOGC left to us: collect no more
		// often than a heapFloor heap needs (see package heapfloor).
		floorCtx, stopFloor := context.WithCancel(ctx)
		defer stopFloor()
		go heapfloor.Run(floorCtx, heapFloor, 100, 100*time.Millisecond)
	}
	// SIGHUP reloads the credentials file (strict auth) and the TLS files.
	// Subscribed before start-up so that an early SIGHUP does not end the
	// process.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	a, err := app.New(ctx, cfg, app.Options{Logger: log, LookupEnv: lookup})
	if err != nil {
		fmt.Fprintln(stderr, "keyfort:", err)
		return 1
	}
	go func() {
		for {
			select {
			case <-hup:
				_ = a.Reload() // logs its outcome; a bad file leaves the old one in force
			case <-ctx.Done():
				return
			}
		}
	}()
	if err := a.Run(ctx); err != nil {
		fmt.Fprintln(stderr, "keyfort:", err)
		return 1
	}
	return 0
}

const rotateSynopsis = `Re-seals every stored key and secret under a new root key, in committed
batches (an interrupted run is finished by running it again).

Embedded store: stop the server first. The new key is --new-root-key-file,
else the .next file beside the root key, else one generated into
<data>/root.key.next; at the end a generated key is installed as
<data>/root.key and the old one kept as <data>/root.key.old-<id>.

PostgreSQL: run it while the nodes serve. First put the new key on every
node in the .next file beside its root key (<root-key-file>.next, or
<data>/root.key.next) and here; nodes read it when they need it. One
rotation runs at a time (a claim in the store). Afterwards make the new key
every node's root key before it restarts.
`

// rotate runs `keyfort rootkey rotate`: the settings that find the data,
// the store and the current root key, plus --new-root-key-file.
func rotate(ctx context.Context, args []string, stdout, stderr io.Writer, lookup func(string) (string, bool)) int {
	fs := flag.NewFlagSet("keyfort rootkey rotate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: keyfort rootkey rotate [flags]\n\n%s\nFlags:\n", rotateSynopsis)
		fs.PrintDefaults()
	}
	var newKey string
	fs.StringVar(&newKey, "new-root-key-file", "", "the new root key (default: the .next file beside the root key; embedded store: else generate one into <data>/root.key.next)")
	// Only what finds the store and its key: the server's other settings
	// do not apply.
	cfg, pos, err := config.LoadCommand(fs, args, lookup, "data", "store", "root-key-file", "log-level", "log-format")
	if err != nil {
		return loadStatus(err, stderr)
	}
	if len(pos) > 0 {
		fmt.Fprintf(stderr, "keyfort: rootkey rotate takes no argument (got %q)\n", pos[0])
		return 2
	}
	if err := cfg.Validate(); err != nil {
		fmt.Fprintln(stderr, "keyfort:", err)
		return 2
	}
	log := app.NewLogger(stderr, cfg.LogLevel, cfg.LogFormat)
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	line := progress.New(stderr, "rootkey rotate")
	res, err := app.RotateRootKey(ctx, cfg, app.RotateOptions{NewRootKeyFile: newKey, Logger: log, LookupEnv: lookup,
		Progress: func(read, total int) { line.ReportCount("re-sealing records", int64(read), int64(total)) }})
	line.Done()
	if err != nil {
		fmt.Fprintln(stderr, "keyfort:", err)
		if !errors.Is(err, app.ErrRotationRunning) {
			fmt.Fprintln(stderr, "keyfort: nothing is lost; run keyfort rootkey rotate again to finish")
		}
		return 1
	}
	fmt.Fprintf(stdout, "re-sealed %d records from root key %x to %x\n", res.Resealed, res.OldID, res.NewID)
	switch {
	case res.Installed:
		fmt.Fprintf(stdout, "the new root key is installed; the old one is kept in %s until you remove it\n", res.OldKeyPath)
		if cfg.IsPostgres() {
			fmt.Fprintln(stdout, "on every other node, make the new root key its root key before it restarts; serving nodes hold both keys until then")
		}
	case cfg.IsPostgres():
		fmt.Fprintf(stdout, "make the new root key from %s every node's root key (--root-key-file or KEYFORT_ROOT_KEY) before it restarts; serving nodes hold both keys until then\n", res.NewKeyPath)
	default:
		fmt.Fprintf(stdout, "configure the new root key from %s (--root-key-file or KEYFORT_ROOT_KEY) before starting the server\n", res.NewKeyPath)
	}
	return 0
}

// commandFlags parses the flags of an operator command that takes one FILE
// argument and the settings named; ok is false (with the exit status) when
// the command must stop.
func commandFlags(name, synopsis string, args []string, stderr io.Writer, lookup func(string) (string, bool), define func(*flag.FlagSet), settings ...string) (cfg config.Config, file string, status int, ok bool) {
	fs := flag.NewFlagSet("keyfort "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: keyfort %s FILE [flags]\n\n%s\nFlags:\n", name, synopsis)
		fs.PrintDefaults()
	}
	define(fs)
	cfg, pos, err := config.LoadCommand(fs, args, lookup, settings...)
	if err != nil {
		return cfg, "", loadStatus(err, stderr), false
	}
	if len(pos) != 1 {
		fmt.Fprintf(stderr, "keyfort: usage: keyfort %s FILE [flags] (keyfort %s -h)\n", name, name)
		return cfg, "", 2, false
	}
	return cfg, pos[0], 0, true
}

const backupSynopsis = `Writes a consistent backup of the embedded store of the data directory to
FILE while the server serves it (it takes no lock and writes nothing in the
data directory). FILE is written atomically, with mode 0600. The backup
holds the sealed records and no root key: it is useless without the root
key, which you must keep separately, and safe to store without it.
PostgreSQL stores are backed up with pg_dump.
`

// backup runs `keyfort backup FILE`.
func backup(ctx context.Context, args []string, stdout, stderr io.Writer, lookup func(string) (string, bool)) int {
	var force bool
	cfg, file, status, ok := commandFlags("backup", backupSynopsis, args, stderr, lookup, func(fs *flag.FlagSet) {
		fs.BoolVar(&force, "force", false, "replace FILE if it exists")
	}, "data")
	if !ok {
		return status
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	line := progress.New(stderr, "backup")
	sum, err := app.Backup(ctx, cfg, file, app.BackupOptions{Force: force, Version: version, Progress: line.Report})
	line.Done()
	if err != nil {
		fmt.Fprintln(stderr, "keyfort:", err)
		return 1
	}
	fmt.Fprintf(stdout, "backup of %s written to %s: %s, %d keys, %d secrets\n", cfg.DataDir, file, progress.Bytes(sum.Bytes), sum.Keys, sum.Secrets)
	fmt.Fprintf(stdout, "it holds no root key: keep root key %x separately; the backup cannot be restored without it\n", sum.RootKeyID)
	return 0
}

const restoreSynopsis = `Restores a backup made by keyfort backup into the data directory, which
must not exist or be empty (the audit directory too, when it is elsewhere:
a restored store starts a new audit trail). The file is checked first
(structure, digest, root key marker). Start the server with the root key
the backup names; with another it refuses to start. PostgreSQL stores are
restored with pg_restore.
`

// restore runs `keyfort restore FILE`.
func restore(ctx context.Context, args []string, stdout, stderr io.Writer, lookup func(string) (string, bool)) int {
	cfg, file, status, ok := commandFlags("restore", restoreSynopsis, args, stderr, lookup, func(*flag.FlagSet) {}, "data", "audit-dir")
	if !ok {
		return status
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	line := progress.New(stderr, "restore")
	sum, err := app.Restore(ctx, cfg, file, app.RestoreOptions{Progress: line.Report})
	line.Done()
	if err != nil {
		fmt.Fprintln(stderr, "keyfort:", err)
		return 1
	}
	fmt.Fprintf(stdout, "restored %s (taken %s by keyfort %s) into %s: %d keys, %d secrets\n",
		file, sum.Created.Format(time.RFC3339), sum.Version, cfg.DataDir, sum.Keys, sum.Secrets)
	fmt.Fprintf(stdout, "start it with root key %x: keyfort serve --data %s --root-key-file FILE (or KEYFORT_ROOT_KEY)\n", sum.RootKeyID, cfg.DataDir)
	return 0
}

const migrateSynopsis = `Copies a whole Keyfort store to a new store of the other kind:

  keyfort migrate --data DIR --to postgres://...     embedded -> PostgreSQL
  keyfort migrate --from postgres://... --data DIR   PostgreSQL -> a new
                                                     embedded store in DIR

Every record (keys, key material, aliases, grants, tags, secrets and their
versions) is copied as it is, sealed records without being opened, and so
are the audit events CloudTrail LookupEvents reads. No root key is needed:
start the new store with the root key of the old one.

The source is read in one snapshot. The embedded store must not be served:
migrate takes DIR's lock and refuses while a server holds it. A PostgreSQL
source may keep serving, but what its nodes write after the copy began is
not copied: stop them for a cut-over. The destination must hold nothing
(an empty PostgreSQL schema; a new or empty DIR) and is usable only once
the copy is whole (one transaction; one file renamed into place).

--to and --from take what --store takes (a search_path parameter picks the
schema); KEYFORT_STORE is not read, so the direction is always explicit.
`

// migrate runs `keyfort migrate`.
func migrate(ctx context.Context, args []string, stdout, stderr io.Writer, lookup func(string) (string, bool)) int {
	fs := flag.NewFlagSet("keyfort migrate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: keyfort migrate --data DIR (--to URL | --from URL) [flags]\n\n%s\nFlags:\n", migrateSynopsis)
		fs.PrintDefaults()
	}
	var to, from string
	fs.StringVar(&to, "to", "", "copy the embedded store of --data to this PostgreSQL store (postgres:// URL)")
	fs.StringVar(&from, "from", "", "copy this PostgreSQL store (postgres:// URL) into a new embedded store in --data")
	cfg, pos, err := config.LoadCommand(fs, args, lookup, "data", "audit-dir")
	if err != nil {
		return loadStatus(err, stderr)
	}
	switch {
	case len(pos) > 0:
		fmt.Fprintf(stderr, "keyfort: migrate takes no argument (got %q)\n", pos[0])
		return 2
	case (to == "") == (from == ""):
		fmt.Fprintln(stderr, "keyfort: migrate needs exactly one of --to URL (embedded -> PostgreSQL) and --from URL (PostgreSQL -> embedded) (keyfort migrate -h)")
		return 2
	}
	dsn, flagName := to, "--to"
	if from != "" {
		dsn, flagName = from, "--from"
	}
	if _, err := url.Parse(dsn); err != nil || !(config.Config{Store: dsn}).IsPostgres() {
		// url's errors would echo the password
		fmt.Fprintf(stderr, "keyfort: %s: must be a postgres:// or postgresql:// URL\n", flagName)
		return 2
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	line := progress.New(stderr, "migrate")
	sum, err := app.Migrate(ctx, cfg, app.MigrateOptions{Postgres: dsn, FromPostgres: from != "",
		Progress: func(done, total int64) { line.ReportCount("copying records and audit events", done, total) }})
	line.Done()
	if err != nil {
		fmt.Fprintln(stderr, "keyfort:", err)
		return 1
	}
	if from != "" {
		fmt.Fprintf(stdout, "copied %d records and %d audit events from PostgreSQL into %s: %d keys, %d secrets\n", sum.Records, sum.Events, cfg.DataDir, sum.Keys, sum.Secrets)
		fmt.Fprintf(stdout, "start it with root key %x: keyfort serve --data %s --root-key-file FILE (or KEYFORT_ROOT_KEY)\n", sum.RootKeyID, cfg.DataDir)
		return 0
	}
	fmt.Fprintf(stdout, "copied %d records and %d audit events from %s to PostgreSQL: %d keys, %d secrets\n", sum.Records, sum.Events, cfg.DataDir, sum.Keys, sum.Secrets)
	fmt.Fprintf(stdout, "start the nodes with --store and root key %x (--root-key-file or KEYFORT_ROOT_KEY; by default it is %s)\n",
		sum.RootKeyID, filepath.Join(cfg.DataDir, "root.key"))
	return 0
}
