package storagetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/keyfort/keyfort/internal/storage"
)

// The claim cases check what [storage.Reader.Due] promises inside Update:
// concurrent claimers get disjoint records, a claim that does not commit
// leaves the record due, and Due in View claims nothing.

// insertDue inserts n records of kindA, spread over the scopes, all due at
// 100, and returns their ids.
func insertDue(t *testing.T, s storage.Store, n int) []string {
	t.Helper()
	scopes := []storage.Scope{scope1, scope2, scope3}
	recs := make([]*storage.Record, n)
	ids := make([]string, n)
	for i := range n {
		ids[i] = fmt.Sprintf("job%03d", i)
		recs[i] = newRecord(kindA, scopes[i%len(scopes)], ids[i])
		recs[i].Due = 100
	}
	mustInsert(t, s, recs...)
	return ids
}

// claim runs one Update that claims up to limit records due at 100, marks
// each with who (Data) and clears its Due. It returns the ids of the
// claimed records when the Update committed.
func claim(ctx context.Context, s storage.Store, who string, limit int) ([]string, error) {
	var got []string
	err := s.Update(ctx, func(tx storage.Tx) error {
		got = got[:0]
		recs, err := tx.Due(ctx, kindA, 100, limit)
		if err != nil {
			return err
		}
		for _, r := range recs {
			r.Data = []byte(who)
			r.Due = 0
			if err := tx.Update(ctx, r); err != nil {
				return fmt.Errorf("update %s: %w", r.ID, err)
			}
			got = append(got, r.ID)
		}
		return nil
	})
	slices.Sort(got)
	return got, err
}

// testDueClaimsDisjoint: workers claiming in a loop until nothing is due
// each get other records, and together every record exactly once.
func testDueClaimsDisjoint(t *testing.T, s storage.Store) {
	const records, workers, batch = 120, 8, 3
	ctx := t.Context()
	want := insertDue(t, s, records)
	var (
		mu    sync.Mutex
		owner = map[string]string{} // id -> worker
		dup   []string
		wg    sync.WaitGroup
	)
	errs := make(chan error, workers)
	for w := range workers {
		who := "worker" + strconv.Itoa(w)
		wg.Go(func() {
			for range records { // bounded: every round claims at least one or ends
				got, err := claim(ctx, s, who, batch)
				if err != nil {
					errs <- fmt.Errorf("%s: %w", who, err)
					return
				}
				if len(got) == 0 {
					return
				}
				mu.Lock()
				for _, id := range got {
					if prev, ok := owner[id]; ok {
						dup = append(dup, fmt.Sprintf("%s by %s and %s", id, prev, who))
					}
					owner[id] = who
				}
				mu.Unlock()
			}
		})
	}
	waitGroup(t, &wg)
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if len(dup) > 0 {
		t.Errorf("records claimed twice: %q", dup)
	}
	var claimed []string
	for id := range owner {
		claimed = append(claimed, id)
	}
	slices.Sort(claimed)
	if !slices.Equal(claimed, want) {
		t.Errorf("claimed %d records %q, want all %d", len(claimed), claimed, len(want))
	}
	// The record says who claimed it: the claim the worker counted is the
	// one that committed.
	err := s.View(ctx, func(r storage.Reader) error {
		recs, err := r.Scan(ctx, kindA, storage.Position{}, 0)
		if err != nil {
			return err
		}
		for _, rec := range recs {
			if string(rec.Data) != owner[rec.ID] || rec.Due != 0 {
				t.Errorf("%s: Data %q Due %d, want %q and 0", rec.ID, rec.Data, rec.Due, owner[rec.ID])
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("View = %v", err)
	}
}

// testDueClaimHeld: while one Update holds records it claimed, another
// Update's Due does not return them (it skips them, or runs after the first
// fn and sees its changes).
func testDueClaimHeld(t *testing.T, s storage.Store) {
	ctx := t.Context()
	all := insertDue(t, s, 4)
	var (
		first   []string
		second  []string
		errB    error
		started bool
	)
	done := make(chan struct{})
	err := s.Update(ctx, func(tx storage.Tx) error {
		first = first[:0]
		recs, err := tx.Due(ctx, kindA, 100, 2)
		if err != nil {
			return err
		}
		for _, r := range recs {
			first = append(first, r.ID)
		}
		if !started { // a second run of fn starts no second claimer
			started = true
			go func() {
				defer close(done)
				second, errB = claim(ctx, s, "second", 0)
			}()
			// A store that runs Updates concurrently answers the second
			// claimer now; a single-writer store runs it after this fn.
			select {
			case <-done:
			case <-time.After(300 * time.Millisecond):
			}
		}
		for _, r := range recs {
			r.Data, r.Due = []byte("first"), 0
			if err := tx.Update(ctx, r); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("first claimer's Update = %v", err)
	}
	within(t, "the second claimer", func() { <-done })
	if errB != nil {
		t.Fatalf("second claimer's Update = %v", errB)
	}
	if len(first) != 2 {
		t.Fatalf("first claimer got %q, want 2 records", first)
	}
	got := slices.Concat(first, second)
	slices.Sort(got)
	if !slices.Equal(got, all) {
		t.Errorf("first claimer got %q, second %q: want disjoint sets covering %q", first, second, all)
	}
}

// testDueClaimRolledBack: a claim whose Update fails leaves the records due
// as they were; the next Update claims them.
func testDueClaimRolledBack(t *testing.T, s storage.Store) {
	ctx := t.Context()
	all := insertDue(t, s, 3)
	var got []string
	err := s.Update(ctx, func(tx storage.Tx) error {
		got = got[:0]
		recs, err := tx.Due(ctx, kindA, 100, 0)
		if err != nil {
			return err
		}
		for _, r := range recs {
			r.Due = 0
			if err := tx.Update(ctx, r); err != nil {
				return err
			}
			got = append(got, r.ID)
		}
		return errTest
	})
	slices.Sort(got)
	if !errors.Is(err, errTest) {
		t.Fatalf("Update = %v, want %v", err, errTest)
	}
	if !slices.Equal(got, all) {
		t.Fatalf("rolled-back claim got %q, want %q", got, all)
	}
	again, err := claim(ctx, s, "again", 0)
	if err != nil {
		t.Fatalf("claim after rollback = %v", err)
	}
	if !slices.Equal(again, all) {
		t.Errorf("claim after rollback got %q, want %q", again, all)
	}
	if more, err := claim(ctx, s, "third", 0); err != nil || len(more) != 0 {
		t.Errorf("claim after a committed claim = %q, %v; want nothing", more, err)
	}
}

// testDueInViewClaimsNothing: records Due returns in View are returned to
// an Update's Due while the View is still open.
func testDueInViewClaimsNothing(t *testing.T, s storage.Store) {
	ctx := t.Context()
	all := insertDue(t, s, 3)
	var seen, claimed []string
	var errU error
	err := s.View(ctx, func(r storage.Reader) error {
		recs, err := r.Due(ctx, kindA, 100, 0)
		if err != nil {
			return err
		}
		seen = ids(recs)
		slices.Sort(seen)
		within(t, "an Update while a View holds Due's records", func() {
			claimed, errU = claim(ctx, s, "update", 0)
		})
		return nil
	})
	if err != nil || errU != nil {
		t.Fatalf("View = %v, Update = %v; want nil", err, errU)
	}
	if !slices.Equal(seen, all) || !slices.Equal(claimed, all) {
		t.Errorf("View's Due = %q, Update's Due during it = %q; want %q for both", seen, claimed, all)
	}
}
