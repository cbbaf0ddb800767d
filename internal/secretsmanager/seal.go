package secretsmanager

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"io"

	"github.com/keyfort/keyfort/internal/awserr"
	"github.com/keyfort/keyfort/internal/kms/kmsapi"
	"github.com/keyfort/keyfort/internal/sensitive"
)

// Sealed value format (record Sealed of an sm.version), version 1:
//
//	"KSV1" | kind (1: 1 string, 2 binary) | n (1, 1..maxEntries) |
//	n × { len(edk) (2) | edk | nonce (12) | len(ct) (4) | ct }
//
// Each entry is the same value encrypted with AES-256-GCM under its own data
// key; edk is that data key encrypted by KMS (a KMS CiphertextBlob) under
// the encryption context {"SecretARN": arn, "SecretVersionId": versionId}.
// There is more than one entry after the secret's KMS key changed: Secrets
// Manager re-encrypts the labeled versions under the new key and keeps the
// old encryption, so either key opens them (entry i is under the version's
// i-th KMS key, newest first). The GCM additional data binds every
// ciphertext to its secret, version and kind:
// "KSV1" | kind | len(arn) (4) | arn | len(versionId) (4) | versionId.
// A value copied to another secret or version does not open.
const (
	sealMagic   = "KSV1"
	kindString  = byte(1)
	kindBinary  = byte(2)
	nonceSize   = 12
	maxEDKSize  = 1024
	maxEntries  = 8
	gcmOverhead = 16
)

var errMalformedSealed = errors.New("secretsmanager: malformed sealed value")

// secretValue is a decrypted secret value. Exactly one of str/bin is set.
type secretValue struct {
	kind byte
	data []byte
}

func valueOf(str *sensitive.String, bin sensitive.Bytes) secretValue {
	if str != nil {
		return secretValue{kind: kindString, data: []byte(str.Reveal())}
	}
	return secretValue{kind: kindBinary, data: bin.Reveal()}
}

func (v secretValue) equal(o secretValue) bool {
	return v.kind == o.kind && subtle.ConstantTimeCompare(v.data, o.data) == 1
}

func encryptionContext(arn, versionID string) map[string]string {
	return map[string]string{"SecretARN": arn, "SecretVersionId": versionID}
}

func valueAAD(kind byte, arn, versionID string) []byte {
	return appendValueAAD(make([]byte, 0, valueAADSize(arn, versionID)), kind, arn, versionID)
}

func valueAADSize(arn, versionID string) int {
	return len(sealMagic) + 1 + 8 + len(arn) + len(versionID)
}

func appendValueAAD(b []byte, kind byte, arn, versionID string) []byte {
	b = append(b, sealMagic...)
	b = append(b, kind)
	b = binary.BigEndian.AppendUint32(b, uint32(len(arn)))
	b = append(b, arn...)
	b = binary.BigEndian.AppendUint32(b, uint32(len(versionID)))
	return append(b, versionID...)
}

// kmsKeyRef returns the KMS key that protects new versions of a secret: its
// KmsKeyId, or the AWS managed key aws/secretsmanager (created on first use).
func (s *Service) kmsKeyRef(ctx context.Context, m *secretMeta) (string, error) {
	if m.KmsKeyID != "" {
		return m.KmsKeyID, nil
	}
	arn, err := s.kms.ManagedKeyARN(ctx, managedKeyService)
	if err != nil {
		return "", s.kmsError(ctx, "managed key", err, errEncryption)
	}
	return arn, nil
}

