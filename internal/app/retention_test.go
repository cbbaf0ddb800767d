package app

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/keyfort/keyfort/internal/audit"
	"github.com/keyfort/keyfort/internal/storage"
	"github.com/keyfort/keyfort/internal/storage/sqlite"
)

// TestAuditRetentionJob checks the background job that ages out rotated
// audit files between rotations (at most once an hour, and only files past
// the age) and stored events older than 90 days.
func TestAuditRetentionJob(t *testing.T) {
	dir := t.TempDir()
	now := time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	store, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	trail, err := audit.OpenTrail(context.Background(), dir, store, audit.TrailOptions{
		File: audit.FileOptions{Now: clock, MaxAge: 24 * time.Hour}, Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	defer trail.Close()
	// Stored events leave LookupEvents after 90 days.
	ev := func(id string, at time.Time) *storage.EventRecord {
		return &storage.EventRecord{ID: id, Time: at.UnixNano(), Account: "111111111111", Region: "us-east-1",
			Complete: true, JSON: []byte("{}")}
	}
	if err := store.PutEvents(context.Background(), []*storage.EventRecord{
		ev("old", now.Add(-91*24*time.Hour)), ev("kept", now.Add(-89*24*time.Hour))}); err != nil {
		t.Fatal(err)
	}
	rotated := func(at time.Time) string {
		p := filepath.Join(dir, "keyfort-audit-"+at.UTC().Format("20060102T150405.000000000Z")+".jsonl")
		if err := os.WriteFile(p, []byte("{}\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	old, recent := rotated(now.Add(-48*time.Hour)), rotated(now.Add(-time.Hour))
	job := &auditJobs{trail: trail, now: clock, files: true}
	if err := job.RunJobs(context.Background()); err != nil {
		t.Fatal(err)
	}
	left, err := store.LookupEvents(context.Background(), storage.EventQuery{Account: "111111111111",
		Region: "us-east-1", To: now.UnixNano(), Limit: 10})
	if err != nil || len(left) != 1 || left[0].ID != "kept" {
		t.Errorf("stored events after the job = %v, %v; want only the one 89 days old", left, err)
	}
	if _, err := os.Stat(old); !os.IsNotExist(err) {
		t.Errorf("a file rotated 48h ago is still there (%v)", err)
	}
	if _, err := os.Stat(recent); err != nil {
		t.Errorf("a file rotated 1h ago was deleted: %v", err)
	}
	// Within the hour the job does nothing; after it, it runs again.
	older := rotated(now.Add(-72 * time.Hour))
	now = now.Add(30 * time.Minute)
	if err := job.RunJobs(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(older); err != nil {
		t.Errorf("the job ran again within the hour: %v", err)
	}
	now = now.Add(31 * time.Minute)
	if err := job.RunJobs(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(older); !os.IsNotExist(err) {
		t.Errorf("the job did not run after the hour (%v)", err)
	}
}
