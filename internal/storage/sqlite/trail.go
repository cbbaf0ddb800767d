package sqlite

import (
	"context"
	"database/sql"
	"math"

	"github.com/keyfort/keyfort/internal/storage"
)

// eventColumns is the select list scanEvent reads.
const eventColumns = "id, time, account, region, source, name, read_only, username, access_key_id, resources, node, complete, json"

const (
	sqlAppendEvent = "INSERT INTO audit_events (" + eventColumns + ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) " +
		"ON CONFLICT (id) DO NOTHING"
	// sqlPutEvent inserts, or replaces an incomplete event; a complete one
	// stays as it is.
	sqlPutEvent = "INSERT INTO audit_events (" + eventColumns + ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) " +
		"ON CONFLICT (id) DO UPDATE SET time = excluded.time, account = excluded.account, region = excluded.region, " +
		"source = excluded.source, name = excluded.name, read_only = excluded.read_only, username = excluded.username, " +
		"access_key_id = excluded.access_key_id, resources = excluded.resources, node = excluded.node, " +
		"complete = excluded.complete, json = excluded.json WHERE audit_events.complete = 0"
	sqlIncompleteEvents = "SELECT " + eventColumns + " FROM audit_events WHERE node = ? AND complete = 0 " +
		"AND (time > ? OR (time = ? AND id > ?)) ORDER BY time, id LIMIT ?"
	// sqlPruneEvents deletes in bounded steps, so the writer is not held
	// for long.
	sqlPruneEvents = "DELETE FROM audit_events WHERE rowid IN (SELECT rowid FROM audit_events WHERE time < ? LIMIT 5000)"
)

var (
	_ storage.Trail      = (*Store)(nil)
	_ storage.Exporter   = (*reader)(nil)
	_ storage.BulkWriter = (*writeTx)(nil)
)

// eventArgs returns e's column values in eventColumns' order.
func eventArgs(e *storage.EventRecord) []any {
	return []any{e.ID, e.Time, e.Account, e.Region, e.Source, e.Name, boolInt(e.ReadOnly), e.Username,
		e.AccessKeyID, storage.EncodeResources(e.Resources), e.Node, boolInt(e.Complete), blobArg(e.JSON)}
}

