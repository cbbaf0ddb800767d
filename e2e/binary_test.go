package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/cloudtrail"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"

	"github.com/keyfort/keyfort/internal/keyfortest"
)

var buildOnce struct {
	sync.Once
	path string
	err  error
}

// keyfortBinary returns the keyfort binary: $KEYFORT_BINARY, or one built
// once per test run.
func keyfortBinary(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("KEYFORT_BINARY"); p != "" {
		return p
	}
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "keyfort-bin-")
		if err != nil {
			buildOnce.err = err
			return
		}
		buildOnce.path = filepath.Join(dir, "keyfort")
		cmd := exec.Command("go", "build", "-o", buildOnce.path, "../cmd/keyfort")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			buildOnce.err = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildOnce.err != nil {
		t.Fatalf("building keyfort: %v", buildOnce.err)
	}
	return buildOnce.path
}

func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// proc is a keyfort process started from the binary.
type proc struct {
	cmd  *exec.Cmd
	addr string
	logs *bytes.Buffer
}

func startBinary(t *testing.T, dataDir string, extraEnv ...string) *proc {
	t.Helper()
	p, err := launchBinary(keyfortBinary(t), freePort(t), dataDir, []string{"--log-level", "debug"}, extraEnv)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.cleanup)
	return p
}

// launchBinary starts `keyfort serve --listen addr --data dataDir` with args
// and the environment plus env, and waits up to 20 s for GET /health to
// answer 200. It may run outside the test's goroutine; on error the process
// is gone and the error holds its logs.
func launchBinary(bin, addr, dataDir string, args, env []string) (*proc, error) {
	logs := &bytes.Buffer{}
	cmd := exec.Command(bin, append([]string{"serve", "--listen", addr, "--data", dataDir}, args...)...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout = logs
	cmd.Stderr = logs
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start keyfort: %w", err)
	}
	p := &proc{cmd: cmd, addr: addr, logs: logs}
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		resp, err := http.Get("http://" + addr + "/health")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return p, nil
			}
		}
	}
	p.cleanup() // the logs are read once the process is gone
	return nil, fmt.Errorf("keyfort did not become healthy on %s; logs:\n%s", addr, logs.String())
}

// cleanup kills the process if it has not been waited for.
func (p *proc) cleanup() {
	if p.cmd.ProcessState == nil {
		_ = p.cmd.Process.Kill()
		_ = p.cmd.Wait()
	}
}

func (p *proc) kms() *kms.Client { return p.kmsIn("us-east-1") }

// kmsIn is a KMS client of the binary signing for region.
func (p *proc) kmsIn(region string) *kms.Client {
	return kms.New(kms.Options{
		Region:       region,
		BaseEndpoint: aws.String("http://" + p.addr),
		Credentials:  credentials.NewStaticCredentialsProvider("AKIDEXAMPLE", "secret", ""),
		Retryer:      keyfortest.ClosedConnRetryer(),
	})
}

func (p *proc) cloudtrail() *cloudtrail.Client {
	return cloudtrail.New(cloudtrail.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String("http://" + p.addr),
		Credentials:  credentials.NewStaticCredentialsProvider("AKIDEXAMPLE", "secret", ""),
		Retryer:      keyfortest.ClosedConnRetryer(),
	})
}

func (p *proc) kill9(t *testing.T) {
	t.Helper()
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	_ = p.cmd.Wait()
}

func (p *proc) stop(t *testing.T) {
	t.Helper()
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = p.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		_ = p.cmd.Process.Kill()
		t.Errorf("keyfort did not stop within 15s of SIGTERM")
	}
}

