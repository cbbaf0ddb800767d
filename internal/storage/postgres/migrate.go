package postgres

import (
	"context"
	"fmt"
	"io/fs"
	"log/slog"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// lockVersion is the schema_migrations row that migrators lock; it is not a
// migration.
const lockVersion = 0

// migration is one embedded migrations/NNNN_name.sql file.
type migration struct {
	version int64
	name    string
	sql     string
}

// loadMigrations reads the embedded migrations in version order.
func loadMigrations() ([]migration, error) {
	entries, err := fs.ReadDir(migrationFS, "migrations")
	if err != nil {
		return nil, err
	}
	var ms []migration
	seen := make(map[int64]string)
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || !strings.HasSuffix(name, ".sql") {
			continue
		}
		num, _, ok := strings.Cut(name, "_")
		v, err := strconv.ParseInt(num, 10, 64)
		if !ok || err != nil || v <= lockVersion {
			return nil, fmt.Errorf("migration %q: name must be NNNN_name.sql with NNNN > 0", name)
		}
		if prev, dup := seen[v]; dup {
			return nil, fmt.Errorf("migrations %q and %q share version %d", prev, name, v)
		}
		seen[v] = name
		body, err := fs.ReadFile(migrationFS, path.Join("migrations", name))
		if err != nil {
			return nil, err
		}
		ms = append(ms, migration{version: v, name: name, sql: string(body)})
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].version < ms[j].version })
	return ms, nil
}

// migrate applies the migrations not yet recorded in schema_migrations.
//
// Several nodes may start at once. Each one makes sure schema_migrations and
// its lock row (version 0) exist, then, in one transaction, locks that row
// with SELECT ... FOR UPDATE, so the others wait; reads what is applied;
// applies and records the rest; and commits. A row lock is used rather than
// LOCK TABLE or an advisory lock because CockroachDB and YugabyteDB support it
// too.
func migrate(ctx context.Context, pool *pgxpool.Pool, logger *slog.Logger) error {
	ms, err := loadMigrations()
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	err = retryDuplicate(ctx, func() error {
		_, err := pool.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
			version    bigint PRIMARY KEY,
			name       text   NOT NULL,
			applied_at bigint NOT NULL
		)`)
		return err
	})
	if err != nil {
		return fmt.Errorf("migrate: schema_migrations: %w", err)
	}
	if _, err := pool.Exec(ctx,
		"INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, 'lock', 0) ON CONFLICT (version) DO NOTHING",
		int64(lockVersion)); err != nil {
		return fmt.Errorf("migrate: lock row: %w", err)
	}
	return pgx.BeginTxFunc(ctx, pool, pgx.TxOptions{IsoLevel: pgx.ReadCommitted}, func(tx pgx.Tx) error {
		var v int64
		if err := tx.QueryRow(ctx, "SELECT version FROM schema_migrations WHERE version = $1 FOR UPDATE",
			int64(lockVersion)).Scan(&v); err != nil {
			return fmt.Errorf("migrate: lock: %w", err)
		}
		rows, err := tx.Query(ctx, "SELECT version FROM schema_migrations WHERE version <> $1", int64(lockVersion))
		if err != nil {
			return fmt.Errorf("migrate: read versions: %w", err)
		}
		applied, err := pgx.CollectRows(rows, pgx.RowTo[int64])
		if err != nil {
			return fmt.Errorf("migrate: read versions: %w", err)
		}
		done := make(map[int64]bool, len(applied))
		for _, v := range applied {
			done[v] = true
		}
		for _, m := range ms {
			if done[m.version] {
				continue
			}
			if _, err := tx.Exec(ctx, m.sql); err != nil {
				return fmt.Errorf("migrate: %s: %w", m.name, err)
			}
			if _, err := tx.Exec(ctx,
				"INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)",
				m.version, m.name, time.Now().Unix()); err != nil {
				return fmt.Errorf("migrate: record %s: %w", m.name, err)
			}
			logger.Info("postgres: applied migration", "migration", m.name)
		}
		return nil
	})
}
