package app

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/keyfort/keyfort/internal/audit"
)

// TestAuditRetentionJob checks the background job that ages out rotated
// audit files between rotations: at most once an hour, and only files past
// the age.
func TestAuditRetentionJob(t *testing.T) {
	dir := t.TempDir()
	now := time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	sink, err := audit.NewFileSink(dir, audit.FileOptions{Now: clock, MaxAge: 24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer sink.Close()
	rotated := func(at time.Time) string {
		p := filepath.Join(dir, "keyfort-audit-"+at.UTC().Format("20060102T150405.000000000Z")+".jsonl")
		if err := os.WriteFile(p, []byte("{}\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	old, recent := rotated(now.Add(-48*time.Hour)), rotated(now.Add(-time.Hour))
	job := &auditRetention{sink: sink, now: clock}
	if err := job.RunJobs(context.Background()); err != nil {
		t.Fatal(err)
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
