package secretsmanager

import (
	"github.com/keyfort/keyfort/internal/metrics"
	"github.com/keyfort/keyfort/internal/recordcache"
	"github.com/keyfort/keyfort/internal/storage"
)

// maxCachedRecords bounds the read cache (secret and version records).
const maxCachedRecords = 4096

// newReadCache returns the cache the read paths (GetSecretValue,
// DescribeSecret) read secret and version records through, and the
// secrets decoded from them (package recordcache). It holds only what is
// stored: metadata and sealed values, never a plaintext or a data key, so
// every read of a value still asks KMS to decrypt its data key and a
// disabled or deleted KMS key takes effect at once.
func newReadCache(store storage.Store, reg *metrics.Registry) *recordcache.Cache {
	return recordcache.New(store, maxCachedRecords, reg, map[storage.Kind]string{kindSecret: "sm_secret", kindVersion: "sm_record"})
}
