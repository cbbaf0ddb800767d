package replication

import (
	"context"
	"errors"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/keyfort/keyfort/internal/job"
	"github.com/keyfort/keyfort/internal/storage"
	"github.com/keyfort/keyfort/internal/storage/sqlite"
)

const (
	kindTodo    storage.Kind = "test.todo"
	kindReplica storage.Kind = "test.replica"
)

var scope = storage.Scope{Account: "123456789012", Region: "us-east-1"}

type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// node is one Queue over a shared store whose Func counts its runs and
// applies each as a write to a replica record, in Complete's transaction.
type node struct {
	q      *Queue
	mu     sync.Mutex
	runs   int
	during func() // called in the Func before it writes, if set
	fail   error  // returned by the next run, if set
}

func newStore(t *testing.T) storage.Store {
	t.Helper()
	st, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "db"), sqlite.Options{})
	if err != nil {
		t.Fatalf("sqlite.Open: %v", err)
	}
	t.Cleanup(func() { _ = st.Close() })
	return st
}

func newNode(st storage.Store, c *testClock) *node {
	n := &node{}
	n.q = New(Config{Store: st, Kind: kindTodo, Now: c.Now, Sync: func(ctx context.Context, j *Job) error {
		n.mu.Lock()
		n.runs++
		during, fail := n.during, n.fail
		n.during, n.fail = nil, nil
		n.mu.Unlock()
		if during != nil {
			during()
		}
		if fail != nil {
			return fail
		}
		return j.Complete(ctx, func(tx storage.Tx) error { return applyReplica(ctx, tx, j.ID) })
	}})
	return n
}

// applyReplica counts the writes to the replica of id in its Data.
func applyReplica(ctx context.Context, tx storage.Tx, id string) error {
	rec, err := tx.Get(ctx, kindReplica, scope, id)
	if errors.Is(err, storage.ErrNotFound) {
		return tx.Insert(ctx, &storage.Record{Kind: kindReplica, Scope: scope, ID: id, Data: []byte("1")})
	}
	if err != nil {
		return err
	}
	n, _ := strconv.Atoi(string(rec.Data))
	rec.Data = []byte(strconv.Itoa(n + 1))
	return tx.Update(ctx, rec)
}

func (n *node) runCount() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.runs
}

func mark(t *testing.T, st storage.Store, q *Queue, id string) {
	t.Helper()
	if err := st.Update(t.Context(), func(tx storage.Tx) error { return q.Mark(t.Context(), tx, scope, id) }); err != nil {
		t.Fatalf("Mark(%s): %v", id, err)
	}
}

func replicaWrites(t *testing.T, st storage.Store, id string) int {
	t.Helper()
	rec, err := st.Get(t.Context(), kindReplica, scope, id)
	if errors.Is(err, storage.ErrNotFound) {
		return 0
	}
	if err != nil {
		t.Fatalf("get replica %s: %v", id, err)
	}
	n, _ := strconv.Atoi(string(rec.Data))
	return n
}

func wantTodo(t *testing.T, st storage.Store, id string, present bool) {
	t.Helper()
	_, err := st.Get(t.Context(), kindTodo, scope, id)
	if got := err == nil; got != present {
		t.Fatalf("to-do %s present = %t (err %v), want %t", id, got, err, present)
	}
}

func TestKickRunsTheMarkedWorkOnce(t *testing.T) {
	st, c := newStore(t), &testClock{t: time.Unix(1_800_000_000, 0)}
	n := newNode(st, c)
	n.q.Kick(t.Context(), scope, "a") // nothing marked: nothing runs
	if n.runCount() != 0 {
		t.Fatalf("Kick without a to-do ran the Func %d times", n.runCount())
	}
	mark(t, st, n.q, "a")
	mark(t, st, n.q, "a") // a second change before the run: still one to-do
	n.q.Kick(t.Context(), scope, "a")
	if n.runCount() != 1 || replicaWrites(t, st, "a") != 1 {
		t.Fatalf("after Kick: %d runs, %d replica writes; want 1, 1", n.runCount(), replicaWrites(t, st, "a"))
	}
	wantTodo(t, st, "a", false)
	if err := n.q.RunDue(t.Context()); err != nil || n.runCount() != 1 {
		t.Fatalf("RunDue after the work was done: err %v, %d runs; want nil, 1", err, n.runCount())
	}
}

