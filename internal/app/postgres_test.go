package app

import (
	"log/slog"
	"testing"

	"github.com/keyfort/keyfort/internal/storage"
	"github.com/keyfort/keyfort/internal/storage/postgres/pgtest"
)

// TestOpenPostgresReadThrough: with --store-read-through the store the app
// serves from has no change notifications (so the services keep no caches
// and the server does not Sync), yet still its trail and compaction;
// without it, the store notifies.
func TestOpenPostgresReadThrough(t *testing.T) {
	dsn := pgtest.DSN(t)
	schema := pgtest.Schema(t, dsn, "apptest_readthrough_")
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
