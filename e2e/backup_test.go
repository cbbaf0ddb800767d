package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/keyfort/keyfort/internal/envelope"
)

// runKeyfort runs the binary with args and returns its stdout, stderr and
// exit status.
func runKeyfort(t *testing.T, args ...string) (stdout, stderr string, status int) {
	t.Helper()
	cmd := exec.Command(keyfortBinary(t), args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		return out.String(), errb.String(), ee.ExitCode()
	}
	if err != nil {
		t.Fatalf("run keyfort %v: %v", args, err)
	}
	return out.String(), errb.String(), 0
}

// wantRefused asserts a command failed with status 1 and one error line
// (after any progress lines) containing want.
func wantRefused(t *testing.T, what, stderr string, status int, want string) {
	t.Helper()
	lines := strings.Split(strings.TrimSpace(stderr), "\n")
	var errs []string
	for _, l := range lines {
		if strings.HasPrefix(l, "keyfort: ") {
			errs = append(errs, l)
		}
	}
	if status != 1 || len(errs) != 1 || !strings.Contains(errs[0], want) {
		t.Errorf("%s: status %d, stderr:\n%s\nwant status 1 and one error line containing %q", what, status, stderr, want)
	}
}

// TestBackupRestore backs up a serving store while writers keep writing,
// restores it into a new data directory, and checks that the restored
// server answers every write acknowledged before the backup began as the
// original did (ciphertexts, signatures, secret versions, aliases, grants,
// tags) and holds nothing half-written; then the refusals: a restore into
// a non-empty directory, a damaged backup, the wrong root key.
func TestBackupRestore(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the binary; skipped in -short mode")
	}
	dir := t.TempDir()
	p := startBinary(t, dir)
	k, sm := p.kms(), p.sm()
	ctx := ctxT(t)

	// What the backup must hold.
	sym := createKey(t, k, &kms.CreateKeyInput{Tags: []types.Tag{{TagKey: aws.String("team"), TagValue: aws.String("blue")}}})
	_, err := k.CreateAlias(ctx, &kms.CreateAliasInput{AliasName: aws.String("alias/backup-sym"), TargetKeyId: sym.KeyId})
	mustNoErr(t, err, "CreateAlias")
	var cts [][]byte
	for i := range 3 {
		out, err := k.Encrypt(ctx, &kms.EncryptInput{KeyId: sym.KeyId, Plaintext: []byte(fmt.Sprint("plaintext ", i)),
			EncryptionContext: map[string]string{"n": strconv.Itoa(i)}})
		mustNoErr(t, err, "Encrypt")
		cts = append(cts, out.CiphertextBlob)
	}
	_, err = k.RotateKeyOnDemand(ctx, &kms.RotateKeyOnDemandInput{KeyId: sym.KeyId})
	mustNoErr(t, err, "RotateKeyOnDemand")
	after, err := k.Encrypt(ctx, &kms.EncryptInput{KeyId: sym.KeyId, Plaintext: []byte("after rotation")})
	mustNoErr(t, err, "Encrypt after rotation")
	cts = append(cts, after.CiphertextBlob)

	rsa := createKey(t, k, &kms.CreateKeyInput{KeySpec: types.KeySpecRsa2048, KeyUsage: types.KeyUsageTypeSignVerify})
	msg := []byte("signed before the backup")
	sig, err := k.Sign(ctx, &kms.SignInput{KeyId: rsa.KeyId, Message: msg, SigningAlgorithm: types.SigningAlgorithmSpecRsassaPssSha256})
	mustNoErr(t, err, "Sign")
	pub, err := k.GetPublicKey(ctx, &kms.GetPublicKeyInput{KeyId: rsa.KeyId})
	mustNoErr(t, err, "GetPublicKey")

	grant, err := k.CreateGrant(ctx, &kms.CreateGrantInput{KeyId: sym.KeyId, Name: aws.String("backup-grant"),
		GranteePrincipal: aws.String("arn:aws:iam::123456789012:role/app"), Operations: []types.GrantOperation{types.GrantOperationDecrypt}})
	mustNoErr(t, err, "CreateGrant")

	type version struct{ name, id, value string }
	var versions []version
	for s := range 2 {
		name := fmt.Sprintf("app/backup-%d", s)
		out, err := sm.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String(name), SecretString: aws.String(name + " v0")})
		mustNoErr(t, err, "CreateSecret")
		versions = append(versions, version{name, aws.ToString(out.VersionId), name + " v0"})
		for v := 1; v <= 3; v++ {
			val := fmt.Sprintf("%s v%d", name, v)
			out, err := sm.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{SecretId: aws.String(name), SecretString: aws.String(val)})
			mustNoErr(t, err, "PutSecretValue")
			versions = append(versions, version{name, aws.ToString(out.VersionId), val})
		}
	}
	_, err = sm.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String("busy"), SecretString: aws.String("busy start")})
	mustNoErr(t, err, "CreateSecret busy")

	// Writers keep writing through the backup; each write is noted with
	// the time its answer came, so it is known to be acknowledged before
	// the backup began or not.
	type ack struct {
		at     time.Time
		keyID  string  // CreateKey
		secret version // PutSecretValue on "busy"
	}
	var (
		mu    sync.Mutex
		acks  []ack
		sent  = map[string]bool{} // every value sent to "busy"
		count atomic.Int64
	)
	wctx, stopWriters := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; wctx.Err() == nil; i++ {
				if w%2 == 0 {
					out, err := k.CreateKey(wctx, &kms.CreateKeyInput{Description: aws.String(fmt.Sprint("busy ", w, " ", i))})
					if err == nil {
						mu.Lock()
						acks = append(acks, ack{at: time.Now(), keyID: aws.ToString(out.KeyMetadata.KeyId)})
						mu.Unlock()
						count.Add(1)
					}
					continue
				}
				val := fmt.Sprintf("busy %d %d", w, i)
				mu.Lock()
				sent[val] = true
				mu.Unlock()
				out, err := sm.PutSecretValue(wctx, &secretsmanager.PutSecretValueInput{SecretId: aws.String("busy"), SecretString: aws.String(val)})
				if err == nil {
					mu.Lock()
					acks = append(acks, ack{at: time.Now(), secret: version{"busy", aws.ToString(out.VersionId), val}})
					mu.Unlock()
					count.Add(1)
				}
			}
		}()
	}
	for deadline := time.Now().Add(20 * time.Second); count.Load() < 40 && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	file := filepath.Join(t.TempDir(), "keyfort.backup")
	began := time.Now()
	out, errOut, status := runKeyfort(t, "backup", file, "--data", dir)
	took := time.Since(began)
	writesDuring := count.Load()
	time.Sleep(100 * time.Millisecond) // writes answered after the backup too
	stopWriters()
	wg.Wait()
	if status != 0 {
		t.Fatalf("keyfort backup: status %d\n%s%s", status, out, errOut)
	}
	fi, err := os.Stat(file)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("backup file: %v, %v; want mode 0600", fi, err)
	}
	rootKey, _, err := envelope.LoadRootKey(envelope.RootKeyOptions{File: filepath.Join(dir, "root.key")})
	mustNoErr(t, err, "load the root key")
	if !strings.Contains(out, fmt.Sprintf("root key %x", rootKey.ID())) || !strings.Contains(errOut, "backup: copying") {
		t.Errorf("keyfort backup output:\n%s%s\nwant the root key id on stdout and progress on stderr", out, errOut)
	}
	t.Logf("backup of a serving store with %d writes acknowledged meanwhile: %s in %v\n%s", writesDuring, formatSize(fi.Size()), took.Round(time.Millisecond), out)

	// No overwrite without --force.
	_, errOut, status = runKeyfort(t, "backup", file, "--data", dir)
	wantRefused(t, "backup onto an existing file", errOut, status, "--force")

	// The original's answers, to compare.
	origAliases := aliasTargets(t, k)
	origGrants, err := k.ListGrants(ctx, &kms.ListGrantsInput{KeyId: sym.KeyId})
	mustNoErr(t, err, "ListGrants")
	p.stop(t)

	restored := filepath.Join(t.TempDir(), "restored")
	out, errOut, status = runKeyfort(t, "restore", file, "--data", restored)
	if status != 0 || !strings.Contains(out, fmt.Sprintf("root key %x", rootKey.ID())) {
		t.Fatalf("keyfort restore: status %d\n%s%s", status, out, errOut)
	}
	r := startBinary(t, restored, "KEYFORT_ROOT_KEY_FILE="+filepath.Join(dir, "root.key"))
	rk, rsm := r.kms(), r.sm()

	for i, ct := range cts {
		out, err := rk.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: ct, EncryptionContext: map[string]string{"n": strconv.Itoa(i)}})
		if i == len(cts)-1 {
			out, err = rk.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: ct})
		}
		if err != nil || aws.ToString(out.KeyId) != aws.ToString(sym.Arn) {
			t.Errorf("restored Decrypt of ciphertext %d: %v", i, err)
		}
	}
	ver, err := rk.Verify(ctx, &kms.VerifyInput{KeyId: rsa.KeyId, Message: msg, Signature: sig.Signature, SigningAlgorithm: types.SigningAlgorithmSpecRsassaPssSha256})
	if err != nil || !ver.SignatureValid {
		t.Errorf("restored Verify of a signature made before the backup: %v", err)
	}
	rpub, err := rk.GetPublicKey(ctx, &kms.GetPublicKeyInput{KeyId: rsa.KeyId})
	if err != nil || !bytes.Equal(rpub.PublicKey, pub.PublicKey) {
		t.Errorf("restored GetPublicKey differs: %v", err)
	}
	if got := aliasTargets(t, rk); !equalMaps(got, origAliases) {
		t.Errorf("restored ListAliases = %v, want %v", got, origAliases)
	}
	gr, err := rk.ListGrants(ctx, &kms.ListGrantsInput{KeyId: sym.KeyId})
	mustNoErr(t, err, "restored ListGrants")
	if len(gr.Grants) != len(origGrants.Grants) || len(gr.Grants) != 1 || aws.ToString(gr.Grants[0].GrantId) != aws.ToString(grant.GrantId) ||
		!slices.Equal(gr.Grants[0].Operations, origGrants.Grants[0].Operations) {
		t.Errorf("restored ListGrants = %+v, want %+v", gr.Grants, origGrants.Grants)
	}
	tags, err := rk.ListResourceTags(ctx, &kms.ListResourceTagsInput{KeyId: sym.KeyId})
	if err != nil || len(tags.Tags) != 1 || aws.ToString(tags.Tags[0].TagValue) != "blue" {
		t.Errorf("restored ListResourceTags = %v, %v", tags, err)
	}
	for _, v := range versions {
		out, err := rsm.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(v.name), VersionId: aws.String(v.id)})
		if err != nil || aws.ToString(out.SecretString) != v.value {
			t.Errorf("restored GetSecretValue(%s, %s) = %v, want %q", v.name, v.id, err, v.value)
		}
	}

	// Every write acknowledged before the backup began is there; every
	// later one is there whole or not at all.
	present := map[string]bool{}
	pager := kms.NewListKeysPaginator(rk, &kms.ListKeysInput{})
	for pager.HasMorePages() {
		page, err := pager.NextPage(ctx)
		mustNoErr(t, err, "restored ListKeys")
		for _, e := range page.Keys {
			present[aws.ToString(e.KeyId)] = true
		}
	}
	inBusy := versionValues(t, ctx, rsm, "busy", "restored")
	before, later := 0, 0
	for _, a := range acks {
		if !a.at.Before(began) {
			later++
			continue
		}
		before++
		if a.keyID != "" && !present[a.keyID] {
			t.Errorf("key %s, acknowledged before the backup began, is not in the restored store", a.keyID)
		}
		if a.secret.id != "" && inBusy[a.secret.id] != a.secret.value {
			t.Errorf("version %s of busy (%q), acknowledged before the backup began, reads %q from the restored store", a.secret.id, a.secret.value, inBusy[a.secret.id])
		}
	}
	for id := range present {
		md, err := rk.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String(id)})
		if err != nil {
			t.Errorf("restored key %s is listed but DescribeKey fails: %v", id, err)
			continue
		}
		if md.KeyMetadata.KeyManager != types.KeyManagerTypeCustomer || md.KeyMetadata.KeyUsage != types.KeyUsageTypeEncryptDecrypt {
			continue // aws/secretsmanager answers only Secrets Manager; the RSA key was checked above
		}
		if _, err := rk.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String(id), Plaintext: []byte("x")}); err != nil {
			t.Errorf("restored key %s is half there: Encrypt %v", id, err)
		}
	}
	for id, val := range inBusy {
		if val != "busy start" && !sent[val] {
			t.Errorf("restored version %s of busy holds %q, which no one wrote", id, val)
		}
	}
	t.Logf("restored: %d keys, %d versions of busy; %d writes acknowledged before the backup began (all there), %d after (whole or absent)", len(present), len(inBusy), before, later)
	if before < 20 {
		t.Errorf("only %d writes acknowledged before the backup: the test means little", before)
	}

	// A restored data directory starts a new audit trail.
	oldNode, _ := os.ReadFile(filepath.Join(dir, "audit", ".node"))
	newNode, err := os.ReadFile(filepath.Join(restored, "audit", ".node"))
	if err != nil || bytes.Equal(oldNode, newNode) {
		t.Errorf("restored audit node %q (%v), original %q: want a new audit trail", newNode, err, oldNode)
	}
	r.stop(t)

	// Refusals, each leaving nothing behind.
	_, errOut, status = runKeyfort(t, "restore", file, "--data", restored)
	wantRefused(t, "restore into a non-empty data directory", errOut, status, "is not empty")
	other := t.TempDir()
	if err := os.WriteFile(filepath.Join(other, "notes.txt"), []byte("mine"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, errOut, status = runKeyfort(t, "restore", file, "--data", other)
	wantRefused(t, "restore into a directory holding a file", errOut, status, "is not empty (it holds notes.txt)")
	if des, _ := os.ReadDir(other); len(des) != 1 {
		t.Errorf("a refused restore left %d entries in the directory, want only notes.txt", len(des))
	}

	orig, err := os.ReadFile(file)
	mustNoErr(t, err, "read the backup")
	damaged := bytes.Clone(orig)
	// A bit of every sealed record's nonce (and of the stale copies SQLite
	// leaves in pages' unused space): structure intact, only the digest
	// sees it.
	flips := 0
	for i := 0; ; {
		j := bytes.Index(damaged[i:], []byte(envelope.Magic))
		if j < 0 || i+j+20 >= len(damaged) {
			break
		}
		damaged[i+j+20] ^= 0x01
		i += j + 21
		flips++
	}
	if flips == 0 {
		t.Fatal("no sealed record in the backup file")
	}
	for name, b := range map[string][]byte{"damaged": damaged, "truncated": orig[:len(orig)/3]} {
		bad := filepath.Join(t.TempDir(), name+".backup")
		mustNoErr(t, os.WriteFile(bad, b, 0o600), "write "+name)
		target := filepath.Join(t.TempDir(), "new")
		_, errOut, status = runKeyfort(t, "restore", bad, "--data", target)
		wantRefused(t, "restore of a "+name+" backup", errOut, status, "not a usable Keyfort backup")
		if _, err := os.Stat(target); !os.IsNotExist(err) {
			t.Errorf("a refused restore of a %s backup left %s behind (%v)", name, target, err)
		}
	}

	// The wrong root key: the restored server refuses to start.
	wrong := filepath.Join(t.TempDir(), "wrong.key")
	newKey, err := envelope.GenerateRootKey(rand.Reader)
	mustNoErr(t, err, "GenerateRootKey")
	mustNoErr(t, envelope.WriteRootKeyFile(wrong, newKey), "write the wrong key")
	third := filepath.Join(t.TempDir(), "third")
	if _, errOut, status := runKeyfort(t, "restore", file, "--data", third); status != 0 {
		t.Fatalf("restore: %s", errOut)
	}
	cmd := exec.Command(keyfortBinary(t), "serve", "--data", third, "--listen", freePort(t), "--root-key-file", wrong)
	outb, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(outb), "wrong root key") {
		t.Errorf("serve of a restored store with the wrong root key: %v\n%s\nwant a refusal", err, outb)
	}
	if _, err := os.Stat(filepath.Join(third, "keyfort.db")); err != nil {
		t.Errorf("the refused start touched the restored store: %v", err)
	}
}

