package app

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/keyfort/keyfort/internal/storage"
	"github.com/keyfort/keyfort/internal/storage/postgres"
)

// openPostgres opens the PostgreSQL store; schema, if not empty, holds the
// tables (it is created if missing). With readThrough, or on a database
// without LISTEN/NOTIFY, the store is returned without its change
// notifications (readThroughStore), so that the services keep no caches and
// the server does not Sync.
func openPostgres(ctx context.Context, dsn, schema string, readThrough bool, log *slog.Logger) (storage.Store, error) {
	s, err := postgres.Open(ctx, dsn, postgres.Options{Logger: log.With("store", "postgres"), Schema: schema, NoNotify: readThrough})
	if err != nil {
		return nil, fmt.Errorf("app: open store: %w", err)
	}
	if !s.Notifies() {
		return readThroughStore{Store: s, Trail: s, Compactor: s}, nil
	}
	return s, nil
}

// readThroughStore is a PostgreSQL store without storage.ChangeNotifier:
// what it offers besides are the trail and compaction.
type readThroughStore struct {
	storage.Store
	storage.Trail
	storage.Compactor
}
