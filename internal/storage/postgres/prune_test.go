package postgres_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/keyfort/keyfort/internal/storage"
)

// TestPruneEventsSkipsRowsAnotherNodeHolds holds one old event locked in
// another transaction, as a second node pruning at the same time does, and
// checks that PruneEvents deletes the others without waiting for it: two
// nodes deleting the same rows in their own orders deadlocked.
func TestPruneEventsSkipsRowsAnotherNodeHolds(t *testing.T) {
	schema := newSchema(t)
	s := openStore(t, schema)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var events []*storage.EventRecord
	for i := range 10 {
		events = append(events, &storage.EventRecord{ID: fmt.Sprintf("e%d", i), Time: int64(100 + i), Account: scope.Account, Region: scope.Region,
			Source: "kms.amazonaws.com", Name: "CreateKey", Node: "node-1", Complete: true, JSON: []byte(`{}`)})
	}
	if err := s.PutEvents(ctx, events); err != nil {
		t.Fatalf("PutEvents: %v", err)
	}

	cfg, err := pgx.ParseConfig(dsn(t))
	if err != nil {
		t.Fatal(err)
	}
	cfg.RuntimeParams["search_path"] = pgx.Identifier{schema}.Sanitize()
	other, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close(ctx)
	tx, err := other.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck // the test's end
	if _, err := tx.Exec(ctx, "SELECT id FROM audit_events WHERE id = 'e3' FOR UPDATE"); err != nil {
		t.Fatalf("lock e3: %v", err)
	}

	pctx, pcancel := context.WithTimeout(ctx, 5*time.Second)
	defer pcancel()
	start := time.Now()
	n, err := s.PruneEvents(pctx, 1000)
	if err != nil || n != 9 {
		t.Fatalf("PruneEvents with e3 held by another transaction = %d, %v after %s; want 9, nil at once", n, err, time.Since(start).Round(time.Millisecond))
	}
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	if n, err := s.PruneEvents(ctx, 1000); err != nil || n != 1 {
		t.Fatalf("PruneEvents once e3 is free = %d, %v; want 1, nil", n, err)
	}
}
