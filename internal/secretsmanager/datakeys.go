package secretsmanager

import (
	"crypto/cipher"
	"sync"
)

// maxDataKeys bounds the opened data keys kept (an AES-GCM key schedule
// and its tables: about 1 KB each, about 1 MB in all).
const maxDataKeys = 1024

// dataKeys keeps the data keys of sealed values that KMS decrypted, opened
// (an AES-GCM instance), so that reading a value again does not decrypt its
// data key and expand it again. It never stands in for KMS: open still asks
// KMS for every read (DecryptKnown), with the same checks, authorization,
// errors and event as Decrypt, and uses the kept key only when KMS agrees;
// a disabled, deleted or denied key takes effect at once, as before. Like
// KMS's own cache of opened key material, it keeps keys in memory only.
//
// An entry is found by the encrypted data key (a KMS ciphertext with a
// random nonce: each GenerateDataKey's is unique) and is used only for the
// secret version whose encryption context it was decrypted under.
type dataKeys struct {
	mu sync.RWMutex
	m  map[string]*dataKey
}

// dataKey is one opened data key and the version it was decrypted for.
type dataKey struct {
	arn, versionID string
	aead           cipher.AEAD
}

func newDataKeys() *dataKeys { return &dataKeys{m: make(map[string]*dataKey)} }

// get returns the opened data key encrypted as edk for version versionID of
// the secret arn, or nil.
func (d *dataKeys) get(edk []byte, arn, versionID string) cipher.AEAD {
	d.mu.RLock()
	k := d.m[string(edk)]
	d.mu.RUnlock()
	if k == nil || k.arn != arn || k.versionID != versionID {
		return nil
	}
	return k.aead
}

// put keeps aead, the data key encrypted as edk, opened for version
// versionID of the secret arn. When full it drops an arbitrary entry.
func (d *dataKeys) put(edk []byte, arn, versionID string, aead cipher.AEAD) {
	k := &dataKey{arn: arn, versionID: versionID, aead: aead}
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, ok := d.m[string(edk)]; !ok && len(d.m) >= maxDataKeys {
		for old := range d.m {
			delete(d.m, old)
			break
		}
	}
	d.m[string(edk)] = k
}
