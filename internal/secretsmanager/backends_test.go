package secretsmanager

import (
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/keyfort/keyfort/internal/envelope"
	"github.com/keyfort/keyfort/internal/kms"
	"github.com/keyfort/keyfort/internal/secretsmanager/smapi"
	"github.com/keyfort/keyfort/internal/storage"
	"github.com/keyfort/keyfort/internal/storage/postgres"
	"github.com/keyfort/keyfort/internal/storage/postgres/pgtest"
	"github.com/keyfort/keyfort/internal/storage/sqlite"
)

// openBackends returns the stores to run backend tests on: SQLite always,
// PostgreSQL when KEYFORT_TEST_POSTGRES is set (in a schema of its own,
// dropped afterwards).
func openBackends(t *testing.T) map[string]storage.Store {
	t.Helper()
	ctx := t.Context()
	out := map[string]storage.Store{}
	lite, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "db"), sqlite.Options{})
	if err != nil {
		t.Fatalf("sqlite.Open: %v", err)
	}
	t.Cleanup(func() { _ = lite.Close() })
	out["sqlite"] = lite
	dsn := os.Getenv("KEYFORT_TEST_POSTGRES")
	if dsn == "" {
		t.Log("KEYFORT_TEST_POSTGRES is not set: PostgreSQL skipped")
		return out
	}
	schema := pgtest.Schema(t, dsn, "smtest_")
	pg, err := postgres.Open(ctx, dsn, postgres.Options{Schema: schema})
	if err != nil {
		t.Fatalf("postgres.Open: %v", err)
	}
	t.Cleanup(func() { _ = pg.Close() }) // before the schema's drop
	out["postgres"] = pg
	return out
}

func envOn(t *testing.T, store storage.Store) *env {
	t.Helper()
	root, err := envelope.GenerateRootKey(rand.Reader)
	if err != nil {
		t.Fatalf("GenerateRootKey: %v", err)
	}
	c := &clock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
	k := kms.New(kms.Config{Store: store, Sealer: envelope.NewSealer(nil, root), Now: c.Now})
	return &env{
		sm: New(Config{Store: store, KMS: k, Now: c.Now}), kms: k, clock: c,
		ctx: asCaller(t.Context(), testAccount, testRegion),
	}
}

func TestBackendsConcurrentWrites(t *testing.T) {
	for name, store := range openBackends(t) {
		t.Run(name, func(t *testing.T) {
			e := envOn(t, store)
			// Concurrent creates of one name: exactly one wins.
			const n = 8
			var wg sync.WaitGroup
			errs := make([]error, n)
			for i := range n {
				wg.Add(1)
				go func() {
					defer wg.Done()
					_, errs[i] = e.sm.CreateSecret(e.ctx, &smapi.CreateSecretInput{Name: str("race"), SecretString: secretString(fmt.Sprint("v", i))})
				}()
			}
			wg.Wait()
			wins := 0
			for _, err := range errs {
				if err == nil {
					wins++
				} else {
					wantCode(t, err, codeExists, "")
				}
			}
			if wins != 1 {
				t.Fatalf("concurrent CreateSecret: %d succeeded, want 1", wins)
			}
			// Concurrent puts: all succeed, exactly one AWSCURRENT and one AWSPREVIOUS.
			for i := range n {
				wg.Add(1)
				go func() {
					defer wg.Done()
					_, errs[i] = e.sm.PutSecretValue(e.ctx, &smapi.PutSecretValueInput{SecretId: str("race"), SecretString: secretString(fmt.Sprint("p", i))})
				}()
			}
			wg.Wait()
			for i, err := range errs {
				mustOK(t, err, fmt.Sprint("PutSecretValue ", i))
			}
			lv, err := e.sm.ListSecretVersionIds(e.ctx, &smapi.ListSecretVersionIdsInput{SecretId: str("race"), IncludeDeprecated: ptr(true)})
			mustOK(t, err, "ListSecretVersionIds")
			if len(lv.Versions) != n+1 {
				t.Fatalf("versions = %d, want %d", len(lv.Versions), n+1)
			}
			count := map[string]int{}
			for _, v := range lv.Versions {
				for _, s := range v.VersionStages {
					count[s]++
				}
			}
			if count["AWSCURRENT"] != 1 || count["AWSPREVIOUS"] != 1 {
				t.Fatalf("label counts = %v, want one AWSCURRENT and one AWSPREVIOUS", count)
			}
			// Lifecycle through the Due column.
			_, err = e.sm.DeleteSecret(e.ctx, &smapi.DeleteSecretInput{SecretId: str("race"), RecoveryWindowInDays: ptr(int64(7))})
			mustOK(t, err, "DeleteSecret")
			e.clock.Add(7 * day)
			mustOK(t, e.sm.RunJobs(e.ctx), "RunJobs")
			_, err = e.sm.DescribeSecret(e.ctx, &smapi.DescribeSecretInput{SecretId: str("race")})
			wantCode(t, err, codeNotFound, "")
		})
	}
}
