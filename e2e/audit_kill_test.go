package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/service/cloudtrail"
	cttypes "github.com/aws/aws-sdk-go-v2/service/cloudtrail/types"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
)

// trailLine is what the kill -9 test reads of each audit line.
type trailLine struct {
	EventID   string `json:"eventID"`
	RequestID string `json:"requestID"`
	EventName string `json:"eventName"`
	ErrorCode string `json:"errorCode"`
	Resources []struct {
		ARN string `json:"ARN"`
	} `json:"resources"`
}

// readTrail parses every line of every audit file under dir/audit; a line
// that is not a whole event fails the test.
func readTrail(t *testing.T, dir string) []trailLine {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "audit", "keyfort-audit*.jsonl"))
	if err != nil || len(files) == 0 {
		t.Fatalf("audit files: %v, %v", files, err)
	}
	var out []trailLine
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if len(b) > 0 && b[len(b)-1] != '\n' {
			t.Errorf("%s ends in a torn line", f)
		}
		sc := bufio.NewScanner(bytes.NewReader(b))
		sc.Buffer(make([]byte, 1<<20), 4<<20)
		for n := 1; sc.Scan(); n++ {
			var l trailLine
			if err := json.Unmarshal(sc.Bytes(), &l); err != nil || l.EventID == "" {
				t.Errorf("%s line %d is not an event: %v: %.200s", f, n, err, sc.Text())
				continue
			}
			out = append(out, l)
		}
	}
	return out
}