// TestKill9Durability kills the server with SIGKILL in the middle of a
// stream of CreateKey, Encrypt and TagResource calls and checks, after a
// restart, that every acknowledged write is there: each created key, each
// returned ciphertext (it decrypts), and the last acknowledged value of each
// tag.
func TestKill9Durability(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the binary; skipped in -short mode")
	}
	dir := t.TempDir()
	p := startBinary(t, dir)
	c := p.kms()

	type enc struct {
		blob []byte
		pt   []byte
	}
	// tagRef names a tag: worker w writes only tag key "w<w>", in turn on the
	// first key (which all workers tag at once) and on whichever key was
	// created last, and sends a write only after the previous one was
	// answered, so the writes of one tag are ordered.
	type tagRef struct{ keyID, tagKey string }
	// tagWrite is one TagResource call: acked when it answered 200. A write
	// with no answer (in flight at the kill) or with an error may or may not
	// have been applied.
	type tagWrite struct {
		value string
		acked bool
	}
	var (
		mu      sync.Mutex
		keys    []string
		encs    []enc
		writes  = map[tagRef][]tagWrite{} // in the order the worker sent them
		tagAcks int
	)
	base := createKeyBin(t, c)
	mu.Lock()
	keys = append(keys, base)
	mu.Unlock()

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	var wg sync.WaitGroup
	for w := range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ctx.Err() == nil && i < 5000; i++ {
				switch (w + i) % 3 {
				case 0:
					out, err := c.CreateKey(ctx, &kms.CreateKeyInput{})
					if err == nil {
						mu.Lock()
						keys = append(keys, aws.ToString(out.KeyMetadata.KeyId))
						mu.Unlock()
					}
				case 1:
					pt := []byte(fmt.Sprintf("w%d-i%d", w, i))
					out, err := c.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String(base), Plaintext: pt})
					if err == nil {
						mu.Lock()
						encs = append(encs, enc{out.CiphertextBlob, pt})
						mu.Unlock()
					}
				case 2:
					mu.Lock()
					ref := tagRef{base, fmt.Sprintf("w%d", w)}
					if i%2 == 0 {
						ref.keyID = keys[len(keys)-1]
					}
					mu.Unlock()
					v := fmt.Sprintf("v%d-%d", w, i)
					_, err := c.TagResource(ctx, &kms.TagResourceInput{KeyId: aws.String(ref.keyID), Tags: []types.Tag{{TagKey: aws.String(ref.tagKey), TagValue: aws.String(v)}}})
					mu.Lock()
					writes[ref] = append(writes[ref], tagWrite{v, err == nil})
					if err == nil {
						tagAcks++
					}
					mu.Unlock()
				}
			}
		}()
	}
	// Kill mid-stream, once each kind of write has been acknowledged enough
	// times for the checks to mean something (however slow the machine).
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		mu.Lock()
		n := min(len(keys), len(encs), tagAcks)
		mu.Unlock()
		if n >= 60 {
			break
		}
	}
	p.kill9(t)
	cancel()
	wg.Wait()

	p2 := startBinary(t, dir)
	c2 := p2.kms()
	vctx := ctxT(t)
	for _, id := range keys {
		if _, err := c2.DescribeKey(vctx, &kms.DescribeKeyInput{KeyId: aws.String(id)}); err != nil {
			t.Errorf("acknowledged key %s lost after kill -9: %v", id, err)
		}
	}
	for _, e := range encs {
		out, err := c2.Decrypt(vctx, &kms.DecryptInput{CiphertextBlob: e.blob})
		if err != nil || !bytes.Equal(out.Plaintext, e.pt) {
			t.Errorf("acknowledged ciphertext of %q does not decrypt after kill -9: %v", e.pt, err)
		}
	}

	// Every tag read back was written, and a tag with an acknowledged write
	// holds the last acknowledged value, or the value of a later write that
	// got no 200 (it may have been applied, once the acknowledged one was).
	read := map[tagRef]string{}
	for _, id := range keys {
		out, err := c2.ListResourceTags(vctx, &kms.ListResourceTagsInput{KeyId: aws.String(id)})
		if err != nil {
			t.Errorf("ListResourceTags %s: %v", id, err)
			continue
		}
		for _, tg := range out.Tags {
			read[tagRef{id, aws.ToString(tg.TagKey)}] = aws.ToString(tg.TagValue)
		}
	}
	acked, rewritten, onLater := 0, 0, 0
	for ref, got := range read {
		if len(writes[ref]) == 0 {
			t.Errorf("tag %s=%s on %s after kill -9, but no TagResource wrote that tag", ref.tagKey, got, ref.keyID)
		}
	}
	for ref, ws := range writes {
		last, n := -1, 0 // the last acknowledged write, how many were
		for i, w := range ws {
			if w.acked {
				last = i
				n++
			}
		}
		if n > 1 {
			rewritten++
		}
		allowed := map[string]bool{}
		if last >= 0 {
			allowed[ws[last].value] = true
			acked++
		}
		for _, w := range ws[last+1:] {
			allowed[w.value] = true // not acknowledged
		}
		got, ok := read[ref]
		switch {
		case !ok && last >= 0:
			t.Errorf("tag %s on %s lost after kill -9: its last acknowledged value was %s", ref.tagKey, ref.keyID, ws[last].value)
		case ok && !allowed[got]:
			want := "no acknowledged value"
			if last >= 0 {
				want = "last acknowledged " + ws[last].value
			}
			t.Errorf("tag %s on %s = %s after kill -9; %s, and %d later writes without an answer", ref.tagKey, ref.keyID, got, want, len(ws)-last-1)
		case ok && last >= 0 && got != ws[last].value:
			onLater++
		}
	}
	t.Logf("verified after kill -9: %d keys, %d ciphertexts, %d tag writes acknowledged on %d tags (%d written more than once; %d hold a later unanswered write)",
		len(keys), len(encs), tagAcks, acked, rewritten, onLater)
	if len(keys) < 30 || len(encs) < 30 || tagAcks < 30 {
		t.Errorf("too few acknowledged writes before the kill (%d keys, %d ciphertexts, %d tag writes) for the test to mean anything", len(keys), len(encs), tagAcks)
	}
	p2.stop(t)
}

