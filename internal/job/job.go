// Package job runs the background work that falls due in a [storage.Store]
// so that each piece is done once, however many nodes share the store and
// poll it at the same time, and a node that dies mid-job leaves the job to
// another.
//
// Two kinds of job:
//   - Work done inside one transaction (delete a key whose deletion window
//     passed, rotate key material): [RunDue] claims due records with
//     [storage.Reader.Due] inside Update, whose claim lasts as long as the
//     transaction; the handler moves or clears the record's Due in it.
//   - Work done outside a transaction (calls to a rotation webhook, to
//     another region): a to-do record with a lease. [Mark] writes the to-do
//     in the transaction that decides the work is needed; [ClaimDue] claims
//     due to-dos by moving their Due to the end of a lease, with a new claim
//     token, and commits; the caller does the work and records its result
//     with [Claim.Complete], which does so only if the claim is still its own
//     (no other node took the to-do after the lease ran out, no new Mark
//     replaced it) and deletes the to-do in the same transaction. A node
//     killed mid-job leaves the to-do due at the end of its lease, when
//     another node claims it (Attempt 2) and does the work again: the work
//     must be idempotent. [ClaimOne] claims one given to-do (to run the
//     work at once after the commit that marked it). [MarkAgain] is Mark
//     for work a run in progress can take over: it keeps the claim and
//     flags the to-do, and Complete then keeps it for one more run
//     ([Claim.Again]), so a change made during a run is not dropped.
//
// The package knows no service: it reads and writes records only through
// package storage. It owns the Data of to-do records (the claim token, the
// attempt count and the caller's data).
package job

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/keyfort/keyfort/internal/storage"
)

// Bounds of one [RunDue] call: at most maxBatches transactions of at most
// batchSize records each.
const (
	batchSize  = 50
	maxBatches = 100
)

// ErrLost means a claim no longer holds its to-do: its lease ran out and
// another claim took it, a new [Mark] replaced it, or it was deleted. The
// work's result must not be recorded.
var ErrLost = errors.New("job: claim lost")

// Handler does the work of one due record inside the claiming transaction.
// It must clear the record's Due, move it past the time RunDue was given,
// or delete the record (otherwise the record stays due and is handed to
// the next batch again). It may run more than once for one record (the
// store may run a transaction again), so it has no effect outside tx.
type Handler func(ctx context.Context, tx storage.Tx, rec *storage.Record) error

// RunDue runs h on every record of kind whose Due is not after now, each
// inside the Update that claimed it ([storage.Reader.Due]), in batches of
// at most 50 records per transaction and at most 100 transactions per call.
// It returns how many records were handled in committed transactions. A
// handler's error rolls back its batch (the records stay due) and is
// returned.
func RunDue(ctx context.Context, st storage.Store, kind storage.Kind, now int64, h Handler) (int, error) {
	total := 0
	for range maxBatches {
		n := 0
		err := st.Update(ctx, func(tx storage.Tx) error {
			n = 0
			recs, err := tx.Due(ctx, kind, now, batchSize)
			if err != nil {
				return fmt.Errorf("due %s: %w", kind, err)
			}
			for _, rec := range recs {
				if err := h(ctx, tx, rec); err != nil {
					return err
				}
				n++
			}
			return nil
		})
		if err != nil {
			return total, err
		}
		total += n
		if n < batchSize {
			return total, nil
		}
	}
	return total, nil
}

// todo is the Data of a to-do record.
type todo struct {
	// Token names the current claim; empty while unclaimed.
	Token string `json:"token,omitempty"`
	// Attempt counts the claims since the last Mark.
	Attempt int `json:"attempt,omitempty"`
	// Again means a MarkAgain came while the to-do was claimed.
	Again bool `json:"again,omitempty"`
	// Data is the caller's, as given to Mark.
	Data []byte `json:"data,omitempty"`
}

