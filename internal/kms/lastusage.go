package kms

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/keyfort/keyfort/internal/identity"
	"github.com/keyfort/keyfort/internal/kms/kmsapi"
	"github.com/keyfort/keyfort/internal/operation"
	"github.com/keyfort/keyfort/internal/storage"
)

// GetKeyLastUsage answers with the last successful cryptographic operation
// on each key, as AWS documents it: the operation, its time, its request id
// and the id of the CloudTrail event that recorded it.
//
// A use is noted in memory when the operation succeeds (no disk write per
// Encrypt) and written to the store by the background job (every
// JobInterval) and when the service stops, one kindUsage record per key. A
// node reads the store and what it has not written yet, so a use on another
// node of a shared store shows once that node's job has run, as AWS's own
// tracking is eventually consistent. A kill -9 loses the uses of the last
// interval; the audit trail still has them.
//
// TrackingStartDate is when this store began tracking in the key's account
// and Region: the first time a node wrote a use there, or, before that, when
// this process started. A key created before it may have been used before it.

// kindUsage records, in a key's scope, the last flushed use of the key (ID
// the key id) and the tracking start (ID usageStartID).
const kindUsage storage.Kind = "kms.usage"

// usageStartID is the id of the tracking start record; key ids never take
// this form.
const usageStartID = "tracking-start"

// keyUse is one successful cryptographic operation on a key (record Data).
type keyUse struct {
	Operation string    `json:"operation"`
	At        time.Time `json:"at"`
	EventID   string    `json:"eventId"`
	RequestID string    `json:"requestId"`
}

// usageKey names a key for the tracker.
type usageKey struct {
	scope storage.Scope
	id    string
}

// usageTracker holds the uses not yet written to the store.
type usageTracker struct {
	started time.Time
	mu      sync.Mutex
	pending map[usageKey]keyUse
}

func newUsageTracker(now time.Time) *usageTracker {
	return &usageTracker{started: now.UTC(), pending: map[usageKey]keyUse{}}
}

// noteUse records a successful operation op on the key keyARN, in the call of
// ctx. A call without an audit event (a background job) is not recorded: the
// use must point at an event LookupEvents can find.
func (s *Service) noteUse(ctx context.Context, op string, keyARN *string) {
	eventID := operation.EventID(ctx)
	if eventID == "" || keyARN == nil {
		return
	}
	k, ok := usageKeyOf(*keyARN)
	if !ok {
		return
	}
	u := keyUse{Operation: op, At: s.now().UTC(), EventID: eventID}
	if c := identity.From(ctx); c != nil {
		u.RequestID = c.RequestID
	}
	t := s.usage
	t.mu.Lock()
	if old, ok := t.pending[k]; !ok || !old.At.After(u.At) {
		t.pending[k] = u
	}
	t.mu.Unlock()
}

// usageKeyOf parses a key ARN (arn:aws:kms:region:account:key/id).
func usageKeyOf(arn string) (usageKey, bool) {
	p, ok := splitARN(arn)
	if !ok || !strings.HasPrefix(p[5], "key/") {
		return usageKey{}, false
	}
	return usageKey{scope: storage.Scope{Account: p[4], Region: p[3]}, id: strings.TrimPrefix(p[5], "key/")}, true
}

