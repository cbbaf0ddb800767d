package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/keyfort/keyfort/internal/config"
	"github.com/keyfort/keyfort/internal/durable"
	"github.com/keyfort/keyfort/internal/envelope"
	"github.com/keyfort/keyfort/internal/kms"
	"github.com/keyfort/keyfort/internal/storage"
)

// nextRootKeyFileName holds the new root key while `keyfort rootkey rotate`
// runs; it becomes root.key when the rotation is finished.
const nextRootKeyFileName = "root.key.next"

// loadNextRootKey returns the root key of an unfinished rotation, or nil.
func loadNextRootKey(dataDir string) (*envelope.RootKey, error) {
	path := filepath.Join(dataDir, nextRootKeyFileName)
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	k, _, err := envelope.LoadRootKey(envelope.RootKeyOptions{File: path})
	if err != nil {
		return nil, fmt.Errorf("app: %w", err)
	}
	return k, nil
}

// RotateOptions configures RotateRootKey.
type RotateOptions struct {
	// NewRootKeyFile, if set, is the new root key (32 bytes, raw or
	// base64), for operators who keep the key outside the data directory.
	// Otherwise a new key is generated into <data>/root.key.next.
	NewRootKeyFile string
	Logger         *slog.Logger
	LookupEnv      func(string) (string, bool)
	Rand           io.Reader
	Now            func() time.Time
	// Progress, if set, is told how many sealed records were read so far
	// and how many there are.
	Progress func(read, total int)
}

// RotateResult says what a rotation did.
type RotateResult struct {
	OldID, NewID [8]byte
	// Resealed is how many records were re-sealed in this run.
	Resealed int
	// Installed is true when the new key replaced <data>/root.key; false
	// when the root key comes from --root-key-file or KEYFORT_ROOT_KEY (or
	// --new-root-key-file was given) and the operator must now configure
	// NewKeyPath.
	Installed  bool
	NewKeyPath string
	OldKeyPath string // where the old <data>/root.key was kept, when Installed
}

// RotateRootKey re-seals every sealed record under a new root key: the
// `keyfort rootkey rotate` command. The server must not be running on the
// same data directory (the directory's lock enforces it for one host; with
// PostgreSQL, stop every node first). Records are re-sealed in batches,
// each committed, so an interrupted run is finished by running it again:
// the new key is kept in <data>/root.key.next until the end, and servers
// started meanwhile can open records sealed under either key.
func RotateRootKey(ctx context.Context, cfg config.Config, opts RotateOptions) (res RotateResult, err error) {
	if err := cfg.Validate(); err != nil {
		return res, err
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	lookup := opts.LookupEnv
	if lookup == nil {
		lookup = os.LookupEnv
	}
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return res, fmt.Errorf("app: create data directory: %w", err)
	}
	lock, err := lockDataDir(cfg.DataDir)
	if err != nil {
		return res, err
	}
	defer lock.release()

	var store storage.Store
	var expect storeExpectation
	defer func() {
		if store == nil {
			return
		}
		if cerr := store.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("app: close store: %w", cerr)
		}
	}()
	readStore := func() error {
		if store, err = openStore(ctx, cfg, "", log, nil); err != nil {
			return err
		}
		expect, err = readExpectation(ctx, store)
		return err
	}

	envKey, _ := lookup("KEYFORT_ROOT_KEY")
	defaultKey := cfg.RootKeyFile == "" && envKey == ""
	source := rootKeySource(cfg, envKey)
	current, _, err := envelope.LoadRootKey(envelope.RootKeyOptions{File: cfg.RootKeyFile, EnvBase64: envKey, DataDir: cfg.DataDir, NoGenerate: true})
	switch {
	case err != nil && defaultKey && errors.Is(err, fs.ErrNotExist):
		// No root.key: one is generated only for a store with nothing sealed.
		if err := readStore(); err != nil {
			return res, err
		}
		if current, _, source, err = loadRootKey(cfg, envKey, expect, opts.Rand); err != nil {
			return res, err
		}
	case err != nil:
		return res, fmt.Errorf("app: %w", err)
	}
	nextPath := filepath.Join(cfg.DataDir, nextRootKeyFileName)
	var next *envelope.RootKey
	madeNext := false
	switch {
	case opts.NewRootKeyFile != "":
		if next, _, err = envelope.LoadRootKey(envelope.RootKeyOptions{File: opts.NewRootKeyFile}); err != nil {
			return res, fmt.Errorf("app: new root key: %w", err)
		}
		res.NewKeyPath = opts.NewRootKeyFile
	default:
		if next, err = loadNextRootKey(cfg.DataDir); err != nil {
			return res, err
		}
		if next == nil {
			if next, err = envelope.GenerateRootKey(opts.Rand); err != nil {
				return res, fmt.Errorf("app: new root key: %w", err)
			}
			if err := envelope.WriteRootKeyFile(nextPath, next); err != nil {
				return res, fmt.Errorf("app: write new root key: %w", err)
			}
			madeNext = true
		} else {
			log.Info("resuming an unfinished root key rotation", "next_root_key", next)
		}
		res.NewKeyPath = nextPath
	}
	res.OldID, res.NewID = current.ID(), next.ID()
	if res.OldID == res.NewID {
		return res, errors.New("app: the new root key is the current root key")
	}
	if store == nil {
		if err := readStore(); err != nil {
			return res, err
		}
	}
	// The store must be sealed under the current key (or, resuming, the
	// new one), or nothing could be re-sealed.
	sealer := envelope.NewSealer(opts.Rand, next, current)
	if err := checkRootKey(expect, sealer, current, next, source); err != nil {
		if madeNext {
			// Nothing is sealed under it: leave no rotation to resume.
			_ = os.Remove(nextPath)
		}
		return res, err
	}

	svc := kms.New(kms.Config{
		Store:  store,
		Sealer: sealer,
		Now:    now,
		Rand:   opts.Rand,
		Logger: log,
	})
	if res.Resealed, err = svc.Reseal(ctx, opts.Progress); err != nil {
		return res, fmt.Errorf("app: re-seal: %w", err)
	}
	// Last, the marker: from here on the store expects the new key (a
	// server started before root.key is replaced loads root.key.next too).
	if err := resealMarker(ctx, store, sealer); err != nil {
		return res, err
	}
	// Rewrite the store's files so no copy sealed under the old key stays
	// in free pages, old row versions or the write-ahead log.
	if c, ok := store.(storage.Compactor); ok {
		if err := c.Compact(ctx); err != nil {
			return res, fmt.Errorf("app: compact the store: %w", err)
		}
	}

	if !defaultKey || opts.NewRootKeyFile != "" {
		return res, nil // the operator installs the new key where they keep it
	}
	// Keep the old key beside the data, then install the new one with an
	// atomic rename; a crash between the two leaves root.key.next, and the
	// next run finishes (nothing is left to re-seal).
	rootPath := filepath.Join(cfg.DataDir, envelope.RootKeyFileName)
	res.OldKeyPath = filepath.Join(cfg.DataDir, fmt.Sprintf("root.key.old-%x", res.OldID))
	if err := envelope.WriteRootKeyFile(res.OldKeyPath, current); err != nil && !errors.Is(err, fs.ErrExist) {
		return res, fmt.Errorf("app: keep the old root key: %w", err)
	}
	if err := os.Rename(nextPath, rootPath); err != nil {
		return res, fmt.Errorf("app: install the new root key: %w", err)
	}
	if err := durable.SyncDir(cfg.DataDir); err != nil {
		return res, fmt.Errorf("app: install the new root key: %w", err)
	}
	res.Installed = true
	return res, nil
}