// decodeTodo reads a to-do's Data. Members it does not know are ignored:
// package replication's to-dos before it used this package were
// {"claim":TOKEN,"again":BOOL}; read here they are unclaimed (their holder
// is gone), due at the Due they have.
func decodeTodo(rec *storage.Record) (todo, error) {
	var t todo
	if len(rec.Data) == 0 { // a to-do written without data (older versions)
		return t, nil
	}
	if err := json.Unmarshal(rec.Data, &t); err != nil {
		return t, fmt.Errorf("job: decode to-do %s %s: %w", rec.Kind, rec.ID, err)
	}
	return t, nil
}

func (t todo) encode() ([]byte, error) {
	b, err := json.Marshal(t)
	if err != nil {
		return nil, fmt.Errorf("job: encode to-do: %w", err)
	}
	return b, nil
}

// Mark, inside the caller's transaction, schedules the job (kind, scope,
// id) at due (Unix seconds; 0 is not allowed) with data for whoever claims
// it: it inserts the to-do, or replaces an existing one's data and Due and
// ends its claim, if any (that claim's Complete returns [ErrLost], and the
// job runs again from the new Mark). The to-do is committed or discarded
// with the caller's changes.
func Mark(ctx context.Context, tx storage.Tx, kind storage.Kind, scope storage.Scope, id string, data []byte, due int64) error {
	if due == 0 {
		return fmt.Errorf("job: mark %s %s: due 0", kind, id)
	}
	b, err := todo{Data: data}.encode()
	if err != nil {
		return err
	}
	rec, err := tx.Get(ctx, kind, scope, id)
	switch {
	case errors.Is(err, storage.ErrNotFound):
		err = tx.Insert(ctx, &storage.Record{Kind: kind, Scope: scope, ID: id, Due: due, Created: due, Data: b})
		if errors.Is(err, storage.ErrExists) {
			err = storage.ErrConflict // inserted concurrently: run the transaction again
		}
	case err == nil:
		rec.Due, rec.Data = due, b
		err = tx.Update(ctx, rec)
	}
	if err != nil {
		return fmt.Errorf("job: mark %s %s: %w", kind, id, err)
	}
	return nil
}

// MarkAgain, inside the caller's transaction, schedules the job (kind,
// scope, id) at due (Unix seconds; 0 is not allowed) with data, for work
// that a run in progress can take over (its run reads the latest state):
// with no to-do, it inserts one as Mark does; an unclaimed to-do gets data
// and the earlier of its Due and due; a claimed one keeps its claim and
// lease and gets data and the "again" flag, so that the holder's Complete
// keeps the to-do for one more run ([Claim.Again]) instead of ending it.
func MarkAgain(ctx context.Context, tx storage.Tx, kind storage.Kind, scope storage.Scope, id string, data []byte, due int64) error {
	if due == 0 {
		return fmt.Errorf("job: mark %s %s: due 0", kind, id)
	}
	rec, err := tx.Get(ctx, kind, scope, id)
	if errors.Is(err, storage.ErrNotFound) {
		return Mark(ctx, tx, kind, scope, id, data, due)
	}
	if err != nil {
		return fmt.Errorf("job: mark %s %s: %w", kind, id, err)
	}
	t, err := decodeTodo(rec)
	if err != nil {
		return err
	}
	same := bytes.Equal(t.Data, data)
	if t.Token != "" {
		if t.Again && same {
			return nil
		}
		t.Again = true
	} else {
		if rec.Due != 0 && rec.Due <= due && same && !t.Again {
			return nil // due already with this data: whoever claims it does the work
		}
		if rec.Due == 0 || due < rec.Due {
			rec.Due = due
		}
		t.Again = false
	}
	t.Data = data
	if rec.Data, err = t.encode(); err != nil {
		return err
	}
	if err := tx.Update(ctx, rec); err != nil {
		return fmt.Errorf("job: mark %s %s: %w", kind, id, err)
	}
	return nil
}

// Unmark deletes the to-do (kind, scope, id), if any, inside the caller's
// transaction; a claim on it is lost.
func Unmark(ctx context.Context, tx storage.Tx, kind storage.Kind, scope storage.Scope, id string) error {
	if err := tx.Delete(ctx, kind, scope, id); err != nil && !errors.Is(err, storage.ErrNotFound) {
		return fmt.Errorf("job: unmark %s %s: %w", kind, id, err)
	}
	return nil
}

