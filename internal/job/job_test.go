package job_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/keyfort/keyfort/internal/job"
	"github.com/keyfort/keyfort/internal/storage"
	"github.com/keyfort/keyfort/internal/storage/postgres"
	"github.com/keyfort/keyfort/internal/storage/postgres/pgtest"
	"github.com/keyfort/keyfort/internal/storage/sqlite"
)

// backends runs fn on SQLite, and on PostgreSQL when KEYFORT_TEST_POSTGRES
// is set (a schema of its own, dropped afterwards). On PostgreSQL, nodes
// returns two stores (two pools, as two nodes) on the same schema.
func backends(t *testing.T, fn func(t *testing.T, nodes []storage.Store)) {
	t.Run("sqlite", func(t *testing.T) {
		lite, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "db"), sqlite.Options{})
		if err != nil {
			t.Fatalf("sqlite.Open: %v", err)
		}
		t.Cleanup(func() { _ = lite.Close() })
		fn(t, []storage.Store{lite, lite})
	})
	t.Run("postgres", func(t *testing.T) {
		dsn := pgtest.DSN(t)
		schema := pgtest.Schema(t, dsn, "jobtest_")
		var nodes []storage.Store
		for range 2 {
			pg, err := postgres.Open(t.Context(), dsn, postgres.Options{Schema: schema})
			if err != nil {
				t.Fatalf("postgres.Open: %v", err)
			}
			t.Cleanup(func() { _ = pg.Close() })
			nodes = append(nodes, pg)
		}
		fn(t, nodes)
	})
}

const (
	kindWork storage.Kind = "test.work"
	kindTodo storage.Kind = "test.todo"
)

var scope = storage.Scope{Account: "111111111111", Region: "us-east-1"}

func id(i int) string { return fmt.Sprintf("r%03d", i) }

