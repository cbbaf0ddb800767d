package app

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/keyfort/keyfort/internal/storage"
	"github.com/keyfort/keyfort/internal/storage/postgres"
)

// openPostgres opens the PostgreSQL store; schema, if not empty, holds the
// tables (it is created if missing).
func openPostgres(ctx context.Context, dsn, schema string, log *slog.Logger) (storage.Store, error) {
	s, err := postgres.Open(ctx, dsn, postgres.Options{Logger: log.With("store", "postgres"), Schema: schema})
	if err != nil {
		return nil, fmt.Errorf("app: open store: %w", err)
	}
	return s, nil
}
