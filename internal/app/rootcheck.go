package app

import (
	"context"
	"errors"
	"fmt"

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
}

// readExpectation reads the marker, or else the header of the first sealed
// record (a store from before the marker). Both are single indexed reads.
func readExpectation(ctx context.Context, store storage.Store) (storeExpectation, error) {
	var e storeExpectation
	err := store.View(ctx, func(r storage.Reader) error {
		e = storeExpectation{}
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

// checkRootKey refuses current unless the store is sealed under it, or under
// next (an unfinished `keyfort rootkey rotate`, whose new key the server
// also loads). A marker is also opened, so a key whose id matches but whose
// bytes differ is refused too.
func checkRootKey(e storeExpectation, sealer *envelope.Sealer, current, next *envelope.RootKey, source string) error {
	if !e.ok {
		return nil
	}
	if e.id != current.ID() && (next == nil || e.id != next.ID()) {
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
func ensureMarker(ctx context.Context, store storage.Store, e storeExpectation, sealer *envelope.Sealer, current, next *envelope.RootKey, source string) error {
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
		return checkRootKey(e, sealer, current, next, source)
	}
	if err != nil {
		return fmt.Errorf("app: write the root key marker: %w", err)
	}
	return nil
}

// resealMarker writes the marker sealed under the sealer's current key (the
// new root key of a rotation), creating it if the store has none.
func resealMarker(ctx context.Context, store storage.Store, sealer *envelope.Sealer) error {
	sealed, err := sealer.Seal(markerAAD, []byte(markerText))
	if err != nil {
		return fmt.Errorf("app: re-seal the root key marker: %w", err)
	}
	err = store.Update(ctx, func(tx storage.Tx) error {
		rec, err := tx.Get(ctx, markerKind, markerScope, markerID)
		if errors.Is(err, storage.ErrNotFound) {
			return tx.Insert(ctx, &storage.Record{
				Kind: markerKind, Scope: markerScope, ID: markerID,
				Data:   fmt.Appendf(nil, `{"root_key_id":"%x"}`, sealer.CurrentID()),
				Sealed: sealed,
			})
		}
		if err != nil {
			return err
		}
		rec.Data = fmt.Appendf(nil, `{"root_key_id":"%x"}`, sealer.CurrentID())
		rec.Sealed = sealed
		return tx.Update(ctx, rec)
	})
	if err != nil {
		return fmt.Errorf("app: re-seal the root key marker: %w", err)
	}
	return nil
}
