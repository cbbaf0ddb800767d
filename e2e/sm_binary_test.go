package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	smtypes "github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"

	"github.com/keyfort/keyfort/internal/keyfortest"
)

func (p *proc) sm() *secretsmanager.Client {
	return secretsmanager.New(secretsmanager.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String("http://" + p.addr),
		Credentials:  credentials.NewStaticCredentialsProvider("AKIDEXAMPLE", "secret", ""),
		Retryer:      keyfortest.ClosedConnRetryer(),
	})
}

// smAck is an acknowledged secret value: version vid of secret name.
type smAck struct {
	name, vid, value string
}

// TestSMCrashDurability kills the server with SIGKILL in the middle of a
// stream of CreateSecret, PutSecretValue, TagResource and
// UpdateSecretVersionStage calls and checks, after a restart, that every
// acknowledged secret, version (its value, read by VersionId), tag and
// staging label is there.
func TestSMCrashDurability(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the binary; skipped in -short mode")
	}
	dir := t.TempDir()
	p := startBinary(t, dir)
	c := p.sm()

	const workers = 6
	const putsPerSecret = 40 // well under the 100 versions a secret keeps
	var (
		mu      sync.Mutex
		values  []smAck                 // acknowledged CreateSecret and PutSecretValue
		tags    = map[string][]string{} // secret name -> tag values written (key "w")
		tagged  = map[string]bool{}     // secret name -> a TagResource was acknowledged
		targets = map[string][]string{} // secret name -> versions the label was moved to (attempted)
		moved   = map[string]bool{}     // secret name -> a move of its label was acknowledged
		labelOf = map[string]string{}   // secret name -> the label its worker moves
	)
	ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			own, lastPut, holder, puts, gen := "", "", "", 0, 0
			newOwn := func() bool {
				name := fmt.Sprintf("crash/own-w%d-%d", w, gen)
				gen++
				out, err := c.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String(name), SecretString: aws.String("own-" + name)})
				if err != nil {
					return false
				}
				mu.Lock()
				values = append(values, smAck{name, aws.ToString(out.VersionId), "own-" + name})
				labelOf[name] = fmt.Sprintf("STAGE-W%d", w)
				mu.Unlock()
				own, lastPut, holder, puts = name, aws.ToString(out.VersionId), "", 0
				return true
			}
			if !newOwn() {
				return
			}
			for i := 0; ctx.Err() == nil && i < 5000; i++ {
				switch i % 4 {
				case 0:
					name := fmt.Sprintf("crash/new-w%d-i%d", w, i)
					v := fmt.Sprintf("created-%d-%d", w, i)
					out, err := c.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String(name), SecretString: aws.String(v)})
					if err == nil {
						mu.Lock()
						values = append(values, smAck{name, aws.ToString(out.VersionId), v})
						mu.Unlock()
					}
				case 1:
					if puts == putsPerSecret && !newOwn() {
						return
					}
					v := fmt.Sprintf("put-%d-%d", w, i)
					out, err := c.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{SecretId: aws.String(own), SecretString: aws.String(v)})
					if err == nil {
						puts++
						lastPut = aws.ToString(out.VersionId)
						mu.Lock()
						values = append(values, smAck{own, lastPut, v})
						mu.Unlock()
					}
				case 2:
					v := fmt.Sprintf("t%d", i)
					mu.Lock()
					tags[own] = append(tags[own], v)
					mu.Unlock()
					_, err := c.TagResource(ctx, &secretsmanager.TagResourceInput{SecretId: aws.String(own), Tags: []smtypes.Tag{{Key: aws.String("w"), Value: aws.String(v)}}})
					if err == nil {
						mu.Lock()
						tagged[own] = true
						mu.Unlock()
					}
				case 3:
					if lastPut == holder {
						continue
					}
					in := &secretsmanager.UpdateSecretVersionStageInput{SecretId: aws.String(own), VersionStage: aws.String(fmt.Sprintf("STAGE-W%d", w)), MoveToVersionId: aws.String(lastPut)}
					if holder != "" {
						in.RemoveFromVersionId = aws.String(holder)
					}
					mu.Lock()
					targets[own] = append(targets[own], lastPut)
					mu.Unlock()
					if _, err := c.UpdateSecretVersionStage(ctx, in); err == nil {
						holder = lastPut
						mu.Lock()
						moved[own] = true
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
	c2 := p2.sm()
	vctx := ctxT(t)
	for _, a := range values {
		out, err := c2.GetSecretValue(vctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(a.name), VersionId: aws.String(a.vid)})
		if err != nil {
			t.Errorf("acknowledged version %s of %s lost after kill -9: %v", a.vid, a.name, err)
			continue
		}
		if got := aws.ToString(out.SecretString); got != a.value {
			t.Errorf("GetSecretValue(%s, VersionId %s) after kill -9 = %q, want %q", a.name, a.vid, got, a.value)
		}
	}
	nTags, nMoves := 0, 0
	for name := range tags {
		d, err := c2.DescribeSecret(vctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String(name)})
		if err != nil {
			t.Errorf("DescribeSecret(%s) after kill -9: %v", name, err)
			continue
		}
		var got *string
		for _, tg := range d.Tags {
			if aws.ToString(tg.Key) == "w" {
				got = tg.Value
			}
		}
		switch {
		case got == nil && tagged[name]:
			t.Errorf("acknowledged tag w on %s lost after kill -9", name)
		case got != nil && !slices.Contains(tags[name], *got):
			// A later, unacknowledged write may have committed; the value
			// must still be one that was written.
			t.Errorf("tag w on %s = %q after kill -9, not a value that was written", name, *got)
		case got != nil:
			nTags++
		}
		if !moved[name] {
			continue
		}
		var holders []string
		for vid, stages := range d.VersionIdsToStages {
			if slices.Contains(stages, labelOf[name]) {
				holders = append(holders, vid)
			}
		}
		if len(holders) != 1 || !slices.Contains(targets[name], holders[0]) {
			t.Errorf("staging label on %s after kill -9 is on versions %v, want exactly one of the versions it was moved to %v", name, holders, targets[name])
			continue
		}
		nMoves++
	}
	t.Logf("verified after kill -9: %d values (create and put), %d tags, %d staging labels", len(values), nTags, nMoves)
	if len(values) < 10 || nTags < 1 || nMoves < 1 {
		t.Errorf("too few acknowledged writes before the kill (%d values, %d tags, %d labels) for the test to mean anything", len(values), nTags, nMoves)
	}
	p2.stop(t)
}