// TestRunDueOnce: four runners on two nodes handle 230 due records at
// once; each record is handled in exactly one committed transaction.
func TestRunDueOnce(t *testing.T) {
	backends(t, func(t *testing.T, nodes []storage.Store) {
		const records, runners = 230, 4
		ctx := t.Context()
		err := nodes[0].Update(ctx, func(tx storage.Tx) error {
			for i := range records {
				if err := tx.Insert(ctx, &storage.Record{Kind: kindWork, Scope: scope, ID: id(i), Due: 100}); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatalf("insert: %v", err)
		}
		counts := make([]int, runners)
		errs := make([]error, runners)
		var wg sync.WaitGroup
		for w := range runners {
			wg.Go(func() {
				counts[w], errs[w] = job.RunDue(ctx, nodes[w%len(nodes)], kindWork, 150, func(ctx context.Context, tx storage.Tx, rec *storage.Record) error {
					rec.Data = append(rec.Data, byte('a'+w))
					rec.Due = 0
					return tx.Update(ctx, rec)
				})
			})
		}
		wg.Wait()
		total := 0
		for w := range runners {
			if errs[w] != nil {
				t.Errorf("runner %d: RunDue = %v", w, errs[w])
			}
			total += counts[w]
		}
		if total != records {
			t.Errorf("RunDue counts %v add up to %d, want %d", counts, total, records)
		}
		err = nodes[1].View(ctx, func(r storage.Reader) error {
			recs, err := r.Scan(ctx, kindWork, storage.Position{}, 0)
			if err != nil {
				return err
			}
			if len(recs) != records {
				t.Errorf("%d records, want %d", len(recs), records)
			}
			for _, rec := range recs {
				if len(rec.Data) != 1 || rec.Due != 0 {
					t.Errorf("%s: handled by %q (Due %d), want by one runner", rec.ID, rec.Data, rec.Due)
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	})
}

// TestRunDueErrorLeavesDue: a handler's error rolls its batch back; the
// records are handled by the next run.
func TestRunDueErrorLeavesDue(t *testing.T) {
	backends(t, func(t *testing.T, nodes []storage.Store) {
		ctx := t.Context()
		for i := range 3 {
			err := nodes[0].Update(ctx, func(tx storage.Tx) error {
				return tx.Insert(ctx, &storage.Record{Kind: kindWork, Scope: scope, ID: id(i), Due: 100})
			})
			if err != nil {
				t.Fatal(err)
			}
		}
		boom := errors.New("boom")
		clear := func(ctx context.Context, tx storage.Tx, rec *storage.Record) error {
			rec.Due = 0
			return tx.Update(ctx, rec)
		}
		n, err := job.RunDue(ctx, nodes[0], kindWork, 100, func(ctx context.Context, tx storage.Tx, rec *storage.Record) error {
			if err := clear(ctx, tx, rec); err != nil {
				return err
			}
			if rec.ID == id(2) {
				return boom
			}
			return nil
		})
		if !errors.Is(err, boom) || n != 0 {
			t.Fatalf("RunDue = %d, %v; want 0, %v", n, err, boom)
		}
		if n, err := job.RunDue(ctx, nodes[1], kindWork, 100, clear); err != nil || n != 3 {
			t.Fatalf("RunDue after the failure = %d, %v; want 3, nil", n, err)
		}
	})
}

func mark(t *testing.T, st storage.Store, i int, due int64) {
	t.Helper()
	err := st.Update(t.Context(), func(tx storage.Tx) error {
		return job.Mark(t.Context(), tx, kindTodo, scope, id(i), []byte("data "+id(i)), due)
	})
	if err != nil {
		t.Fatalf("Mark(%s): %v", id(i), err)
	}
}

func todos(t *testing.T, st storage.Store) []*storage.Record {
	t.Helper()
	var recs []*storage.Record
	err := st.View(t.Context(), func(r storage.Reader) error {
		var err error
		recs, err = r.Scan(t.Context(), kindTodo, storage.Position{}, 0)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return recs
}

// check runs c.Check in a View of st.
func check(t *testing.T, st storage.Store, c *job.Claim) error {
	return st.View(t.Context(), func(r storage.Reader) error { return c.Check(t.Context(), r) })
}

// TestLeaseWorkOnce: workers on two nodes claim 60 to-dos, do the work
// outside any transaction and complete; every to-do's work runs exactly
// once and no to-do is left.
func TestLeaseWorkOnce(t *testing.T) {
	backends(t, func(t *testing.T, nodes []storage.Store) {
		const n, workers = 60, 4
		ctx := t.Context()
		for i := range n {
			mark(t, nodes[0], i, 100)
		}
		var mu sync.Mutex
		worked := map[string]int{}
		errs := make([]error, workers)
		var wg sync.WaitGroup
		for w := range workers {
			wg.Go(func() {
				st := nodes[w%len(nodes)]
				for range n { // bounded
					claims, err := job.ClaimDue(ctx, st, kindTodo, 100, time.Minute, 3)
					if err != nil || len(claims) == 0 {
						errs[w] = err
						return
					}
					for _, c := range claims {
						if string(c.Data) != "data "+c.ID || c.Attempt != 1 || c.Until != 160 {
							errs[w] = fmt.Errorf("claim %s: Data %q Attempt %d Until %d", c.ID, c.Data, c.Attempt, c.Until)
							return
						}
						mu.Lock()
						worked[c.ID]++
						mu.Unlock()
						if err := c.Complete(ctx, st, nil); err != nil {
							errs[w] = fmt.Errorf("complete %s: %w", c.ID, err)
							return
						}
					}
				}
			})
		}
		wg.Wait()
		for w, err := range errs {
			if err != nil {
				t.Errorf("worker %d: %v", w, err)
			}
		}
		for i := range n {
			if worked[id(i)] != 1 {
				t.Errorf("%s worked %d times, want 1", id(i), worked[id(i)])
			}
		}
		if left := todos(t, nodes[1]); len(left) != 0 {
			t.Errorf("%d to-dos left after Complete, want none", len(left))
		}
	})
}

// TestLeaseRunsOut: a claimer that dies mid-job keeps the to-do until its
// lease ends; then another node claims it (Attempt 2, same data) and
// completes it, and the dead claim's late Complete records nothing.
func TestLeaseRunsOut(t *testing.T) {
	backends(t, func(t *testing.T, nodes []storage.Store) {
		ctx := t.Context()
		mark(t, nodes[0], 1, 100)
		dead, err := job.ClaimDue(ctx, nodes[0], kindTodo, 100, 60*time.Second, 0)
		if err != nil || len(dead) != 1 {
			t.Fatalf("ClaimDue = %v, %v; want one claim", dead, err)
		}
		for _, now := range []int64{100, 159} {
			if got, err := job.ClaimDue(ctx, nodes[1], kindTodo, now, time.Minute, 0); err != nil || len(got) != 0 {
				t.Fatalf("ClaimDue at %d during the lease = %v, %v; want nothing", now, got, err)
			}
		}
		second, err := job.ClaimDue(ctx, nodes[1], kindTodo, 160, time.Minute, 0)
		if err != nil || len(second) != 1 {
			t.Fatalf("ClaimDue after the lease = %v, %v; want one claim", second, err)
		}
		if c := second[0]; c.ID != id(1) || c.Attempt != 2 || string(c.Data) != "data "+id(1) || c.Until != 220 {
			t.Errorf("second claim = %+v, want %s attempt 2 until 220", c, id(1))
		}
		if err := check(t, nodes[0], dead[0]); !errors.Is(err, job.ErrLost) {
			t.Errorf("dead claim's Check = %v, want ErrLost", err)
		}
		err = dead[0].Complete(ctx, nodes[0], func(tx storage.Tx) error {
			return tx.Insert(ctx, &storage.Record{Kind: kindWork, Scope: scope, ID: "dead result"})
		})
		if !errors.Is(err, job.ErrLost) {
			t.Errorf("dead claim's Complete = %v, want ErrLost", err)
		}
		if _, err := nodes[1].Get(ctx, kindWork, scope, "dead result"); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("dead claim's Complete wrote its result: Get = %v, want ErrNotFound", err)
		}
		if err := check(t, nodes[1], second[0]); err != nil {
			t.Errorf("second claim's Check = %v, want nil", err)
		}
		err = second[0].Complete(ctx, nodes[1], func(tx storage.Tx) error {
			return tx.Insert(ctx, &storage.Record{Kind: kindWork, Scope: scope, ID: "result"})
		})
		if err != nil {
			t.Fatalf("second claim's Complete = %v", err)
		}
		if left := todos(t, nodes[0]); len(left) != 0 {
			t.Errorf("to-dos left: %d, want none", len(left))
		}
		if _, err := nodes[0].Get(ctx, kindWork, scope, "result"); err != nil {
			t.Errorf("Complete's fn did not commit: Get = %v", err)
		}
		if err := second[0].Complete(ctx, nodes[1], nil); !errors.Is(err, job.ErrLost) {
			t.Errorf("Complete twice = %v, want ErrLost", err)
		}
	})
}

// TestMarkEndsClaim: a Mark while a claim is out replaces the to-do: the
// claim is lost and the job runs again from the new data.
func TestMarkEndsClaim(t *testing.T) {
	backends(t, func(t *testing.T, nodes []storage.Store) {
		ctx := t.Context()
		mark(t, nodes[0], 1, 100)
		claims, err := job.ClaimDue(ctx, nodes[0], kindTodo, 100, time.Hour, 0)
		if err != nil || len(claims) != 1 {
			t.Fatalf("ClaimDue = %v, %v", claims, err)
		}
		err = nodes[1].Update(ctx, func(tx storage.Tx) error {
			return job.Mark(ctx, tx, kindTodo, scope, id(1), []byte("newer"), 110)
		})
		if err != nil {
			t.Fatal(err)
		}
		if err := claims[0].Complete(ctx, nodes[0], nil); !errors.Is(err, job.ErrLost) {
			t.Errorf("Complete after a new Mark = %v, want ErrLost", err)
		}
		again, err := job.ClaimDue(ctx, nodes[1], kindTodo, 110, time.Hour, 0)
		if err != nil || len(again) != 1 || string(again[0].Data) != "newer" || again[0].Attempt != 1 {
			t.Fatalf("ClaimDue after the new Mark = %+v, %v; want the new data, attempt 1", again, err)
		}
	})
}

// TestRelease: a released to-do is due again at the time given, for any
// node; the released claim cannot complete it.
func TestRelease(t *testing.T) {
	backends(t, func(t *testing.T, nodes []storage.Store) {
		ctx := t.Context()
		mark(t, nodes[0], 1, 100)
		mark(t, nodes[0], 2, 100)
		claims, err := job.ClaimDue(ctx, nodes[0], kindTodo, 100, time.Hour, 0)
		if err != nil || len(claims) != 2 {
			t.Fatalf("ClaimDue = %v, %v", claims, err)
		}
		for _, c := range claims {
			if err := c.Release(ctx, nodes[0], 130); err != nil {
				t.Fatalf("Release(%s) = %v", c.ID, err)
			}
		}
		if got, err := job.ClaimDue(ctx, nodes[1], kindTodo, 129, time.Hour, 0); err != nil || len(got) != 0 {
			t.Fatalf("ClaimDue before the release's due = %v, %v; want nothing", got, err)
		}
		got, err := job.ClaimDue(ctx, nodes[1], kindTodo, 130, time.Hour, 0)
		var ids []string
		for _, c := range got {
			ids = append(ids, c.ID)
			if c.Attempt != 2 {
				t.Errorf("%s: Attempt %d after a release, want 2", c.ID, c.Attempt)
			}
		}
		slices.Sort(ids)
		if err != nil || !slices.Equal(ids, []string{id(1), id(2)}) {
			t.Fatalf("ClaimDue after the release's due = %q, %v", ids, err)
		}
		if err := claims[0].Complete(ctx, nodes[0], nil); !errors.Is(err, job.ErrLost) {
			t.Errorf("released claim's Complete = %v, want ErrLost", err)
		}
	})
}

// markAgain runs job.MarkAgain for id(i) in an Update of st.
func markAgain(t *testing.T, st storage.Store, i int, data string, due int64) {
	t.Helper()
	err := st.Update(t.Context(), func(tx storage.Tx) error {
		return job.MarkAgain(t.Context(), tx, kindTodo, scope, id(i), []byte(data), due)
	})
	if err != nil {
		t.Fatalf("MarkAgain(%s): %v", id(i), err)
	}
}

// TestMarkAgainDuringClaim: a MarkAgain while a claim is out keeps the
// claim; its Complete keeps the to-do for one more run with the new data
// (Again), no other claim can take it meanwhile, and the next Complete
// deletes it.
func TestMarkAgainDuringClaim(t *testing.T) {
	backends(t, func(t *testing.T, nodes []storage.Store) {
		ctx := t.Context()
		markAgain(t, nodes[0], 1, "v1", 100)
		c, due, err := job.ClaimOne(ctx, nodes[0], kindTodo, scope, id(1), 100, time.Minute)
		if err != nil || c == nil || string(c.Data) != "v1" || c.Attempt != 1 || c.Until != 160 {
			t.Fatalf("ClaimOne = %+v, %d, %v; want v1, attempt 1, until 160", c, due, err)
		}
		markAgain(t, nodes[1], 1, "v2", 110)
		markAgain(t, nodes[1], 1, "v3", 120)
		if err := check(t, nodes[1], c); err != nil {
			t.Fatalf("Check after MarkAgain = %v, want nil (claim kept)", err)
		}
		if got, err := job.ClaimDue(ctx, nodes[1], kindTodo, 150, time.Minute, 0); err != nil || len(got) != 0 {
			t.Fatalf("ClaimDue during the claim = %v, %v; want nothing", got, err)
		}
		runs := 0
		if err := c.Complete(ctx, nodes[0], func(storage.Tx) error { runs++; return nil }); err != nil {
			t.Fatalf("Complete = %v", err)
		}
		if !c.Again() || string(c.Data) != "v3" || runs == 0 {
			t.Fatalf("after Complete: Again %v, Data %q, fn ran %d; want true, v3, ran", c.Again(), c.Data, runs)
		}
		left := todos(t, nodes[1])
		if len(left) != 1 || left[0].Due != 160 {
			t.Fatalf("to-dos after the first Complete = %d (Due %v); want 1 due 160", len(left), left)
		}
		if err := c.Complete(ctx, nodes[0], nil); err != nil || c.Again() {
			t.Fatalf("second Complete = %v (Again %v); want nil, false", err, c.Again())
		}
		if left := todos(t, nodes[1]); len(left) != 0 {
			t.Fatalf("%d to-dos left after the second Complete, want none", len(left))
		}
	})
}

// TestMarkAgainUnclaimed: on an unclaimed to-do MarkAgain keeps the earlier
// Due and replaces the data; a claim of a to-do flagged during an earlier
// claim starts without the flag.
func TestMarkAgainUnclaimed(t *testing.T) {
	backends(t, func(t *testing.T, nodes []storage.Store) {
		ctx := t.Context()
		markAgain(t, nodes[0], 1, "v1", 200)
		markAgain(t, nodes[0], 1, "v2", 300) // later: Due stays 200
		if got, err := job.ClaimDue(ctx, nodes[1], kindTodo, 199, time.Minute, 0); err != nil || len(got) != 0 {
			t.Fatalf("ClaimDue at 199 = %v, %v; want nothing", got, err)
		}
		markAgain(t, nodes[0], 1, "v3", 150) // earlier: due at 150
		got, err := job.ClaimDue(ctx, nodes[1], kindTodo, 150, time.Minute, 0)
		if err != nil || len(got) != 1 || string(got[0].Data) != "v3" {
			t.Fatalf("ClaimDue at 150 = %v, %v; want one claim with v3", got, err)
		}
		markAgain(t, nodes[0], 1, "v4", 160)
		if err := got[0].Release(ctx, nodes[1], 170); err != nil {
			t.Fatalf("Release = %v", err)
		}
		again, err := job.ClaimDue(ctx, nodes[0], kindTodo, 170, time.Minute, 0)
		if err != nil || len(again) != 1 || string(again[0].Data) != "v4" || again[0].Attempt != 2 {
			t.Fatalf("ClaimDue after Release = %+v, %v; want v4, attempt 2", again, err)
		}
		if err := again[0].Complete(ctx, nodes[0], nil); err != nil || again[0].Again() {
			t.Fatalf("Complete = %v (Again %v); want nil, false: the flag ended with the released claim", err, again[0].Again())
		}
		if left := todos(t, nodes[1]); len(left) != 0 {
			t.Fatalf("%d to-dos left, want none", len(left))
		}
	})
}

// TestClaimOne: ClaimOne claims the given to-do only when it is due, and
// otherwise tells when it is (0 once it is gone).
func TestClaimOne(t *testing.T) {
	backends(t, func(t *testing.T, nodes []storage.Store) {
		ctx := t.Context()
		if c, due, err := job.ClaimOne(ctx, nodes[0], kindTodo, scope, id(1), 100, time.Minute); c != nil || due != 0 || err != nil {
			t.Fatalf("ClaimOne with no to-do = %v, %d, %v; want nil, 0, nil", c, due, err)
		}
		mark(t, nodes[0], 1, 100)
		mark(t, nodes[0], 2, 100)
		if c, due, err := job.ClaimOne(ctx, nodes[0], kindTodo, scope, id(1), 99, time.Minute); c != nil || due != 100 || err != nil {
			t.Fatalf("ClaimOne before Due = %v, %d, %v; want nil, 100, nil", c, due, err)
		}
		c, _, err := job.ClaimOne(ctx, nodes[0], kindTodo, scope, id(1), 100, time.Minute)
		if err != nil || c == nil || c.ID != id(1) || c.Attempt != 1 || c.Until != 160 {
			t.Fatalf("ClaimOne when due = %+v, %v; want %s attempt 1 until 160", c, err, id(1))
		}
		if o, due, err := job.ClaimOne(ctx, nodes[1], kindTodo, scope, id(1), 120, time.Minute); o != nil || due != 160 || err != nil {
			t.Fatalf("ClaimOne during the lease = %v, %d, %v; want nil, 160, nil", o, due, err)
		}
		got, err := job.ClaimDue(ctx, nodes[1], kindTodo, 120, time.Minute, 0)
		if err != nil || len(got) != 1 || got[0].ID != id(2) {
			t.Fatalf("ClaimDue = %v, %v; want only %s (the other is claimed)", got, err, id(2))
		}
		if err := c.Complete(ctx, nodes[0], nil); err != nil {
			t.Fatalf("Complete = %v", err)
		}
		if o, due, err := job.ClaimOne(ctx, nodes[1], kindTodo, scope, id(1), 200, time.Minute); o != nil || due != 0 || err != nil {
			t.Fatalf("ClaimOne after Complete = %v, %d, %v; want nil, 0, nil", o, due, err)
		}
	})
}

// TestReplicationTodoBeforeJob: to-dos package replication wrote before it
// used this package (Data {} unclaimed, {"claim":…} and {"claim":…,
// "again":true} claimed, Due the lease's end, Created in nanoseconds) are
// read by a store upgraded in place: unclaimed, due at their Due, claimed
// then (attempt 1, without the old again flag) and completed; MarkAgain
// makes a to-do whose old holder is gone due at once.
func TestReplicationTodoBeforeJob(t *testing.T) {
	backends(t, func(t *testing.T, nodes []storage.Store) {
		ctx := t.Context()
		old := map[string]struct {
			data string
			due  int64
		}{
			id(1): {`{}`, 100},
			id(2): {`{"claim":"0b6e6d1c-5b0e-4f8e-9f55-1d8e3f0a2b7c"}`, 400},
			id(3): {`{"claim":"7f1f3c2a-9d4b-4e3a-8c61-2a5b9e0d4f13","again":true}`, 400},
			id(4): {`{"claim":"c3d2b1a0-1111-4222-8333-944455556666"}`, 400},
		}
		err := nodes[0].Update(ctx, func(tx storage.Tx) error {
			for i, o := range old {
				rec := &storage.Record{Kind: kindTodo, Scope: scope, ID: i, Due: o.due, Created: 1_700_000_000_123_456_789, Data: []byte(o.data)}
				if err := tx.Insert(ctx, rec); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		markAgain(t, nodes[1], 4, "", 110) // a write after the upgrade
		claimed := func(now int64) []string {
			t.Helper()
			got, err := job.ClaimDue(ctx, nodes[1], kindTodo, now, time.Minute, 0)
			if err != nil {
				t.Fatalf("ClaimDue at %d: %v", now, err)
			}
			var ids []string
			for _, c := range got {
				ids = append(ids, c.ID)
				if c.Attempt != 1 || len(c.Data) != 0 {
					t.Errorf("%s: Attempt %d Data %q, want 1 and none", c.ID, c.Attempt, c.Data)
				}
				if err := c.Complete(ctx, nodes[1], nil); err != nil || c.Again() {
					t.Errorf("%s: Complete = %v (Again %v), want nil, false", c.ID, err, c.Again())
				}
			}
			slices.Sort(ids)
			return ids
		}
		if ids := claimed(110); !slices.Equal(ids, []string{id(1), id(4)}) {
			t.Fatalf("claimed at 110: %q, want %s and %s", ids, id(1), id(4))
		}
		if ids := claimed(399); len(ids) != 0 {
			t.Fatalf("claimed at 399: %q, want none (old leases)", ids)
		}
		if ids := claimed(400); !slices.Equal(ids, []string{id(2), id(3)}) {
			t.Fatalf("claimed at 400: %q, want %s and %s", ids, id(2), id(3))
		}
		if left := todos(t, nodes[0]); len(left) != 0 {
			t.Fatalf("%d to-dos left, want none", len(left))
		}
	})
}
