package kms

import (
	"context"

	"github.com/keyfort/keyfort/internal/storage"
)

// resealBatch is how many key materials one transaction re-seals.
const resealBatch = 100

// Reseal re-seals every stored key material that is not sealed under the
// Sealer's current root key (keyfort rootkey rotate). It works in batches,
// each its own transaction, so an interrupted run loses nothing and a new
// run resumes: materials already under the current key are skipped. It
// returns the number of materials re-sealed. The Sealer must know the old
// root key (NewSealer(rand, new, old)).
func (s *Service) Reseal(ctx context.Context) (int, error) {
	done := 0
	var after storage.Position
	for {
		var page []*storage.Record
		n := 0 // counted per attempt: the Store may run the function twice
		err := s.store.Update(ctx, func(tx storage.Tx) error {
			n = 0
			var err error
			page, err = tx.Scan(ctx, kindMaterial, after, resealBatch)
			if err != nil {
				return err
			}
			for _, rec := range page {
				if !s.sealer.NeedsReseal(rec.Sealed) {
					continue
				}
				sealed, err := s.sealer.Reseal(materialAAD(rec.Scope, rec.ID), rec.Sealed)
				if err != nil {
					return wrap("reseal material "+rec.ID, err)
				}
				rec.Sealed = sealed
				if err := tx.Update(ctx, rec); err != nil {
					return wrap("reseal material "+rec.ID, err)
				}
				n++
			}
			return nil
		})
		if err != nil {
			return done, err
		}
		done += n
		if len(page) < resealBatch {
			return done, nil
		}
		after = storage.PositionOf(page[len(page)-1])
	}
}