func boolInt(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

// AppendEvent implements [storage.Tx.AppendEvent].
func (tx *writeTx) AppendEvent(ctx context.Context, e *storage.EventRecord) error {
	if tx.done.Load() {
		return errTxDone
	}
	if err := ctx.Err(); err != nil {
		return opErr(ctx, "append event", err)
	}
	n, err := tx.execWrite(ctx, sqlAppendEvent, eventArgs(e)...)
	if err != nil {
		return opErr(ctx, "append event", err)
	}
	if n == 0 {
		return storage.ErrExists
	}
	return nil
}

// InsertAll implements [storage.BulkWriter] with Insert and AppendEvent:
// statements on the writer's connection cost no round trip.
func (tx *writeTx) InsertAll(ctx context.Context, recs []*storage.Record, events []*storage.EventRecord) error {
	for _, rec := range recs {
		if err := tx.Insert(ctx, rec); err != nil {
			return err
		}
	}
	for _, e := range events {
		if err := tx.AppendEvent(ctx, e); err != nil {
			return err
		}
	}
	return nil
}

// execWrite runs a write statement of the trail on the writer connection
// (prepared once) and returns the rows it affected.
func (tx *writeTx) execWrite(ctx context.Context, query string, args ...any) (int64, error) {
	st, err := tx.q.listStmt(ctx, query)
	if err != nil {
		return 0, err
	}
	res, err := st.ExecContext(context.WithoutCancel(ctx), args...)
	if err != nil {
		tx.writeFailed = true
		return 0, err
	}
	n, err := res.RowsAffected()
	if err != nil {
		tx.writeFailed = true
		return 0, err
	}
	return n, nil
}

// PutEvents implements [storage.Trail.PutEvents], in one transaction of the
// writer (which batches it with other writes).
func (s *Store) PutEvents(ctx context.Context, events []*storage.EventRecord) error {
	if len(events) == 0 {
		return nil
	}
	return s.Update(storage.WithoutPendingEvent(ctx), func(t storage.Tx) error {
		tx := t.(*writeTx)
		for _, e := range events {
			if _, err := tx.execWrite(ctx, sqlPutEvent, eventArgs(e)...); err != nil {
				return opErr(ctx, "put events", err)
			}
		}
		return nil
	})
}

// LookupEvents implements [storage.Trail.LookupEvents] on the reader pool.
func (s *Store) LookupEvents(ctx context.Context, q storage.EventQuery) ([]*storage.EventRecord, error) {
	if s.closed.Load() {
		return nil, storage.ErrClosed
	}
	where, args, err := storage.EventWhere(q, func(int) string { return "?" }, "instr")
	if err != nil {
		return nil, err
	}
	limit := q.Limit
	if limit < 1 {
		limit = 1
	}
	args = append(args, limit)
	st, err := s.rq.listStmt(ctx, "SELECT "+eventColumns+" FROM audit_events WHERE "+where+
		" ORDER BY time DESC, id DESC LIMIT ?")
	if err != nil {
		return nil, s.readErr(ctx, "lookup events", err)
	}
	return s.queryEvents(ctx, st, args...)
}

// IncompleteEvents implements [storage.Trail.IncompleteEvents].
func (s *Store) IncompleteEvents(ctx context.Context, node string, after storage.EventCursor, limit int) ([]*storage.EventRecord, error) {
	if s.closed.Load() {
		return nil, storage.ErrClosed
	}
	st, err := s.rq.listStmt(ctx, sqlIncompleteEvents)
	if err != nil {
		return nil, s.readErr(ctx, "incomplete events", err)
	}
	if after.ID == "" {
		after.Time = math.MinInt64
	}
	return s.queryEvents(ctx, st, node, after.Time, after.Time, after.ID, max(limit, 1))
}

func (s *Store) queryEvents(ctx context.Context, st *sql.Stmt, args ...any) ([]*storage.EventRecord, error) {
	rows, err := st.QueryContext(ctx, args...)
	if err != nil {
		return nil, s.readErr(ctx, "events", err)
	}
	out, err := scanEvents(rows)
	if err != nil {
		return nil, s.readErr(ctx, "events", err)
	}
	return out, nil
}

// scanEvents reads every row of eventColumns and closes rows.
func scanEvents(rows *sql.Rows) ([]*storage.EventRecord, error) {
	defer rows.Close()
	var out []*storage.EventRecord
	for rows.Next() {
		var (
			e            storage.EventRecord
			ro, complete int64
			resources    string
		)
		if err := rows.Scan(&e.ID, &e.Time, &e.Account, &e.Region, &e.Source, &e.Name, &ro, &e.Username,
			&e.AccessKeyID, &resources, &e.Node, &complete, &e.JSON); err != nil {
			return nil, err
		}
		e.ReadOnly, e.Complete = ro != 0, complete != 0
		e.Resources = storage.DecodeResources(resources)
		out = append(out, &e)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	return out, nil
}

// Kinds implements [storage.Exporter.Kinds].
func (r *reader) Kinds(ctx context.Context) ([]storage.KindCount, error) {
	rows, err := r.query(ctx, "SELECT kind, count(*) FROM records GROUP BY kind ORDER BY kind")
	if err != nil {
		return nil, opErr(ctx, "kinds", err)
	}
	defer rows.Close()
	var out []storage.KindCount
	for rows.Next() {
		var (
			kind string
			n    int64
		)
		if err := rows.Scan(&kind, &n); err != nil {
			return nil, opErr(ctx, "kinds", err)
		}
		out = append(out, storage.KindCount{Kind: storage.Kind(kind), Records: int(n)})
	}
	if err := rows.Err(); err != nil {
		return nil, opErr(ctx, "kinds", err)
	}
	return out, nil
}

// CountEvents implements [storage.Exporter.CountEvents].
func (r *reader) CountEvents(ctx context.Context) (int, error) {
	rows, err := r.query(ctx, "SELECT count(*) FROM audit_events")
	if err != nil {
		return 0, opErr(ctx, "count events", err)
	}
	defer rows.Close()
	var n int64
	if rows.Next() {
		err = rows.Scan(&n)
	}
	if err == nil {
		err = rows.Err()
	}
	if err != nil {
		return 0, opErr(ctx, "count events", err)
	}
	return int(n), nil
}

// ScanEvents implements [storage.Exporter.ScanEvents].
func (r *reader) ScanEvents(ctx context.Context, after string, limit int) ([]*storage.EventRecord, error) {
	lim := int64(-1)
	if limit > 0 {
		lim = int64(limit)
	}
	rows, err := r.query(ctx, "SELECT "+eventColumns+" FROM audit_events WHERE id > ? ORDER BY id LIMIT ?", after, lim)
	if err != nil {
		return nil, opErr(ctx, "scan events", err)
	}
	out, err := scanEvents(rows)
	if err != nil {
		return nil, opErr(ctx, "scan events", err)
	}
	return out, nil
}

// query runs query, prepared once, in the reader's transaction.
func (r *reader) query(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	prepared, err := r.q.listStmt(context.WithoutCancel(ctx), query)
	if err != nil {
		return nil, err
	}
	st, qctx, err := r.stmt(ctx, prepared)
	if err != nil {
		return nil, err
	}
	return st.QueryContext(qctx, args...)
}

// PruneEvents implements [storage.Trail.PruneEvents], in steps of at most
// 5,000 events per write transaction.
func (s *Store) PruneEvents(ctx context.Context, before int64) (int, error) {
	total := 0
	for {
		var n int64
		err := s.Update(storage.WithoutPendingEvent(ctx), func(t storage.Tx) error {
			var err error
			n, err = t.(*writeTx).execWrite(ctx, sqlPruneEvents, before)
			if err != nil {
				return opErr(ctx, "prune events", err)
			}
			return nil
		})
		if err != nil {
			return total, err
		}
		total += int(n)
		if n < 5000 {
			return total, nil
		}
	}
}
