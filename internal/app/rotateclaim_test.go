package app_test

import (
	"context"
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/kms"

	"github.com/keyfort/keyfort/internal/app"
	"github.com/keyfort/keyfort/internal/config"
	"github.com/keyfort/keyfort/internal/envelope"
	"github.com/keyfort/keyfort/internal/storage/postgres/pgtest"
)

// TestRotationClaim runs rotations against one PostgreSQL store with no data
// directory lock between them: a second run while the first holds the
// store's claim is refused by one line; a run past the claim's silence
// window takes it over and finishes; the first run then stops without
// writing. A node started meanwhile with only the new key is refused while
// the rotation is unfinished.
func TestRotationClaim(t *testing.T) {
	dsn := pgtest.DSN(t)
	b := backend{name: "postgres", dsn: dsn}
	b.newSchema(t)
	keys := t.TempDir()
	oldKey, newKey := randomBytes(t, envelope.RootKeySize), randomBytes(t, envelope.RootKeySize)
	keyFile := filepath.Join(keys, "root.key")
	for path, k := range map[string][]byte{keyFile: oldKey, keyFile + ".next": newKey} {
		if err := os.WriteFile(path, []byte(base64.StdEncoding.EncodeToString(k)+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	a, err := startApp(t, b, t.TempDir(), base64.StdEncoding.EncodeToString(oldKey))
	if err != nil {
		t.Fatal(err)
	}
	ck, err := kmsClient(a).CreateKey(t.Context(), &kms.CreateKeyInput{})
	if err != nil {
		t.Fatalf("CreateKey: %v", err)
	}
	enc, err := kmsClient(a).Encrypt(t.Context(), &kms.EncryptInput{KeyId: ck.KeyMetadata.KeyId, Plaintext: []byte("x")})
	if err != nil {
		t.Fatalf("Encrypt: %v", err)
	}
	a.Close()

	cfg := config.Default()
	cfg.DataDir = filepath.Join(t.TempDir(), "unused") // PostgreSQL: no data directory is needed
	cfg.Store = dsn
	cfg.RootKeyFile = keyFile
	rotate := func(ctx context.Context, now func() time.Time, progress func(read, total int)) (app.RotateResult, error) {
		return app.RotateRootKey(ctx, cfg, app.RotateOptions{
			PostgresSchema: b.schema, Now: now, Progress: progress,
			LookupEnv: func(string) (string, bool) { return "", false },
		})
	}

	// The first run stops at its first progress report, holding the claim.
	holding, release := make(chan struct{}), make(chan struct{})
	firstDone := make(chan error, 1)
	go func() {
		first := true
		_, err := rotate(t.Context(), nil, func(read, total int) {
			if first {
				first = false
				close(holding)
				<-release
			}
		})
		firstDone <- err
	}()
	select {
	case <-holding:
	case err := <-firstDone:
		t.Fatalf("first rotation ended before its first batch: %v", err)
	}

	_, err = rotate(t.Context(), nil, nil)
	want := "app: another root key rotation is running: a keyfort rootkey rotate from root key " + keyID(t, oldKey) + " to " + keyID(t, newKey)
	if err == nil || !strings.HasPrefix(err.Error(), want) || strings.Contains(err.Error(), "\n") {
		t.Fatalf("second rotation while the first runs = %v, want one line starting %q", err, want)
	}
	if _, err := os.Stat(cfg.DataDir); !os.IsNotExist(err) {
		t.Errorf("a rotation on PostgreSQL made its data directory: %v", err)
	}

	// While it is unfinished, a node needs both keys.
	_, err = startApp(t, b, t.TempDir(), base64.StdEncoding.EncodeToString(newKey))
	if want := fmt.Sprintf("a root key rotation from root key %s to %s is unfinished", keyID(t, oldKey), keyID(t, newKey)); err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("node with the new key only during the rotation = %v, want %q", err, want)
	}

	// Past the silence window, a run takes the claim over and finishes.
	later := func() time.Time { return time.Now().Add(2 * time.Minute) }
	res, err := rotate(t.Context(), later, nil)
	if err != nil {
		t.Fatalf("rotation taking over a silent claim = %v", err)
	}
	if res.Resealed != 1 || res.NewID != [8]byte(mustID(t, newKey)) {
		t.Errorf("rotation taking over = %+v, want 1 material re-sealed to %s", res, keyID(t, newKey))
	}
	close(release)
	if err := <-firstDone; err == nil || !strings.Contains(err.Error(), "root key rotation claim was taken over") {
		t.Errorf("first rotation after it lost its claim = %v, want it stopped", err)
	}

	// Done: a node with only the new key opens the old ciphertext.
	a, err = startApp(t, b, t.TempDir(), base64.StdEncoding.EncodeToString(newKey))
	if err != nil {
		t.Fatalf("node with the new key after the rotation = %v", err)
	}
	dec, err := kmsClient(a).Decrypt(t.Context(), &kms.DecryptInput{CiphertextBlob: enc.CiphertextBlob})
	if err != nil || string(dec.Plaintext) != "x" {
		t.Fatalf("Decrypt after the rotation = %v", err)
	}
	_, wrong := startApp(t, b, t.TempDir(), base64.StdEncoding.EncodeToString(oldKey))
	if want := "the store is sealed under root key " + keyID(t, newKey); wrong == nil || !strings.Contains(wrong.Error(), want) {
		t.Errorf("node with the old key after the rotation = %v, want %q", wrong, want)
	}
}

func mustID(t *testing.T, key []byte) [8]byte {
	t.Helper()
	k, err := envelope.NewRootKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return k.ID()
}

// TestRotateTakesTheNextKeyFile checks where a rotation finds its new key:
// the .next file beside --root-key-file (on the embedded store too); on
// PostgreSQL without one it is refused, naming the file, and generates
// nothing.
func TestRotateTakesTheNextKeyFile(t *testing.T) {
	for _, b := range backends(t) {
		t.Run(b.name, func(t *testing.T) {
			b.newSchema(t)
			dir := t.TempDir()
			keyFile := filepath.Join(t.TempDir(), "root.key")
			oldKey, newKey := randomBytes(t, envelope.RootKeySize), randomBytes(t, envelope.RootKeySize)
			if err := os.WriteFile(keyFile, []byte(base64.StdEncoding.EncodeToString(oldKey)), 0o600); err != nil {
				t.Fatal(err)
			}
			withFile := func(c *config.Config) { c.RootKeyFile = keyFile }
			a, err := startApp(t, b, dir, "", withFile)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := kmsClient(a).CreateKey(t.Context(), &kms.CreateKeyInput{}); err != nil {
				t.Fatalf("CreateKey: %v", err)
			}
			a.Close()
			cfg := config.Default()
			cfg.DataDir, cfg.Store, cfg.RootKeyFile = dir, b.dsn, keyFile
			opts := app.RotateOptions{PostgresSchema: b.schema, LookupEnv: func(string) (string, bool) { return "", false }}
			if b.dsn != "" {
				_, err := app.RotateRootKey(t.Context(), cfg, opts)
				if want := "app: no new root key: on PostgreSQL, put the new root key in " + keyFile + ".next on every node"; err == nil || !strings.HasPrefix(err.Error(), want) {
					t.Fatalf("RotateRootKey on PostgreSQL without a .next file = %v, want %q", err, want)
				}
				if _, err := os.Stat(filepath.Join(dir, "root.key.next")); !os.IsNotExist(err) {
					t.Errorf("a refused rotation made root.key.next: %v", err)
				}
			}
			if err := os.WriteFile(keyFile+".next", []byte(base64.StdEncoding.EncodeToString(newKey)), 0o600); err != nil {
				t.Fatal(err)
			}
			res, err := app.RotateRootKey(t.Context(), cfg, opts)
			if err != nil {
				t.Fatalf("RotateRootKey = %v", err)
			}
			if res.NewID != mustID(t, newKey) || res.NewKeyPath != keyFile+".next" || res.Installed || res.Resealed != 1 {
				t.Errorf("RotateRootKey = %+v, want 1 material re-sealed to %s from %s.next, not installed", res, keyID(t, newKey), keyFile)
			}
			if _, err := startApp(t, b, t.TempDir(), base64.StdEncoding.EncodeToString(newKey), func(c *config.Config) {
				if b.dsn == "" {
					c.DataDir = dir
				}
			}); err != nil {
				t.Errorf("start with the new key = %v", err)
			}
		})
	}
}
