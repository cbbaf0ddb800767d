package postgres_test

import (
	"context"
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/keyfort/keyfort/internal/storage"
)

// BenchmarkPutEvents stores audit events in batches of 50, as the trail's
// shipper does under load. ns/op is per event and mostly the commit's wait
// for the disk; cpu-ns/event is this process's CPU (not the database's).
func BenchmarkPutEvents(b *testing.B) {
	s := openStore(b, newSchema(b))
	ctx := context.Background()
	batch := make([]*storage.EventRecord, 50)
	n := 0
	cpu0 := cpuTime()
	b.ResetTimer()
	for i := 0; i < b.N; i += len(batch) {
		for j := range batch {
			n++
			batch[j] = &storage.EventRecord{ID: fmt.Sprintf("e%09d", n), Time: int64(n), Account: "111111111111", Region: "us-east-1",
				Source: "kms.amazonaws.com", Name: "Encrypt", ReadOnly: true, Username: "root", AccessKeyID: "AKIA",
				Resources: []storage.EventResource{{Type: "AWS::KMS::Key", Name: "arn:aws:kms:us-east-1:111111111111:key/x"}},
				Node:      "n", Complete: true, JSON: make([]byte, 900)}
		}
		if err := s.PutEvents(ctx, batch); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64((cpuTime()-cpu0).Nanoseconds())/float64(b.N), "cpu-ns/event")
}

// cpuTime is the CPU this process used so far (user and system).
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
