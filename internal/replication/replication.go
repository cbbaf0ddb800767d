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
// A claim is a lease: it sets the to-do's Due to the end of the lease and
// puts a token of its own in it, so no other node claims it meanwhile, and
// if the claiming node dies the to-do falls due again when the lease ends.
// The Func applies its writes in a transaction that calls Job.Done, which
// deletes the to-do only while the claim is still the caller's (so a node
// whose lease ran out writes nothing). A Mark on a claimed to-do flags it
// "again": Done then keeps it and the holder runs the Func once more, so a
// change made during a run is never dropped. The claim code is one function
// (claim), to be replaced by a shared job-claim helper.
package replication

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/keyfort/keyfort/internal/storage"
	"github.com/keyfort/keyfort/internal/uuid"
)

// DefaultLease is how long a claim keeps a to-do from other nodes.
const DefaultLease = 5 * time.Minute

// ErrLost is returned by Job.Done when the job's claim is no longer held
// (its lease ran out and another node claimed or finished the to-do).
var ErrLost = errors.New("replication: claim lost")

// Func brings the replicas of the primary j names in line. It must make its
// writes in one storage transaction that also calls j.Done, and return
// Done's error. It may be run again for the same primary (after an error,
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

// todo is a to-do record's Data.
type todo struct {
	// Claim is the token of the job that holds the to-do ("" for none).
	Claim string `json:"claim,omitempty"`
	// Again means the primary changed while the job ran.
	Again bool `json:"again,omitempty"`
}

func decode(rec *storage.Record) (todo, error) {
	var t todo
	if len(rec.Data) == 0 {
		return t, nil
	}
	if err := json.Unmarshal(rec.Data, &t); err != nil {
		return t, fmt.Errorf("replication: decode %s %s: %w", rec.Kind, rec.ID, err)
	}
	return t, nil
}

func encode(rec *storage.Record, t todo) error {
	b, err := json.Marshal(t)
	if err != nil {
		return fmt.Errorf("replication: encode %s %s: %w", rec.Kind, rec.ID, err)
	}
	rec.Data = b
	return nil
}