// TestKill9AuditAgrees kills the server with SIGKILL three times (or
// KEYFORT_KILL_CYCLES) in the
// middle of CreateKey, TagResource and Encrypt calls and checks, after the
// last restart, that the trail and the data agree: every line of every
// audit file is a whole event, no event is written twice, every key has
// exactly one successful CreateKey event and every secret one CreateSecret
// event, every such event names a key or secret that exists, and every
// Encrypt answered before a kill has its event (a read's event is in the
// journal before its response, and reaches the files at the next start).
func TestKill9AuditAgrees(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the binary; skipped in -short mode")
	}
	dir := t.TempDir()
	cycles := 3
	if n, err := strconv.Atoi(os.Getenv("KEYFORT_KILL_CYCLES")); err == nil && n > 0 {
		cycles = n // a longer run by hand: KEYFORT_KILL_CYCLES=30
	}
	var p *proc
	acked := 0
	readsAcked := map[string]bool{}
	for cycle := range cycles {
		p = startBinary(t, dir)
		c, sm := p.kms(), p.sm()
		base := createKeyBin(t, c)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		var (
			mu      sync.Mutex
			created int
			wg      sync.WaitGroup
		)
		encrypted := map[string]bool{} // request ids of the Encrypts answered 200
		for w := range 6 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; ctx.Err() == nil && i < 2000; i++ {
					var err error
					switch (w + i) % 4 {
					case 0:
						_, err = c.CreateKey(ctx, &kms.CreateKeyInput{})
						if err == nil {
							mu.Lock()
							created++
							mu.Unlock()
						}
					case 1:
						_, err = c.TagResource(ctx, &kms.TagResourceInput{KeyId: aws.String(base),
							Tags: []types.Tag{{TagKey: aws.String(fmt.Sprint("w", w)), TagValue: aws.String(fmt.Sprint(i))}}})
					case 2:
						var out *kms.EncryptOutput
						out, err = c.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String(base), Plaintext: []byte("x")})
						if err == nil {
							id, _ := awsmiddleware.GetRequestIDMetadata(out.ResultMetadata)
							mu.Lock()
							encrypted[id] = true
							mu.Unlock()
						}
					case 3:
						_, err = sm.CreateSecret(ctx, &secretsmanager.CreateSecretInput{
							Name: aws.String(fmt.Sprintf("kill/%d/%d/%d", cycle, w, i)), SecretString: aws.String("v")})
					}
					_ = err // calls in flight at the kill fail
				}
			}()
		}
		for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
			mu.Lock()
			n := created
			mu.Unlock()
			if n >= 30+10*(cycle%5) { // kill at a different point each cycle
				break
			}
		}
		p.kill9(t)
		cancel()
		wg.Wait()
		acked += created
		mu.Lock()
		for id := range encrypted {
			readsAcked[id] = true
		}
		mu.Unlock()
	}
	p = startBinary(t, dir)
	c := p.kms()
	ctx := ctxT(t)
	keys := map[string]bool{}
	var marker *string
	for {
		out, err := c.ListKeys(ctx, &kms.ListKeysInput{Marker: marker, Limit: aws.Int32(1000)})
		mustNoErr(t, err, "ListKeys")
		for _, k := range out.Keys {
			md, err := c.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: k.KeyArn})
			mustNoErr(t, err, "DescribeKey")
			if md.KeyMetadata.KeyManager == types.KeyManagerTypeAws {
				continue // aws/secretsmanager, made by Secrets Manager's first use, not by a CreateKey call
			}
			keys[aws.ToString(k.KeyArn)] = true
		}
		if !out.Truncated {
			break
		}
		marker = out.NextMarker
	}
	secrets := map[string]bool{}
	sp := secretsmanager.NewListSecretsPaginator(p.sm(), &secretsmanager.ListSecretsInput{})
	for sp.HasMorePages() {
		page, err := sp.NextPage(ctx)
		mustNoErr(t, err, "ListSecrets")
		for _, e := range page.SecretList {
			secrets[aws.ToString(e.ARN)] = true
		}
	}
	// The store agrees with the files: LookupEvents finds one successful
	// CreateKey event per key.
	inStore := map[string]int{}
	pages := cloudtrail.NewLookupEventsPaginator(p.cloudtrail(), &cloudtrail.LookupEventsInput{
		LookupAttributes: []cttypes.LookupAttribute{{AttributeKey: cttypes.LookupAttributeKeyEventName, AttributeValue: aws.String("CreateKey")}}})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		mustNoErr(t, err, "LookupEvents")
		for _, e := range page.Events {
			var ev trailLine
			if err := json.Unmarshal([]byte(aws.ToString(e.CloudTrailEvent)), &ev); err != nil {
				t.Fatal(err)
			}
			if ev.ErrorCode == "" && len(ev.Resources) == 1 {
				inStore[ev.Resources[0].ARN]++
			}
		}
	}
	for arn := range keys {
		if inStore[arn] != 1 {
			t.Errorf("LookupEvents finds %d CreateKey events of %s, want 1", inStore[arn], arn)
		}
	}
	if len(inStore) != len(keys) {
		t.Errorf("LookupEvents finds CreateKey events of %d keys; %d exist", len(inStore), len(keys))
	}
	p.stop(t)

	lines := readTrail(t, dir)
	seen := map[string]bool{}
	createdBy, secretBy := map[string]int{}, map[string]int{}
	encryptEvents := map[string]bool{}
	for _, l := range lines {
		if l.EventName == "Encrypt" && l.ErrorCode == "" {
			encryptEvents[l.RequestID] = true
		}
		if seen[l.EventID] {
			t.Errorf("event %s (%s) is in the trail twice", l.EventID, l.EventName)
		}
		seen[l.EventID] = true
		if l.EventName == "CreateSecret" && l.ErrorCode == "" {
			if len(l.Resources) != 1 || !secrets[l.Resources[0].ARN] {
				t.Errorf("the trail says CreateSecret %s made %v, which does not exist", l.EventID, l.Resources)
				continue
			}
			secretBy[l.Resources[0].ARN]++
		}
		if l.EventName != "CreateKey" || l.ErrorCode != "" {
			continue
		}
		if len(l.Resources) != 1 || !strings.Contains(l.Resources[0].ARN, ":key/") {
			t.Errorf("successful CreateKey event %s names resources %v, want the key", l.EventID, l.Resources)
			continue
		}
		arn := l.Resources[0].ARN
		createdBy[arn]++
		if !keys[arn] {
			t.Errorf("the trail says CreateKey %s made %s, which does not exist", l.EventID, arn)
		}
	}
	for arn := range keys {
		if n := createdBy[arn]; n != 1 {
			t.Errorf("key %s has %d successful CreateKey events, want exactly 1", arn, n)
		}
	}
	for arn := range secrets {
		if n := secretBy[arn]; n != 1 {
			t.Errorf("secret %s has %d successful CreateSecret events, want exactly 1", arn, n)
		}
	}
	missing := 0
	for id := range readsAcked {
		if !encryptEvents[id] {
			missing++
		}
	}
	if missing > 0 || len(readsAcked) == 0 {
		t.Errorf("%d of the %d Encrypts answered 200 before a kill have no event in the trail", missing, len(readsAcked))
	}
	t.Logf("after %d kill -9 cycles: %d secrets, %d keys (%d CreateKey answered 200), %d Encrypts answered, each with its event, %d events, every file parses", cycles, len(secrets), len(keys), acked, len(readsAcked), len(lines))
	if acked < 30*cycles {
		t.Errorf("only %d CreateKey calls answered before the kills: too few for the test to mean anything", acked)
	}
}

