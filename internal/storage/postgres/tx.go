package postgres

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/keyfort/keyfort/internal/storage"
)

// columns is the select list scanRecord reads.
const columns = "kind, account, region, id, parent, due, created, rev, data, sealed"

// keyColumns is columns without the payloads (ListOptions.KeysOnly).
const keyColumns = "kind, account, region, id, parent, due, created, rev, NULL::bytea, NULL::bytea"

// pgx prepares and caches every statement below per connection
// (QueryExecModeCacheStatement), so the hot ones run as prepared statements.
const (
	sqlGet = "SELECT " + columns + " FROM records WHERE kind = $1 AND account = $2 AND region = $3 AND id = $4"
	// sqlInsert reports a taken identity as 0 rows rather than a unique
	// violation, which would abort the whole transaction.
	sqlInsert = "INSERT INTO records (kind, account, region, id, parent, due, created, rev, data, sealed) " +
		"VALUES ($1, $2, $3, $4, $5, $6, $7, 1, $8, $9) ON CONFLICT (kind, account, region, id) DO NOTHING"
	sqlUpdate = "UPDATE records SET parent = $1, due = $2, created = $3, rev = rev + 1, data = $4, sealed = $5 " +
		"WHERE kind = $6 AND account = $7 AND region = $8 AND id = $9 AND rev = $10"
	sqlExists = "SELECT 1 FROM records WHERE kind = $1 AND account = $2 AND region = $3 AND id = $4"
	sqlDelete = "DELETE FROM records WHERE kind = $1 AND account = $2 AND region = $3 AND id = $4"
	sqlCount  = "SELECT count(*) FROM records WHERE kind = $1 AND account = $2 AND region = $3"
	// A query by parent says parent <> '' so that the partial index
	// records_by_parent answers it (migration 0003).
	sqlCountParent = sqlCount + " AND parent = $4 AND parent <> ''"
	sqlDue         = "SELECT " + columns + " FROM records WHERE kind = $1 AND due <> 0 AND due <= $2 " +
		"ORDER BY due, account, region, id"
)

// querier is a *pgxpool.Pool or a pgx.Tx.
type querier interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// reader implements storage.Reader on the pool, a View transaction, or (with
// write set) an Update transaction, where Get locks the row it reads and Due
// claims the rows it returns.
type reader struct {
	q     querier
	write bool
}

var _ storage.Reader = (*reader)(nil)

// Get implements [storage.Reader.Get]. Inside Update it reads with
// SELECT ... FOR UPDATE: the row stays locked until the transaction ends, so
// a concurrent read-modify-write of the same record waits rather than
// conflicts.
func (r *reader) Get(ctx context.Context, kind storage.Kind, scope storage.Scope, id string) (*storage.Record, error) {
	if err := ctx.Err(); err != nil {
		return nil, opErr(ctx, "get", err)
	}
	query := sqlGet
	if r.write {
		query += " FOR UPDATE"
	}
	rec, err := scanRecord(r.q.QueryRow(ctx, query, string(kind), scope.Account, scope.Region, id))
	if err != nil {
		return nil, opErr(ctx, "get", err)
	}
	return rec, nil
}

// GetShared implements [storage.SharedGetter] with SELECT ... FOR SHARE:
// transactions reading the same record do not wait for each other, one that
// updates or deletes it waits for them all. Outside Update it is Get.
func (r *reader) GetShared(ctx context.Context, kind storage.Kind, scope storage.Scope, id string) (*storage.Record, error) {
	if err := ctx.Err(); err != nil {
		return nil, opErr(ctx, "get", err)
	}
	query := sqlGet
	if r.write {
		query += " FOR SHARE"
	}
	rec, err := scanRecord(r.q.QueryRow(ctx, query, string(kind), scope.Account, scope.Region, id))
	if err != nil {
		return nil, opErr(ctx, "get", err)
	}
	return rec, nil
}