// FlushKeyUsage writes the uses noted since the last flush to the store, in
// one transaction, keeping the later of a stored and a noted use. On failure
// the uses stay noted for the next flush.
func (s *Service) FlushKeyUsage(ctx context.Context) error {
	t := s.usage
	t.mu.Lock()
	batch := t.pending
	t.pending = map[usageKey]keyUse{}
	t.mu.Unlock()
	if len(batch) == 0 {
		return nil
	}
	err := s.store.Update(ctx, func(tx storage.Tx) error {
		started := map[storage.Scope]bool{}
		for k, u := range batch {
			if !started[k.scope] {
				started[k.scope] = true
				start := &storage.Record{Kind: kindUsage, Scope: k.scope, ID: usageStartID, Created: t.started.UnixNano(), Data: []byte("{}")}
				if err := tx.Insert(ctx, start); err != nil && !errors.Is(err, storage.ErrExists) {
					return err
				}
			}
			data, err := json.Marshal(u)
			if err != nil {
				return err
			}
			rec, err := tx.Get(ctx, kindUsage, k.scope, k.id)
			switch {
			case errors.Is(err, storage.ErrNotFound):
				err := tx.Insert(ctx, &storage.Record{Kind: kindUsage, Scope: k.scope, ID: k.id, Parent: k.id, Created: u.At.UnixNano(), Data: data})
				if errors.Is(err, storage.ErrExists) {
					// Another node of a shared store wrote this key's
					// first use meanwhile: run again, updating it.
					return storage.ErrConflict
				}
				if err != nil {
					return err
				}
			case err != nil:
				return err
			default:
				var old keyUse
				if json.Unmarshal(rec.Data, &old) == nil && old.At.After(u.At) {
					continue
				}
				rec.Data = data
				if err := tx.Update(ctx, rec); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		t.mu.Lock()
		for k, u := range batch {
			if cur, ok := t.pending[k]; !ok || u.At.After(cur.At) {
				t.pending[k] = u
			}
		}
		t.mu.Unlock()
		return fmt.Errorf("kms: write key usage: %w", err)
	}
	return nil
}

// GetKeyLastUsage implements the operation (key id or key ARN of the
// caller's account; cross-account use is not allowed).
func (s *Service) GetKeyLastUsage(ctx context.Context, in *kmsapi.GetKeyLastUsageInput) (*kmsapi.GetKeyLastUsageOutput, error) {
	scope, _, err := scopeOf(ctx)
	if err != nil {
		return nil, err
	}
	k, err := s.lookupKey(ctx, scope, deref(in.KeyId), refKeyOnly, act(in.IAMAction()))
	if err != nil {
		return nil, err
	}
	uk := usageKey{scope: k.rec.Scope, id: k.rec.ID}
	var last *keyUse
	rec, err := s.store.Get(ctx, kindUsage, uk.scope, uk.id)
	switch {
	case errors.Is(err, storage.ErrNotFound):
	case err != nil:
		return nil, fmt.Errorf("kms: read key usage: %w", err)
	default:
		var u keyUse
		if err := json.Unmarshal(rec.Data, &u); err != nil {
			return nil, fmt.Errorf("kms: key usage record of %s: %w", uk.id, err)
		}
		last = &u
	}
	s.usage.mu.Lock()
	if u, ok := s.usage.pending[uk]; ok && (last == nil || u.At.After(last.At)) {
		last = &u
	}
	s.usage.mu.Unlock()
	start := s.usage.started
	switch rec, err := s.store.Get(ctx, kindUsage, uk.scope, usageStartID); {
	case errors.Is(err, storage.ErrNotFound):
	case err != nil:
		return nil, fmt.Errorf("kms: read key usage: %w", err)
	default:
		start = time.Unix(0, rec.Created).UTC()
	}
	out := &kmsapi.GetKeyLastUsageOutput{
		KeyId:             ptr(k.arn),
		KeyCreationDate:   ptr(k.meta.Created),
		TrackingStartDate: ptr(start),
	}
	if last != nil {
		out.KeyLastUsage = &kmsapi.KeyLastUsageData{
			Operation:         kmsapi.KeyLastUsageTrackingOperation(last.Operation),
			Timestamp:         ptr(last.At),
			CloudTrailEventId: ptr(last.EventID),
			KmsRequestId:      ptr(last.RequestID),
		}
	}
	return out, nil
}

// The cryptographic operations note their key's use when they succeed. The
// implementations live with their key families; these wrappers are the one
// place that knows which operations GetKeyLastUsage tracks (the model's
// KeyLastUsageTrackingOperation).

func (s *Service) Encrypt(ctx context.Context, in *kmsapi.EncryptInput) (*kmsapi.EncryptOutput, error) {
	out, err := s.encrypt(ctx, in)
	if err == nil {
		s.noteUse(ctx, "Encrypt", out.KeyId)
	}
	return out, err
}

func (s *Service) Decrypt(ctx context.Context, in *kmsapi.DecryptInput) (*kmsapi.DecryptOutput, error) {
	out, err := s.decrypt(ctx, in)
	if err == nil {
		s.noteUse(ctx, "Decrypt", out.KeyId)
	}
	return out, err
}

// ReEncrypt notes a use of both keys, as AWS records it.
func (s *Service) ReEncrypt(ctx context.Context, in *kmsapi.ReEncryptInput) (*kmsapi.ReEncryptOutput, error) {
	out, err := s.reEncrypt(ctx, in)
	if err == nil {
		s.noteUse(ctx, "ReEncrypt", out.SourceKeyId)
		s.noteUse(ctx, "ReEncrypt", out.KeyId)
	}
	return out, err
}

func (s *Service) GenerateDataKey(ctx context.Context, in *kmsapi.GenerateDataKeyInput) (*kmsapi.GenerateDataKeyOutput, error) {
	out, err := s.generateDataKeyOp(ctx, in)
	if err == nil {
		s.noteUse(ctx, "GenerateDataKey", out.KeyId)
	}
	return out, err
}

func (s *Service) GenerateDataKeyWithoutPlaintext(ctx context.Context, in *kmsapi.GenerateDataKeyWithoutPlaintextInput) (*kmsapi.GenerateDataKeyWithoutPlaintextOutput, error) {
	out, err := s.generateDataKeyWithoutPlaintext(ctx, in)
	if err == nil {
		s.noteUse(ctx, "GenerateDataKeyWithoutPlaintext", out.KeyId)
	}
	return out, err
}

func (s *Service) Sign(ctx context.Context, in *kmsapi.SignInput) (*kmsapi.SignOutput, error) {
	out, err := s.sign(ctx, in)
	if err == nil {
		s.noteUse(ctx, "Sign", out.KeyId)
	}
	return out, err
}

// Verify notes a use only for a valid signature: an invalid one is
// KMSInvalidSignatureException, not a successful operation.
func (s *Service) Verify(ctx context.Context, in *kmsapi.VerifyInput) (*kmsapi.VerifyOutput, error) {
	out, err := s.verify(ctx, in)
	if err == nil {
		s.noteUse(ctx, "Verify", out.KeyId)
	}
	return out, err
}

func (s *Service) GenerateMac(ctx context.Context, in *kmsapi.GenerateMacInput) (*kmsapi.GenerateMacOutput, error) {
	out, err := s.generateMac(ctx, in)
	if err == nil {
		s.noteUse(ctx, "GenerateMac", out.KeyId)
	}
	return out, err
}

func (s *Service) VerifyMac(ctx context.Context, in *kmsapi.VerifyMacInput) (*kmsapi.VerifyMacOutput, error) {
	out, err := s.verifyMac(ctx, in)
	if err == nil {
		s.noteUse(ctx, "VerifyMac", out.KeyId)
	}
	return out, err
}

func (s *Service) DeriveSharedSecret(ctx context.Context, in *kmsapi.DeriveSharedSecretInput) (*kmsapi.DeriveSharedSecretOutput, error) {
	out, err := s.deriveSharedSecret(ctx, in)
	if err == nil {
		s.noteUse(ctx, "DeriveSharedSecret", out.KeyId)
	}
	return out, err
}

func (s *Service) GenerateDataKeyPair(ctx context.Context, in *kmsapi.GenerateDataKeyPairInput) (*kmsapi.GenerateDataKeyPairOutput, error) {
	out, err := s.generateDataKeyPairOp(ctx, in)
	if err == nil {
		s.noteUse(ctx, "GenerateDataKeyPair", out.KeyId)
	}
	return out, err
}

func (s *Service) GenerateDataKeyPairWithoutPlaintext(ctx context.Context, in *kmsapi.GenerateDataKeyPairWithoutPlaintextInput) (*kmsapi.GenerateDataKeyPairWithoutPlaintextOutput, error) {
	out, err := s.generateDataKeyPairWithoutPlaintext(ctx, in)
	if err == nil {
		s.noteUse(ctx, "GenerateDataKeyPairWithoutPlaintext", out.KeyId)
	}
	return out, err
}
