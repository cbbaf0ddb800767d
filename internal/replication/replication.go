// Package replication carries the work of keeping replicas in other regions
// in line with their primary: Secrets Manager's replica secrets today, and
// the same queue can carry KMS multi-Region keys. It knows nothing of what
// is replicated; the service gives it a Func that brings the replicas of
// one primary in line.
//
// The work is a durable to-do record per primary (Kind chosen by the
// service; Scope and ID are the primary's):
//
//   - A write that changes a primary calls Queue.Mark in its own
//     transaction, so the to-do commits with the change or not at all.
//   - Once committed, the writing node calls Queue.Kick, which claims that
//     to-do and runs the Func at once (so the replicas are in line when the
//     request answers), unless another node holds it.
//   - RunDue, called by the service's background jobs, claims due to-dos
//     with storage.Reader.Due inside Store.Update (on PostgreSQL FOR UPDATE
//     SKIP LOCKED) and runs them: what a crash, a failure or another node
//     left undone.
//
// The to-dos and their claims are package job's (job.MarkAgain, ClaimOne,
// ClaimDue, Claim.Complete/Release): a claim is a lease (Due at its end, a
// token of its own), so no other node claims the to-do meanwhile, and if
// the claiming node dies the to-do falls due again when the lease ends.
// The Func applies its writes with Job.Complete, which deletes the to-do
// only while the claim is still the caller's (so a node whose lease ran out
// writes nothing). A Mark on a claimed to-do flags it "again": Complete
// then keeps it and the holder runs the Func once more, so a change made
// during a run is never dropped.
package replication

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/keyfort/keyfort/internal/job"
	"github.com/keyfort/keyfort/internal/storage"
)

// DefaultLease is how long a claim keeps a to-do from other nodes.
const DefaultLease = 5 * time.Minute

// Func brings the replicas of the primary j names in line. It must make its
// writes with j.Complete and return Complete's error (job.ErrLost when the
// claim was lost). It may be run again for the same primary (after an error,
// or when the primary changed during the run).
type Func func(ctx context.Context, j *Job) error

// Config configures a Queue.
type Config struct {
	// Store holds the to-dos (the service's store).
	Store storage.Store
	// Kind is the to-do records' kind, e.g. "sm.replsync".
	Kind storage.Kind
	// Sync does the work of one to-do.
	Sync Func
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Lease is how long a claim lasts; 0 means DefaultLease.
	Lease time.Duration
	// Logger receives the failures of Kick, which has no caller to return
	// them to; nil discards.
	Logger *slog.Logger
}

// Queue is the replication work of one kind. Safe for concurrent use.
type Queue struct {
	store storage.Store
	kind  storage.Kind
	sync  Func
	now   func() time.Time
	lease time.Duration
	log   *slog.Logger

	// claiming serializes this node's claims with the registration of the
	// jobs they return, so that Kick can tell a to-do this node runs (it
	// waits for it) from one another node runs.
	claiming sync.Mutex
	mu       sync.Mutex
	running  map[ref]chan struct{} // closed when the job ends
}

type ref struct {
	scope storage.Scope
	id    string
}

// New returns a Queue.
func New(cfg Config) *Queue {
	q := &Queue{store: cfg.Store, kind: cfg.Kind, sync: cfg.Sync, now: cfg.Now, lease: cfg.Lease, log: cfg.Logger, running: map[ref]chan struct{}{}}
	if q.now == nil {
		q.now = time.Now
	}
	if q.lease <= 0 {
		q.lease = DefaultLease
	}
	if q.log == nil {
		q.log = slog.New(slog.DiscardHandler)
	}
	return q
}

// Mark records in tx that the primary (scope, id) changed and its replicas
// must be brought in line. The caller makes the change in the same tx.
func (q *Queue) Mark(ctx context.Context, tx storage.Tx, scope storage.Scope, id string) error {
	if err := job.MarkAgain(ctx, tx, q.kind, scope, id, nil, q.now().Unix()); err != nil {
		return fmt.Errorf("replication: %w", err)
	}
	return nil
}

// Job is a claimed to-do.
type Job struct {
	// Scope and ID name the primary.
	Scope storage.Scope
	ID    string

	q     *Queue
	claim *job.Claim
	done  chan struct{} // closed when this node's run of the job ends
}

func (q *Queue) newJob(c *job.Claim) *Job {
	return &Job{Scope: c.Scope, ID: c.ID, q: q, claim: c}
}

// Complete ends the job (job.Claim.Complete): in one transaction it runs fn
// (the Func's writes; nil: none) and, if the claim still holds the to-do,
// deletes it, or, when the primary changed during the run, keeps it (still
// claimed) for one more run. When the claim is no longer the job's it
// returns job.ErrLost and fn's writes are rolled back; fn's error is
// returned and nothing is written. fn may run more than once.
func (j *Job) Complete(ctx context.Context, fn func(tx storage.Tx) error) error {
	return j.claim.Complete(ctx, j.q.store, fn)
}

