package app

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"
)

type fakeJobs struct{ calls chan struct{} }

func (f *fakeJobs) RunJobs(ctx context.Context) error {
	select {
	case f.calls <- struct{}{}:
	case <-ctx.Done():
	}
	return errors.New("job failed (logged, not fatal)")
}

func TestRunJobsAtStartAndOnTicker(t *testing.T) {
	f := &fakeJobs{calls: make(chan struct{})}
	a := &App{jobs: []jobRunner{f}, every: time.Millisecond, log: slog.New(slog.DiscardHandler), jobsDone: make(chan struct{})}
	ctx, cancel := context.WithCancel(t.Context())
	go a.runJobs(ctx)
	for i := range 3 { // the first call is at start, the next ones on the ticker
		select {
		case <-f.calls:
		case <-time.After(10 * time.Second):
			t.Fatalf("RunJobs call %d did not happen", i+1)
		}
	}
	cancel()
	select {
	case <-a.jobsDone:
	case <-time.After(10 * time.Second):
		t.Fatal("runJobs did not stop after cancel")
	}
}