// Claim is a to-do claimed by [ClaimDue], held until Until.
type Claim struct {
	Kind  storage.Kind
	Scope storage.Scope
	ID    string
	// Data is what Mark stored.
	Data []byte
	// Attempt counts the claims since the last Mark, this one included:
	// more than 1 when an earlier claim ended without Complete (its node
	// died or hung past the lease, or it released the to-do).
	Attempt int
	// Until is the Unix second the lease ends: from then on another
	// ClaimDue may take the to-do.
	Until int64

	token string
	again bool
}

// Again reports whether the last Complete kept the to-do instead of
// deleting it, because a [MarkAgain] came during the claim: the claim
// still holds it (until the same Until), Data is the latest Mark's, and
// the caller does the work again and completes again.
func (c *Claim) Again() bool { return c.again }

func leaseSeconds(kind storage.Kind, lease time.Duration) (int64, error) {
	secs := int64((lease + time.Second - 1) / time.Second)
	if secs < 1 {
		return 0, fmt.Errorf("job: claim %s: lease %v shorter than a second", kind, lease)
	}
	return secs, nil
}

// claim takes rec for a new claim in tx: a new token, one more attempt,
// the again flag cleared (the claim's work reads the latest state), Due at
// the end of the lease. It is the one place that claims.
func claim(ctx context.Context, tx storage.Tx, rec *storage.Record, now, secs int64) (*Claim, error) {
	t, err := decodeTodo(rec)
	if err != nil {
		return nil, err
	}
	t.Token = rand.Text()
	t.Attempt++
	t.Again = false
	if rec.Data, err = t.encode(); err != nil {
		return nil, err
	}
	rec.Due = now + secs
	if err := tx.Update(ctx, rec); err != nil {
		return nil, fmt.Errorf("claim %s %s: %w", rec.Kind, rec.ID, err)
	}
	return &Claim{Kind: rec.Kind, Scope: rec.Scope, ID: rec.ID, Data: t.Data,
		Attempt: t.Attempt, Until: rec.Due, token: t.Token}, nil
}

// ClaimDue claims up to limit to-dos of kind whose Due is not after now (0
// limit means no limit): in one Update it gives each a new claim token and
// moves its Due to now+lease, then commits. Another node's ClaimDue takes a
// to-do again only once its lease has run out. Choose lease longer than the
// work can take: a claim that outlives its lease may see its work done a
// second time by another node (and its Complete then returns ErrLost).
func ClaimDue(ctx context.Context, st storage.Store, kind storage.Kind, now int64, lease time.Duration, limit int) ([]*Claim, error) {
	secs, err := leaseSeconds(kind, lease)
	if err != nil {
		return nil, err
	}
	var claims []*Claim
	err = st.Update(ctx, func(tx storage.Tx) error {
		claims = claims[:0]
		recs, err := tx.Due(ctx, kind, now, limit)
		if err != nil {
			return fmt.Errorf("due %s: %w", kind, err)
		}
		for _, rec := range recs {
			c, err := claim(ctx, tx, rec, now, secs)
			if err != nil {
				return err
			}
			claims = append(claims, c)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("job: %w", err)
	}
	return claims, nil
}

// ClaimOne claims the to-do (kind, scope, id) as ClaimDue does if it is due
// at now, e.g. to do the work at once after the commit that marked it.
// Otherwise it returns a nil claim and the to-do's Due: when its claim's
// lease ends or it falls due (0: there is no to-do, its work is done).
func ClaimOne(ctx context.Context, st storage.Store, kind storage.Kind, scope storage.Scope, id string, now int64, lease time.Duration) (*Claim, int64, error) {
	secs, err := leaseSeconds(kind, lease)
	if err != nil {
		return nil, 0, err
	}
	var c *Claim
	var due int64
	err = st.Update(ctx, func(tx storage.Tx) error {
		c, due = nil, 0
		rec, err := tx.Get(ctx, kind, scope, id)
		if errors.Is(err, storage.ErrNotFound) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("get %s %s: %w", kind, id, err)
		}
		if rec.Due == 0 || rec.Due > now {
			due = rec.Due
			return nil
		}
		c, err = claim(ctx, tx, rec, now, secs)
		return err
	})
	if err != nil {
		return nil, 0, fmt.Errorf("job: %w", err)
	}
	return c, due, nil
}

// held returns the to-do and its Data while c holds it, else ErrLost.
func (c *Claim) held(ctx context.Context, r storage.Reader) (*storage.Record, todo, error) {
	rec, err := r.Get(ctx, c.Kind, c.Scope, c.ID)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, todo{}, ErrLost
	}
	if err != nil {
		return nil, todo{}, fmt.Errorf("job: %s %s: %w", c.Kind, c.ID, err)
	}
	t, err := decodeTodo(rec)
	if err != nil {
		return nil, todo{}, err
	}
	if t.Token == "" || t.Token != c.token {
		return nil, todo{}, ErrLost
	}
	return rec, t, nil
}

