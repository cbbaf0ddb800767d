package secretsmanager

import (
	"fmt"
	"testing"
)

// TestDataKeys: an opened data key is found only for the version it was
// opened for, and the cache holds at most maxDataKeys.
func TestDataKeys(t *testing.T) {
	d := newDataKeys()
	aead, err := newGCM(make([]byte, 32))
	if err != nil {
		t.Fatal(err)
	}
	edk := []byte("edk-1")
	d.put(edk, "arn:a", "v1", aead)
	if d.get(edk, "arn:a", "v1") != aead {
		t.Fatal("the key is not found for its own version")
	}
	for _, c := range []struct{ edk, arn, vid string }{{"edk-1", "arn:b", "v1"}, {"edk-1", "arn:a", "v2"}, {"edk-2", "arn:a", "v1"}} {
		if d.get([]byte(c.edk), c.arn, c.vid) != nil {
			t.Errorf("get(%s, %s, %s) found a key opened for (edk-1, arn:a, v1)", c.edk, c.arn, c.vid)
		}
	}
	for i := range 3 * maxDataKeys {
		d.put(fmt.Appendf(nil, "edk-%d", i+2), "arn:a", "v1", aead)
		if len(d.m) > maxDataKeys {
			t.Fatalf("after %d puts the cache holds %d keys, more than %d", i+2, len(d.m), maxDataKeys)
		}
	}
	if len(d.m) != maxDataKeys {
		t.Errorf("the full cache holds %d keys, want %d", len(d.m), maxDataKeys)
	}
}