// List implements [storage.Reader.List]. A Limit of 0 or less means no limit.
func (r *reader) List(ctx context.Context, kind storage.Kind, scope storage.Scope, opts storage.ListOptions) ([]*storage.Record, error) {
	if err := ctx.Err(); err != nil {
		return nil, opErr(ctx, "list", err)
	}
	var b strings.Builder
	cols := columns
	if opts.KeysOnly {
		cols = keyColumns
	}
	b.WriteString("SELECT " + cols + " FROM records WHERE kind = $1 AND account = $2 AND region = $3")
	args := []any{string(kind), scope.Account, scope.Region}
	arg := func(v any) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args))
	}
	if opts.Parent != "" {
		b.WriteString(" AND parent = " + arg(opts.Parent) + " AND parent <> ''")
	}
	if opts.Prefix != "" {
		b.WriteString(" AND id >= " + arg(opts.Prefix))
		if end, ok := prefixEnd(opts.Prefix); ok {
			b.WriteString(" AND id < " + arg(end))
		}
	}
	if opts.After != "" {
		b.WriteString(" AND id > " + arg(opts.After))
	}
	b.WriteString(" ORDER BY id")
	if opts.Limit > 0 {
		b.WriteString(" LIMIT " + arg(int64(opts.Limit)))
	}
	rows, err := r.q.Query(ctx, b.String(), args...)
	if err != nil {
		return nil, opErr(ctx, "list", err)
	}
	recs, err := scanRecords(rows, opts.Limit)
	if err != nil {
		return nil, opErr(ctx, "list", err)
	}
	return recs, nil
}

// Count implements [storage.Reader.Count].
func (r *reader) Count(ctx context.Context, kind storage.Kind, scope storage.Scope, parent string) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, opErr(ctx, "count", err)
	}
	query, args := sqlCount, []any{string(kind), scope.Account, scope.Region}
	if parent != "" {
		query, args = sqlCountParent, append(args, parent)
	}
	var n int64
	if err := r.q.QueryRow(ctx, query, args...).Scan(&n); err != nil {
		return 0, opErr(ctx, "count", err)
	}
	return int(n), nil
}

// Due implements [storage.Reader.Due]. A limit of 0 or less means no limit.
//
// Inside Update, Due claims what it returns: it selects with
// FOR UPDATE SKIP LOCKED, so the records stay locked until the transaction
// ends and a concurrent Due on another node (or goroutine) skips them and
// returns the next due records instead. A job that claims records with Due,
// does its work and clears or moves their Due in the same Update is
// therefore done by exactly one node. Inside View, Due is a plain read and
// claims nothing.
func (r *reader) Due(ctx context.Context, kind storage.Kind, before int64, limit int) ([]*storage.Record, error) {
	if err := ctx.Err(); err != nil {
		return nil, opErr(ctx, "due", err)
	}
	query, args := sqlDue, []any{string(kind), before}
	if limit > 0 {
		query += " LIMIT $3"
		args = append(args, int64(limit))
	}
	if r.write {
		query += " FOR UPDATE SKIP LOCKED"
	}
	rows, err := r.q.Query(ctx, query, args...)
	if err != nil {
		return nil, opErr(ctx, "due", err)
	}
	recs, err := scanRecords(rows, limit)
	if err != nil {
		return nil, opErr(ctx, "due", err)
	}
	return recs, nil
}

// Scan implements [storage.Reader.Scan] on the primary key's order.
func (r *reader) Scan(ctx context.Context, kind storage.Kind, after storage.Position, limit int) ([]*storage.Record, error) {
	if err := ctx.Err(); err != nil {
		return nil, opErr(ctx, "scan", err)
	}
	query := "SELECT " + columns + " FROM records WHERE kind = $1 AND (account, region, id) > ($2, $3, $4) " +
		"ORDER BY account, region, id"
	args := []any{string(kind), after.Scope.Account, after.Scope.Region, after.ID}
	if limit > 0 {
		query += " LIMIT $5"
		args = append(args, int64(limit))
	}
	rows, err := r.q.Query(ctx, query, args...)
	if err != nil {
		return nil, opErr(ctx, "scan", err)
	}
	recs, err := scanRecords(rows, limit)
	if err != nil {
		return nil, opErr(ctx, "scan", err)
	}
	return recs, nil
}

// writeTx implements storage.Tx inside an Update transaction.
type writeTx struct {
	reader
	changed []change // the records written, for the change notifications
}

var (
	_ storage.Tx           = (*writeTx)(nil)
	_ storage.SharedGetter = (*writeTx)(nil)
)

// Insert implements [storage.Tx.Insert].
func (tx *writeTx) Insert(ctx context.Context, rec *storage.Record) error {
	if err := ctx.Err(); err != nil {
		return opErr(ctx, "insert", err)
	}
	tag, err := tx.q.Exec(ctx, sqlInsert, string(rec.Kind), rec.Scope.Account, rec.Scope.Region, rec.ID,
		rec.Parent, rec.Due, rec.Created, rec.Data, rec.Sealed)
	if err != nil {
		return opErr(ctx, "insert", err)
	}
	if tag.RowsAffected() == 0 {
		return storage.ErrExists
	}
	rec.Rev = 1
	tx.changed = append(tx.changed, change{rec.Kind, rec.Scope, rec.ID})
	return nil
}

