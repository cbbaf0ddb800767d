package sqlite

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/keyfort/keyfort/internal/storage"
)

// Request states: the caller and the writer race to move a request out of
// stateQueued; whoever wins decides whether fn runs.
const (
	stateQueued    int32 = iota // waiting in the queue
	stateTaken                  // the writer will run (or has run) fn
	stateAbandoned              // the caller's ctx ended first; fn is skipped
)

// request is one Update call waiting for the writer.
type request struct {
	ctx context.Context
	fn  func(tx storage.Tx) error
	// raw, if set instead of fn, runs alone on the writer connection outside
	// any transaction (VACUUM, checkpoints).
	raw   func(ctx context.Context) error
	state atomic.Int32
	done  chan result // buffered: the writer never blocks on an answer
}

// result is the writer's answer to one request.
type result struct {
	err      error
	panicked bool
	panicVal any      // re-raised in the caller's goroutine
	changed  []change // records written, for the subscribers (on success)
}

// commitDelay is the most the writer waits in all for more callers before
// a commit, when the previous batch had more than the callers queued now.
const commitDelay = 150 * time.Microsecond

// writer is the single goroutine that owns the writer connection. It returns
// when the queue is closed and drained.
func (s *Store) writer() {
	defer close(s.done)
	batch := make([]*request, 0, s.maxBatch)
	wait := time.NewTimer(time.Hour)
	wait.Stop()
	last := 0 // size of the previous batch
	for first := range s.queue {
		if first.raw != nil {
			s.runRaw(first)
			continue
		}
		batch = append(batch[:0], first)
		var raw *request // a raw request ends the batch and runs after it
		var deadline time.Time
	fill:
		for len(batch) < s.maxBatch {
			select {
			case req, ok := <-s.queue:
				if !ok {
					break fill
				}
				if req.raw != nil {
					raw = req
					break fill
				}
				batch = append(batch, req)
			default:
				// Callers have been arriving together (the last batch
				// had several): wait a little, commitDelay in all, for
				// as many as last time, so that one commit serves them.
				if len(batch) >= last || last < 2 {
					break fill
				}
				if deadline.IsZero() {
					deadline = time.Now().Add(commitDelay)
				}
				d := time.Until(deadline)
				if d <= 0 {
					break fill
				}
				wait.Reset(d)
				select {
				case req, ok := <-s.queue:
					wait.Stop()
					if !ok {
						break fill
					}
					if req.raw != nil {
						raw = req
						break fill
					}
					batch = append(batch, req)
				case <-wait.C:
					break fill
				}
			}
		}
		last = len(batch)
		s.commitBatch(batch)
		clear(batch)
		if raw != nil {
			s.runRaw(raw)
		}
	}
}

// runRaw runs a raw request alone, outside any transaction.
func (s *Store) runRaw(req *request) {
	if !req.state.CompareAndSwap(stateQueued, stateTaken) {
		return
	}
	req.done <- result{err: req.raw(req.ctx)}
}

// commitBatch runs the live requests of batch in one transaction and answers
// each caller after the single COMMIT. It first runs them without savepoints
// (two statements fewer per request); only when a request fails after it has
// written does it roll back and run the whole batch again with a savepoint
// per request (the Store contract lets fn run more than once).
func (s *Store) commitBatch(batch []*request) {
	live := batch[:0:0]
	for _, req := range batch {
		if !req.state.CompareAndSwap(stateQueued, stateTaken) {
			continue // the caller gave up and has returned ctx.Err()
		}
		if err := req.ctx.Err(); err != nil {
			req.done <- result{err: err}
			continue
		}
		live = append(live, req)
	}
	if len(live) == 0 {
		return
	}
	if s.commitDirect(live) {
		return
	}
	s.commitSavepoints(live)
}

// begin opens the batch's transaction; on failure it answers every caller.
func (s *Store) begin(live []*request) bool {
	if _, err := s.wq.begin.ExecContext(context.Background()); err != nil {
		err = fmt.Errorf("sqlite: begin: %w", err)
		s.rollback() // in case an earlier failure left a transaction open
		s.logger.Error("sqlite: write batch failed", "err", err, "batch", len(live))
		for _, req := range live {
			req.done <- result{err: err}
		}
		return false
	}
	return true
}

// commitDirect runs every request straight in the batch's transaction. It
// reports false, having rolled back and answered nobody, when a request
// failed after writing: its writes cannot be undone alone.
func (s *Store) commitDirect(live []*request) bool {
	if !s.begin(live) {
		return true
	}
	results := make([]result, len(live))
	for i, req := range live {
		if err := req.ctx.Err(); err != nil {
			results[i] = result{err: err}
			continue
		}
		res, dirty := s.runDirect(req)
		if dirty {
			s.rollback()
			return false
		}
		results[i] = res
	}
	s.finish(live, results)
	return true
}

