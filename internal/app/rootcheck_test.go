package app_test

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awscreds "github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kms"

	"github.com/keyfort/keyfort/internal/app"
	"github.com/keyfort/keyfort/internal/config"
	"github.com/keyfort/keyfort/internal/envelope"
	"github.com/keyfort/keyfort/internal/storage"
	"github.com/keyfort/keyfort/internal/storage/postgres/pgtest"
	"github.com/keyfort/keyfort/internal/storage/sqlite"
)

// backend is a store the root key tests run on: the data directory's
// SQLite file, or a PostgreSQL schema of their own.
type backend struct {
	name   string
	dsn    string // "" for SQLite
	schema string
}

func backends(t *testing.T) []backend {
	bs := []backend{{name: "sqlite"}}
	if dsn := os.Getenv("KEYFORT_TEST_POSTGRES"); dsn != "" {
		bs = append(bs, backend{name: "postgres", dsn: dsn})
	}
	return bs
}

// newSchema gives b a PostgreSQL schema of its own, dropped at the end of
// the test.
func (b *backend) newSchema(t *testing.T) {
	t.Helper()
	if b.dsn == "" {
		return
	}
	b.schema = pgtest.Schema(t, b.dsn, "apptest_")
}

func randomBytes(t *testing.T, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

func keyID(t *testing.T, key []byte) string {
	t.Helper()
	k, err := envelope.NewRootKey(key)
	if err != nil {
		t.Fatal(err)
	}
	id := k.ID()
	return hex.EncodeToString(id[:])
}

// startApp runs New and Start on dir with b's store and the root key in
// base64 (rootKey, "" for none: then <dir>/root.key is used or made). It
// returns the started app, closed at the end of the test, or the error of
// New or Start (after Close, as keyfort serve does).
func startApp(t *testing.T, b backend, dir, rootKey string, modify ...func(*config.Config)) (*app.App, error) {
	t.Helper()
	cfg := config.Default()
	cfg.DataDir = dir
	cfg.Listen = "127.0.0.1:0"
	cfg.Store = b.dsn
	cfg.ShutdownTimeout = 5 * time.Second
	for _, f := range modify {
		f(&cfg)
	}
	a, err := app.New(t.Context(), cfg, app.Options{
		RootKey:        rootKey,
		PostgresSchema: b.schema,
		LookupEnv:      func(string) (string, bool) { return "", false },
	})
	if err != nil {
		return nil, err
	}
	if err := a.Start(); err != nil {
		a.Close()
		return nil, err
	}
	t.Cleanup(func() { a.Close() })
	return a, nil
}

func kmsClient(a *app.App) *kms.Client {
	return kms.NewFromConfig(aws.Config{
		Region:       "us-east-1",
		Credentials:  awscreds.NewStaticCredentialsProvider("AKIDEXAMPLE", "x", ""),
		BaseEndpoint: aws.String(a.URL()),
	})
}

// entries lists a directory's file names (nil if it does not exist).
func entries(t *testing.T, dir string) []string {
	t.Helper()
	des, err := os.ReadDir(dir)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	var names []string
	for _, de := range des {
		names = append(names, de.Name())
	}
	return names
}

// TestRestartChecksRootKey restarts a store with its root key missing (refused,
// nothing written), with another key (refused, naming the key the store
// expects) and with its key (serves what it served before), on every store.
func TestRestartChecksRootKey(t *testing.T) {
	for _, b := range backends(t) {
		t.Run(b.name, func(t *testing.T) {
			b.newSchema(t)
			dir := filepath.Join(t.TempDir(), "data")
			a, err := startApp(t, b, dir, "") // the root key is generated into <dir>/root.key
			if err != nil {
				t.Fatal(err)
			}
			c := kmsClient(a)
			ck, err := c.CreateKey(t.Context(), &kms.CreateKeyInput{})
			if err != nil {
				t.Fatalf("CreateKey: %v", err)
			}
			enc, err := c.Encrypt(t.Context(), &kms.EncryptInput{KeyId: ck.KeyMetadata.KeyId, Plaintext: []byte("sealed")})
			if err != nil {
				t.Fatalf("Encrypt: %v", err)
			}
			if err := a.Close(); err != nil {
				t.Fatal(err)
			}
			rootPath := filepath.Join(dir, envelope.RootKeyFileName)
			key, _, err := envelope.LoadRootKey(envelope.RootKeyOptions{File: rootPath})
			if err != nil {
				t.Fatal(err)
			}
			id := key.ID()
			wantID := hex.EncodeToString(id[:])
			saved := filepath.Join(t.TempDir(), "root.key")
			if err := os.Rename(rootPath, saved); err != nil {
				t.Fatal(err)
			}

			t.Run("missing", func(t *testing.T) {
				before := entries(t, dir)
				_, err := startApp(t, b, dir, "")
				if err == nil || !strings.Contains(err.Error(), "sealed under root key "+wantID) ||
					!strings.Contains(err.Error(), "refusing to generate a new root key") {
					t.Fatalf("start without the root key = %v, want refused naming %s", err, wantID)
				}
				if strings.Contains(err.Error(), "\n") {
					t.Errorf("start without the root key: error %q is more than one line", err)
				}
				if after := entries(t, dir); !slices.Equal(after, before) {
					t.Errorf("data directory after a refused start = %v, want %v", after, before)
				}
			})
			t.Run("wrong", func(t *testing.T) {
				other := randomBytes(t, envelope.RootKeySize)
				before := entries(t, dir)
				_, err := startApp(t, b, dir, base64.StdEncoding.EncodeToString(other))
				want := fmt.Sprintf("the store is sealed under root key %s, but the root key from KEYFORT_ROOT_KEY is %s", wantID, keyID(t, other))
				if err == nil || !strings.Contains(err.Error(), want) {
					t.Fatalf("start with another root key = %v, want %q", err, want)
				}
				if after := entries(t, dir); !slices.Equal(after, before) {
					t.Errorf("data directory after a refused start = %v, want %v", after, before)
				}
			})
			t.Run("right", func(t *testing.T) {
				if err := os.Rename(saved, rootPath); err != nil {
					t.Fatal(err)
				}
				a, err := startApp(t, b, dir, "")
				if err != nil {
					t.Fatalf("start with the root key = %v", err)
				}
				dec, err := kmsClient(a).Decrypt(t.Context(), &kms.DecryptInput{CiphertextBlob: enc.CiphertextBlob})
				if err != nil || string(dec.Plaintext) != "sealed" {
					t.Fatalf("Decrypt after restart = %v, want the plaintext", err)
				}
				a.Close()
				// The same key given through --root-key-file is the same key.
				if _, err := startApp(t, b, dir, "", func(c *config.Config) { c.RootKeyFile = rootPath }); err != nil {
					t.Errorf("start with --root-key-file = %v", err)
				}
			})
		})
	}
}

// TestRestartChecksRootKeyWithoutMarker checks a store written before the
// root key marker existed: the first sealed record's header names the key.
func TestRestartChecksRootKeyWithoutMarker(t *testing.T) {
	dir := t.TempDir()
	key := randomBytes(t, envelope.RootKeySize)
	b := backend{name: "sqlite"}
	a, err := startApp(t, b, dir, base64.StdEncoding.EncodeToString(key))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kmsClient(a).CreateKey(t.Context(), &kms.CreateKeyInput{}); err != nil {
		t.Fatalf("CreateKey: %v", err)
	}
	a.Close()
	s, err := sqlite.Open(t.Context(), filepath.Join(dir, "keyfort.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	err = s.Update(t.Context(), func(tx storage.Tx) error {
		return tx.Delete(t.Context(), "keyfort.rootkey", storage.Scope{}, "marker")
	})
	s.Close()
	if err != nil {
		t.Fatalf("delete the marker: %v", err)
	}

	other := randomBytes(t, envelope.RootKeySize)
	_, err = startApp(t, b, dir, base64.StdEncoding.EncodeToString(other))
	if want := "the store is sealed under root key " + keyID(t, key); err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("start with another key = %v, want %q", err, want)
	}
	_, err = startApp(t, b, dir, "")
	if err == nil || !strings.Contains(err.Error(), "refusing to generate a new root key") {
		t.Fatalf("start without a key = %v, want refused", err)
	}
	if _, err := os.Stat(filepath.Join(dir, envelope.RootKeyFileName)); !os.IsNotExist(err) {
		t.Errorf("root.key after a refused start: %v, want none", err)
	}
	if _, err := startApp(t, b, dir, base64.StdEncoding.EncodeToString(key)); err != nil {
		t.Fatalf("start with the key = %v", err)
	}
}

