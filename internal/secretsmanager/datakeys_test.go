package secretsmanager

import (
	"fmt"
	"testing"
	"time"
)

// TestDataKeys: an opened data key is found only for the version it was
// opened for and for dataKeyLife, and the cache holds at most maxDataKeys.
func TestDataKeys(t *testing.T) {
	d := newDataKeys()
	aead, err := newGCM(make([]byte, 32))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	edk := []byte("edk-1")
	d.put(edk, "arn:a", "v1", aead, nil, now)
	if k := d.get(edk, "arn:a", "v1", now.Add(dataKeyLife-time.Second)); k == nil || k.aead != aead {
		t.Fatal("the key is not found for its own version")
	}
	if d.get(edk, "arn:a", "v1", now.Add(dataKeyLife)) != nil {
		t.Error("the key is found after dataKeyLife")
	}
	for _, c := range []struct{ edk, arn, vid string }{{"edk-1", "arn:b", "v1"}, {"edk-1", "arn:a", "v2"}, {"edk-2", "arn:a", "v1"}} {
		if d.get([]byte(c.edk), c.arn, c.vid, now) != nil {
			t.Errorf("get(%s, %s, %s) found a key opened for (edk-1, arn:a, v1)", c.edk, c.arn, c.vid)
		}
	}
	for i := range 3 * maxDataKeys {
		d.put(fmt.Appendf(nil, "edk-%d", i+2), "arn:a", "v1", aead, nil, now)
		if len(d.m) > maxDataKeys {
			t.Fatalf("after %d puts the cache holds %d keys, more than %d", i+2, len(d.m), maxDataKeys)
		}
	}
	if len(d.m) != maxDataKeys {
		t.Errorf("the full cache holds %d keys, want %d", len(d.m), maxDataKeys)
	}
	// Once they expired, a put drops them all.
	d.put([]byte("late"), "arn:a", "v1", aead, nil, now.Add(dataKeyLife))
	if k := d.get([]byte("late"), "arn:a", "v1", now.Add(dataKeyLife)); len(d.m) != 1 || k == nil || k.aead != aead {
		t.Errorf("after a put past every key's life the cache holds %d keys, want only the new one", len(d.m))
	}
}