// Mark records in tx that the primary (scope, id) changed and its replicas
// must be brought in line. The caller makes the change in the same tx.
func (q *Queue) Mark(ctx context.Context, tx storage.Tx, scope storage.Scope, id string) error {
	now := q.now()
	rec, err := tx.Get(ctx, q.kind, scope, id)
	if errors.Is(err, storage.ErrNotFound) {
		rec = &storage.Record{Kind: q.kind, Scope: scope, ID: id, Due: now.Unix(), Created: now.UnixNano()}
		if err := encode(rec, todo{}); err != nil {
			return err
		}
		if err := tx.Insert(ctx, rec); err != nil {
			return fmt.Errorf("replication: insert %s %s: %w", q.kind, id, err)
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("replication: get %s %s: %w", q.kind, id, err)
	}
	if rec.Due <= now.Unix() {
		return nil // due already: whoever claims it reads the change
	}
	t, err := decode(rec)
	if err != nil {
		return err
	}
	switch {
	case t.Claim == "":
		rec.Due = now.Unix() // waiting to be retried: due now
	case t.Again:
		return nil
	default:
		t.Again = true // the holder runs once more before it lets go
	}
	if err := encode(rec, t); err != nil {
		return err
	}
	if err := tx.Update(ctx, rec); err != nil {
		return fmt.Errorf("replication: update %s %s: %w", q.kind, id, err)
	}
	return nil
}

// Job is a claimed to-do.
type Job struct {
	// Scope and ID name the primary.
	Scope storage.Scope
	ID    string

	q     *Queue
	token string
	again bool
	done  chan struct{} // closed when this node's run of the job ends
}

// Done ends the job in tx, the transaction of the Func's writes: it deletes
// the to-do, or, when the primary changed during the run, keeps it (still
// claimed) for one more run. It returns ErrLost when the claim is no longer
// the job's; the Func then fails its transaction, so nothing is written.
func (j *Job) Done(ctx context.Context, tx storage.Tx) error {
	q := j.q
	j.again = false
	rec, err := tx.Get(ctx, q.kind, j.Scope, j.ID)
	if errors.Is(err, storage.ErrNotFound) {
		return ErrLost
	}
	if err != nil {
		return fmt.Errorf("replication: get %s %s: %w", q.kind, j.ID, err)
	}
	t, err := decode(rec)
	if err != nil {
		return err
	}
	if t.Claim != j.token {
		return ErrLost
	}
	if t.Again {
		t.Again = false
		rec.Due = q.now().Add(q.lease).Unix()
		if err := encode(rec, t); err != nil {
			return err
		}
		if err := tx.Update(ctx, rec); err != nil {
			return fmt.Errorf("replication: update %s %s: %w", q.kind, j.ID, err)
		}
		j.again = true
		return nil
	}
	if err := tx.Delete(ctx, q.kind, j.Scope, j.ID); err != nil {
		return fmt.Errorf("replication: delete %s %s: %w", q.kind, j.ID, err)
	}
	return nil
}

// claim takes the to-do rec for this node in tx: a token of its own and a
// lease (Due at the lease's end). It is the only place that claims; the
// callers pick the records (Due, or Get for one to-do).
func (q *Queue) claim(ctx context.Context, tx storage.Tx, rec *storage.Record) (*Job, error) {
	j := &Job{Scope: rec.Scope, ID: rec.ID, q: q, token: uuid.New()}
	rec.Due = q.now().Add(q.lease).Unix()
	if err := encode(rec, todo{Claim: j.token}); err != nil {
		return nil, err
	}
	if err := tx.Update(ctx, rec); err != nil {
		return nil, fmt.Errorf("replication: claim %s %s: %w", q.kind, rec.ID, err)
	}
	return j, nil
}

// claimDue claims up to limit due to-dos and registers them as running.
func (q *Queue) claimDue(ctx context.Context, limit int) ([]*Job, error) {
	q.claiming.Lock()
	defer q.claiming.Unlock()
	var jobs []*Job
	err := q.store.Update(ctx, func(tx storage.Tx) error {
		jobs = jobs[:0]
		recs, err := tx.Due(ctx, q.kind, q.now().Unix(), limit)
		if err != nil {
			return fmt.Errorf("replication: due %s: %w", q.kind, err)
		}
		for _, rec := range recs {
			j, err := q.claim(ctx, tx, rec)
			if err != nil {
				return err
			}
			jobs = append(jobs, j)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	for _, j := range jobs {
		q.start(j)
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
	err = q.store.Update(ctx, func(tx storage.Tx) error {
		j, held = nil, false
		rec, err := tx.Get(ctx, q.kind, scope, id)
		if errors.Is(err, storage.ErrNotFound) {
			return nil // done: the run that deleted it saw the change
		}
		if err != nil {
			return fmt.Errorf("replication: get %s %s: %w", q.kind, id, err)
		}
		if rec.Due > q.now().Unix() {
			held = true // another node's lease
			return nil
		}
		j, err = q.claim(ctx, tx, rec)
		return err
	})
	if err != nil || j == nil {
		return nil, nil, held, err
	}
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
		if errors.Is(err, ErrLost) {
			return nil // another node took over after the lease; it does the work
		}
		if err != nil {
			q.release(ctx, j)
			return err
		}
		if !j.again {
			return nil
		}
	}
	q.release(ctx, j)
	return fmt.Errorf("replication: %s %s: the primary kept changing", q.kind, j.ID)
}

// release gives up j's claim: the to-do is due now.
func (q *Queue) release(ctx context.Context, j *Job) {
	ctx = context.WithoutCancel(ctx) // also when the run failed because ctx ended
	err := q.store.Update(ctx, func(tx storage.Tx) error {
		rec, err := tx.Get(ctx, q.kind, j.Scope, j.ID)
		if errors.Is(err, storage.ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		t, err := decode(rec)
		if err != nil || t.Claim != j.token {
			return err
		}
		rec.Due = q.now().Unix()
		if err := encode(rec, todo{}); err != nil {
			return err
		}
		return tx.Update(ctx, rec)
	})
	if err != nil {
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
