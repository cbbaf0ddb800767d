// Package storage defines Keyfort's narrow, untrusted storage contract.
//
// Storage keeps records: opaque bytes plus a few plaintext index columns.
// Key material, secret values and private keys arrive already sealed by the
// envelope package; storage never sees a plaintext and never validates
// business rules (those live in the services, so they are written once for
// every backend). Implementations live in subpackages named for their
// technology (sqlite, postgres); storagetest holds the conformance suite that
// every implementation runs.
package storage

import (
	"context"
	"errors"
)

// Sentinel errors. Implementations return exactly these (possibly wrapped);
// callers match them with errors.Is.
var (
	// ErrNotFound means the record does not exist.
	ErrNotFound = errors.New("storage: record not found")
	// ErrExists means a record with the same identity already exists.
	ErrExists = errors.New("storage: record already exists")
	// ErrConflict means the record changed since it was read (its Rev
	// differs), or a concurrent transaction won; the caller may retry.
	ErrConflict = errors.New("storage: conflicting update")
	// ErrClosed means the store has been closed.
	ErrClosed = errors.New("storage: store closed")
)

// Kind names a record type, e.g. "kms.key", "kms.alias", "kms.material",
// "sm.secret", "sm.version". Kinds are chosen by the services.
type Kind string

// Scope is the account and region every resource belongs to.
type Scope struct {
	Account string
	Region  string
}

// Record is one stored row.
//
// The identity of a record is (Kind, Scope, ID). Parent and Due are indexed so
// that services can list children of a resource (aliases of a key, versions
// of a secret) and find work that is due (deletion windows, rotations).
type Record struct {
	Kind  Kind
	Scope Scope
	// ID is unique within (Kind, Scope). At most 1024 bytes.
	ID string
	// Parent is an optional indexed reference, e.g. the key id an alias
	// points at. Empty means none.
	Parent string
	// Due is an optional indexed time in Unix seconds at which background
	// work is due for the record (0 means none).
	Due int64
	// Created is the creation time in Unix nanoseconds, set by the caller.
	Created int64
	// Rev is the record's revision. Insert stores Rev 1; Update requires the
	// Rev the caller read and stores Rev+1. It is how read-modify-write
	// detects a lost update on every backend.
	Rev int64
	// Data holds the record's metadata, readable by anyone with the file
	// (JSON chosen by the service). Never secret.
	Data []byte
	// Sealed holds bytes sealed by the envelope package (may be nil).
	Sealed []byte
}

// ListOptions selects a page of records of one kind in one scope, ordered by
// ID ascending.
type ListOptions struct {
	// Parent, if not empty, returns only records with this Parent.
	Parent string
	// Prefix, if not empty, returns only records whose ID starts with it.
	Prefix string
	// After, if not empty, returns only records whose ID sorts after it
	// (byte order). Services build their page tokens on it.
	After string
	// Limit is the maximum number of records (0 means no limit).
	Limit int
	// KeysOnly returns records without Data and Sealed (both nil): for
	// listings that need only ids, parents and revisions, so that a page does
	// not read every record's payload.
	KeysOnly bool
}

// Reader is the read half of a transaction.
type Reader interface {
	// Get returns the record, or ErrNotFound.
	Get(ctx context.Context, kind Kind, scope Scope, id string) (*Record, error)
	// List returns records of kind in scope matching opts, ordered by ID.
	List(ctx context.Context, kind Kind, scope Scope, opts ListOptions) ([]*Record, error)
	// Count returns the number of records of kind in scope with the given
	// parent (all records of the kind in scope when parent is empty).
	Count(ctx context.Context, kind Kind, scope Scope, parent string) (int, error)
	// Due returns up to limit records of kind, in any scope, whose Due is
	// not 0 and is <= before, ordered by Due (0 limit means no limit).
	//
	// Inside [Store.Update], Due claims the records it returns, so that
	// several nodes (or goroutines) polling the same store for due work
	// each do different work:
	//   - A record returned to one Update's fn is not returned by Due to
	//     another Update while that fn runs and its transaction may still
	//     commit: the other Update's Due skips it (PostgreSQL: SELECT ...
	//     FOR UPDATE SKIP LOCKED, until the transaction ends) or returns it
	//     only with this fn's changes applied (SQLite: one writer; fns run
	//     one after another, those of one batch in one transaction).
	//   - If fn cleared the record's Due, moved it past before, or deleted
	//     the record, and Update returned nil, the work is done once: no
	//     Due up to before returns the record again.
	//   - If fn returned an error, the commit failed or the process died
	//     before it, nothing of the claim remains: the record is due again,
	//     as it was, for the next Update.
	// A job that does its work inside the claiming Update is therefore
	// done by exactly one node. Work done outside a transaction (calls to
	// other systems) cannot hold such a claim; it takes a lease instead
	// (package job: the claim moves Due to the end of the lease and commits,
	// and the result is recorded only if the claim is still the caller's).
	//
	// Inside [Store.View], Due is a plain read and claims nothing: a
	// concurrent Update may claim the same records.
	Due(ctx context.Context, kind Kind, before int64, limit int) ([]*Record, error)
	// Scan returns up to limit records of kind in every scope, ordered by
	// (account, region, id), starting after the record named by after (the
	// zero Position starts at the beginning; 0 limit means no limit).
	// Maintenance passes over all data use it (keyfort rootkey rotate).
	Scan(ctx context.Context, kind Kind, after Position, limit int) ([]*Record, error)
}

// Position names a record within one kind, for Scan.
type Position struct {
	Scope Scope
	ID    string
}

