package app

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
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
	"github.com/keyfort/keyfort/internal/uuid"
)

// nextRootKeyFileName holds the new root key while `keyfort rootkey rotate`
// runs; it becomes root.key when the rotation is finished.
const nextRootKeyFileName = "root.key.next"

// nextKeyPaths lists the files where a node finds the next root key of a
// rotation, the first one being where `keyfort rootkey rotate` takes it
// from: <file>.next beside --root-key-file, and <data>/root.key.next. A
// node loads those that exist at start, and reads them again when it meets
// a record sealed under a key it does not hold (or the store's marker
// names one), so an operator puts the new key there on every node, then
// rotates while the nodes serve.
func nextKeyPaths(cfg config.Config) []string {
	dataNext := filepath.Join(cfg.DataDir, nextRootKeyFileName)
	if cfg.RootKeyFile == "" || filepath.Clean(cfg.RootKeyFile+".next") == filepath.Clean(dataNext) {
		return []string{dataNext}
	}
	return []string{cfg.RootKeyFile + ".next", dataNext}
}

// loadNextRootKeys loads the next-key files of paths that exist.
func loadNextRootKeys(paths []string) ([]*envelope.RootKey, error) {
	var keys []*envelope.RootKey
	for _, path := range paths {
		if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
			continue
		}
		k, _, err := envelope.LoadRootKey(envelope.RootKeyOptions{File: path})
		if err != nil {
			return nil, fmt.Errorf("app: next root key: %w", err)
		}
		keys = append(keys, k)
	}
	return keys, nil
}

// rotationStaleAfter is how long a rotation's claim may go without a
// heartbeat (one per committed batch) before another run may take it over:
// the run that held it was killed.
const rotationStaleAfter = time.Minute

// rotationClaim is the Data of the claim record (markerKind, claimID) that
// one `keyfort rootkey rotate` holds while it runs. The record exists from
// the rotation's first transaction, which also moves the marker to the new
// key, until every record is re-sealed: while it exists, nodes start only
// with both keys. A run that fails sets Heartbeat to 0 so that the next run
// takes the claim over at once; a killed run's claim is taken over once it
// is rotationStaleAfter old.
type rotationClaim struct {
	From      [8]byte `json:"-"`
	To        [8]byte `json:"-"`
	FromHex   string  `json:"from"`
	ToHex     string  `json:"to"`
	Owner     string  `json:"owner"`
	Started   int64   `json:"started"`   // Unix nanoseconds
	Heartbeat int64   `json:"heartbeat"` // Unix nanoseconds; 0: the run ended
}

func decodeClaim(rec *storage.Record) (*rotationClaim, error) {
	var c rotationClaim
	if err := json.Unmarshal(rec.Data, &c); err != nil {
		return nil, fmt.Errorf("the root key rotation claim in the store is malformed: %w", err)
	}
	for _, f := range []struct {
		hex string
		id  *[8]byte
	}{{c.FromHex, &c.From}, {c.ToHex, &c.To}} {
		if b, err := hex.DecodeString(f.hex); err != nil || len(b) != 8 {
			return nil, errors.New("the root key rotation claim in the store is malformed: bad root key id")
		} else {
			copy(f.id[:], b)
		}
	}
	return &c, nil
}

func (c *rotationClaim) encode() []byte {
	c.FromHex, c.ToHex = hex.EncodeToString(c.From[:]), hex.EncodeToString(c.To[:])
	b, _ := json.Marshal(c) // cannot fail: strings and integers
	return b
}

// ErrRotationRunning is wrapped by the error of a rotation refused because
// another one holds the store's claim; errClaimLost by that of a run whose
// claim another run took over.
var (
	ErrRotationRunning = errors.New("another root key rotation is running")
	errClaimLost       = errors.New("the root key rotation claim was taken over")
)

