package envelope

import (
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// TestSealerLearnsKeys checks what a serving node relies on during a root
// key rotation: a record sealed under a key it does not hold opens once its
// Loader finds that key, SealUnder seals under a key the Loader finds, and
// the key it started with stays the one Seal and DeriveKey use.
func TestSealerLearnsKeys(t *testing.T) {
	oldKey, newKey := mustKey(t, 1), mustKey(t, 2)
	resealed, err := NewSealer(nil, newKey).Seal(testAAD, []byte("v"))
	if err != nil {
		t.Fatal(err)
	}
	s := NewSealer(nil, oldKey)
	derived := s.DeriveKey("label")
	if _, err := s.Open(testAAD, resealed); err != ErrOpen {
		t.Fatalf("Open(record under a key not held), no loader = %v, want ErrOpen", err)
	}
	if _, err := s.SealUnder(newKey.ID(), testAAD, []byte("v")); err == nil || !strings.Contains(err.Error(), "does not hold") {
		t.Fatalf("SealUnder(key not held), no loader = %v, want an error saying so", err)
	}

	var calls atomic.Int32
	var found atomic.Bool // the operator has not put the new key in place yet
	s.SetLoader(func() ([]*RootKey, error) {
		calls.Add(1)
		if !found.Load() {
			return nil, nil
		}
		return []*RootKey{newKey, oldKey}, nil
	})
	if _, err := s.Open(testAAD, resealed); err != ErrOpen || calls.Load() != 1 {
		t.Fatalf("Open before the key is there = %v after %d loads, want ErrOpen after 1", err, calls.Load())
	}
	found.Store(true)
	got, err := s.Open(testAAD, resealed)
	if err != nil || string(got) != "v" {
		t.Fatalf("Open once the loader finds the key = %q, %v", got, err)
	}
	if !s.Holds(newKey.ID()) || calls.Load() != 2 {
		t.Fatalf("Holds(new) = %v after %d loads, want true after 2", s.Holds(newKey.ID()), calls.Load())
	}
	// Held now: no more loads.
	sealed, err := s.SealUnder(newKey.ID(), testAAD, []byte("w"))
	if err != nil {
		t.Fatal(err)
	}
	if id, _ := SealedKeyID(sealed); id != newKey.ID() || calls.Load() != 2 {
		t.Errorf("SealUnder sealed under %x after %d loads, want %x after 2", id, calls.Load(), newKey.ID())
	}
	if got, err := NewSealer(nil, newKey).Open(testAAD, sealed); err != nil || string(got) != "w" {
		t.Errorf("Open(SealUnder's record) with the new key alone = %q, %v", got, err)
	}
	// Seal, CurrentID and DeriveKey stay on the key the Sealer was made with.
	plain, _ := s.Seal(testAAD, []byte("x"))
	if id, _ := SealedKeyID(plain); id != oldKey.ID() || s.CurrentID() != oldKey.ID() {
		t.Errorf("Seal sealed under %x, CurrentID %x; want %x", id, s.CurrentID(), oldKey.ID())
	}
	if string(s.DeriveKey("label")) != string(derived) {
		t.Errorf("DeriveKey changed when a key was added")
	}
}

func TestSealerLoaderError(t *testing.T) {
	s := NewSealer(nil, mustKey(t, 1))
	s.SetLoader(func() ([]*RootKey, error) { return nil, errors.New("root key file \"k.next\": permission denied") })
	_, err := s.SealUnder(mustKey(t, 2).ID(), testAAD, []byte("v"))
	if err == nil || !strings.Contains(err.Error(), "permission denied") {
		t.Errorf("SealUnder with a failing loader = %v, want its error", err)
	}
	if ok, err := s.Load(mustKey(t, 1).ID()); !ok || err != nil {
		t.Errorf("Load(held key) = %v, %v, want true without calling the loader", ok, err)
	}
}

// TestSealerAddWhileInUse opens and seals from many goroutines while keys
// are added (run with -race).
func TestSealerAddWhileInUse(t *testing.T) {
	keys := []*RootKey{mustKey(t, 1), mustKey(t, 2), mustKey(t, 3), mustKey(t, 4)}
	s := NewSealer(nil, keys[0])
	sealed, _ := s.Seal(testAAD, []byte("v"))
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 200 {
				if got, err := s.Open(testAAD, sealed); err != nil || string(got) != "v" {
					t.Errorf("Open while keys are added = %q, %v", got, err)
					return
				}
			}
		})
	}
	for _, k := range keys[1:] {
		s.Add(k, k)
	}
	wg.Wait()
	for _, k := range keys {
		if !s.Holds(k.ID()) {
			t.Errorf("Holds(%x) = false after Add", k.ID())
		}
	}
	if n := len(*s.keys.Load()); n != len(keys) {
		t.Errorf("the Sealer holds %d keys, want %d (each once)", n, len(keys))
	}
}
