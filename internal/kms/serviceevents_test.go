package kms

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/keyfort/keyfort/internal/envelope"
	"github.com/keyfort/keyfort/internal/identity"
	"github.com/keyfort/keyfort/internal/kms/kmsapi"
	"github.com/keyfort/keyfort/internal/storage"
)

// TestServiceEventRecordCommitsWithTheJob: the record of a job's service
// event is appended in the transaction of the change it records, with the
// id the event is then written under, so that a process that dies before
// writing it (here: ServiceEvents fails) leaves it in the store for the
// trail to finish; and the event is logged once however often its
// transaction runs.
func TestServiceEventRecordCommitsWithTheJob(t *testing.T) {
	store := openTestStore(t)
	now := time.Date(2026, 12, 6, 0, 0, 0, 0, time.UTC)
	var written []ServiceEvent
	fail := errors.New("the process died before writing")
	s := New(Config{Store: store, Sealer: envelope.NewSealer(nil, mustRootKey(t)), Now: func() time.Time { return now },
		ServiceEventRecord: func(e ServiceEvent) *storage.EventRecord {
			return &storage.EventRecord{ID: e.ID, Time: e.Time.UnixNano(), Account: e.Account, Region: e.Region,
				Source: "kms.amazonaws.com", Name: e.Name, Node: "node-1", JSON: []byte(`{"eventID":"` + e.ID + `"}`)}
		},
		ServiceEvents: func(_ context.Context, events []ServiceEvent) error {
			written = append(written, events...)
			return fail
		},
	})
	ctx := identity.With(t.Context(), withReq(identity.Root("111122223333", "us-east-1", "")))
	out, err := s.CreateKey(ctx, &kmsapi.CreateKeyInput{})
	mustOK(t, err, "CreateKey")
	_, err = s.ScheduleKeyDeletion(ctx, &kmsapi.ScheduleKeyDeletionInput{KeyId: out.KeyMetadata.KeyId, PendingWindowInDays: ptr(int32(7))})
	mustOK(t, err, "ScheduleKeyDeletion")

	now = now.Add(8 * 24 * time.Hour)
	if err := s.RunJobs(t.Context()); !errors.Is(err, fail) {
		t.Fatalf("RunJobs = %v, want the failed write", err)
	}
	if len(written) != 1 || written[0].Name != "DeleteKey" || written[0].ID == "" || written[0].KeyARN != *out.KeyMetadata.Arn {
		t.Fatalf("service events given to be written: %+v, want one DeleteKey of the key", written)
	}
	var trail storage.Trail = store
	recs, err := trail.IncompleteEvents(t.Context(), "node-1", storage.EventCursor{}, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 1 || recs[0].ID != written[0].ID || recs[0].Name != "DeleteKey" || recs[0].Complete {
		t.Fatalf("incomplete events in the store: %+v, want the DeleteKey record under the written event's id", recs)
	}
	if _, err := s.DescribeKey(ctx, &kmsapi.DescribeKeyInput{KeyId: out.KeyMetadata.KeyId}); err == nil {
		t.Error("the key survived its deletion job")
	}
}
