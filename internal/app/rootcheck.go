package app

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/keyfort/keyfort/internal/envelope"
	"github.com/keyfort/keyfort/internal/storage"
)

// The root key marker: one small sealed record that says, in its header,
// which root key the store is sealed under, so that start-up checks the
// root key with one read however many keys the store holds. It is written
// at the first start (or the first start of a store made before it
// existed) and re-sealed by `keyfort rootkey rotate`, with the records.
const (
	markerKind   storage.Kind = "keyfort.rootkey"
	markerID                  = "marker"
	markerColumn              = "check"
	markerText                = "keyfort root key check v1"
	// claimID is the record (kind markerKind) that says a root key
	// rotation is unfinished: see rotationClaim.
	claimID = "rotation"
)

// markerScope is the scope of the marker: no account, no region.
var markerScope = storage.Scope{}

// sealedKind is the kind of record the KMS service seals under the root key
// (kms.kindMaterial): a store made before the marker existed is checked by
// the header of its first one. Every Secrets Manager value is encrypted
// under a KMS key, so a store with secrets has one too.
const sealedKind storage.Kind = "kms.material"

var markerAAD = envelope.AAD{Kind: string(markerKind), ID: markerID, Column: markerColumn}

// storeExpectation is what the store says of its root key.
type storeExpectation struct {
	// id is the root key the store is sealed under; ok is false for a store
	// that holds nothing sealed yet.
	id [8]byte
	ok bool
	// marker is the marker record, nil if the store has none yet.
	marker *storage.Record
	// claim is the claim of an unfinished `keyfort rootkey rotate`, nil if
	// none.
	claim *rotationClaim
}

// readExpectation reads the marker, or else the header of the first sealed
// record (a store from before the marker). Both are single indexed reads.
func readExpectation(ctx context.Context, store storage.Store) (storeExpectation, error) {
	var e storeExpectation
	err := store.View(ctx, func(r storage.Reader) error {
		e = storeExpectation{}
		crec, err := r.Get(ctx, markerKind, markerScope, claimID)
		switch {
		case err == nil:
			if e.claim, err = decodeClaim(crec); err != nil {
				return err
			}
		case !errors.Is(err, storage.ErrNotFound):
			return err
		}
		rec, err := r.Get(ctx, markerKind, markerScope, markerID)
		switch {
		case err == nil:
			id, ok := envelope.SealedKeyID(rec.Sealed)
			if !ok {
				return errors.New("the root key marker in the store is malformed")
			}
			e.id, e.ok, e.marker = id, true, rec
			return nil
		case !errors.Is(err, storage.ErrNotFound):
			return err
		}
		recs, err := r.Scan(ctx, sealedKind, storage.Position{}, 1)
		if err != nil {
			return err
		}
		if len(recs) == 1 {
			if e.id, e.ok = envelope.SealedKeyID(recs[0].Sealed); !e.ok {
				return fmt.Errorf("sealed record %s has a malformed header", recs[0].ID)
			}
		}
		return nil
	})
	if err != nil {
		return e, fmt.Errorf("app: read the store's root key id: %w", err)
	}
	return e, nil
}

// errWrongRootKey is wrapped by the errors of a start refused because the
// root key is not the store's; errNoRootKey when there is none and the
// store holds sealed records.
var (
	errWrongRootKey = errors.New("wrong root key")
	errNoRootKey    = errors.New("no root key")
)

// checkRootKey refuses the node's root key (current, from source) unless
// the sealer holds the key the store is sealed under: current itself, or
// the next key of a rotation (see nextKeyPaths). A marker is also opened,
// so a key whose id matches but whose bytes differ is refused too. While a
// rotation is unfinished (its claim is in the store) records are sealed
// under both of its keys, and the node must hold both.
func checkRootKey(e storeExpectation, sealer *envelope.Sealer, current *envelope.RootKey, source string) error {
	if c := e.claim; c != nil {
		for _, id := range [][8]byte{c.From, c.To} {
			if ok, err := sealer.Load(id); err != nil {
				return fmt.Errorf("app: %w", err)
			} else if !ok {
				return fmt.Errorf("app: %w: a root key rotation from root key %x to %x is unfinished and this node does not hold root key %x (its root key from %s is %x): give it both keys (the new one in the .next file beside its root key) or finish the rotation with keyfort rootkey rotate",
					errWrongRootKey, c.From, c.To, id, source, current.ID())
			}
		}
	}
	if !e.ok {
		return nil
	}
	if ok, err := sealer.Load(e.id); err != nil {
		return fmt.Errorf("app: %w", err)
	} else if !ok {
		return fmt.Errorf("app: %w: the store is sealed under root key %x, but the root key from %s is %x; start with the root key the store was sealed with",
			errWrongRootKey, e.id, source, current.ID())
	}
	if e.marker != nil {
		pt, err := sealer.Open(markerAAD, e.marker.Sealed)
		if err != nil || string(pt) != markerText {
			return fmt.Errorf("app: %w: the store's root key marker (root key %x) does not open under the root key from %s", errWrongRootKey, e.id, source)
		}
	}
	return nil
}

