package secretsmanager

import (
	"crypto/cipher"
	"sync"
	"time"
)

// maxDataKeys bounds the opened data keys kept (an AES-GCM key schedule
// and its tables: about 1 KB each, about 1 MB in all).
const maxDataKeys = 1024

// dataKeyLife is how long an opened data key is kept after KMS decrypted
// it: a key is not held in memory for long after its last decryption
// (AWS's Secrets Manager removes a data key from memory once used).
const dataKeyLife = 5 * time.Minute

// dataKeys keeps the data keys of sealed values that KMS decrypted, opened
// (an AES-GCM instance), so that reading a value again does not decrypt its
// data key and expand it again. It never stands in for KMS: open still asks
// KMS for every read (DecryptKnown), with the same checks, authorization,
// errors and event as Decrypt, and uses the kept key only when KMS agrees;
// a disabled, deleted or denied key takes effect at once, as before. Like
// KMS's own cache of opened key material (which opens every data key), it
// keeps keys in memory only, and for at most dataKeyLife.
//
// An entry is found by the encrypted data key (a KMS ciphertext with a
// random nonce: each GenerateDataKey's is unique) and is used only for the
// secret version whose encryption context it was decrypted under.
type dataKeys struct {
	mu sync.RWMutex
	m  map[string]*dataKey
}

// dataKey is one opened data key, the version it was decrypted for, when
// it stops being used, and the parts of the KMS event of its decryption
// (requestParameters and additionalEventData, the same on every read).
type dataKey struct {
	arn, versionID string
	aead           cipher.AEAD
	event          *decryptEvent
	until          time.Time
}

func newDataKeys() *dataKeys { return &dataKeys{m: make(map[string]*dataKey)} }

// get returns the opened data key encrypted as edk for version versionID of
// the secret arn, or nil (also once it expired at now). Callers must not
// modify it.
func (d *dataKeys) get(edk []byte, arn, versionID string, now time.Time) *dataKey {
	d.mu.RLock()
	k := d.m[string(edk)]
	d.mu.RUnlock()
	if k == nil || k.arn != arn || k.versionID != versionID || !now.Before(k.until) {
		return nil
	}
	return k
}

// put keeps aead, the data key encrypted as edk, opened at now for version
// versionID of the secret arn, for dataKeyLife, with event, the parts of the
// KMS event of its decryption. When full it drops the expired entries, or
// else an arbitrary one.
func (d *dataKeys) put(edk []byte, arn, versionID string, aead cipher.AEAD, event *decryptEvent, now time.Time) {
	k := &dataKey{arn: arn, versionID: versionID, aead: aead, event: event, until: now.Add(dataKeyLife)}
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, ok := d.m[string(edk)]; !ok && len(d.m) >= maxDataKeys {
		for old, e := range d.m {
			if !now.Before(e.until) {
				delete(d.m, old)
			}
		}
		if len(d.m) >= maxDataKeys {
			for old := range d.m {
				delete(d.m, old)
				break
			}
		}
	}
	d.m[string(edk)] = k
}