// PositionOf returns the position of r, to continue a Scan after it.
func PositionOf(r *Record) Position { return Position{Scope: r.Scope, ID: r.ID} }

// Exporter is implemented by the Readers of every store, so that a store
// can be copied whole (keyfort migrate): Kinds names every kind that has
// records, Scan visits each, and ScanEvents the audit trail, all in the
// Reader's one snapshot. Kinds are found in the data rather than listed by
// the copier, so a kind a service adds is copied without anyone updating a
// list.
type Exporter interface {
	// Kinds returns every kind that has at least one record, in byte
	// order, with its number of records (in every scope).
	Kinds(ctx context.Context) ([]KindCount, error)
	// CountEvents returns the number of audit events (storage.Trail).
	CountEvents(ctx context.Context) (int, error)
	// ScanEvents returns up to limit audit events ordered by ID, after the
	// event whose ID is after ("" starts at the first; 0 limit means no
	// limit).
	ScanEvents(ctx context.Context, after string, limit int) ([]*EventRecord, error)
}

// BulkWriter is implemented by the Txs of both backends, so that a copy of
// a whole store (keyfort migrate) sends its rows in batches where every
// statement is a round trip to a server (PostgreSQL: one per batch).
type BulkWriter interface {
	// InsertAll inserts recs as Insert inserts each (Rev 1) and appends
	// events as AppendEvent appends each. It returns ErrExists if a
	// record's identity or an event's ID is taken; the transaction must
	// then be abandoned.
	InsertAll(ctx context.Context, recs []*Record, events []*EventRecord) error
}

// KindCount is one kind of Exporter.Kinds and how many records it has.
type KindCount struct {
	Kind    Kind
	Records int
}

// Tx is a read-write transaction.
type Tx interface {
	Reader
	// Insert stores a new record with Rev 1 (the record's Rev is set to 1).
	// Returns ErrExists if (Kind, Scope, ID) is taken.
	Insert(ctx context.Context, r *Record) error
	// Update replaces the record whose Rev equals r.Rev and sets r.Rev to the
	// new revision. Returns ErrNotFound if the record does not exist and
	// ErrConflict if its Rev differs.
	Update(ctx context.Context, r *Record) error
	// Delete removes the record. Returns ErrNotFound if it does not exist.
	Delete(ctx context.Context, kind Kind, scope Scope, id string) error
	// AppendEvent stores an audit event in the transaction, so that it
	// commits with the change or not at all. Returns ErrExists if its ID
	// is taken.
	AppendEvent(ctx context.Context, e *EventRecord) error
}

// SharedGetter is implemented by transactions whose Get locks the record it
// reads against every other transaction (PostgreSQL's SELECT ... FOR
// UPDATE). GetShared reads the record with a shared lock instead, held until
// the transaction ends: any number of transactions hold it at once, and a
// transaction that changes the record waits until they have all ended. The
// root key marker is read so by every transaction that seals a record, so
// that `keyfort rootkey rotate`, which changes the marker, waits for those
// sealing under the old key. A store without it has one writer at a time
// (SQLite), where Get does the same.
type SharedGetter interface {
	GetShared(ctx context.Context, kind Kind, scope Scope, id string) (*Record, error)
}

// Store is a transactional record store.
//
// Update runs fn in a read-write transaction and commits it durably before
// returning nil: once Update returns nil, the change survives kill -9 and
// power loss. If fn returns an error the transaction's changes are discarded
// and that error is returned unchanged. Implementations may run fn more than
// once (on ErrConflict from concurrent writers), so fn must have no side
// effects outside tx, and may batch several callers' transactions into one
// commit as long as each fn's changes are applied or discarded as a unit.
type Store interface {
	// Update runs fn in a read-write transaction; see the type's comment.
	Update(ctx context.Context, fn func(tx Tx) error) error
	// View runs fn in a read-only transaction with a consistent snapshot.
	View(ctx context.Context, fn func(r Reader) error) error
	// Get reads one record outside an explicit transaction (the hot path).
	// Returns ErrNotFound if it does not exist.
	Get(ctx context.Context, kind Kind, scope Scope, id string) (*Record, error)
	// Ping reports whether the store is usable (used by GET /health).
	Ping(ctx context.Context) error
	// Close releases the store. Calls after Close return ErrClosed.
	Close() error
}

// Compactor is implemented by stores that can rewrite their files so that
// no bytes of deleted or overwritten records remain in them (free pages, old
// row versions, the write-ahead log). `keyfort rootkey rotate` calls it so
// that nothing sealed under the old root key is left behind.
type Compactor interface {
	Compact(ctx context.Context) error
}

// ChangeNotifier is implemented by stores that tell this process about
// every committed change, its own and (on a shared database) other nodes'.
// Services use it to keep caches and list indexes that cannot serve stale
// state.
//
// Subscribe registers fn, which is called once for every record a commit
// inserted, updated or deleted: for this process's own commits after the
// commit and before the committing Update returns; for other nodes' commits
// when their notification arrives. A call with an empty kind means that
// anything may have changed (notifications were lost, e.g. with a
// connection): subscribers drop everything they keep.
//
// Sync returns once every change committed before the call, by any node,
// has been passed to the subscribers. A request calls it before it reads
// through caches, so that it sees every write any node answered before it
// began. On a store whose every change is made by this process (SQLite) it
// returns at once.
type ChangeNotifier interface {
	Subscribe(fn func(kind Kind, scope Scope, id string))
	Sync(ctx context.Context) error
}