// TestNodesShareOneRootKey starts a second node on the same PostgreSQL
// store: with no key of its own it is refused rather than generating one,
// and with the first node's key it serves.
func TestNodesShareOneRootKey(t *testing.T) {
	dsn := pgtest.DSN(t)
	b := backend{name: "postgres", dsn: dsn}
	b.newSchema(t)
	key := randomBytes(t, envelope.RootKeySize)
	if _, err := startApp(t, b, t.TempDir(), base64.StdEncoding.EncodeToString(key)); err != nil {
		t.Fatal(err)
	}
	node2 := t.TempDir()
	_, err := startApp(t, b, node2, "")
	if want := "the store is sealed under root key " + keyID(t, key); err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("second node without a key = %v, want %q", err, want)
	}
	if got := entries(t, node2); len(got) != 0 {
		t.Errorf("second node's data directory after a refused start = %v, want empty", got)
	}
	// With a key of its own it is refused by one line naming both keys.
	other := randomBytes(t, envelope.RootKeySize)
	_, err = startApp(t, b, node2, base64.StdEncoding.EncodeToString(other))
	want := fmt.Sprintf("app: wrong root key: the store is sealed under root key %s, but the root key from KEYFORT_ROOT_KEY is %s", keyID(t, key), keyID(t, other))
	if err == nil || !strings.HasPrefix(err.Error(), want) || strings.Contains(err.Error(), "\n") {
		t.Fatalf("second node with another key = %v, want one line starting %q", err, want)
	}
	if _, err := startApp(t, b, node2, base64.StdEncoding.EncodeToString(key)); err != nil {
		t.Fatalf("second node with the first node's key = %v", err)
	}
}

