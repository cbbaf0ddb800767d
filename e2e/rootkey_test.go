package e2e

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"

	"github.com/keyfort/keyfort/internal/app"
	"github.com/keyfort/keyfort/internal/config"
	"github.com/keyfort/keyfort/internal/envelope"
	"github.com/keyfort/keyfort/internal/keyfortest"
)

func rotateCfg(dir string) config.Config {
	cfg := config.Default()
	cfg.DataDir = dir
	return cfg
}

func noEnv(string) (string, bool) { return "", false }

// sealedUnder reports whether the database files hold a record sealed under
// the root key with id.
func sealedUnder(t *testing.T, dir string, id [8]byte) bool {
	t.Helper()
	needle := append([]byte(envelope.Magic), id[:]...)
	for _, name := range []string{"keyfort.db", "keyfort.db-wal"} {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err == nil && bytes.Contains(b, needle) {
			return true
		}
	}
	return false
}

func TestRootKeyRotate(t *testing.T) {
	dir := t.TempDir()
	srv := keyfortest.Start(t, keyfortest.WithDataDir(dir))
	c := srv.KMS()
	var cts [][]byte
	var ids []string
	for i := range 3 {
		md := createKey(t, c, nil)
		ids = append(ids, aws.ToString(md.KeyId))
		_, err := c.RotateKeyOnDemand(ctxT(t), &kms.RotateKeyOnDemandInput{KeyId: md.KeyId})
		mustNoErr(t, err, "RotateKeyOnDemand")
		out, err := c.Encrypt(ctxT(t), &kms.EncryptInput{KeyId: md.KeyId, Plaintext: []byte(fmt.Sprint("before rotation ", i))})
		mustNoErr(t, err, "Encrypt")
		cts = append(cts, out.CiphertextBlob)
	}
	oldKey, _ := os.ReadFile(filepath.Join(dir, "root.key"))

	// While the server runs, the data directory is locked.
	_, err := app.RotateRootKey(context.Background(), rotateCfg(dir), app.RotateOptions{LookupEnv: noEnv})
	if err == nil || !strings.Contains(err.Error(), "in use by another keyfort process") {
		t.Fatalf("RotateRootKey while serving = %v, want the data directory in use", err)
	}
	srv.Close()

	res, err := app.RotateRootKey(context.Background(), rotateCfg(dir), app.RotateOptions{LookupEnv: noEnv})
	mustNoErr(t, err, "RotateRootKey")
	if res.Resealed != 6 || !res.Installed || res.OldID == res.NewID {
		t.Errorf("RotateRootKey = %+v, want 6 materials re-sealed and the new key installed", res)
	}
	newKey, _ := os.ReadFile(filepath.Join(dir, "root.key"))
	kept, _ := os.ReadFile(res.OldKeyPath)
	if bytes.Equal(newKey, oldKey) || !bytes.Equal(kept, oldKey) {
		t.Errorf("root.key not replaced, or the old key not kept in %s", res.OldKeyPath)
	}
	if _, err := os.Stat(filepath.Join(dir, "root.key.next")); !os.IsNotExist(err) {
		t.Errorf("root.key.next still exists after the rotation: %v", err)
	}
	if sealedUnder(t, dir, res.OldID) {
		t.Errorf("the database still holds a record sealed under the old root key")
	}

	// A second run finds nothing to do.
	again, err := app.RotateRootKey(context.Background(), rotateCfg(dir), app.RotateOptions{LookupEnv: noEnv})
	mustNoErr(t, err, "RotateRootKey again")
	if again.Resealed != 6 || again.OldID != res.NewID {
		t.Errorf("second rotation = %+v, want the 6 materials moved again from %x", again, res.NewID)
	}

	srv2 := keyfortest.Start(t, keyfortest.WithDataDir(dir))
	c = srv2.KMS()
	for i, ct := range cts {
		out, err := c.Decrypt(ctxT(t), &kms.DecryptInput{CiphertextBlob: ct})
		mustNoErr(t, err, "Decrypt after rotation")
		if string(out.Plaintext) != fmt.Sprint("before rotation ", i) {
			t.Errorf("Decrypt = %q", out.Plaintext)
		}
	}
	for _, id := range ids {
		_, err := c.Encrypt(ctxT(t), &kms.EncryptInput{KeyId: aws.String(id), Plaintext: []byte("after")})
		mustNoErr(t, err, "Encrypt after rotation")
	}
}

// TestRootKeyRotateResumes interrupts a rotation, serves (and writes) in
// between, and finishes it with a second run.
func TestRootKeyRotateResumes(t *testing.T) {
	dir := t.TempDir()
	srv := keyfortest.Start(t, keyfortest.WithDataDir(dir))
	before := createKey(t, srv.KMS(), nil)
	ct1, err := srv.KMS().Encrypt(ctxT(t), &kms.EncryptInput{KeyId: before.KeyId, Plaintext: []byte("one")})
	mustNoErr(t, err, "Encrypt")
	srv.Close()

	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := app.RotateRootKey(cancelled, rotateCfg(dir), app.RotateOptions{LookupEnv: noEnv}); err == nil {
		t.Fatal("RotateRootKey with a cancelled context succeeded")
	}
	if _, err := os.Stat(filepath.Join(dir, "root.key.next")); err != nil {
		t.Fatalf("an interrupted rotation left no root.key.next: %v", err)
	}

	// A server started before the rotation is finished works, old key and all.
	srv = keyfortest.Start(t, keyfortest.WithDataDir(dir))
	during := createKey(t, srv.KMS(), nil)
	ct2, err := srv.KMS().Encrypt(ctxT(t), &kms.EncryptInput{KeyId: during.KeyId, Plaintext: []byte("two")})
	mustNoErr(t, err, "Encrypt during an unfinished rotation")
	srv.Close()

	var reports [][2]int
	res, err := app.RotateRootKey(context.Background(), rotateCfg(dir), app.RotateOptions{LookupEnv: noEnv,
		Progress: func(read, total int) { reports = append(reports, [2]int{read, total}) }})
	mustNoErr(t, err, "RotateRootKey resumed")
	// The progress says how many sealed records were read of how many.
	if n := len(reports); n < 2 || reports[0][0] != 0 || reports[n-1][0] != reports[n-1][1] || reports[n-1][1] < 2 {
		t.Errorf("progress reports = %v, want 0 first and read = total (at least the 2 materials) last", reports)
	}
	if !res.Installed || res.Resealed != 2 {
		t.Errorf("resumed rotation = %+v, want both materials re-sealed and the key installed", res)
	}
	if sealedUnder(t, dir, res.OldID) {
		t.Errorf("the database still holds a record sealed under the old root key")
	}
	srv = keyfortest.Start(t, keyfortest.WithDataDir(dir))
	for want, ct := range map[string][]byte{"one": ct1.CiphertextBlob, "two": ct2.CiphertextBlob} {
		out, err := srv.KMS().Decrypt(ctxT(t), &kms.DecryptInput{CiphertextBlob: ct})
		mustNoErr(t, err, "Decrypt after the resumed rotation")
		if string(out.Plaintext) != want {
			t.Errorf("Decrypt = %q, want %q", out.Plaintext, want)
		}
	}
}