// A change marked while the holder runs (another node's write) is not
// claimable by its writer and is not dropped: the holder runs again.
func TestChangeDuringRunRunsAgain(t *testing.T) {
	st, c := newStore(t), &testClock{t: time.Unix(1_800_000_000, 0)}
	a, b := newNode(st, c), newNode(st, c)
	var wg sync.WaitGroup
	a.during = func() {
		mark(t, st, b.q, "s")
		// Held by a: b's Kick waits until a's runs are done.
		wg.Go(func() { b.q.Kick(t.Context(), scope, "s") })
	}
	mark(t, st, a.q, "s")
	a.q.Kick(t.Context(), scope, "s")
	wg.Wait()
	if a.runCount() != 2 || b.runCount() != 0 {
		t.Fatalf("runs: a %d, b %d; want a 2 (again for b's change), b 0", a.runCount(), b.runCount())
	}
	if w := replicaWrites(t, st, "s"); w != 2 {
		t.Fatalf("replica writes = %d, want 2", w)
	}
	wantTodo(t, st, "s", false)
}

// A node that claimed the work and died holds it for the lease; then
// another node's RunDue does it, and the dead node's late Complete writes
// nothing.
func TestLeaseRunsOutAndAnotherNodeTakesOver(t *testing.T) {
	st, c := newStore(t), &testClock{t: time.Unix(1_800_000_000, 0)}
	a, b := newNode(st, c), newNode(st, c)
	mark(t, st, a.q, "s")
	jobs, err := a.q.claimDue(t.Context(), 10)
	if err != nil || len(jobs) != 1 {
		t.Fatalf("claimDue = %d jobs, %v; want 1", len(jobs), err)
	}
	// a dies here, its claim held.
	if err := b.q.RunDue(t.Context()); err != nil || b.runCount() != 0 {
		t.Fatalf("RunDue during the lease: err %v, %d runs; want nil, 0", err, b.runCount())
	}
	// Another write on b: its Kick waits for a's lease (given up here after
	// 100ms) and cannot claim.
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	b.q.Kick(ctx, scope, "s")
	cancel()
	if b.runCount() != 0 {
		t.Fatalf("Kick during another node's lease ran the Func")
	}
	c.Add(DefaultLease + time.Second)
	if err := b.q.RunDue(t.Context()); err != nil || b.runCount() != 1 {
		t.Fatalf("RunDue after the lease: err %v, %d runs; want nil, 1", err, b.runCount())
	}
	wantTodo(t, st, "s", false)
	err = jobs[0].Complete(t.Context(), func(tx storage.Tx) error { return applyReplica(t.Context(), tx, "s") })
	if !errors.Is(err, job.ErrLost) {
		t.Fatalf("the dead node's Complete = %v, want job.ErrLost", err)
	}
	if w := replicaWrites(t, st, "s"); w != 1 {
		t.Fatalf("replica writes = %d, want 1 (the late node's write discarded)", w)
	}
}

func TestFailedRunIsDueAgain(t *testing.T) {
	st, c := newStore(t), &testClock{t: time.Unix(1_800_000_000, 0)}
	n := newNode(st, c)
	n.fail = errors.New("kms unavailable")
	mark(t, st, n.q, "s")
	n.q.Kick(t.Context(), scope, "s")
	if n.runCount() != 1 || replicaWrites(t, st, "s") != 0 {
		t.Fatalf("failed run: %d runs, %d writes; want 1, 0", n.runCount(), replicaWrites(t, st, "s"))
	}
	wantTodo(t, st, "s", true)
	if err := n.q.RunDue(t.Context()); err != nil || n.runCount() != 2 || replicaWrites(t, st, "s") != 1 {
		t.Fatalf("RunDue: err %v, %d runs, %d writes; want nil, 2, 1", err, n.runCount(), replicaWrites(t, st, "s"))
	}
	wantTodo(t, st, "s", false)
}