// Check returns nil if c still holds its to-do, else [ErrLost]. Inside an
// Update (on PostgreSQL the read locks the to-do) the answer holds until
// that transaction ends, so a caller can prepare its work on the claim's
// behalf there.
func (c *Claim) Check(ctx context.Context, r storage.Reader) error {
	_, _, err := c.held(ctx, r)
	return err
}

// Complete records the end of the job: in one Update it runs fn (nil:
// nothing more) and then, if c still holds its to-do, deletes it, or, when
// a [MarkAgain] came during the claim, keeps it claimed by c for one more
// run ([Claim.Again] then reports true). fn runs first so that the
// transaction locks the caller's records before the to-do, in the order of
// the transactions that mark it (on PostgreSQL no deadlock with them). If
// the claim was lost Complete returns [ErrLost] and fn's writes are rolled
// back; an error from fn is returned and the to-do stays claimed by c (due
// again when the lease runs out). fn may run more than once.
func (c *Claim) Complete(ctx context.Context, st storage.Store, fn func(tx storage.Tx) error) error {
	c.again = false
	var again bool
	var data []byte
	err := st.Update(ctx, func(tx storage.Tx) error {
		again = false
		if fn != nil {
			if err := fn(tx); err != nil {
				return err
			}
		}
		rec, t, err := c.held(ctx, tx)
		if err != nil {
			return err
		}
		if t.Again {
			t.Again = false
			if rec.Data, err = t.encode(); err != nil {
				return err
			}
			if err := tx.Update(ctx, rec); err != nil {
				return fmt.Errorf("job: complete %s %s: %w", c.Kind, c.ID, err)
			}
			again, data = true, t.Data
			return nil
		}
		if err := tx.Delete(ctx, c.Kind, c.Scope, c.ID); err != nil {
			return fmt.Errorf("job: complete %s %s: %w", c.Kind, c.ID, err)
		}
		return nil
	})
	if err == nil && again {
		c.again, c.Data = true, data
	}
	return err
}

// Release gives the to-do up without completing it: if c still holds it,
// it becomes due again at due (now, or later to back off after a failure)
// for any node. It returns [ErrLost] if the claim was lost.
func (c *Claim) Release(ctx context.Context, st storage.Store, due int64) error {
	if due == 0 {
		return fmt.Errorf("job: release %s %s: due 0", c.Kind, c.ID)
	}
	return st.Update(ctx, func(tx storage.Tx) error {
		rec, t, err := c.held(ctx, tx)
		if err != nil {
			return err
		}
		t.Token, t.Again = "", false
		if rec.Data, err = t.encode(); err != nil {
			return err
		}
		rec.Due = due
		if err := tx.Update(ctx, rec); err != nil {
			return fmt.Errorf("job: release %s %s: %w", c.Kind, c.ID, err)
		}
		return nil
	})
}