// claimDue claims up to limit due to-dos and registers them as running.
func (q *Queue) claimDue(ctx context.Context, limit int) ([]*Job, error) {
	q.claiming.Lock()
	defer q.claiming.Unlock()
	claims, err := job.ClaimDue(ctx, q.store, q.kind, q.now().Unix(), q.lease, limit)
	if err != nil {
		return nil, fmt.Errorf("replication: %w", err)
	}
	jobs := make([]*Job, len(claims))
	for i, c := range claims {
		jobs[i] = q.newJob(c)
		q.start(jobs[i])
	}
	return jobs, nil
}

// claimOne claims the to-do of (scope, id) if it is due. When this node
// runs it already, it returns that run's end (busy) instead; held reports
// that another node holds it.
func (q *Queue) claimOne(ctx context.Context, scope storage.Scope, id string) (j *Job, busy <-chan struct{}, held bool, err error) {
	q.claiming.Lock()
	defer q.claiming.Unlock()
	q.mu.Lock()
	busy = q.running[ref{scope, id}]
	q.mu.Unlock()
	if busy != nil {
		return nil, busy, false, nil
	}
	// No to-do (due 0): done, the run that deleted it saw the change. Not
	// due: another node's lease.
	c, due, err := job.ClaimOne(ctx, q.store, q.kind, scope, id, q.now().Unix(), q.lease)
	if err != nil {
		return nil, nil, false, fmt.Errorf("replication: %w", err)
	}
	if c == nil {
		return nil, nil, due != 0, nil
	}
	j = q.newJob(c)
	q.start(j)
	return j, nil, false, nil
}

func (q *Queue) start(j *Job) {
	j.done = make(chan struct{})
	q.mu.Lock()
	q.running[ref{j.Scope, j.ID}] = j.done
	q.mu.Unlock()
}

func (q *Queue) end(j *Job) {
	q.mu.Lock()
	k := ref{j.Scope, j.ID}
	if q.running[k] == j.done {
		delete(q.running, k)
	}
	q.mu.Unlock()
	close(j.done)
}

// maxRuns bounds the runs of one job while its primary keeps changing.
const maxRuns = 10

// run runs the claimed job j until its primary stops changing, and lets go
// of the claim when it fails (the to-do is due again at once, for the next
// Kick or RunDue).
func (q *Queue) run(ctx context.Context, j *Job) error {
	defer q.end(j)
	for range maxRuns {
		err := q.sync(ctx, j)
		if errors.Is(err, job.ErrLost) {
			return nil // another node took over after the lease; it does the work
		}
		if err != nil {
			q.release(ctx, j)
			return err
		}
		if !j.claim.Again() {
			return nil
		}
	}
	q.release(ctx, j)
	return fmt.Errorf("replication: %s %s: the primary kept changing", q.kind, j.ID)
}

// release gives up j's claim: the to-do is due now.
func (q *Queue) release(ctx context.Context, j *Job) {
	ctx = context.WithoutCancel(ctx) // also when the run failed because ctx ended
	err := j.claim.Release(ctx, q.store, q.now().Unix())
	if err != nil && !errors.Is(err, job.ErrLost) {
		// The lease ends anyway; the to-do is claimed again then.
		q.log.WarnContext(ctx, "replication: release claim", "kind", string(q.kind), "id", j.ID, "err", err)
	}
}

// maxKicks bounds Kick's waits for another run of the same to-do (each at
// most kickPoll when another node runs it: about 5 s in all).
const (
	maxKicks = 100
	kickPoll = 50 * time.Millisecond
)

// Kick runs the to-do of (scope, id) now, after the write that marked it
// committed, and returns when the replicas include the change: it claims
// and runs the to-do, or, when another run holds it (this node's or
// another's, which sees the change), waits for that run to end and looks
// again. Failures are logged: the write is committed and RunDue retries.
// After maxKicks waits it gives up waiting; the holder still does the work.
func (q *Queue) Kick(ctx context.Context, scope storage.Scope, id string) {
	poll := time.Millisecond
	for range maxKicks {
		j, busy, held, err := q.claimOne(ctx, scope, id)
		if err != nil {
			q.log.WarnContext(ctx, "replication: claim", "kind", string(q.kind), "id", id, "err", err)
			return
		}
		switch {
		case j != nil:
			if err := q.run(ctx, j); err != nil {
				q.log.WarnContext(ctx, "replication: sync", "kind", string(q.kind), "id", id, "err", err)
			}
			return
		case busy != nil:
			select {
			case <-busy:
			case <-ctx.Done():
				return
			}
		case held:
			t := time.NewTimer(poll)
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
				return
			}
			poll = min(2*poll, kickPoll)
		default:
			return // no to-do: done
		}
	}
}

// batch is how many to-dos RunDue claims in one transaction.
const batch = 10

// RunDue claims and runs the to-dos that are due (at most 100 batches per
// call). It returns the first failure; the failed to-dos are due again.
func (q *Queue) RunDue(ctx context.Context) error {
	var first error
	for range 100 {
		jobs, err := q.claimDue(ctx, batch)
		if err != nil {
			return err
		}
		for _, j := range jobs {
			if err := q.run(ctx, j); err != nil && first == nil {
				first = err
			}
		}
		if first != nil || len(jobs) < batch {
			return first
		}
	}
	return first
}