// Update implements [storage.Tx.Update].
func (tx *writeTx) Update(ctx context.Context, rec *storage.Record) error {
	if err := ctx.Err(); err != nil {
		return opErr(ctx, "update", err)
	}
	tag, err := tx.q.Exec(ctx, sqlUpdate, rec.Parent, rec.Due, rec.Created, rec.Data, rec.Sealed,
		string(rec.Kind), rec.Scope.Account, rec.Scope.Region, rec.ID, rec.Rev)
	if err != nil {
		return opErr(ctx, "update", err)
	}
	if tag.RowsAffected() == 0 {
		var one int
		err := tx.q.QueryRow(ctx, sqlExists, string(rec.Kind), rec.Scope.Account, rec.Scope.Region, rec.ID).Scan(&one)
		switch {
		case errors.Is(err, pgx.ErrNoRows):
			return storage.ErrNotFound
		case err != nil:
			return opErr(ctx, "update", err)
		}
		return storage.ErrConflict
	}
	rec.Rev++
	tx.changed = append(tx.changed, change{rec.Kind, rec.Scope, rec.ID})
	return nil
}

// Delete implements [storage.Tx.Delete].
func (tx *writeTx) Delete(ctx context.Context, kind storage.Kind, scope storage.Scope, id string) error {
	if err := ctx.Err(); err != nil {
		return opErr(ctx, "delete", err)
	}
	tag, err := tx.q.Exec(ctx, sqlDelete, string(kind), scope.Account, scope.Region, id)
	if err != nil {
		return opErr(ctx, "delete", err)
	}
	if tag.RowsAffected() == 0 {
		return storage.ErrNotFound
	}
	tx.changed = append(tx.changed, change{kind, scope, id})
	return nil
}

// scanRecord reads one row of columns; pgx.ErrNoRows becomes
// storage.ErrNotFound. pgx scans a NULL bytea as nil and an empty one as an
// empty, non-nil slice.
func scanRecord(row pgx.Row) (*storage.Record, error) {
	var (
		rec  storage.Record
		kind string
	)
	err := row.Scan(&kind, &rec.Scope.Account, &rec.Scope.Region, &rec.ID, &rec.Parent, &rec.Due, &rec.Created,
		&rec.Rev, &rec.Data, &rec.Sealed)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, storage.ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	rec.Kind = storage.Kind(kind)
	return &rec, nil
}

// scanRecords reads every row and closes rows.
func scanRecords(rows pgx.Rows, sizeHint int) ([]*storage.Record, error) {
	defer rows.Close()
	recs := make([]*storage.Record, 0, min(max(sizeHint, 0), 1024))
	for rows.Next() {
		rec, err := scanRecord(rows)
		if err != nil {
			return nil, err
		}
		recs = append(recs, rec)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	return recs, nil
}

// opErr maps err to the contract's errors and adds the operation's name.
func opErr(ctx context.Context, op string, err error) error {
	var pgErr *pgconn.PgError
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return storage.ErrNotFound
	case errors.As(err, &pgErr) && pgErr.Code == codeUniqueViolation:
		return fmt.Errorf("postgres: %s: %w", op, storage.ErrExists)
	case ctx.Err() != nil:
		return fmt.Errorf("postgres: %s: %w", op, ctx.Err())
	}
	return fmt.Errorf("postgres: %s: %w", op, err)
}

// prefixEnd returns the smallest valid UTF-8 string greater than every
// string that starts with prefix, in byte (= code point) order; ok is false
// when there is none (prefix is all U+10FFFF). Strings in PostgreSQL are
// valid UTF-8, so the bound must be too.
func prefixEnd(prefix string) (end string, ok bool) {
	rs := []rune(prefix)
	for i := len(rs) - 1; i >= 0; i-- {
		if rs[i] == utf8.MaxRune {
			continue
		}
		next := rs[i] + 1
		if next == 0xD800 { // skip the surrogates, which UTF-8 cannot encode
			next = 0xE000
		}
		rs[i] = next
		return string(rs[:i+1]), true
	}
	return "", false
}
