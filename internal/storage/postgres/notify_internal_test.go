package postgres

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// TestSyncWithoutDatabase: with no database to send a barrier to or listen
// on, Sync fails when its context ends instead of hanging, and the barrier
// nobody waits for any more is dropped, so the sender stops.
func TestSyncWithoutDatabase(t *testing.T) {
	pool, err := pgxpool.New(context.Background(), "postgres://nobody@127.0.0.1:1/none?connect_timeout=1")
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	n := newNotifier(pool, "keyfort_test", slog.New(slog.DiscardHandler))
	defer n.close()
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	err = n.sync(ctx)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Sync with no database = %v, want the context's deadline", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Sync returned after %v, want about its context's 300 ms", d)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		n.mu.Lock()
		sending, next, waiting := n.sending, n.next, len(n.waiting)
		n.mu.Unlock()
		if !sending && next == nil && waiting == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("10 s after its only caller gave up, the barrier is still wanted: sending %v, next %v, %d waiting", sending, next != nil, waiting)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