// TestSMNoPlaintextAtRest stores unique secret strings and binaries through
// CreateSecret, PutSecretValue and UpdateSecret, reads them back, asks for
// random passwords, then scans every file under the data directory (the
// database, its WAL, the audit trail) and the server's debug logs for each
// value, raw, in base64 and in hex.
func TestSMNoPlaintextAtRest(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the binary; skipped in -short mode")
	}
	dir := t.TempDir()
	p := startBinary(t, dir)
	c := p.sm()
	ctx := ctxT(t)
	var needles [][]byte
	unique := func(label string) string {
		b := make([]byte, 12)
		_, _ = rand.Read(b)
		v := "SM-SECRET-" + label + "-" + hex.EncodeToString(b)
		needles = append(needles, []byte(v))
		return v
	}
	binary := func() []byte {
		b := make([]byte, 48)
		_, _ = rand.Read(b)
		needles = append(needles, b)
		return b
	}

	_, err := c.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String("leak/string"), SecretString: aws.String(unique("create"))})
	mustNoErr(t, err, "CreateSecret(string)")
	_, err = c.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String("leak/binary"), SecretBinary: binary()})
	mustNoErr(t, err, "CreateSecret(binary)")
	_, err = c.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{SecretId: aws.String("leak/string"), SecretString: aws.String(unique("put"))})
	mustNoErr(t, err, "PutSecretValue(string)")
	_, err = c.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{SecretId: aws.String("leak/binary"), SecretBinary: binary()})
	mustNoErr(t, err, "PutSecretValue(binary)")
	_, err = c.UpdateSecret(ctx, &secretsmanager.UpdateSecretInput{SecretId: aws.String("leak/string"), SecretString: aws.String(unique("update"))})
	mustNoErr(t, err, "UpdateSecret(string)")
	_, err = c.UpdateSecret(ctx, &secretsmanager.UpdateSecretInput{SecretId: aws.String("leak/binary"), SecretBinary: binary()})
	mustNoErr(t, err, "UpdateSecret(binary)")
	// A failing call that carries a value (the secret is gone) must not log it.
	_, err = c.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{SecretId: aws.String("leak/missing"), SecretString: aws.String(unique("failed-put"))})
	if err == nil {
		t.Fatalf("PutSecretValue(leak/missing) succeeded, want ResourceNotFoundException")
	}
	for range 3 {
		pw, err := c.GetRandomPassword(ctx, &secretsmanager.GetRandomPasswordInput{PasswordLength: aws.Int64(40)})
		mustNoErr(t, err, "GetRandomPassword")
		needles = append(needles, []byte(aws.ToString(pw.RandomPassword)))
	}
	for _, id := range []string{"leak/string", "leak/binary"} {
		vs, err := c.ListSecretVersionIds(ctx, &secretsmanager.ListSecretVersionIdsInput{SecretId: aws.String(id), IncludeDeprecated: aws.Bool(true)})
		mustNoErr(t, err, "ListSecretVersionIds")
		for _, v := range vs.Versions {
			_, err := c.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(id), VersionId: v.VersionId})
			mustNoErr(t, err, "GetSecretValue")
		}
	}
	p.stop(t)

	var all [][]byte
	for _, n := range needles {
		all = append(all, n, []byte(base64.StdEncoding.EncodeToString(n)), []byte(hex.EncodeToString(n)))
	}
	scanned := 0
	err = filepath.Walk(dir, func(path string, info os.FileInfo, err error) error {
		if err != nil || info.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		scanned++
		for i, n := range all {
			if bytes.Contains(b, n) {
				t.Errorf("%s contains secret value #%d (form %d of raw/base64/hex)", path, i/3, i%3)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if scanned < 2 {
		t.Errorf("scanned only %d files under the data dir; expected the database and the audit trail", scanned)
	}
	if p.logs.Len() == 0 {
		t.Errorf("the server wrote no logs at debug level; the log scan means nothing")
	}
	for i, n := range all {
		if bytes.Contains(p.logs.Bytes(), n) {
			t.Errorf("server logs contain secret value #%d (form %d of raw/base64/hex)", i/3, i%3)
		}
	}
}