// kmsError maps an error from KMS: a client error (the key is disabled,
// pending deletion, unknown, not usable) becomes the Secrets Manager error
// made by clientErr, as on AWS; anything else is internal.
func (s *Service) kmsError(ctx context.Context, op string, err error, clientErr func() error) error {
	if e, ok := awserr.As(err); ok && e.Code == awserr.CodeAccessDenied {
		// The caller may not use the key through Secrets Manager: AWS's
		// words, which do not name the key.
		s.log.DebugContext(ctx, "secretsmanager: kms denied", "op", op)
		return errKMSDenied()
	}
	if e, ok := awserr.As(err); ok && e.Status < 500 {
		s.log.DebugContext(ctx, "secretsmanager: kms refused", "op", op, "code", e.Code)
		return clientErr()
	}
	return wrap("kms "+op, err)
}

// sealedEntry is one encryption of a value.
type sealedEntry struct {
	edk, nonce, ct []byte
}

// sealedValue is a parsed sealed value.
type sealedValue struct {
	kind    byte
	entries []sealedEntry
}

func (v sealedValue) marshal() []byte {
	n := len(sealMagic) + 2
	for _, e := range v.entries {
		n += 2 + len(e.edk) + nonceSize + 4 + len(e.ct)
	}
	out := make([]byte, 0, n)
	out = append(out, sealMagic...)
	out = append(out, v.kind, byte(len(v.entries)))
	for _, e := range v.entries {
		out = binary.BigEndian.AppendUint16(out, uint16(len(e.edk)))
		out = append(out, e.edk...)
		out = append(out, e.nonce...)
		out = binary.BigEndian.AppendUint32(out, uint32(len(e.ct)))
		out = append(out, e.ct...)
	}
	return out
}

// parseSealed takes a sealed value apart, bounding every length.
func parseSealed(b []byte) (sealedValue, error) {
	return parseSealedInto(b, nil)
}

// parseSealedInto is parseSealed appending the entries to buf (a caller's
// array of maxEntries keeps the read path from allocating the slice).
func parseSealedInto(b []byte, buf []sealedEntry) (sealedValue, error) {
	v := sealedValue{entries: buf[:0]}
	if len(b) < len(sealMagic)+2 || string(b[:len(sealMagic)]) != sealMagic {
		return v, errMalformedSealed
	}
	b = b[len(sealMagic):]
	v.kind, b = b[0], b[1:]
	if v.kind != kindString && v.kind != kindBinary {
		return v, errMalformedSealed
	}
	n := int(b[0])
	b = b[1:]
	if n < 1 || n > maxEntries {
		return v, errMalformedSealed
	}
	for range n {
		if len(b) < 2 {
			return v, errMalformedSealed
		}
		k := int(binary.BigEndian.Uint16(b))
		b = b[2:]
		if k == 0 || k > maxEDKSize || len(b) < k+nonceSize+4 {
			return v, errMalformedSealed
		}
		var e sealedEntry
		e.edk, e.nonce, b = b[:k], b[k:k+nonceSize], b[k+nonceSize:]
		c := binary.BigEndian.Uint32(b)
		b = b[4:]
		if c < gcmOverhead || c > maxValueBytes+gcmOverhead || uint64(len(b)) < uint64(c) {
			return v, errMalformedSealed
		}
		e.ct, b = b[:c], b[c:]
		v.entries = append(v.entries, e)
	}
	if len(b) != 0 {
		return v, errMalformedSealed
	}
	return v, nil
}

// sealEntry encrypts v for version versionID of the secret arn under KMS
// key keyRef. It returns the entry and the ARN of the KMS key used.
func (s *Service) sealEntry(ctx context.Context, keyRef, arn, versionID string, v secretValue) (sealedEntry, string, error) {
	dk, err := s.kms.GenerateDataKey(ctx, &kmsapi.GenerateDataKeyInput{
		KeyId:             ptr(keyRef),
		KeySpec:           "AES_256",
		EncryptionContext: encryptionContext(arn, versionID),
	})
	if err != nil {
		return sealedEntry{}, "", s.kmsError(ctx, "GenerateDataKey", err, errEncryption)
	}
	key := dk.Plaintext.Reveal()
	defer clear(key)
	if len(dk.CiphertextBlob) == 0 || len(dk.CiphertextBlob) > maxEDKSize {
		return sealedEntry{}, "", wrap("seal", errors.New("unexpected data key from KMS"))
	}
	aead, err := newGCM(key)
	if err != nil {
		return sealedEntry{}, "", err
	}
	e := sealedEntry{edk: append([]byte(nil), dk.CiphertextBlob...), nonce: make([]byte, nonceSize)}
	if _, err := io.ReadFull(s.rand, e.nonce); err != nil {
		return sealedEntry{}, "", wrap("nonce", err)
	}
	e.ct = aead.Seal(nil, e.nonce, v.data, valueAAD(v.kind, arn, versionID))
	return e, deref(dk.KeyId), nil
}

