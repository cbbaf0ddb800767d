package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/keyfort/keyfort/internal/storage"

	sqlite "modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// columns is the select list scanRecord reads. The IS NOT NULL flags tell an
// empty blob from NULL: the driver returns nil for both.
const columns = "kind, account, region, id, parent, due, created, rev, " +
	"data, data IS NOT NULL, sealed, sealed IS NOT NULL"

// keyColumns is columns without the payloads (ListOptions.KeysOnly); it
// scans with the same scanRecord, leaving Data and Sealed nil.
const keyColumns = "kind, account, region, id, parent, due, created, rev, NULL, 0, NULL, 0"

const (
	sqlGet = "SELECT " + columns + " FROM records WHERE kind = ? AND account = ? AND region = ? AND id = ?"
	// sqlInsert reports a taken identity as 0 rows rather than a constraint
	// error, so the transaction stays usable.
	sqlInsert = "INSERT INTO records (kind, account, region, id, parent, due, created, rev, data, sealed) " +
		"VALUES (?, ?, ?, ?, ?, ?, ?, 1, ?, ?) ON CONFLICT (kind, account, region, id) DO NOTHING"
	sqlUpdate = "UPDATE records SET parent = ?, due = ?, created = ?, rev = rev + 1, data = ?, sealed = ? " +
		"WHERE kind = ? AND account = ? AND region = ? AND id = ? AND rev = ?"
	// sqlUpdateData leaves the indexed columns alone: an update that does
	// not change them then touches no index page.
	sqlUpdateData = "UPDATE records SET rev = rev + 1, data = ?, sealed = ? " +
		"WHERE kind = ? AND account = ? AND region = ? AND id = ? AND rev = ?"
	sqlExists      = "SELECT 1 FROM records WHERE kind = ? AND account = ? AND region = ? AND id = ?"
	sqlDelete      = "DELETE FROM records WHERE kind = ? AND account = ? AND region = ? AND id = ?"
	sqlCount       = "SELECT count(*) FROM records WHERE kind = ? AND account = ? AND region = ?"
	sqlCountParent = sqlCount + " AND parent = ?"
	sqlDue         = "SELECT " + columns + " FROM records WHERE kind = ? AND due <> 0 AND due <= ? " +
		"ORDER BY due, account, region, id LIMIT ?"
	sqlScan = "SELECT " + columns + " FROM records WHERE kind = ? AND (account, region, id) > (?, ?, ?) " +
		"ORDER BY account, region, id LIMIT ?"
)

// preparer is a *sql.DB or a *sql.Conn.
type preparer interface {
	PrepareContext(ctx context.Context, query string) (*sql.Stmt, error)
}

// queries holds the statements of one connection or pool. The fixed ones are
// prepared at open; List's variants are prepared on first use and cached.
type queries struct {
	prep preparer

	get, insert, update, updateData, exists, del, count, countParent, due, ping *sql.Stmt
	// Writer only: transaction control.
	begin, commit, rollback, savepoint, release, rollbackTo *sql.Stmt

	mu   sync.Mutex
	list map[string]*sql.Stmt
}

// prepareQueries prepares the statements on p; writer adds the write and
// transaction-control statements.
func prepareQueries(ctx context.Context, p preparer, writer bool) (*queries, error) {
	q := &queries{prep: p, list: make(map[string]*sql.Stmt)}
	stmts := []struct {
		dst **sql.Stmt
		sql string
	}{
		{&q.get, sqlGet},
		{&q.exists, sqlExists},
		{&q.count, sqlCount},
		{&q.countParent, sqlCountParent},
		{&q.due, sqlDue},
		{&q.ping, "SELECT 1"},
	}
	if writer {
		stmts = append(stmts, []struct {
			dst **sql.Stmt
			sql string
		}{
			{&q.insert, sqlInsert},
			{&q.update, sqlUpdate},
			{&q.updateData, sqlUpdateData},
			{&q.del, sqlDelete},
			{&q.begin, "BEGIN IMMEDIATE"},
			{&q.commit, "COMMIT"},
			{&q.rollback, "ROLLBACK"},
			{&q.savepoint, "SAVEPOINT s"},
			{&q.release, "RELEASE s"},
			{&q.rollbackTo, "ROLLBACK TO s"},
		}...)
	}
	for _, st := range stmts {
		stmt, err := p.PrepareContext(ctx, st.sql)
		if err != nil {
			q.close()
			return nil, fmt.Errorf("prepare %q: %w", st.sql, err)
		}
		*st.dst = stmt
	}
	return q, nil
}