// ensureMarker writes the marker sealed under the sealer's current key when
// the store has none. When another node wrote one first, it is checked like
// the one read at start.
func ensureMarker(ctx context.Context, store storage.Store, e storeExpectation, sealer *envelope.Sealer, current *envelope.RootKey, source string) error {
	if e.marker != nil {
		return nil
	}
	sealed, err := sealer.Seal(markerAAD, []byte(markerText))
	if err != nil {
		return fmt.Errorf("app: write the root key marker: %w", err)
	}
	err = store.Update(ctx, func(tx storage.Tx) error {
		return tx.Insert(ctx, &storage.Record{
			Kind: markerKind, Scope: markerScope, ID: markerID,
			Data:   fmt.Appendf(nil, `{"root_key_id":"%x"}`, sealer.CurrentID()),
			Sealed: sealed,
		})
	})
	if errors.Is(err, storage.ErrExists) {
		// Another node sharing the store started first: its key must be ours.
		e, err := readExpectation(ctx, store)
		if err != nil {
			return err
		}
		return checkRootKey(e, sealer, current, source)
	}
	if err != nil {
		return fmt.Errorf("app: write the root key marker: %w", err)
	}
	return nil
}

// putMarker writes the marker sealed under the sealer's current key (the new
// root key of a rotation) in tx, creating it if the store has none. It
// reads the marker with Get, which on PostgreSQL waits for every
// transaction sealing under the old key (they hold the marker shared; see
// markerSealKey).
func putMarker(ctx context.Context, tx storage.Tx, sealer *envelope.Sealer) error {
	sealed, err := sealer.Seal(markerAAD, []byte(markerText))
	if err != nil {
		return fmt.Errorf("app: re-seal the root key marker: %w", err)
	}
	data := fmt.Appendf(nil, `{"root_key_id":"%x"}`, sealer.CurrentID())
	rec, err := tx.Get(ctx, markerKind, markerScope, markerID)
	if errors.Is(err, storage.ErrNotFound) {
		return tx.Insert(ctx, &storage.Record{Kind: markerKind, Scope: markerScope, ID: markerID, Data: data, Sealed: sealed})
	}
	if err != nil {
		return err
	}
	rec.Data, rec.Sealed = data, sealed
	return tx.Update(ctx, rec)
}

// markerSealKey returns the kms.Config.SealKey of nodes sharing a store: in
// each transaction that seals key material it reads the marker under a
// shared lock (storage.SharedGetter) and returns the key the marker names,
// which the sealer must hold or find in a next-key file (paths, for the
// error). A rotation moves the marker first, in a transaction that waits
// for every transaction holding it shared, so a record sealed under the old
// key is committed before the rotation's passes begin, and every record
// sealed after it is under the new key. A store without a marker yet (a new
// store, before Start writes it) seals under the node's own key.
func markerSealKey(sealer *envelope.Sealer, paths []string) func(ctx context.Context, tx storage.Tx) ([8]byte, error) {
	return func(ctx context.Context, tx storage.Tx) ([8]byte, error) {
		var rec *storage.Record
		var err error
		if g, ok := tx.(storage.SharedGetter); ok {
			rec, err = g.GetShared(ctx, markerKind, markerScope, markerID)
		} else {
			rec, err = tx.Get(ctx, markerKind, markerScope, markerID)
		}
		if errors.Is(err, storage.ErrNotFound) {
			return sealer.CurrentID(), nil
		}
		if err != nil {
			return [8]byte{}, fmt.Errorf("app: read the root key marker: %w", err)
		}
		id, ok := envelope.SealedKeyID(rec.Sealed)
		if !ok {
			return [8]byte{}, errors.New("app: the root key marker in the store is malformed")
		}
		if ok, err := sealer.Load(id); err != nil {
			return [8]byte{}, fmt.Errorf("app: %w", err)
		} else if !ok {
			return [8]byte{}, fmt.Errorf("app: the store's root key marker names root key %x, which this node does not hold: put it in %s", id, strings.Join(paths, " or "))
		}
		return id, nil
	}
}