// claimRotation takes the store's rotation claim for c and, in the same
// transaction, moves the marker to the new key (sealer's current). A claim
// held by a live run is refused; one of a run that ended or went silent
// for rotationStaleAfter is taken over if the sealer holds both its keys.
func claimRotation(ctx context.Context, store storage.Store, sealer *envelope.Sealer, c *rotationClaim, now func() time.Time) error {
	err := store.Update(ctx, func(tx storage.Tx) error {
		rec, err := tx.Get(ctx, markerKind, markerScope, claimID)
		t := now()
		c.Heartbeat = t.UnixNano()
		switch {
		case errors.Is(err, storage.ErrNotFound):
			err := tx.Insert(ctx, &storage.Record{Kind: markerKind, Scope: markerScope, ID: claimID, Data: c.encode()})
			if errors.Is(err, storage.ErrExists) {
				return storage.ErrConflict // another run inserted it first: read it again
			}
			if err != nil {
				return err
			}
		case err != nil:
			return err
		default:
			held, err := decodeClaim(rec)
			if err != nil {
				return err
			}
			if err := held.busy(t); err != nil {
				return err
			}
			for _, id := range [][8]byte{held.From, held.To} {
				if !sealer.Holds(id) {
					return fmt.Errorf("%w: the unfinished rotation from root key %x to %x needs root key %x, which this run does not hold: finish it with --new-root-key-file holding root key %x",
						errWrongRootKey, held.From, held.To, id, held.To)
				}
			}
			rec.Data = c.encode()
			if err := tx.Update(ctx, rec); err != nil {
				return err
			}
		}
		return putMarker(ctx, tx, sealer)
	})
	if err != nil {
		return fmt.Errorf("app: claim the root key rotation: %w", err)
	}
	return nil
}

// busy returns an error wrapping ErrRotationRunning if the run holding c is
// alive at t: it renewed the claim less than rotationStaleAfter ago.
func (c *rotationClaim) busy(t time.Time) error {
	idle := t.Sub(time.Unix(0, c.Heartbeat))
	if c.Heartbeat == 0 || idle >= rotationStaleAfter {
		return nil
	}
	return fmt.Errorf("%w: a keyfort rootkey rotate from root key %x to %x (started %s) holds the store's rotation claim, active %s ago; run this again once it has finished (the claim of a run that was killed is taken over after %s without activity)",
		ErrRotationRunning, c.From, c.To, time.Unix(0, c.Started).UTC().Format(time.RFC3339), idle.Round(time.Second), rotationStaleAfter)
}

// renewClaim checks in tx that the claim is still c's and renews its
// heartbeat: run first in each re-seal batch, so that a run whose claim was
// taken over writes nothing more.
func renewClaim(ctx context.Context, tx storage.Tx, c *rotationClaim, now func() time.Time) error {
	rec, err := tx.Get(ctx, markerKind, markerScope, claimID)
	if errors.Is(err, storage.ErrNotFound) {
		return fmt.Errorf("app: %w: the claim is gone", errClaimLost)
	}
	if err != nil {
		return fmt.Errorf("app: read the root key rotation claim: %w", err)
	}
	held, err := decodeClaim(rec)
	if err != nil {
		return fmt.Errorf("app: %w", err)
	}
	if held.Owner != c.Owner {
		return fmt.Errorf("app: %w: another keyfort rootkey rotate took it over after this run was silent for %s; this run stops", errClaimLost, rotationStaleAfter)
	}
	c.Heartbeat = now().UnixNano()
	rec.Data = c.encode()
	return tx.Update(ctx, rec)
}

