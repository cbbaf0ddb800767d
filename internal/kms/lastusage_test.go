package kms

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"testing"
	"time"

	"github.com/keyfort/keyfort/internal/envelope"
	"github.com/keyfort/keyfort/internal/operation/operationtest"
	"github.com/keyfort/keyfort/internal/storage"
)

// missOnce is a store whose first read of one key's usage record inside an
// Update answers ErrNotFound: what a node sees when another node inserts
// that record between its read and its insert (a shared store).
type missOnce struct {
	storage.Store
	id     string
	missed bool
}

func (m *missOnce) Update(ctx context.Context, fn func(tx storage.Tx) error) error {
	return m.Store.Update(ctx, func(tx storage.Tx) error { return fn(&missOnceTx{Tx: tx, m: m}) })
}

type missOnceTx struct {
	storage.Tx
	m *missOnce
}

func (tx *missOnceTx) Get(ctx context.Context, kind storage.Kind, scope storage.Scope, id string) (*storage.Record, error) {
	if kind == kindUsage && id == tx.m.id && !tx.m.missed {
		tx.m.missed = true
		return nil, storage.ErrNotFound
	}
	return tx.Tx.Get(ctx, kind, scope, id)
}

// TestFlushKeyUsageAfterAnotherNodesFirstUse: node b writes a key's first
// use; node a, which read no record for the key, must then update it with
// its later use, not fail the job run on the insert that finds it there.
func TestFlushKeyUsageAfterAnotherNodesFirstUse(t *testing.T) {
	store := openTestStore(t)
	root, err := envelope.GenerateRootKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	const id = "0b7cd6b4-6a2e-4c2f-9d55-8f0f2a3c1e11"
	arn := "arn:aws:kms:us-east-1:111122223333:key/" + id
	t0 := time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC)
	b := New(Config{Store: store, Sealer: envelope.NewSealer(nil, root), Now: func() time.Time { return t0 }})
	a := New(Config{Store: &missOnce{Store: store, id: id}, Sealer: envelope.NewSealer(nil, root), Now: func() time.Time { return t0.Add(time.Second) }})

	b.noteUse(operationtest.WithEventID(t.Context(), "event-b"), "Encrypt", &arn)
	a.noteUse(operationtest.WithEventID(t.Context(), "event-a"), "Decrypt", &arn)
	if err := b.FlushKeyUsage(t.Context()); err != nil {
		t.Fatalf("b.FlushKeyUsage: %v", err)
	}
	if err := a.FlushKeyUsage(t.Context()); err != nil {
		t.Fatalf("a.FlushKeyUsage after b wrote the key's first use = %v, want nil", err)
	}
	rec, err := store.Get(t.Context(), kindUsage, storage.Scope{Account: "111122223333", Region: "us-east-1"}, id)
	if err != nil {
		t.Fatalf("usage record: %v", err)
	}
	var u keyUse
	if err := json.Unmarshal(rec.Data, &u); err != nil {
		t.Fatal(err)
	}
	if u.EventID != "event-a" || u.Operation != "Decrypt" {
		t.Errorf("last use = %s %s, want Decrypt event-a (the later one)", u.Operation, u.EventID)
	}
}
