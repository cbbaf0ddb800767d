package kms

import (
	"context"
	"errors"
	"testing"

	"github.com/keyfort/keyfort/internal/envelope"
	"github.com/keyfort/keyfort/internal/identity"
	"github.com/keyfort/keyfort/internal/kms/kmsapi"
	"github.com/keyfort/keyfort/internal/sensitive"
	"github.com/keyfort/keyfort/internal/storage"
	"github.com/keyfort/keyfort/internal/xks"
)

// deletingStore deletes the second record of the first Scan inside the
// Update that made it: what a node deleting a key's material between a
// re-seal batch's read and its write looks like to the batch.
type deletingStore struct {
	storage.Store
	deleted string
}

func (d *deletingStore) Update(ctx context.Context, fn func(tx storage.Tx) error) error {
	return d.Store.Update(ctx, func(tx storage.Tx) error { return fn(&deletingTx{Tx: tx, d: d}) })
}

type deletingTx struct {
	storage.Tx
	d *deletingStore
}

func (t *deletingTx) Scan(ctx context.Context, kind storage.Kind, after storage.Position, limit int) ([]*storage.Record, error) {
	recs, err := t.Tx.Scan(ctx, kind, after, limit)
	if err == nil && t.d.deleted == "" && len(recs) > 1 {
		if err := t.Tx.Delete(ctx, kind, recs[1].Scope, recs[1].ID); err != nil {
			return nil, err
		}
		t.d.deleted = recs[1].ID
	}
	return recs, err
}

// TestResealWhileServing checks what Reseal does beside serving nodes: a
// material deleted after its batch read it is skipped, not an error; the
// Batch hook runs in each batch, and its error stops the run with that
// batch unwritten.
func TestResealWhileServing(t *testing.T) {
	store := openTestStore(t)
	oldKey, newKey := mustRootKey(t), mustRootKey(t)
	ctx := identity.With(t.Context(), withReq(identity.Root("111122223333", "us-east-1", "")))
	serving := New(Config{Store: store, Sealer: envelope.NewSealer(nil, oldKey)})
	for range 3 {
		_, err := serving.CreateKey(ctx, &kmsapi.CreateKeyInput{})
		mustOK(t, err, "CreateKey")
	}

	stop := errors.New("claim lost")
	rotating := New(Config{Store: store, Sealer: envelope.NewSealer(nil, newKey, oldKey)})
	_, err := rotating.Reseal(t.Context(), ResealOptions{Batch: func(context.Context, storage.Tx) error { return stop }})
	if !errors.Is(err, stop) {
		t.Fatalf("Reseal with a failing Batch = %v, want its error", err)
	}
	if n := countUnder(t, store, newKey.ID()); n != 0 {
		t.Fatalf("%d materials re-sealed by a run whose Batch failed, want 0", n)
	}

	ds := &deletingStore{Store: store}
	rotating = New(Config{Store: ds, Sealer: envelope.NewSealer(nil, newKey, oldKey)})
	batches := 0
	n, err := rotating.Reseal(t.Context(), ResealOptions{Batch: func(context.Context, storage.Tx) error { batches++; return nil }})
	if err != nil || n != 2 || ds.deleted == "" {
		t.Fatalf("Reseal with a material deleted under it = %d, %v (deleted %q), want 2 re-sealed", n, err, ds.deleted)
	}
	if batches != len(sealedKinds) {
		// One batch of each sealed kind (there are no key stores).
		t.Errorf("Batch ran %d times, want %d (one batch of each sealed kind)", batches, len(sealedKinds))
	}
	if got := countUnder(t, store, newKey.ID()); got != 2 {
		t.Errorf("%d materials under the new key, want 2", got)
	}
}

func mustRootKey(t testing.TB) *envelope.RootKey {
	t.Helper()
	k, err := envelope.GenerateRootKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func countUnder(t *testing.T, store storage.Store, id [8]byte) int {
	t.Helper()
	n := 0
	err := store.View(t.Context(), func(r storage.Reader) error {
		recs, err := r.Scan(t.Context(), kindMaterial, storage.Position{}, 0)
		for _, rec := range recs {
			if got, _ := envelope.SealedKeyID(rec.Sealed); got == id {
				n++
			}
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// healthyProxies is an XKSClient whose every proxy is healthy.
type healthyProxies struct{ noProxies }

func (healthyProxies) Health(context.Context, xks.Proxy, xks.RequestMetadata) (*xks.Health, error) {
	return &xks.Health{ProxyFleetSize: 1, EKMFleet: []xks.EKM{{HealthStatus: xks.HealthActive}}}, nil
}

// TestResealKeyStoreCredential: Reseal re-seals an external key store's
// proxy credential, which then opens under the new root key alone.
func TestResealKeyStoreCredential(t *testing.T) {
	store := openTestStore(t)
	oldKey, newKey := mustRootKey(t), mustRootKey(t)
	ctx := identity.With(t.Context(), withReq(identity.Root("111122223333", "us-east-1", "")))
	serving := New(Config{Store: store, Sealer: envelope.NewSealer(nil, oldKey), XKS: healthyProxies{}})
	out, err := serving.CreateCustomKeyStore(ctx, &kmsapi.CreateCustomKeyStoreInput{
		CustomKeyStoreName: ptr("xks"), CustomKeyStoreType: kmsapi.CustomKeyStoreTypeExternalKeyStore,
		XksProxyConnectivity: kmsapi.XksProxyConnectivityTypePublicEndpoint,
		XksProxyUriEndpoint:  ptr("https://xks.example.com"), XksProxyUriPath: ptr("/kms/xks/v1"),
		XksProxyAuthenticationCredential: &kmsapi.XksProxyAuthenticationCredentialType{
			AccessKeyId: ptr(sensitive.String("ABCDEFGHIJKLMNOPQRST")), RawSecretAccessKey: ptr(sensitive.String("c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3I="))},
	})
	mustOK(t, err, "CreateCustomKeyStore")

	rotating := New(Config{Store: store, Sealer: envelope.NewSealer(nil, newKey, oldKey)})
	if _, err := rotating.Reseal(t.Context(), ResealOptions{}); err != nil {
		t.Fatalf("Reseal = %v", err)
	}
	after := New(Config{Store: store, Sealer: envelope.NewSealer(nil, newKey)})
	d, err := after.DescribeCustomKeyStores(ctx, &kmsapi.DescribeCustomKeyStoresInput{CustomKeyStoreId: out.CustomKeyStoreId})
	mustOK(t, err, "DescribeCustomKeyStores under the new root key alone")
	if got := d.CustomKeyStores[0].XksProxyConfiguration.AccessKeyId.Reveal(); got != "ABCDEFGHIJKLMNOPQRST" {
		t.Errorf("AccessKeyId after Reseal = %q", got)
	}
}