// aliasTargets returns ListAliases as alias name -> target key id.
func aliasTargets(t *testing.T, c *kms.Client) map[string]string {
	t.Helper()
	m := map[string]string{}
	pager := kms.NewListAliasesPaginator(c, &kms.ListAliasesInput{})
	for pager.HasMorePages() {
		page, err := pager.NextPage(ctxT(t))
		mustNoErr(t, err, "ListAliases")
		for _, a := range page.Aliases {
			m[aws.ToString(a.AliasName)] = aws.ToString(a.TargetKeyId)
		}
	}
	return m
}

func equalMaps(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// fillStore makes n keys and n secrets (named size/<i>, 64-byte values)
// through p with 8 concurrent clients.
func fillStore(t *testing.T, p *proc, n int) {
	t.Helper()
	k, sm := p.kms(), p.sm()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	var next atomic.Int64
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := int(next.Add(1)) - 1; i < n; i = int(next.Add(1)) - 1 {
				if _, err := k.CreateKey(ctx, &kms.CreateKeyInput{}); err != nil {
					t.Errorf("CreateKey: %v", err)
					return
				}
				if _, err := sm.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String(fmt.Sprint("size/", i)), SecretString: aws.String(strings.Repeat("s", 64))}); err != nil {
					t.Errorf("CreateSecret: %v", err)
					return
				}
			}
		}()
	}
	wg.Wait()
}

