package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/jackc/pgx/v5"

	"github.com/keyfort/keyfort/internal/storage/postgres/pgtest"
)

// pgSchema makes a PostgreSQL schema of its own for the test and returns
// the DSN whose connections use it, and a connection to it; the schema is
// dropped at the end.
func pgSchema(t *testing.T, dsn string) (string, *pgx.Conn) {
	t.Helper()
	schemaDSN := pgtest.CreateSchema(t, dsn, "e2e_rootkey_")
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, schemaDSN)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(ctx) })
	return schemaDSN, conn
}

// writeKey writes key (base64) to path, mode 0600.
func writeKey(t *testing.T, path string, key []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(base64.StdEncoding.EncodeToString(key)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
}

func rootKeyID(key []byte) string {
	sum := sha256.Sum256(key)
	return hex.EncodeToString(sum[:8])
}

// sealedCounts counts the key materials sealed under each root key id.
func sealedCounts(t *testing.T, conn *pgx.Conn) map[string]int {
	t.Helper()
	rows, err := conn.Query(context.Background(),
		"SELECT encode(substring(sealed from 5 for 8), 'hex'), count(*) FROM records WHERE kind = 'kms.material' GROUP BY 1")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	counts := map[string]int{}
	for rows.Next() {
		var id string
		var n int
		if err := rows.Scan(&id, &n); err != nil {
			t.Fatal(err)
		}
		counts[id] = n
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return counts
}

// keyCT is a ciphertext and its plaintext.
type keyCT struct {
	ct    []byte
	plain string
}

// TestRootKeyRotateWhileServingOnPostgres is the operator's procedure for a
// root key rotation on PostgreSQL, with the binary: two nodes serve one
// schema, each with its own root key file; the new key is put beside each
// node's file (<file>.next) while they serve; `keyfort rootkey rotate` runs
// against the store while clients call Encrypt, Decrypt, GetSecretValue and
// CreateKey through both nodes. The rotation is held in the middle (a row
// lock on one material), so the nodes serve a store sealed half under each
// key, and a second rotation started then is refused. No request fails; at
// the end the marker and every material are under the new key, both nodes
// restarted with only the new key decrypt every ciphertext and read every
// secret, and a node with another key is refused by one line naming both.
func TestRootKeyRotateWhileServingOnPostgres(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the binary; skipped in -short mode")
	}
	base := pgtest.DSN(t)
	dsn, conn := pgSchema(t, base)
	ctx := context.Background()
	oldKey, newKey := make([]byte, 32), make([]byte, 32)
	rand.Read(oldKey)
	rand.Read(newKey)
	oldID, newID := rootKeyID(oldKey), rootKeyID(newKey)
	work := t.TempDir()
	keyFile := func(node string) string { return filepath.Join(work, node, "keys", "root.key") }
	for _, node := range []string{"node1", "node2", "ops"} {
		writeKey(t, keyFile(node), oldKey)
	}
	start := func(node string) *proc {
		t.Helper()
		p, err := launchBinary(keyfortBinary(t), freePort(t), filepath.Join(work, node, "data"),
			[]string{"--log-level", "debug", "--store", dsn, "--root-key-file", keyFile(node)}, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(p.cleanup)
		return p
	}
	t0 := time.Now()
	nodes := []*proc{start("node1"), start("node2")}

	// Enough materials that the rotation takes several batches of 100.
	const nKeys, nRotated, nSecrets = 240, 60, 12
	var mu sync.Mutex
	cts := map[string]keyCT{} // key id -> a ciphertext under it
	var keyIDs []string
	secrets := map[string]string{}
	var wg sync.WaitGroup
	var seedErr atomic.Value
	for w := range 4 {
		wg.Go(func() {
			c := nodes[w%2].kms()
			for i := w; i < nKeys; i += 4 {
				ck, err := c.CreateKey(ctx, &kms.CreateKeyInput{})
				if err == nil && i < nRotated {
					_, err = c.RotateKeyOnDemand(ctx, &kms.RotateKeyOnDemandInput{KeyId: ck.KeyMetadata.KeyId})
				}
				var enc *kms.EncryptOutput
				plain := fmt.Sprint("seeded ", i)
				if err == nil {
					enc, err = c.Encrypt(ctx, &kms.EncryptInput{KeyId: ck.KeyMetadata.KeyId, Plaintext: []byte(plain)})
				}
				if err != nil {
					seedErr.Store(err)
					return
				}
				mu.Lock()
				id := aws.ToString(ck.KeyMetadata.KeyId)
				cts[id] = keyCT{enc.CiphertextBlob, plain}
				keyIDs = append(keyIDs, id)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if err := seedErr.Load(); err != nil {
		t.Fatalf("seeding: %v", err)
	}
	for i := range nSecrets {
		name, value := fmt.Sprint("rotate/secret-", i), fmt.Sprint("value ", i)
		if _, err := nodes[i%2].sm().CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String(name), SecretString: aws.String(value)}); err != nil {
			t.Fatalf("CreateSecret: %v", err)
		}
		secrets[name] = value
	}
	t.Logf("two nodes started and %d materials made in %v", nKeys+nRotated, time.Since(t0).Round(time.Millisecond))
	before := sealedCounts(t, conn)
	if before[oldID] < 300 || len(before) != 1 {
		t.Fatalf("materials by root key before the rotation = %v, want at least 300 under %s only", before, oldID)
	}

	// Hold one material in the middle of the rotation's order: its first
	// batch commits, a later one waits on the row lock. (The outer SELECT
	// locks just that row; one with OFFSET would lock every row it skips.)
	holdConn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer holdConn.Close(ctx)
	hold, err := holdConn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer hold.Rollback(ctx)
	var holdPID uint32
	if err := hold.QueryRow(ctx, "SELECT pg_backend_pid()").Scan(&holdPID); err != nil {
		t.Fatal(err)
	}
	var heldID string
	if err := hold.QueryRow(ctx, "SELECT id FROM records WHERE kind = 'kms.material' AND (account, region, id) = "+
		"(SELECT account, region, id FROM records WHERE kind = 'kms.material' ORDER BY account, region, id OFFSET 150 LIMIT 1) FOR UPDATE").Scan(&heldID); err != nil {
		t.Fatal(err)
	}
	var heldRows int
	if err := conn.QueryRow(ctx, "SELECT (SELECT count(*) FROM records WHERE kind = 'kms.material') - "+
		"(SELECT count(*) FROM (SELECT 1 FROM records WHERE kind = 'kms.material' FOR UPDATE SKIP LOCKED) s)").Scan(&heldRows); err != nil {
		t.Fatal(err)
	}
	if heldRows != 1 {
		t.Fatalf("the test holds %d material rows, want 1", heldRows)
	}
	// The materials there before the rotation, to tell its batches from the
	// keys the clients make (sealed under the new key once it has begun).
	var seeded []string
	rows, err := conn.Query(ctx, "SELECT id FROM records WHERE kind = 'kms.material'")
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			t.Fatal(err)
		}
		seeded = append(seeded, id)
	}
	if rows.Err() != nil || len(seeded) != before[oldID] {
		t.Fatalf("read %d seeded material ids (%v), want %d", len(seeded), rows.Err(), before[oldID])
	}
	resealed := func() (moved, left int) {
		t.Helper()
		err := conn.QueryRow(ctx, "SELECT count(*) FILTER (WHERE encode(substring(sealed from 5 for 8), 'hex') = $2), "+
			"count(*) FILTER (WHERE encode(substring(sealed from 5 for 8), 'hex') <> $2) "+
			"FROM records WHERE kind = 'kms.material' AND id = ANY($1)", seeded, newID).Scan(&moved, &left)
		if err != nil {
			t.Fatal(err)
		}
		return moved, left
	}

	// The operator puts the new key beside every node's root key file
	// while they serve, and beside the copy the rotation runs with.
	for _, node := range []string{"node1", "node2", "ops"} {
		writeKey(t, keyFile(node)+".next", newKey)
	}

	// Clients through both nodes, until the rotation is over.
	var served, failed atomic.Int64
	var failures []string
	fail := func(what string, err error) {
		failed.Add(1)
		mu.Lock()
		if len(failures) < 10 {
			failures = append(failures, fmt.Sprintf("%s: %v", what, err))
		}
		mu.Unlock()
	}
	stop := make(chan struct{})
	var loop sync.WaitGroup
	secretNames := make([]string, 0, len(secrets))
	for name := range secrets {
		secretNames = append(secretNames, name)
	}
	for w := range 4 {
		loop.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				a, b := nodes[(w+i)%2], nodes[(w+i+1)%2]
				mu.Lock()
				id := keyIDs[(w*97+i*31)%len(keyIDs)]
				seeded := cts[id]
				mu.Unlock()
				dec, err := a.kms().Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: seeded.ct})
				if err != nil || string(dec.Plaintext) != seeded.plain {
					fail("Decrypt "+id, err)
				}
				enc, err := a.kms().Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String(id), Plaintext: []byte("loop")})
				if err != nil {
					fail("Encrypt "+id, err)
				} else if dec, err := b.kms().Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: enc.CiphertextBlob}); err != nil || string(dec.Plaintext) != "loop" {
					fail("Decrypt on the other node "+id, err)
				}
				name := secretNames[(w+i)%len(secretNames)]
				if v, err := b.sm().GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(name)}); err != nil || aws.ToString(v.SecretString) != secrets[name] {
					fail("GetSecretValue "+name, err)
				}
				if i%4 == 0 {
					// A key made now is sealed under whichever key the
					// store's marker names; the other node must open it.
					ck, err := a.kms().CreateKey(ctx, &kms.CreateKeyInput{})
					if err != nil {
						fail("CreateKey", err)
						continue
					}
					newID := aws.ToString(ck.KeyMetadata.KeyId)
					plain := fmt.Sprint("made during the rotation ", w, " ", i)
					enc, err := b.kms().Encrypt(ctx, &kms.EncryptInput{KeyId: ck.KeyMetadata.KeyId, Plaintext: []byte(plain)})
					if err != nil {
						fail("Encrypt under a new key on the other node", err)
						continue
					}
					mu.Lock()
					cts[newID] = keyCT{enc.CiphertextBlob, plain}
					keyIDs = append(keyIDs, newID)
					mu.Unlock()
				}
				served.Add(1)
			}
		})
	}
	stopLoop := func() {
		select {
		case <-stop:
		default:
			close(stop)
			loop.Wait()
		}
	}
	defer stopLoop()

	rotateCmd := func() *exec.Cmd {
		return exec.Command(keyfortBinary(t), "rootkey", "rotate", "--store", dsn,
			"--root-key-file", keyFile("ops"), "--data", filepath.Join(work, "ops", "data"), "--log-level", "error")
	}
	first := rotateCmd()
	var firstOut, firstErr bytes.Buffer
	first.Stdout, first.Stderr = &firstOut, &firstErr
	rotStart := time.Now()
	servedBefore := served.Load()
	if err := first.Start(); err != nil {
		t.Fatal(err)
	}
	firstDone := make(chan error, 1)
	go func() { firstDone <- first.Wait() }()
	// Wait until the rotation waits on the held row: the batches before it
	// have committed.
	deadline := time.Now().Add(20 * time.Second)
	for {
		var waiting int
		if err := conn.QueryRow(ctx, "SELECT count(*) FROM pg_stat_activity WHERE $1 = ANY(pg_blocking_pids(pid))", holdPID).Scan(&waiting); err != nil {
			t.Fatal(err)
		}
		if waiting > 0 {
			break
		}
		select {
		case err := <-firstDone:
			t.Fatalf("rotate ended before it reached the held row: %v\n%s", err, firstErr.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("rotate did not reach the held row in 20s; materials by root key: %v", sealedCounts(t, conn))
		}
		time.Sleep(10 * time.Millisecond)
	}
	if moved, left := resealed(); moved == 0 || left == 0 {
		t.Fatalf("while the rotation is held, %d of the materials there before it are re-sealed and %d not, want some of each", moved, left)
	}

	// A second rotation while the first holds the claim is refused.
	out, err := rotateCmd().CombinedOutput()
	wantRefusal := "keyfort: app: another root key rotation is running: a keyfort rootkey rotate from root key " + oldID + " to " + newID
	if err == nil || !strings.HasPrefix(string(out), wantRefusal) || strings.Count(string(out), "\n") != 1 {
		t.Errorf("second rotate while the first runs = %v, output %q; want one line starting %q", err, out, wantRefusal)
	}

	// The nodes serve the half-rotated store for a while.
	servedHeld := served.Load()
	time.Sleep(time.Second)
	if n := served.Load() - servedHeld; n < 10 {
		t.Errorf("only %d client rounds were served while the rotation was held", n)
	}
	if err := hold.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	released := time.Now()
	select {
	case err := <-firstDone:
		if err != nil {
			t.Fatalf("rotate = %v\n%s", err, firstErr.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("rotate did not finish within 30s of the lock's release")
	}
	rotTime, afterRelease := time.Since(rotStart), time.Since(released)
	time.Sleep(200 * time.Millisecond) // some rounds after the rotation, too
	stopLoop()
	t.Logf("rotation %v (%v after the held batch was released), %d client rounds during it, %d in all, %d failed",
		rotTime.Round(time.Millisecond), afterRelease.Round(time.Millisecond), served.Load()-servedBefore, served.Load(), failed.Load())

	if n := failed.Load(); n != 0 {
		t.Errorf("%d requests failed during the rotation, e.g.:\n%s", n, strings.Join(failures, "\n"))
	}
	if got, want := firstOut.String(), fmt.Sprintf(" records from root key %s to %s\n", oldID, newID); !strings.HasPrefix(got, "re-sealed ") || !strings.Contains(got, want) {
		t.Errorf("rotate printed %q, want \"re-sealed N%s\"", got, want)
	}

	// Every material and the marker are under the new key.
	if after := sealedCounts(t, conn); after[oldID] != 0 || after[newID] < len(keyIDs) {
		t.Errorf("materials by root key after the rotation = %v, want none under %s and at least %d under %s", after, oldID, len(keyIDs), newID)
	}
	var markerKey string
	var claims int
	if err := conn.QueryRow(ctx, "SELECT encode(substring(sealed from 5 for 8), 'hex') FROM records WHERE kind = 'keyfort.rootkey' AND id = 'marker'").Scan(&markerKey); err != nil || markerKey != newID {
		t.Errorf("root key marker sealed under %q (%v), want %s", markerKey, err, newID)
	}
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM records WHERE kind = 'keyfort.rootkey' AND id = 'rotation'").Scan(&claims); err != nil || claims != 0 {
		t.Errorf("rotation claims left after the rotation: %d (%v), want 0", claims, err)
	}

	// The operator makes the new key every node's root key; nodes restart
	// holding only it.
	for i, node := range []string{"node1", "node2"} {
		nodes[i].stop(t)
		// It started before the new key was there, and read it when it met
		// it (its logs are complete once it has exited).
		if !strings.Contains(nodes[i].logs.String(), "next root key loaded while serving") {
			t.Errorf("%s did not log that it loaded the next root key while serving", node)
		}
		writeKey(t, keyFile(node), newKey)
		if err := os.Remove(keyFile(node) + ".next"); err != nil {
			t.Fatal(err)
		}
		nodes[i] = start(node)
	}
	i := 0
	for id, want := range cts {
		n := nodes[i%2]
		i++
		dec, err := n.kms().Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: want.ct})
		if err != nil || string(dec.Plaintext) != want.plain {
			t.Fatalf("Decrypt under key %s after the restart with the new key = %v", id, err)
		}
	}
	for name, value := range secrets {
		n := nodes[i%2]
		i++
		v, err := n.sm().GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(name)})
		if err != nil || aws.ToString(v.SecretString) != value {
			t.Fatalf("GetSecretValue %s after the restart with the new key = %v", name, err)
		}
	}

	// A node with another key (here the old one) is refused, naming both.
	old := filepath.Join(work, "node3", "keys", "root.key")
	writeKey(t, old, oldKey)
	refused := exec.Command(keyfortBinary(t), "serve", "--listen", freePort(t), "--data", filepath.Join(work, "node3", "data"),
		"--store", dsn, "--root-key-file", old, "--log-level", "error")
	out, err = refused.CombinedOutput()
	wantLine := fmt.Sprintf("keyfort: app: wrong root key: the store is sealed under root key %s, but the root key from --root-key-file %s is %s; start with the root key the store was sealed with\n", newID, old, oldID)
	if err == nil || string(out) != wantLine {
		t.Errorf("node with the old key after the rotation = %v, output %q; want %q", err, out, wantLine)
	}
}