// TestAuditVolumeFull runs the server with its audit file on a full volume
// (/dev/full: every write fails with ENOSPC). A change commits with its
// event in the store, so CreateKey answers 200 (no 500 for an applied
// change). A read's event is in the journal before its response; the
// first group write to the file fails, and from then on reads fail
// without an answer they could not record. Once there is room again, a
// restart writes every CreateKey event, and the event of every read that
// was answered, to the file.
func TestAuditVolumeFull(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the binary; skipped in -short mode")
	}
	if _, err := os.Stat("/dev/full"); err != nil {
		t.Fatalf("this test needs /dev/full: %v", err)
	}
	dir := t.TempDir()
	auditDir := filepath.Join(dir, "audit")
	if err := os.MkdirAll(auditDir, 0o700); err != nil {
		t.Fatal(err)
	}
	current := filepath.Join(auditDir, "keyfort-audit.jsonl")
	if err := os.Symlink("/dev/full", current); err != nil {
		t.Fatal(err)
	}
	p := startBinary(t, dir)
	c := p.kms()
	ctx := ctxT(t)
	var arns []string
	for range 3 {
		out, err := c.CreateKey(ctx, &kms.CreateKeyInput{Description: aws.String("made on a full audit volume")})
		mustNoErr(t, err, "CreateKey with a full audit volume")
		arns = append(arns, aws.ToString(out.KeyMetadata.Arn))
	}
	answered := map[string]bool{}
	var err error
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		var out *kms.EncryptOutput
		out, err = c.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String(arns[0]), Plaintext: []byte("x")})
		if err != nil {
			break
		}
		id, _ := awsmiddleware.GetRequestIDMetadata(out.ResultMetadata)
		answered[id] = true
	}
	wantAPIError(t, err, "KMSInternalException", "")
	p.stop(t) // the logs are read once the process is gone
	if !strings.Contains(p.logs.String(), "no space left on device") {
		t.Errorf("the logs do not say the audit volume is full:\n%s", p.logs.String())
	}

	if err := os.Remove(current); err != nil {
		t.Fatal(err)
	}
	p = startBinary(t, dir)
	out, err := p.kms().ListKeys(ctx, &kms.ListKeysInput{})
	mustNoErr(t, err, "ListKeys")
	if len(out.Keys) != 3 {
		t.Errorf("ListKeys after the restart = %d keys, want the 3 created", len(out.Keys))
	}
	p.stop(t)
	got := map[string]int{}
	reads := map[string]int{}
	for _, l := range readTrail(t, dir) {
		if l.EventName == "CreateKey" && l.ErrorCode == "" && len(l.Resources) == 1 {
			got[l.Resources[0].ARN]++
		}
		if l.EventName == "Encrypt" && l.ErrorCode == "" {
			reads[l.RequestID]++
		}
	}
	for id := range answered {
		if reads[id] != 1 {
			t.Errorf("Encrypt %s answered 200 has %d events in the file after the restart, want 1", id, reads[id])
		}
	}
	if len(reads) != len(answered) {
		t.Errorf("the file holds %d successful Encrypt events; %d Encrypts were answered 200", len(reads), len(answered))
	}
	for _, arn := range arns {
		if got[arn] != 1 {
			t.Errorf("key %s has %d CreateKey events in the file after the restart, want 1", arn, got[arn])
		}
	}
}
