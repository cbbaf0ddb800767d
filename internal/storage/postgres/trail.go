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
	// sqlPutEvents inserts a batch, or replaces incomplete events; a complete
	// one is kept.
	sqlPutEvents = "INSERT INTO audit_events (" + eventColumns + ") " +
		"SELECT * FROM unnest($1::text[], $2::bigint[], $3::text[], $4::text[], $5::text[], $6::text[], $7::bigint[], " +
		"$8::text[], $9::text[], $10::text[], $11::text[], $12::boolean[], $13::bytea[]) " +
		"ON CONFLICT (id) DO UPDATE SET time = excluded.time, account = excluded.account, region = excluded.region, " +
		"source = excluded.source, name = excluded.name, read_only = excluded.read_only, username = excluded.username, " +
		"access_key_id = excluded.access_key_id, resources = excluded.resources, node = excluded.node, " +
		"complete = excluded.complete, json = excluded.json WHERE NOT audit_events.complete"
	sqlIncompleteEvents = "SELECT " + eventColumns + " FROM audit_events WHERE node = $1 AND NOT complete " +
		"AND (time > $2 OR (time = $2 AND id > $3)) ORDER BY time, id LIMIT $4"
	sqlPruneEvents = "DELETE FROM audit_events WHERE id IN (SELECT id FROM audit_events WHERE time < $1 LIMIT 5000 FOR UPDATE SKIP LOCKED)"
)

var (
	_ storage.Trail      = (*Store)(nil)
	_ storage.Exporter   = (*reader)(nil)
	_ storage.BulkWriter = (*writeTx)(nil)
)

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
	// One statement for the whole batch (arrays unnested), so that storing
	// an event costs no round trip or statement of its own. ON CONFLICT
	// cannot meet one id twice in a statement: a repeated id keeps its
	// complete form (else its last).
	cols := eventArrays(events)
	return s.Update(storage.WithoutPendingEvent(ctx), func(t storage.Tx) error {
		tx := t.(*writeTx)
		if _, err := tx.q.Exec(ctx, sqlPutEvents, cols...); err != nil {
			return opErr(ctx, "put events", err)
		}
		return nil
	})
}

// eventArrays returns the columns of events as arrays, one per column in
// eventColumns' order, each id once.
func eventArrays(events []*storage.EventRecord) []any {
	at := make(map[string]int, len(events))
	var (
		ids, accounts, regions, sources, names, users, keys, resources, nodes []string
		times, ro                                                             []int64
		complete                                                              []bool
		js                                                                    [][]byte
	)
	for _, e := range events {
		i, seen := at[e.ID]
		if !seen {
			i = len(ids)
			at[e.ID] = i
			ids, times, accounts, regions, sources, names = append(ids, ""), append(times, 0), append(accounts, ""), append(regions, ""), append(sources, ""), append(names, "")
			ro, users, keys, resources, nodes = append(ro, 0), append(users, ""), append(keys, ""), append(resources, ""), append(nodes, "")
			complete, js = append(complete, false), append(js, nil)
		} else if complete[i] && !e.Complete {
			continue
		}
		r := int64(0)
		if e.ReadOnly {
			r = 1
		}
		ids[i], times[i], accounts[i], regions[i], sources[i], names[i] = e.ID, e.Time, e.Account, e.Region, e.Source, e.Name
		ro[i], users[i], keys[i], resources[i], nodes[i] = r, e.Username, e.AccessKeyID, storage.EncodeResources(e.Resources), e.Node
		complete[i], js[i] = e.Complete, e.JSON
	}
	return []any{ids, times, accounts, regions, sources, names, ro, users, keys, resources, nodes, complete, js}
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
	out, err := queryEvents(ctx, s.pool, query, args...)
	if err != nil {
		return nil, s.mapErr(opErr(ctx, "events", err))
	}
	return out, nil
}

// queryEvents runs query, which selects eventColumns, on q.
func queryEvents(ctx context.Context, q querier, query string, args ...any) ([]*storage.EventRecord, error) {
	rows, err := q.Query(ctx, query, args...)
	if err != nil {
		return nil, err
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
			return nil, err
		}
		e.ReadOnly = ro != 0
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
	if err := ctx.Err(); err != nil {
		return nil, opErr(ctx, "kinds", err)
	}
	rows, err := r.q.Query(ctx, "SELECT kind, count(*) FROM records GROUP BY kind ORDER BY kind")
	if err != nil {
		return nil, opErr(ctx, "kinds", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (storage.KindCount, error) {
		var (
			kind string
			n    int64
		)
		err := row.Scan(&kind, &n)
		return storage.KindCount{Kind: storage.Kind(kind), Records: int(n)}, err
	})
	if err != nil {
		return nil, opErr(ctx, "kinds", err)
	}
	return out, nil
}

// CountEvents implements [storage.Exporter.CountEvents].
func (r *reader) CountEvents(ctx context.Context) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, opErr(ctx, "count events", err)
	}
	var n int64
	if err := r.q.QueryRow(ctx, "SELECT count(*) FROM audit_events").Scan(&n); err != nil {
		return 0, opErr(ctx, "count events", err)
	}
	return int(n), nil
}

// ScanEvents implements [storage.Exporter.ScanEvents].
func (r *reader) ScanEvents(ctx context.Context, after string, limit int) ([]*storage.EventRecord, error) {
	if err := ctx.Err(); err != nil {
		return nil, opErr(ctx, "scan events", err)
	}
	query, args := "SELECT "+eventColumns+" FROM audit_events WHERE id > $1 ORDER BY id", []any{after}
	if limit > 0 {
		query += " LIMIT $2"
		args = append(args, int64(limit))
	}
	out, err := queryEvents(ctx, r.q, query, args...)
	if err != nil {
		return nil, opErr(ctx, "scan events", err)
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

// InsertAll implements [storage.BulkWriter]: the statements of Insert and
// AppendEvent, sent as one batch (one round trip).
func (tx *writeTx) InsertAll(ctx context.Context, recs []*storage.Record, events []*storage.EventRecord) error {
	if err := ctx.Err(); err != nil {
		return opErr(ctx, "insert all", err)
	}
	if len(recs)+len(events) == 0 {
		return nil
	}
	var b pgx.Batch
	for _, rec := range recs {
		b.Queue(sqlInsert, string(rec.Kind), rec.Scope.Account, rec.Scope.Region, rec.ID,
			rec.Parent, rec.Due, rec.Created, rec.Data, rec.Sealed)
	}
	for _, e := range events {
		b.Queue(sqlAppendEvent, eventArgs(e)...)
	}
	res := tx.q.(pgx.Tx).SendBatch(ctx, &b)
	var taken bool
	for range len(recs) + len(events) {
		tag, err := res.Exec()
		if err != nil {
			res.Close()
			return opErr(ctx, "insert all", err)
		}
		taken = taken || tag.RowsAffected() == 0
	}
	if err := res.Close(); err != nil {
		return opErr(ctx, "insert all", err)
	}
	if taken {
		return storage.ErrExists
	}
	for _, rec := range recs {
		rec.Rev = 1
		tx.changed = append(tx.changed, change{rec.Kind, rec.Scope, rec.ID})
	}
	return nil
}
