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
	addr := freePort(t)
	logs := &bytes.Buffer{}
	cmd := exec.Command(keyfortBinary(t), "serve", "--listen", addr, "--data", dataDir, "--log-level", "debug")
	cmd.Env = append(os.Environ(), extraEnv...)
	cmd.Stdout = logs
	cmd.Stderr = logs
	if err := cmd.Start(); err != nil {
		t.Fatalf("start keyfort: %v", err)
	}
	p := &proc{cmd: cmd, addr: addr, logs: logs}
	t.Cleanup(func() {
		if p.cmd.ProcessState == nil {
			_ = p.cmd.Process.Kill()
			_ = p.cmd.Wait()
		}
	})
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get("http://" + addr + "/health")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return p
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("keyfort did not become healthy on %s; logs:\n%s", addr, logs.String())
	return nil
}

func (p *proc) kms() *kms.Client {
	return kms.New(kms.Options{
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

// TestCrashDurability kills the server with SIGKILL in the middle of a stream
// of CreateKey, Encrypt and TagResource calls and checks, after a restart,
// that every acknowledged write is there and every returned ciphertext
// decrypts.
func TestCrashDurability(t *testing.T) {
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
	var (
		mu   sync.Mutex
		keys []string
		encs []enc
		tags = map[string]string{} // key id -> acknowledged tag value
	)
	base := createKeyBin(t, c)
	mu.Lock()
	keys = append(keys, base)
	mu.Unlock()

	ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
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
					id := keys[len(keys)-1]
					mu.Unlock()
					v := fmt.Sprintf("v%d-%d", w, i)
					_, err := c.TagResource(ctx, &kms.TagResourceInput{KeyId: aws.String(id), Tags: []types.Tag{{TagKey: aws.String(fmt.Sprintf("w%d", w)), TagValue: aws.String(v)}}})
					if err == nil {
						mu.Lock()
						tags[id+"/"+fmt.Sprintf("w%d", w)] = v
						mu.Unlock()
					}
				}
			}
		}()
	}
	time.Sleep(700 * time.Millisecond)
	p.kill9(t) // mid-stream
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
	for k, want := range tags {
		id, tagKey := k[:36], k[37:]
		out, err := c2.ListResourceTags(vctx, &kms.ListResourceTagsInput{KeyId: aws.String(id)})
		if err != nil {
			t.Errorf("ListResourceTags %s: %v", id, err)
			continue
		}
		found := false
		for _, tg := range out.Tags {
			if aws.ToString(tg.TagKey) == tagKey {
				found = true
				// A later write of the same tag may have been acknowledged
				// too; the value must be one that was written, never empty.
				if aws.ToString(tg.TagValue) == "" {
					t.Errorf("tag %s on %s is empty", tagKey, id)
				}
			}
		}
		if !found {
			t.Errorf("acknowledged tag %s=%s on %s lost after kill -9", tagKey, want, id)
		}
	}
	t.Logf("verified after kill -9: %d keys, %d ciphertexts, %d tags", len(keys), len(encs), len(tags))
	if len(keys) < 5 || len(encs) < 5 {
		t.Errorf("too few acknowledged writes before the kill (%d keys, %d ciphertexts) for the test to mean anything", len(keys), len(encs))
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
	_, err = c.RotateKeyOnDemand(ctx, &kms.RotateKeyOnDemandInput{KeyId: aws.String(id)})
	mustNoErr(t, err, "RotateKeyOnDemand")
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
