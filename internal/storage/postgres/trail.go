package postgres

import (
	"context"
	"math"
	"strconv"

	"github.com/jackc/pgx/v5"

	"github.com/keyfort/keyfort/internal/storage"
)

// eventColumns is the select list scanEvents reads.
const eventColumns = "id, time, account, region, source, name, read_only, username, access_key_id, resources, node, complete, json"

const (
	sqlAppendEvent = "INSERT INTO audit_events (" + eventColumns + ") " +
		"VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) ON CONFLICT (id) DO NOTHING"
	// sqlPutEvent inserts, or replaces an incomplete event; a complete one
	// stays as it is.
	sqlPutEvent = "INSERT INTO audit_events (" + eventColumns + ") " +
		"VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) " +
		"ON CONFLICT (id) DO UPDATE SET time = excluded.time, account = excluded.account, region = excluded.region, " +
		"source = excluded.source, name = excluded.name, read_only = excluded.read_only, username = excluded.username, " +
		"access_key_id = excluded.access_key_id, resources = excluded.resources, node = excluded.node, " +
		"complete = excluded.complete, json = excluded.json WHERE NOT audit_events.complete"
	sqlIncompleteEvents = "SELECT " + eventColumns + " FROM audit_events WHERE node = $1 AND NOT complete " +
		"AND (time > $2 OR (time = $2 AND id > $3)) ORDER BY time, id LIMIT $4"
	sqlPruneEvents = "DELETE FROM audit_events WHERE id IN (SELECT id FROM audit_events WHERE time < $1 LIMIT 5000 FOR UPDATE SKIP LOCKED)"
)

var _ storage.Trail = (*Store)(nil)

// eventArgs returns e's column values in eventColumns' order.
func eventArgs(e *storage.EventRecord) []any {
	ro := int64(0)
	if e.ReadOnly {
		ro = 1
	}
	return []any{e.ID, e.Time, e.Account, e.Region, e.Source, e.Name, ro, e.Username,
		e.AccessKeyID, storage.EncodeResources(e.Resources), e.Node, e.Complete, e.JSON}
}

// AppendEvent implements [storage.Tx.AppendEvent].
func (tx *writeTx) AppendEvent(ctx context.Context, e *storage.EventRecord) error {
	if err := ctx.Err(); err != nil {
		return opErr(ctx, "append event", err)
	}
	tag, err := tx.q.Exec(ctx, sqlAppendEvent, eventArgs(e)...)
	if err != nil {
		return opErr(ctx, "append event", err)
	}
	if tag.RowsAffected() == 0 {
		return storage.ErrExists
	}
	return nil
}

// PutEvents implements [storage.Trail.PutEvents] in one transaction, its
// statements sent as one batch.
func (s *Store) PutEvents(ctx context.Context, events []*storage.EventRecord) error {
	if len(events) == 0 {
		return nil
	}
	return s.Update(storage.WithoutPendingEvent(ctx), func(t storage.Tx) error {
		tx := t.(*writeTx)
		var b pgx.Batch
		for _, e := range events {
			b.Queue(sqlPutEvent, eventArgs(e)...)
		}
		if err := tx.q.(pgx.Tx).SendBatch(ctx, &b).Close(); err != nil {
			return opErr(ctx, "put events", err)
		}
		return nil
	})
}

// LookupEvents implements [storage.Trail.LookupEvents].
func (s *Store) LookupEvents(ctx context.Context, q storage.EventQuery) ([]*storage.EventRecord, error) {
	if s.closed.Load() {
		return nil, storage.ErrClosed
	}
	where, args, err := storage.EventWhere(q, func(n int) string { return "$" + strconv.Itoa(n) }, "strpos")
	if err != nil {
		return nil, err
	}
	args = append(args, max(q.Limit, 1))
	query := "SELECT " + eventColumns + " FROM audit_events WHERE " + where +
		" ORDER BY time DESC, id DESC LIMIT $" + strconv.Itoa(len(args))
	return s.queryEvents(ctx, query, args...)
}

// IncompleteEvents implements [storage.Trail.IncompleteEvents].
func (s *Store) IncompleteEvents(ctx context.Context, node string, after storage.EventCursor, limit int) ([]*storage.EventRecord, error) {
	if s.closed.Load() {
		return nil, storage.ErrClosed
	}
	if after.ID == "" {
		after.Time = math.MinInt64
	}
	return s.queryEvents(ctx, sqlIncompleteEvents, node, after.Time, after.ID, max(limit, 1))
}

func (s *Store) queryEvents(ctx context.Context, query string, args ...any) ([]*storage.EventRecord, error) {
	rows, err := s.pool.Query(ctx, query, args...)
	if err != nil {
		return nil, s.mapErr(opErr(ctx, "events", err))
	}
	defer rows.Close()
	var out []*storage.EventRecord
	for rows.Next() {
		var (
			e         storage.EventRecord
			ro        int64
			resources string
		)
		if err := rows.Scan(&e.ID, &e.Time, &e.Account, &e.Region, &e.Source, &e.Name, &ro, &e.Username,
			&e.AccessKeyID, &resources, &e.Node, &e.Complete, &e.JSON); err != nil {
			return nil, s.mapErr(opErr(ctx, "events", err))
		}
		e.ReadOnly = ro != 0
		e.Resources = storage.DecodeResources(resources)
		out = append(out, &e)
	}
	if err := rows.Err(); err != nil {
		return nil, s.mapErr(opErr(ctx, "events", err))
	}
	return out, nil
}

// PruneEvents implements [storage.Trail.PruneEvents], in steps of at most
// 5,000 events per transaction. It skips the rows another transaction holds
// (another node pruning at the same time deletes them), so that two nodes
// pruning at once never deadlock.
func (s *Store) PruneEvents(ctx context.Context, before int64) (int, error) {
	total := 0
	for {
		if s.closed.Load() {
			return total, storage.ErrClosed
		}
		tag, err := s.pool.Exec(ctx, sqlPruneEvents, before)
		if err != nil {
			return total, s.mapErr(opErr(ctx, "prune events", err))
		}
		n := int(tag.RowsAffected())
		total += n
		if n < 5000 {
			return total, nil
		}
	}
}
