package kms

import (
	"context"
	"errors"

	"github.com/keyfort/keyfort/internal/envelope"
	"github.com/keyfort/keyfort/internal/storage"
)

// resealBatch is how many records one transaction re-seals.
const resealBatch = 100

// sealedKind is a record kind whose Sealed column is sealed under the root
// key, with the identity its seal binds (the AAD).
type sealedKind struct {
	kind storage.Kind
	aad  func(scope storage.Scope, id string) envelope.AAD
}

// sealedKinds lists every record kind the KMS service seals under the root
// key: Reseal re-seals each of them, so a new kind (private keys, imported
// material) is added here and nowhere else.
var sealedKinds = []sealedKind{
	{kind: kindMaterial, aad: materialAAD},
	{kind: kindKeyStore, aad: keyStoreAAD},
}

// ResealOptions configures Reseal.
type ResealOptions struct {
	// Progress, if not nil, is told how many sealed records were read so
	// far and how many there are (counted first), after each committed
	// batch.
	Progress func(read, total int)
	// Batch, if not nil, runs first in each batch's transaction; its error
	// ends the run with nothing of that batch written. `keyfort rootkey
	// rotate` checks there that it still holds the store's rotation claim.
	Batch func(ctx context.Context, tx storage.Tx) error
}

// Reseal re-seals every stored record of the sealed kinds that is not
// sealed under the Sealer's current root key (keyfort rootkey rotate). It
// works in batches, each its own transaction, so an interrupted run loses
// nothing and a new run resumes: records already under the current key are
// skipped. Nodes may serve meanwhile: a record deleted after a batch read it
// is skipped, one changed meanwhile makes the batch run again. It returns
// the number of records re-sealed. The Sealer must know the old root key
// (NewSealer(rand, new, old)).
func (s *Service) Reseal(ctx context.Context, opts ResealOptions) (int, error) {
	progress := opts.Progress
	total := 0
	if progress != nil {
		for _, k := range sealedKinds {
			n, err := s.countKind(ctx, k)
			if err != nil {
				return 0, err
			}
			total += n
		}
	}
	read := 0
	report := func(n int) {
		read += n
		if progress != nil {
			progress(read, max(total, read))
		}
	}
	report(0)
	done := 0
	for _, k := range sealedKinds {
		n, err := s.resealKind(ctx, k, opts.Batch, report)
		done += n
		if err != nil {
			return done, err
		}
	}
	return done, nil
}

// countKind counts the records of one sealed kind, for the progress line.
func (s *Service) countKind(ctx context.Context, k sealedKind) (int, error) {
	n := 0
	err := s.store.View(ctx, func(r storage.Reader) error {
		var after storage.Position
		for {
			page, err := r.Scan(ctx, k.kind, after, resealBatch)
			if err != nil {
				return err
			}
			n += len(page)
			if len(page) < resealBatch {
				return nil
			}
			after = storage.PositionOf(page[len(page)-1])
		}
	})
	if err != nil {
		return 0, wrap("count "+string(k.kind), err)
	}
	return n, nil
}

// resealKind re-seals the records of one sealed kind.
func (s *Service) resealKind(ctx context.Context, k sealedKind, batch func(context.Context, storage.Tx) error, report func(read int)) (int, error) {
	done := 0
	var after storage.Position
	for {
		var page []*storage.Record
		n := 0 // counted per attempt: the Store may run the function twice
		err := s.store.Update(ctx, func(tx storage.Tx) error {
			n = 0
			if batch != nil {
				if err := batch(ctx, tx); err != nil {
					return err
				}
			}
			var err error
			page, err = tx.Scan(ctx, k.kind, after, resealBatch)
			if err != nil {
				return err
			}
			for _, rec := range page {
				if !s.sealer.NeedsReseal(rec.Sealed) {
					continue
				}
				sealed, err := s.sealer.Reseal(k.aad(rec.Scope, rec.ID), rec.Sealed)
				if err != nil {
					return wrap("reseal "+string(k.kind)+" "+rec.ID, err)
				}
				rec.Sealed = sealed
				err = tx.Update(ctx, rec)
				if errors.Is(err, storage.ErrNotFound) {
					continue // deleted by a serving node since the scan
				}
				if err != nil {
					return wrap("reseal "+string(k.kind)+" "+rec.ID, err)
				}
				n++
			}
			return nil
		})
		if err != nil {
			return done, err
		}
		done += n
		report(len(page))
		if len(page) < resealBatch {
			return done, nil
		}
		after = storage.PositionOf(page[len(page)-1])
	}
}