// releaseClaim ends c's hold on the claim: finished, it deletes the claim
// (the rotation is complete); otherwise it keeps the claim (the rotation
// is unfinished) with no heartbeat, for the next run to take over at once.
func releaseClaim(ctx context.Context, store storage.Store, c *rotationClaim, finished bool) error {
	err := store.Update(ctx, func(tx storage.Tx) error {
		rec, err := tx.Get(ctx, markerKind, markerScope, claimID)
		if errors.Is(err, storage.ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		if held, err := decodeClaim(rec); err != nil || held.Owner != c.Owner {
			return err // taken over: not ours to release
		}
		if finished {
			return tx.Delete(ctx, markerKind, markerScope, claimID)
		}
		c.Heartbeat = 0
		rec.Data = c.encode()
		return tx.Update(ctx, rec)
	})
	if err != nil {
		return fmt.Errorf("app: release the root key rotation claim: %w", err)
	}
	return nil
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
	// PostgresSchema, if not empty, is the PostgreSQL schema that holds the
	// tables (tests; see Options.PostgresSchema).
	PostgresSchema string
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
// `keyfort rootkey rotate` command.
//
// On the embedded store the server must not be running: the command holds
// the data directory's lock. On PostgreSQL it runs while the nodes serve
// and takes no data directory lock: the new key must first be on every
// node, in the .next file beside its root key (nextKeyPaths), and comes
// from there (or --new-root-key-file); a key is never generated. In both
// cases the run takes the store's rotation claim and moves the root key
// marker to the new key in one transaction (so a second run is refused,
// and nodes seal new records under the new key from then on), re-seals the
// records in committed batches, each renewing the claim, then releases the
// claim and compacts the store. An interrupted run is finished by running
// it again: it takes the claim over.
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
	shared := cfg.IsPostgres()
	if !shared {
		// One process per data directory: the server must be stopped.
		if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
			return res, fmt.Errorf("app: create data directory: %w", err)
		}
		lock, err := lockDataDir(cfg.DataDir)
		if err != nil {
			return res, err
		}
		defer lock.release()
	}

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
		if store, err = openStore(ctx, cfg, opts.PostgresSchema, log, nil); err != nil {
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
	case err != nil && defaultKey && errors.Is(err, fs.ErrNotExist) && !shared:
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
	paths := nextKeyPaths(cfg)
	var next *envelope.RootKey
	madeNext := false
	switch {
	case opts.NewRootKeyFile != "":
		if next, _, err = envelope.LoadRootKey(envelope.RootKeyOptions{File: opts.NewRootKeyFile}); err != nil {
			return res, fmt.Errorf("app: new root key: %w", err)
		}
		res.NewKeyPath = opts.NewRootKeyFile
	default:
		for _, path := range paths {
			keys, err := loadNextRootKeys([]string{path})
			if err != nil {
				return res, err
			}
			if len(keys) == 1 {
				next, res.NewKeyPath = keys[0], path
				break
			}
		}
		switch {
		case next != nil:
			log.Info("rotating to the next root key", "path", res.NewKeyPath, "next_root_key", next)
		case shared:
			// Nodes serve while it runs and must open what it re-seals.
			return res, fmt.Errorf("app: no new root key: on PostgreSQL, put the new root key in %s on every node (nodes read it while they serve) and here, or give --new-root-key-file, then run this again", paths[0])
		default:
			nextPath := filepath.Join(cfg.DataDir, nextRootKeyFileName)
			if next, err = envelope.GenerateRootKey(opts.Rand); err != nil {
				return res, fmt.Errorf("app: new root key: %w", err)
			}
			if err := envelope.WriteRootKeyFile(nextPath, next); err != nil {
				return res, fmt.Errorf("app: write new root key: %w", err)
			}
			madeNext = true
			res.NewKeyPath = nextPath
		}
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
	if expect.claim != nil {
		if err := expect.claim.busy(now()); err != nil {
			if madeNext {
				_ = os.Remove(res.NewKeyPath)
			}
			return res, fmt.Errorf("app: %w", err)
		}
	}
	// The store must be sealed under the current key (or, resuming, the
	// new one), or nothing could be re-sealed.
	sealer := envelope.NewSealer(opts.Rand, next, current)
	if err := checkRootKey(expect, sealer, current, source); err != nil {
		if madeNext {
			// Nothing is sealed under it: leave no rotation to resume.
			_ = os.Remove(res.NewKeyPath)
		}
		return res, err
	}

	rnd := opts.Rand
	if rnd == nil {
		rnd = rand.Reader
	}
	owner, err := uuid.NewV4(rnd)
	if err != nil {
		return res, fmt.Errorf("app: claim the root key rotation: %w", err)
	}
	claim := &rotationClaim{From: res.OldID, To: res.NewID, Owner: owner, Started: now().UnixNano()}
	if err := claimRotation(ctx, store, sealer, claim, now); err != nil {
		return res, err
	}
	// From here on the marker names the new key: nodes seal under it.
	log.Info("root key rotation claimed: nodes now seal under the new root key", "from_root_key", current, "to_root_key", next)
	finished := false
	defer func() {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		if rerr := releaseClaim(rctx, store, claim, finished); rerr != nil && err == nil {
			err = rerr
		}
	}()
	svc := kms.New(kms.Config{
		Store:  store,
		Sealer: sealer,
		Now:    now,
		Rand:   opts.Rand,
		Logger: log,
	})
	res.Resealed, err = svc.Reseal(ctx, kms.ResealOptions{
		Progress: opts.Progress,
		Batch:    func(ctx context.Context, tx storage.Tx) error { return renewClaim(ctx, tx, claim, now) },
	})
	if err != nil {
		return res, fmt.Errorf("app: re-seal: %w", err)
	}
	finished = true
	if err := releaseClaim(ctx, store, claim, true); err != nil {
		return res, err
	}
	// Rewrite the store's files so no copy sealed under the old key stays
	// in free pages, old row versions or the write-ahead log.
	if c, ok := store.(storage.Compactor); ok {
		if err := c.Compact(ctx); err != nil {
			return res, fmt.Errorf("app: compact the store: %w", err)
		}
	}

	if !defaultKey || res.NewKeyPath != filepath.Join(cfg.DataDir, nextRootKeyFileName) {
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
	if err := os.Rename(res.NewKeyPath, rootPath); err != nil {
		return res, fmt.Errorf("app: install the new root key: %w", err)
	}
	if err := durable.SyncDir(cfg.DataDir); err != nil {
		return res, fmt.Errorf("app: install the new root key: %w", err)
	}
	res.Installed = true
	return res, nil
}