// seal encrypts v for version versionID of the secret arn under KMS key
// keyRef. It returns the sealed bytes and the ARN of the KMS key used.
func (s *Service) seal(ctx context.Context, keyRef, arn, versionID string, v secretValue) ([]byte, string, error) {
	e, keyARN, err := s.sealEntry(ctx, keyRef, arn, versionID, v)
	if err != nil {
		return nil, "", err
	}
	return sealedValue{kind: v.kind, entries: []sealedEntry{e}}.marshal(), keyARN, nil
}

// open decrypts the sealed value of version versionID of the secret arn.
// ec is encryptionContext(arn, versionID). keyARNs are the KMS keys of its
// entries, in order. Entries are tried in order; when KMS refuses every
// one (a disabled or deleted key) the result is DecryptionFailure.
func (s *Service) open(ctx context.Context, arn, versionID string, ec map[string]string, keyARNs []string, sealed []byte) (secretValue, error) {
	var buf [maxEntries]sealedEntry
	v, err := parseSealedInto(sealed, buf[:])
	if err != nil {
		return secretValue{}, wrap("open "+arn+" "+versionID, err)
	}
	// One context for every entry's Decrypt: KMS only reads it.
	var refused error
	for i, e := range v.entries {
		call := &decryptCall{in: kmsapi.DecryptInput{CiphertextBlob: e.edk, EncryptionContext: ec}}
		in := &call.in
		if i < len(keyARNs) && keyARNs[i] != "" {
			call.keyID = keyARNs[i]
			in.KeyId = &call.keyID
		}
		dk, err := s.kms.Decrypt(ctx, in)
		if err != nil {
			if ae, ok := awserr.As(err); ok && ae.Status < 500 {
				refused = err
				continue
			}
			return secretValue{}, wrap("kms Decrypt", err)
		}
		key := dk.Plaintext.Reveal()
		aead, err := newGCM(key)
		clear(key)
		if err != nil {
			return secretValue{}, err
		}
		// The plaintext and the additional data share one allocation:
		// the value first (so the caller's data is its own slice, with
		// no room to grow into the additional data), then the data.
		n := len(e.ct) - gcmOverhead
		out := make([]byte, n, n+valueAADSize(arn, versionID))
		ad := appendValueAAD(out[n:], v.kind, arn, versionID)
		pt, err := aead.Open(out[:0:n], e.nonce, e.ct, ad)
		if err != nil {
			// The data key opened but the value did not: the record was altered.
			return secretValue{}, wrap("open "+arn+" "+versionID, errors.New("value failed authentication"))
		}
		return secretValue{kind: v.kind, data: pt}, nil
	}
	return secretValue{}, s.kmsError(ctx, "Decrypt", refused, errDecryption)
}

// decryptCall is a DecryptInput with room for its KeyId.
type decryptCall struct {
	in    kmsapi.DecryptInput
	keyID string
}

func newGCM(key []byte) (cipher.AEAD, error) {
	if len(key) != 32 {
		return nil, wrap("data key", errors.New("data key is not 32 bytes"))
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, wrap("data key", err)
	}
	a, err := cipher.NewGCM(block)
	if err != nil {
		return nil, wrap("data key", err)
	}
	return a, nil
}
