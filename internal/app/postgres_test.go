package app

import (
	"context"
	"log/slog"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/keyfort/keyfort/internal/storage"
)

// TestOpenPostgresReadThrough: with --store-read-through the store the app
// serves from has no change notifications (so the services keep no caches
// and the server does not Sync), yet still its trail and compaction;
// without it, the store notifies.
func TestOpenPostgresReadThrough(t *testing.T) {
	dsn := os.Getenv("KEYFORT_TEST_POSTGRES")
	if dsn == "" {
		t.Skip("KEYFORT_TEST_POSTGRES is not set")
	}
	schema := "apptest_readthrough_" + strconv.FormatInt(time.Now().UnixNano(), 36)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, dsn)
		if err != nil {
			t.Logf("drop schema %s: %v", schema, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "DROP SCHEMA IF EXISTS "+pgx.Identifier{schema}.Sanitize()+" CASCADE"); err != nil {
			t.Logf("drop schema %s: %v", schema, err)
		}
	})
	log := slog.New(slog.DiscardHandler)
	for _, readThrough := range []bool{false, true} {
		s, err := openPostgres(t.Context(), dsn, schema, readThrough, log)
		if err != nil {
			t.Fatal(err)
		}
		_, notifies := s.(storage.ChangeNotifier)
		_, trail := s.(storage.Trail)
		_, compacts := s.(storage.Compactor)
		if notifies == readThrough || !trail || !compacts {
			t.Errorf("read-through %v: ChangeNotifier %v, Trail %v, Compactor %v; want ChangeNotifier %v and the others true",
				readThrough, notifies, trail, compacts, !readThrough)
		}
		if syncOf(s) == nil && !readThrough {
			t.Error("no Sync for a store that notifies")
		}
		if syncOf(s) != nil && readThrough {
			t.Error("a Sync for a read-through store")
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
}