// TestRotationMovesTheExpectedRootKey checks that after `keyfort rootkey
// rotate` the store expects the new key: the old one is refused by name,
// and the installed root.key serves.
func TestRotationMovesTheExpectedRootKey(t *testing.T) {
	dir := t.TempDir()
	b := backend{name: "sqlite"}
	a, err := startApp(t, b, dir, "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kmsClient(a).CreateKey(t.Context(), &kms.CreateKeyInput{}); err != nil {
		t.Fatalf("CreateKey: %v", err)
	}
	a.Close()
	old, err := os.ReadFile(filepath.Join(dir, envelope.RootKeyFileName))
	if err != nil {
		t.Fatal(err)
	}
	cfg := config.Default()
	cfg.DataDir = dir
	res, err := app.RotateRootKey(t.Context(), cfg, app.RotateOptions{LookupEnv: func(string) (string, bool) { return "", false }})
	if err != nil || !res.Installed {
		t.Fatalf("RotateRootKey = %+v, %v", res, err)
	}
	_, err = startApp(t, b, dir, strings.TrimSpace(string(old)))
	if want := fmt.Sprintf("the store is sealed under root key %x", res.NewID); err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("start with the old key after rotation = %v, want %q", err, want)
	}
	if _, err := startApp(t, b, dir, ""); err != nil {
		t.Fatalf("start with the new root.key = %v", err)
	}
}