func createKeyBin(t *testing.T, c *kms.Client) string {
	t.Helper()
	out, err := c.CreateKey(ctxT(t), &kms.CreateKeyInput{})
	mustNoErr(t, err, "CreateKey")
	return aws.ToString(out.KeyMetadata.KeyId)
}

// TestNoPlaintextAtRest scans the database, its WAL, the audit trail and the
// server's logs for plaintexts, data keys and random bytes the server handled.
func TestNoPlaintextAtRest(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the binary; skipped in -short mode")
	}
	dir := t.TempDir()
	p := startBinary(t, dir)
	c := p.kms()
	ctx := ctxT(t)
	var needles [][]byte
	marker := make([]byte, 16)
	_, _ = rand.Read(marker)
	secret := []byte("TOP-SECRET-PLAINTEXT-" + hex.EncodeToString(marker))
	needles = append(needles, secret)

	id := createKeyBin(t, c)
	enc, err := c.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String(id), Plaintext: secret})
	mustNoErr(t, err, "Encrypt")
	_, err = c.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: enc.CiphertextBlob})
	mustNoErr(t, err, "Decrypt")
	dk, err := c.GenerateDataKey(ctx, &kms.GenerateDataKeyInput{KeyId: aws.String(id), KeySpec: types.DataKeySpecAes256})
	mustNoErr(t, err, "GenerateDataKey")
	needles = append(needles, dk.Plaintext)
	rnd, err := c.GenerateRandom(ctx, &kms.GenerateRandomInput{NumberOfBytes: aws.Int32(32)})
	mustNoErr(t, err, "GenerateRandom")
	needles = append(needles, rnd.Plaintext)
	agree, err := c.CreateKey(ctx, &kms.CreateKeyInput{KeySpec: types.KeySpecEccNistP256, KeyUsage: types.KeyUsageTypeKeyAgreement})
	mustNoErr(t, err, "CreateKey KEY_AGREEMENT")
	agreePub, err := c.GetPublicKey(ctx, &kms.GetPublicKeyInput{KeyId: agree.KeyMetadata.KeyId})
	mustNoErr(t, err, "GetPublicKey")
	shared, err := c.DeriveSharedSecret(ctx, &kms.DeriveSharedSecretInput{KeyId: agree.KeyMetadata.KeyId, KeyAgreementAlgorithm: types.KeyAgreementAlgorithmSpecEcdh, PublicKey: agreePub.PublicKey})
	mustNoErr(t, err, "DeriveSharedSecret")
	needles = append(needles, shared.SharedSecret)
	pair, err := c.GenerateDataKeyPair(ctx, &kms.GenerateDataKeyPairInput{KeyId: aws.String(id), KeyPairSpec: types.DataKeyPairSpecEccNistP256})
	mustNoErr(t, err, "GenerateDataKeyPair")
	needles = append(needles, pair.PrivateKeyPlaintext)
	without, err := c.GenerateDataKeyPairWithoutPlaintext(ctx, &kms.GenerateDataKeyPairWithoutPlaintextInput{KeyId: aws.String(id), KeyPairSpec: types.DataKeyPairSpecRsa2048})
	mustNoErr(t, err, "GenerateDataKeyPairWithoutPlaintext")
	pairKey, err := c.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: without.PrivateKeyCiphertextBlob})
	mustNoErr(t, err, "Decrypt the private key")
	needles = append(needles, pairKey.Plaintext)
	_, err = c.RotateKeyOnDemand(ctx, &kms.RotateKeyOnDemandInput{KeyId: aws.String(id)})
	mustNoErr(t, err, "RotateKeyOnDemand")

	// SM2 in a China region: an SM2PKE plaintext, an ECDH secret, a data
	// key pair's private key.
	cn := p.kmsIn("cn-north-1")
	sm2Enc, err := cn.CreateKey(ctx, &kms.CreateKeyInput{KeySpec: types.KeySpecSm2, KeyUsage: types.KeyUsageTypeEncryptDecrypt})
	mustNoErr(t, err, "CreateKey SM2")
	sm2Secret := []byte("SM2-SECRET-PLAINTEXT-" + hex.EncodeToString(marker))
	needles = append(needles, sm2Secret)
	sm2CT, err := cn.Encrypt(ctx, &kms.EncryptInput{KeyId: sm2Enc.KeyMetadata.KeyId, Plaintext: sm2Secret, EncryptionAlgorithm: types.EncryptionAlgorithmSpecSm2pke})
	mustNoErr(t, err, "Encrypt SM2PKE")
	_, err = cn.Decrypt(ctx, &kms.DecryptInput{KeyId: sm2Enc.KeyMetadata.KeyId, CiphertextBlob: sm2CT.CiphertextBlob, EncryptionAlgorithm: types.EncryptionAlgorithmSpecSm2pke})
	mustNoErr(t, err, "Decrypt SM2PKE")
	sm2Agree, err := cn.CreateKey(ctx, &kms.CreateKeyInput{KeySpec: types.KeySpecSm2, KeyUsage: types.KeyUsageTypeKeyAgreement})
	mustNoErr(t, err, "CreateKey SM2 KEY_AGREEMENT")
	sm2Pub, err := cn.GetPublicKey(ctx, &kms.GetPublicKeyInput{KeyId: sm2Agree.KeyMetadata.KeyId})
	mustNoErr(t, err, "GetPublicKey SM2")
	sm2Shared, err := cn.DeriveSharedSecret(ctx, &kms.DeriveSharedSecretInput{KeyId: sm2Agree.KeyMetadata.KeyId, KeyAgreementAlgorithm: types.KeyAgreementAlgorithmSpecEcdh, PublicKey: sm2Pub.PublicKey})
	mustNoErr(t, err, "DeriveSharedSecret SM2")
	needles = append(needles, sm2Shared.SharedSecret)
	cnSym, err := cn.CreateKey(ctx, &kms.CreateKeyInput{})
	mustNoErr(t, err, "CreateKey in cn-north-1")
	sm2Pair, err := cn.GenerateDataKeyPair(ctx, &kms.GenerateDataKeyPairInput{KeyId: cnSym.KeyMetadata.KeyId, KeyPairSpec: types.DataKeyPairSpecSm2})
	mustNoErr(t, err, "GenerateDataKeyPair SM2")
	needles = append(needles, sm2Pair.PrivateKeyPlaintext)
	p.stop(t)

	// Each needle also in base64 and hex, as a log or JSON column would hold it.
	var all [][]byte
	for _, n := range needles {
		all = append(all, n, []byte(base64.StdEncoding.EncodeToString(n)), []byte(hex.EncodeToString(n)))
	}
	rootKey, _ := os.ReadFile(filepath.Join(dir, "root.key"))
	scanned := 0
	err = filepath.Walk(dir, func(path string, info os.FileInfo, err error) error {
		if err != nil || info.IsDir() || filepath.Base(path) == "root.key" {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		scanned++
		for _, n := range all {
			if bytes.Contains(b, n) {
				t.Errorf("%s contains a plaintext the server handled (%d bytes)", path, len(n))
			}
		}
		if len(bytes.TrimSpace(rootKey)) > 0 && bytes.Contains(b, bytes.TrimSpace(rootKey)) {
			t.Errorf("%s contains the root key", path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if scanned < 2 {
		t.Errorf("scanned only %d files under the data dir; expected the database and the audit trail", scanned)
	}
	for _, n := range all {
		if bytes.Contains(p.logs.Bytes(), n) {
			t.Errorf("server logs contain a plaintext the server handled")
		}
	}
}