// runDirect runs req.fn without a savepoint, again after
// storage.ErrConflict (bounded) as long as the failed run wrote nothing.
// dirty is set when fn failed after writing.
func (s *Store) runDirect(req *request) (res result, dirty bool) {
	for attempt := 1; ; attempt++ {
		tx := &writeTx{reader: reader{q: s.wq, detach: true}}
		res = call(req.fn, tx)
		tx.done.Store(true)
		if res.err == nil && !res.panicked {
			res.changed = tx.changed
			return res, false
		}
		if len(tx.changed) > 0 || tx.writeFailed {
			return res, true
		}
		if res.panicked || !errors.Is(res.err, storage.ErrConflict) ||
			attempt >= maxConflictRetries || req.ctx.Err() != nil {
			return res, false
		}
		s.logger.Debug("sqlite: retrying update after conflict", "attempt", attempt)
	}
}

// commitSavepoints runs every request in its own savepoint inside one
// transaction, so that a failed request's writes are undone alone.
func (s *Store) commitSavepoints(live []*request) {
	if !s.begin(live) {
		return
	}
	results := make([]result, len(live))
	for i, req := range live {
		if err := req.ctx.Err(); err != nil {
			results[i] = result{err: err}
			continue
		}
		res, fatal := s.runOne(req)
		if fatal != nil {
			// The savepoint machinery itself failed: the transaction's
			// state is unknown, so nobody in the batch commits.
			s.rollback()
			fatal = fmt.Errorf("sqlite: write batch: %w", fatal)
			s.logger.Error("sqlite: write batch failed", "err", fatal, "batch", len(live))
			for j, req := range live {
				if j == i && res.panicked {
					req.done <- res
					continue
				}
				req.done <- result{err: fatal}
			}
			return
		}
		results[i] = res
	}
	s.finish(live, results)
}

// finish commits the batch's transaction, tells the subscribers and
// answers every caller.
func (s *Store) finish(live []*request, results []result) {
	start := time.Now()
	_, err := s.wq.commit.ExecContext(context.Background())
	s.commitDur.ObserveDuration(time.Since(start))
	s.batchSize.Observe(float64(len(live)))
	if err != nil {
		s.commitFail.Inc()
		s.rollback()
		err = fmt.Errorf("sqlite: commit: %w", err)
		s.logger.Error("sqlite: commit failed", "err", err, "batch", len(live))
		for i := range results {
			if results[i].err == nil && !results[i].panicked {
				results[i].err = err
			}
		}
	} else {
		s.notify(results)
	}
	for i, req := range live {
		req.done <- results[i]
	}
}

// runOne runs req.fn in a savepoint, again after storage.ErrConflict (bounded).
// fatal is set when a savepoint statement failed.
func (s *Store) runOne(req *request) (res result, fatal error) {
	bg := context.Background()
	for attempt := 1; ; attempt++ {
		if _, err := s.wq.savepoint.ExecContext(bg); err != nil {
			return result{}, fmt.Errorf("savepoint: %w", err)
		}
		tx := &writeTx{reader: reader{q: s.wq, detach: true}}
		res = call(req.fn, tx)
		tx.done.Store(true)
		if res.err == nil && !res.panicked {
			if _, err := s.wq.release.ExecContext(bg); err != nil {
				return result{}, fmt.Errorf("release savepoint: %w", err)
			}
			res.changed = tx.changed
			return res, nil
		}
		if _, err := s.wq.rollbackTo.ExecContext(bg); err != nil {
			return res, fmt.Errorf("rollback to savepoint: %w", err)
		}
		if _, err := s.wq.release.ExecContext(bg); err != nil {
			return res, fmt.Errorf("release savepoint: %w", err)
		}
		if res.panicked || !errors.Is(res.err, storage.ErrConflict) ||
			attempt >= maxConflictRetries || req.ctx.Err() != nil {
			return res, nil
		}
		s.logger.Debug("sqlite: retrying update after conflict", "attempt", attempt)
	}
}

// call runs fn, turning a panic into a result so that the writer survives
// and the panic is raised again in the caller's goroutine.
func call(fn func(tx storage.Tx) error, tx storage.Tx) (res result) {
	defer func() {
		if v := recover(); v != nil {
			res = result{panicked: true, panicVal: v}
		}
	}()
	return result{err: fn(tx)}
}

// rollback ends the writer's open transaction, if any.
func (s *Store) rollback() {
	if _, err := s.wq.rollback.ExecContext(context.Background()); err != nil {
		s.logger.Debug("sqlite: rollback", "err", err)
	}
}

// notify tells the subscribers about every record the committed batch
// changed. It runs after COMMIT and before any caller is answered, so a
// caller that reads after its Update returned never finds a stale cache.
func (s *Store) notify(results []result) {
	s.subMu.RLock()
	subs := s.subs
	s.subMu.RUnlock()
	if len(subs) == 0 {
		return
	}
	for _, r := range results {
		for _, c := range r.changed {
			for _, fn := range subs {
				fn(c.kind, c.scope, c.id)
			}
		}
	}
}

// Subscribe implements [storage.ChangeNotifier]: every change to the
// database is made by this Store's writer, so the notifications are
// complete.
func (s *Store) Subscribe(fn func(kind storage.Kind, scope storage.Scope, id string)) {
	s.subMu.Lock()
	defer s.subMu.Unlock()
	s.subs = append(s.subs[:len(s.subs):len(s.subs)], fn)
}

// Sync implements [storage.ChangeNotifier]: subscribers hear of every
// change before its Update returns, so there is nothing to wait for.
func (s *Store) Sync(ctx context.Context) error {
	if s.closed.Load() {
		return storage.ErrClosed
	}
	return nil
}