// versionValues reads the value of every version of secret (deprecated
// ones too) through sm, by version id; a version that does not read fails
// the test, named with what (the copy it was read from).
func versionValues(t *testing.T, ctx context.Context, sm *secretsmanager.Client, secret, what string) map[string]string {
	t.Helper()
	values := map[string]string{}
	pager := secretsmanager.NewListSecretVersionIdsPaginator(sm, &secretsmanager.ListSecretVersionIdsInput{SecretId: aws.String(secret), IncludeDeprecated: aws.Bool(true)})
	for pager.HasMorePages() {
		page, err := pager.NextPage(ctx)
		mustNoErr(t, err, what+" ListSecretVersionIds")
		for _, v := range page.Versions {
			out, err := sm.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(secret), VersionId: v.VersionId})
			if err != nil {
				t.Errorf("%s: version %s of %s does not read: %v", what, aws.ToString(v.VersionId), secret, err)
				continue
			}
			values[aws.ToString(v.VersionId)] = aws.ToString(out.SecretString)
		}
	}
	return values
}

func formatSize(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }

// TestBackupSize measures backup and restore of a store of N keys and N
// secrets (KEYFORT_BACKUP_SIZE=N; skipped without it).
func TestBackupSize(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("KEYFORT_BACKUP_SIZE"))
	if n <= 0 {
		t.Skip("set KEYFORT_BACKUP_SIZE=N to measure a backup of N keys and N secrets")
	}
	dir := t.TempDir()
	p := startBinary(t, dir)
	began := time.Now()
	fillStore(t, p, n)
	t.Logf("made %d keys and %d secrets in %v", n, n, time.Since(began).Round(time.Millisecond))
	db, _ := os.Stat(filepath.Join(dir, "keyfort.db"))
	wal, _ := os.Stat(filepath.Join(dir, "keyfort.db-wal"))
	file := filepath.Join(t.TempDir(), "size.backup")
	start := time.Now()
	out, errOut, status := runKeyfort(t, "backup", file, "--data", dir)
	took := time.Since(start)
	if status != 0 {
		t.Fatalf("backup: %s%s", out, errOut)
	}
	fi, _ := os.Stat(file)
	start = time.Now()
	out2, errOut2, status := runKeyfort(t, "restore", file, "--data", filepath.Join(t.TempDir(), "r"))
	if status != 0 {
		t.Fatalf("restore: %s%s", out2, errOut2)
	}
	t.Logf("live keyfort.db %s (+ WAL %s); backup %s in %v; restore in %v\n%s%s%s", formatSize(db.Size()), formatSize(wal.Size()),
		formatSize(fi.Size()), took.Round(time.Millisecond), time.Since(start).Round(time.Millisecond), out, errOut, errOut2)
	p.stop(t)
}