// listStmt returns the prepared statement for query, preparing it once.
func (q *queries) listStmt(ctx context.Context, query string) (*sql.Stmt, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if st, ok := q.list[query]; ok {
		return st, nil
	}
	st, err := q.prep.PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	q.list[query] = st
	return st, nil
}

// close closes every prepared statement.
func (q *queries) close() error {
	var errs []error
	for _, st := range []*sql.Stmt{q.get, q.insert, q.update, q.updateData, q.exists, q.del, q.count, q.countParent,
		q.due, q.ping, q.begin, q.commit, q.rollback, q.savepoint, q.release, q.rollbackTo} {
		if st != nil {
			errs = append(errs, st.Close())
		}
	}
	q.mu.Lock()
	for _, st := range q.list {
		errs = append(errs, st.Close())
	}
	clear(q.list)
	q.mu.Unlock()
	return errors.Join(errs...)
}

// reader implements storage.Reader on a statement set: on the reader pool
// inside a View transaction (tx set), or on the writer connection (detach
// set).
type reader struct {
	q  *queries
	tx *sql.Tx
	// detach runs statements without the caller's ctx once ctx has been
	// checked: on the writer connection an interrupted statement could roll
	// back the whole batch, other callers' work included.
	detach bool
}

var _ storage.Reader = (*reader)(nil)

// stmt binds st to the View transaction, if any, and picks the context the
// statement runs with.
func (r *reader) stmt(ctx context.Context, st *sql.Stmt) (*sql.Stmt, context.Context, error) {
	if err := ctx.Err(); err != nil {
		return nil, nil, err
	}
	if r.detach {
		return st, context.WithoutCancel(ctx), nil
	}
	if r.tx != nil {
		return r.tx.StmtContext(ctx, st), ctx, nil
	}
	return st, ctx, nil
}

// Get implements [storage.Reader.Get].
func (r *reader) Get(ctx context.Context, kind storage.Kind, scope storage.Scope, id string) (*storage.Record, error) {
	st, qctx, err := r.stmt(ctx, r.q.get)
	if err != nil {
		return nil, opErr(ctx, "get", err)
	}
	rec, err := scanRecord(st.QueryRowContext(qctx, string(kind), scope.Account, scope.Region, id))
	if err != nil {
		return nil, opErr(ctx, "get", err)
	}
	return rec, nil
}

