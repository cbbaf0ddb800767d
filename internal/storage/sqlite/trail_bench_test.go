package sqlite

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/keyfort/keyfort/internal/storage"
)

// BenchmarkPutEvents measures what storing one audit event costs the
// embedded store (batches of 200); the JSON is the size of an Encrypt
// event. It is why the embedded store's trail is Lazy: about 20 µs of CPU
// per event, as much as a fifth of an Encrypt request.
func BenchmarkPutEvents(b *testing.B) {
	s, err := Open(context.Background(), filepath.Join(b.TempDir(), "db"), Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	js := []byte(strings.Repeat("x", 1400))
	batch := make([]*storage.EventRecord, 200)
	b.ReportAllocs()
	for i := 0; i < b.N; i += len(batch) {
		for j := range batch {
			batch[j] = &storage.EventRecord{ID: fmt.Sprintf("%08d-%04d-4000-8000-000000000000", i, j), Time: int64(i + j),
				Account: "123456789012", Region: "us-east-1", Source: "kms.amazonaws.com", Name: "Encrypt", ReadOnly: true,
				Username: "root", AccessKeyID: "AKIDEXAMPLE",
				Resources: []storage.EventResource{{Type: "AWS::KMS::Key", Name: "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"}},
				Complete:  true, JSON: js}
		}
		if err := s.PutEvents(context.Background(), batch); err != nil {
			b.Fatal(err)
		}
	}
}