// List implements [storage.Reader.List]. A Limit of 0 or less means no limit.
func (r *reader) List(ctx context.Context, kind storage.Kind, scope storage.Scope, opts storage.ListOptions) ([]*storage.Record, error) {
	var b strings.Builder
	cols := columns
	if opts.KeysOnly {
		cols = keyColumns
	}
	b.WriteString("SELECT " + cols + " FROM records WHERE kind = ? AND account = ? AND region = ?")
	args := []any{string(kind), scope.Account, scope.Region}
	if opts.Parent != "" {
		b.WriteString(" AND parent = ?")
		args = append(args, opts.Parent)
	}
	if opts.Prefix != "" {
		b.WriteString(" AND id >= ?")
		args = append(args, opts.Prefix)
		if end, ok := prefixEnd(opts.Prefix); ok {
			b.WriteString(" AND id < ?")
			args = append(args, end)
		}
	}
	if opts.After != "" {
		b.WriteString(" AND id > ?")
		args = append(args, opts.After)
	}
	b.WriteString(" ORDER BY id LIMIT ?")
	limit := int64(-1)
	if opts.Limit > 0 {
		limit = int64(opts.Limit)
	}
	args = append(args, limit)

	if err := ctx.Err(); err != nil {
		return nil, opErr(ctx, "list", err)
	}
	prepared, err := r.q.listStmt(context.WithoutCancel(ctx), b.String())
	if err != nil {
		return nil, opErr(ctx, "list", err)
	}
	st, qctx, err := r.stmt(ctx, prepared)
	if err != nil {
		return nil, opErr(ctx, "list", err)
	}
	rows, err := st.QueryContext(qctx, args...)
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
	prepared, args := r.q.count, []any{string(kind), scope.Account, scope.Region}
	if parent != "" {
		prepared, args = r.q.countParent, append(args, parent)
	}
	st, qctx, err := r.stmt(ctx, prepared)
	if err != nil {
		return 0, opErr(ctx, "count", err)
	}
	var n int
	if err := st.QueryRowContext(qctx, args...).Scan(&n); err != nil {
		return 0, opErr(ctx, "count", err)
	}
	return n, nil
}

// Due implements [storage.Reader.Due]. A limit of 0 or less means no limit.
// Inside Update it claims what it returns as [storage.Reader.Due] states
// without any locking: the single writer runs one fn at a time, so another
// Update's Due runs after this fn returned and sees its changes (in the same
// batch transaction, or after its commit) or, if it failed, none of them.
func (r *reader) Due(ctx context.Context, kind storage.Kind, before int64, limit int) ([]*storage.Record, error) {
	st, qctx, err := r.stmt(ctx, r.q.due)
	if err != nil {
		return nil, opErr(ctx, "due", err)
	}
	lim := int64(-1)
	if limit > 0 {
		lim = int64(limit)
	}
	rows, err := st.QueryContext(qctx, string(kind), before, lim)
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
	prepared, err := r.q.listStmt(context.WithoutCancel(ctx), sqlScan)
	if err != nil {
		return nil, opErr(ctx, "scan", err)
	}
	st, qctx, err := r.stmt(ctx, prepared)
	if err != nil {
		return nil, opErr(ctx, "scan", err)
	}
	lim := int64(-1)
	if limit > 0 {
		lim = int64(limit)
	}
	rows, err := st.QueryContext(qctx, string(kind), after.Scope.Account, after.Scope.Region, after.ID, lim)
	if err != nil {
		return nil, opErr(ctx, "scan", err)
	}
	recs, err := scanRecords(rows, limit)
	if err != nil {
		return nil, opErr(ctx, "scan", err)
	}
	return recs, nil
}

// writeTx implements storage.Tx on the writer connection, directly in the
// batch's transaction or inside the caller's savepoint.
type writeTx struct {
	reader
	done    atomic.Bool // set when fn has returned; tx must not be used after
	changed []change    // records this fn inserted, updated or deleted
	// writeFailed is set when a write statement returned an error: it may
	// have left partial changes that only a rollback undoes.
	writeFailed bool
	// read holds the indexed columns of the records this fn read or wrote,
	// so that Update can leave them alone when they do not change.
	read []indexed
}

// indexed is a record's identity, revision and indexed columns.
type indexed struct {
	kind           storage.Kind
	scope          storage.Scope
	id, parent     string
	rev, due, crea int64
}

// known returns the remembered columns of the record, or nil.
func (tx *writeTx) known(kind storage.Kind, scope storage.Scope, id string) *indexed {
	for i := range tx.read {
		if r := &tx.read[i]; r.kind == kind && r.scope == scope && r.id == id {
			return r
		}
	}
	return nil
}

// remember notes the indexed columns of rec as they now are in the database.
func (tx *writeTx) remember(rec *storage.Record) {
	x := indexed{rec.Kind, rec.Scope, rec.ID, rec.Parent, rec.Rev, rec.Due, rec.Created}
	if r := tx.known(rec.Kind, rec.Scope, rec.ID); r != nil {
		*r = x
		return
	}
	if len(tx.read) < 8 {
		tx.read = append(tx.read, x)
	}
}

// change names one record a transaction wrote, for ChangeNotifier.
type change struct {
	kind  storage.Kind
	scope storage.Scope
	id    string
}

var _ storage.Tx = (*writeTx)(nil)

// errTxDone is returned when a Tx is used after its fn returned.
var errTxDone = errors.New("sqlite: transaction used after its function returned")

// Insert implements [storage.Tx.Insert].
func (tx *writeTx) Insert(ctx context.Context, rec *storage.Record) error {
	if tx.done.Load() {
		return errTxDone
	}
	if err := ctx.Err(); err != nil {
		return opErr(ctx, "insert", err)
	}
	res, err := tx.q.insert.ExecContext(context.WithoutCancel(ctx),
		string(rec.Kind), rec.Scope.Account, rec.Scope.Region, rec.ID, rec.Parent, rec.Due, rec.Created,
		blobArg(rec.Data), blobArg(rec.Sealed))
	if err != nil {
		tx.writeFailed = true
		return opErr(ctx, "insert", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		tx.writeFailed = true
		return opErr(ctx, "insert", err)
	}
	if n == 0 {
		return storage.ErrExists
	}
	rec.Rev = 1
	tx.remember(rec)
	tx.changed = append(tx.changed, change{rec.Kind, rec.Scope, rec.ID})
	return nil
}

// Update implements [storage.Tx.Update].
func (tx *writeTx) Update(ctx context.Context, rec *storage.Record) error {
	if tx.done.Load() {
		return errTxDone
	}
	if err := ctx.Err(); err != nil {
		return opErr(ctx, "update", err)
	}
	bg := context.WithoutCancel(ctx)
	var (
		res sql.Result
		err error
	)
	if k := tx.known(rec.Kind, rec.Scope, rec.ID); k != nil && k.rev == rec.Rev &&
		k.parent == rec.Parent && k.due == rec.Due && k.crea == rec.Created {
		res, err = tx.q.updateData.ExecContext(bg, blobArg(rec.Data), blobArg(rec.Sealed),
			string(rec.Kind), rec.Scope.Account, rec.Scope.Region, rec.ID, rec.Rev)
	} else {
		res, err = tx.q.update.ExecContext(bg,
			rec.Parent, rec.Due, rec.Created, blobArg(rec.Data), blobArg(rec.Sealed),
			string(rec.Kind), rec.Scope.Account, rec.Scope.Region, rec.ID, rec.Rev)
	}
	if err != nil {
		tx.writeFailed = true
		return opErr(ctx, "update", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		tx.writeFailed = true
		return opErr(ctx, "update", err)
	}
	if n == 0 {
		var one int
		err := tx.q.exists.QueryRowContext(bg, string(rec.Kind), rec.Scope.Account, rec.Scope.Region, rec.ID).Scan(&one)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			return storage.ErrNotFound
		case err != nil:
			return opErr(ctx, "update", err)
		}
		return storage.ErrConflict
	}
	rec.Rev++
	tx.remember(rec)
	tx.changed = append(tx.changed, change{rec.Kind, rec.Scope, rec.ID})
	return nil
}

// Delete implements [storage.Tx.Delete].
func (tx *writeTx) Delete(ctx context.Context, kind storage.Kind, scope storage.Scope, id string) error {
	if tx.done.Load() {
		return errTxDone
	}
	if err := ctx.Err(); err != nil {
		return opErr(ctx, "delete", err)
	}
	res, err := tx.q.del.ExecContext(context.WithoutCancel(ctx), string(kind), scope.Account, scope.Region, id)
	if err != nil {
		tx.writeFailed = true
		return opErr(ctx, "delete", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		tx.writeFailed = true
		return opErr(ctx, "delete", err)
	}
	if n == 0 {
		return storage.ErrNotFound
	}
	tx.changed = append(tx.changed, change{kind, scope, id})
	return nil
}

// Get, List, Count and Due refuse to run after fn returned.

// Get implements [storage.Reader.Get].
func (tx *writeTx) Get(ctx context.Context, kind storage.Kind, scope storage.Scope, id string) (*storage.Record, error) {
	if tx.done.Load() {
		return nil, errTxDone
	}
	rec, err := tx.reader.Get(ctx, kind, scope, id)
	if err == nil {
		tx.remember(rec)
	}
	return rec, err
}

// List implements [storage.Reader.List].
func (tx *writeTx) List(ctx context.Context, kind storage.Kind, scope storage.Scope, opts storage.ListOptions) ([]*storage.Record, error) {
	if tx.done.Load() {
		return nil, errTxDone
	}
	return tx.reader.List(ctx, kind, scope, opts)
}

// Count implements [storage.Reader.Count].
func (tx *writeTx) Count(ctx context.Context, kind storage.Kind, scope storage.Scope, parent string) (int, error) {
	if tx.done.Load() {
		return 0, errTxDone
	}
	return tx.reader.Count(ctx, kind, scope, parent)
}

// Due implements [storage.Reader.Due].
func (tx *writeTx) Due(ctx context.Context, kind storage.Kind, before int64, limit int) ([]*storage.Record, error) {
	if tx.done.Load() {
		return nil, errTxDone
	}
	return tx.reader.Due(ctx, kind, before, limit)
}

// Scan implements [storage.Reader.Scan].
func (tx *writeTx) Scan(ctx context.Context, kind storage.Kind, after storage.Position, limit int) ([]*storage.Record, error) {
	if tx.done.Load() {
		return nil, errTxDone
	}
	return tx.reader.Scan(ctx, kind, after, limit)
}

// blobArg binds nil as NULL and any other slice, empty included, as a blob.
func blobArg(b []byte) any {
	if b == nil {
		return nil
	}
	return b
}

// rowScanner is a *sql.Row or *sql.Rows.
type rowScanner interface {
	Scan(dest ...any) error
}

// scanRecord reads one row of columns. sql.ErrNoRows becomes
// storage.ErrNotFound.
func scanRecord(sc rowScanner) (*storage.Record, error) {
	var (
		rec              storage.Record
		kind             string
		hasData, hasSeal bool
	)
	err := sc.Scan(&kind, &rec.Scope.Account, &rec.Scope.Region, &rec.ID, &rec.Parent, &rec.Due, &rec.Created,
		&rec.Rev, &rec.Data, &hasData, &rec.Sealed, &hasSeal)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, storage.ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	rec.Kind = storage.Kind(kind)
	if hasData && rec.Data == nil {
		rec.Data = []byte{}
	}
	if hasSeal && rec.Sealed == nil {
		rec.Sealed = []byte{}
	}
	return &rec, nil
}

// scanRecords reads every row and closes rows.
func scanRecords(rows *sql.Rows, sizeHint int) ([]*storage.Record, error) {
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
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return storage.ErrNotFound
	case isConstraint(err):
		return fmt.Errorf("sqlite: %s: %w", op, storage.ErrExists)
	case ctx.Err() != nil:
		return fmt.Errorf("sqlite: %s: %w", op, ctx.Err())
	}
	return fmt.Errorf("sqlite: %s: %w", op, err)
}

// isConstraint reports whether err is an SQLite constraint violation.
func isConstraint(err error) bool {
	var se *sqlite.Error
	return errors.As(err, &se) && se.Code()&0xff == sqlite3.SQLITE_CONSTRAINT
}

// prefixEnd returns the smallest string greater than every string that
// starts with prefix, in byte order; ok is false when there is none (prefix
// is all 0xff bytes).
func prefixEnd(prefix string) (end string, ok bool) {
	b := []byte(prefix)
	for i := len(b) - 1; i >= 0; i-- {
		if b[i] < 0xff {
			b[i]++
			return string(b[:i+1]), true
		}
	}
	return "", false
}
