package e2e

import (
	"encoding/json"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudtrail"
	cttypes "github.com/aws/aws-sdk-go-v2/service/cloudtrail/types"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	kmstypes "github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"

	"github.com/keyfort/keyfort/internal/clock"
	"github.com/keyfort/keyfort/internal/keyfortest"
)

// automaticRotations lists the AUTOMATIC rotations of a key, oldest first.
func automaticRotations(t *testing.T, c *kms.Client, keyID string) []kmstypes.RotationsListEntry {
	t.Helper()
	out, err := c.ListKeyRotations(ctxT(t), &kms.ListKeyRotationsInput{KeyId: aws.String(keyID)})
	mustNoErr(t, err, "ListKeyRotations")
	var auto []kmstypes.RotationsListEntry
	for _, r := range out.Rotations {
		if r.RotationType == kmstypes.RotationTypeAutomatic {
			auto = append(auto, r)
		}
	}
	return auto
}

// TestClockAdvanceDeletesKey: a key scheduled for deletion in 7 days is
// still pending after 6 and gone after 8.
func TestClockAdvanceDeletesKey(t *testing.T) {
	srv := keyfortest.Start(t)
	c := srv.KMS()
	k := createKey(t, c, &kms.CreateKeyInput{})
	sched, err := c.ScheduleKeyDeletion(ctxT(t), &kms.ScheduleKeyDeletionInput{KeyId: k.KeyId, PendingWindowInDays: aws.Int32(7)})
	mustNoErr(t, err, "ScheduleKeyDeletion")

	st := srv.AdvanceClock(t, "6d")
	if st.Offset != "6d" || !st.Now.Before(*sched.DeletionDate) {
		t.Fatalf("after advancing 6d the clock is %v (offset %s), want offset 6d and before the deletion date %v", st.Now, st.Offset, sched.DeletionDate)
	}
	d, err := c.DescribeKey(ctxT(t), &kms.DescribeKeyInput{KeyId: k.KeyId})
	mustNoErr(t, err, "DescribeKey after 6d")
	if d.KeyMetadata.KeyState != kmstypes.KeyStatePendingDeletion {
		t.Fatalf("key state after 6 of 7 days = %s, want PendingDeletion", d.KeyMetadata.KeyState)
	}

	st = srv.AdvanceClock(t, "2d")
	if st.Offset != "8d" {
		t.Fatalf("offset after 6d and 2d = %s, want 8d", st.Offset)
	}
	_, err = c.DescribeKey(ctxT(t), &kms.DescribeKeyInput{KeyId: k.KeyId})
	wantAPIError(t, err, "NotFoundException", "")

	// A key made now is dated by the moved clock.
	k2 := createKey(t, c, &kms.CreateKeyInput{})
	if got := k2.CreationDate; got.Before(st.Now.Add(-time.Minute)) {
		t.Fatalf("CreationDate after the advance = %v, want the server's moved time %v", got, st.Now)
	}
}

// TestClockAdvanceRotatesKey: a 90-day rotation period happens after 91
// days, and a jump over two more periods rotates twice, each rotation
// dated when it fell due.
func TestClockAdvanceRotatesKey(t *testing.T) {
	srv := keyfortest.Start(t)
	c := srv.KMS()
	k := createKey(t, c, &kms.CreateKeyInput{})
	_, err := c.EnableKeyRotation(ctxT(t), &kms.EnableKeyRotationInput{KeyId: k.KeyId, RotationPeriodInDays: aws.Int32(90)})
	mustNoErr(t, err, "EnableKeyRotation")
	st, err := c.GetKeyRotationStatus(ctxT(t), &kms.GetKeyRotationStatusInput{KeyId: k.KeyId})
	mustNoErr(t, err, "GetKeyRotationStatus")
	first := *st.NextRotationDate

	srv.AdvanceClock(t, "91d")
	auto := automaticRotations(t, c, *k.KeyId)
	if len(auto) != 1 || !auto[0].RotationDate.Equal(first) {
		t.Fatalf("after 91 days: %d AUTOMATIC rotations %v, want 1 dated %v", len(auto), auto, first)
	}

	cs := srv.AdvanceClock(t, "180d") // two more periods in one jump
	auto = automaticRotations(t, c, *k.KeyId)
	if len(auto) != 3 {
		t.Fatalf("after 271 days: %d AUTOMATIC rotations, want 3", len(auto))
	}
	for i := 1; i < len(auto); i++ {
		if gap := auto[i].RotationDate.Sub(*auto[i-1].RotationDate); gap != 90*clock.Day {
			t.Errorf("rotation %d is %v after rotation %d, want 90 days", i+1, gap, i)
		}
	}
	if cs.Steps < 3 {
		t.Errorf("the 180d advance ran the jobs %d times, want at least 3 (each rotation, then the new time)", cs.Steps)
	}
	// The key still decrypts what it encrypts with its newest material.
	enc, err := c.Encrypt(ctxT(t), &kms.EncryptInput{KeyId: k.KeyId, Plaintext: []byte("after rotations")})
	mustNoErr(t, err, "Encrypt")
	dec, err := c.Decrypt(ctxT(t), &kms.DecryptInput{CiphertextBlob: enc.CiphertextBlob})
	mustNoErr(t, err, "Decrypt")
	if string(dec.Plaintext) != "after rotations" {
		t.Fatalf("Decrypt = %q", dec.Plaintext)
	}
}

// TestClockAdvanceEndsRecoveryWindow: a secret deleted with a 7-day
// recovery window is still restorable after 6 days and gone after 8.
func TestClockAdvanceEndsRecoveryWindow(t *testing.T) {
	srv, c := startSM(t)
	createSecret(t, c, "clock/window", "v")
	_, err := c.DeleteSecret(ctxT(t), &secretsmanager.DeleteSecretInput{SecretId: aws.String("clock/window"), RecoveryWindowInDays: aws.Int64(7)})
	mustNoErr(t, err, "DeleteSecret")
	srv.AdvanceClock(t, "6d")
	d, err := c.DescribeSecret(ctxT(t), &secretsmanager.DescribeSecretInput{SecretId: aws.String("clock/window")})
	mustNoErr(t, err, "DescribeSecret after 6 days")
	if d.DeletedDate == nil {
		t.Fatal("after 6 of 7 days the secret has no DeletedDate, want it still scheduled for deletion")
	}
	srv.AdvanceClock(t, "2d")
	_, err = c.DescribeSecret(ctxT(t), &secretsmanager.DescribeSecretInput{SecretId: aws.String("clock/window")})
	wantAPIError(t, err, "ResourceNotFoundException", "")
	_, err = c.GetSecretValue(ctxT(t), &secretsmanager.GetSecretValueInput{SecretId: aws.String("clock/window")})
	wantAPIError(t, err, "ResourceNotFoundException", "")
}

// TestClockAdvanceRunsScheduledRotation: a secret whose rotation is
// scheduled every 30 days (not rotated at once) is rotated through its
// webhook when the clock passes its next rotation date.
func TestClockAdvanceRunsScheduledRotation(t *testing.T) {
	srv, c, h := startRotation(t)
	createSecret(t, c, "clock/rot", "initial")
	_, err := c.RotateSecret(ctxT(t), &secretsmanager.RotateSecretInput{SecretId: aws.String("clock/rot"),
		RotationLambdaARN: aws.String(rotationLambda), RotateImmediately: aws.Bool(false),
		RotationRules: &types.RotationRulesType{AutomaticallyAfterDays: aws.Int64(30)}})
	mustNoErr(t, err, "RotateSecret(RotateImmediately=false)")
	d, err := c.DescribeSecret(ctxT(t), &secretsmanager.DescribeSecretInput{SecretId: aws.String("clock/rot")})
	mustNoErr(t, err, "DescribeSecret")
	next := *d.NextRotationDate

	srv.AdvanceClock(t, "29d")
	if v := secretValue(t, c, "clock/rot"); v != "initial" {
		t.Fatalf("after 29 of 30 days the value is %q, want initial", v)
	}
	srv.AdvanceClock(t, "2d")
	if v := secretValue(t, c, "clock/rot"); !strings.HasPrefix(v, "rotated:") {
		t.Fatalf("after 31 days the value is %q, want the webhook's rotated value", v)
	}
	if got := strings.Join(h.stepsSeen(), " "); got != "testSecret createSecret setSecret testSecret finishSecret" {
		t.Fatalf("webhook steps = %s, want the test, then one rotation", got)
	}
	d, err = c.DescribeSecret(ctxT(t), &secretsmanager.DescribeSecretInput{SecretId: aws.String("clock/rot")})
	mustNoErr(t, err, "DescribeSecret after the rotation")
	if d.LastRotatedDate == nil || d.LastRotatedDate.After(next) || d.NextRotationDate == nil || !d.NextRotationDate.After(next) {
		t.Fatalf("after the scheduled rotation last %v next %v, want a rotation within the window ending %v and a later next date", d.LastRotatedDate, d.NextRotationDate, next)
	}
}

// TestClockAdvanceInOrder: one jump over everything at once: keys and
// secrets deleted, a key rotated twice and a secret rotated at each of its
// windows.
func TestClockAdvanceInOrder(t *testing.T) {
	srv, c, h := startRotation(t)
	k := srv.KMS()
	gone := createKey(t, k, &kms.CreateKeyInput{})
	_, err := k.ScheduleKeyDeletion(ctxT(t), &kms.ScheduleKeyDeletionInput{KeyId: gone.KeyId, PendingWindowInDays: aws.Int32(7)})
	mustNoErr(t, err, "ScheduleKeyDeletion")
	rot := createKey(t, k, &kms.CreateKeyInput{})
	_, err = k.EnableKeyRotation(ctxT(t), &kms.EnableKeyRotationInput{KeyId: rot.KeyId, RotationPeriodInDays: aws.Int32(90)})
	mustNoErr(t, err, "EnableKeyRotation")
	createSecret(t, c, "clock/deleted", "v")
	_, err = c.DeleteSecret(ctxT(t), &secretsmanager.DeleteSecretInput{SecretId: aws.String("clock/deleted"), RecoveryWindowInDays: aws.Int64(30)})
	mustNoErr(t, err, "DeleteSecret")
	createSecret(t, c, "clock/rotated", "initial")
	_, err = c.RotateSecret(ctxT(t), &secretsmanager.RotateSecretInput{SecretId: aws.String("clock/rotated"),
		RotationLambdaARN: aws.String(rotationLambda), RotateImmediately: aws.Bool(false),
		RotationRules: &types.RotationRulesType{AutomaticallyAfterDays: aws.Int64(60)}})
	mustNoErr(t, err, "RotateSecret")

	st := srv.AdvanceClock(t, "181d")
	if st.Offset != "181d" || st.Steps < 6 {
		t.Fatalf("advance 181d = offset %s in %d steps, want 181d in at least 6 (key deletion, secret deletion, 2 key and 3 secret rotations share none)", st.Offset, st.Steps)
	}
	_, err = k.DescribeKey(ctxT(t), &kms.DescribeKeyInput{KeyId: gone.KeyId})
	wantAPIError(t, err, "NotFoundException", "")
	_, err = c.DescribeSecret(ctxT(t), &secretsmanager.DescribeSecretInput{SecretId: aws.String("clock/deleted")})
	wantAPIError(t, err, "ResourceNotFoundException", "")
	if n := len(automaticRotations(t, k, *rot.KeyId)); n != 2 {
		t.Fatalf("after 181 days the key has %d AUTOMATIC rotations, want 2 (days 90 and 180)", n)
	}
	// Windows about 60 days apart: days 60, 120, 180 (each window is a
	// whole UTC day, so the last may open on day 181).
	if n := strings.Count(strings.Join(h.stepsSeen(), " "), "finishSecret"); n < 2 || n > 3 {
		t.Fatalf("after 181 days the secret rotated %d times, want 3 (or 2 if the last window opens later)", n)
	}
	d, err := c.DescribeSecret(ctxT(t), &secretsmanager.DescribeSecretInput{SecretId: aws.String("clock/rotated")})
	mustNoErr(t, err, "DescribeSecret")
	if d.LastRotatedDate == nil || st.Now.Sub(*d.LastRotatedDate) > 62*clock.Day {
		t.Fatalf("LastRotatedDate = %v, want within 62 days of the new time %v", d.LastRotatedDate, st.Now)
	}
}

// TestClockRefusedInStrictMode: a server in strict auth answers 403 to the
// clock endpoints and its clock does not move.
func TestClockRefusedInStrictMode(t *testing.T) {
	srv := keyfortest.Start(t, keyfortest.WithCredentials(sigCredentials))
	status, body, err := srv.PostClock(`{"duration":"8d"}`)
	mustNoErr(t, err, "POST /keyfort/clock/advance")
	var e clock.ErrorBody
	if status != http.StatusForbidden || json.Unmarshal(body, &e) != nil || !strings.Contains(e.Error, "strict") {
		t.Fatalf("advance in strict mode = %d %s, want 403 with an error naming strict mode", status, body)
	}
	resp, err := srv.HTTPClient().Get(srv.URL + clock.PathShow)
	mustNoErr(t, err, "GET /keyfort/clock")
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("GET /keyfort/clock in strict mode = %d, want 403", resp.StatusCode)
	}
	if off := srv.App.Clock().Offset; off != "0s" {
		t.Fatalf("offset after a refused advance = %s, want 0s", off)
	}
}

// TestClockCLIAgainstBinary drives the built binary with the CLI: a key
// scheduled for deletion is gone after `keyfort clock advance 8d`.
func TestClockCLIAgainstBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the binary; skipped in -short mode")
	}
	p := startBinary(t, t.TempDir())
	c := p.kms()
	k := createKey(t, c, &kms.CreateKeyInput{})
	_, err := c.ScheduleKeyDeletion(ctxT(t), &kms.ScheduleKeyDeletionInput{KeyId: k.KeyId, PendingWindowInDays: aws.Int32(7)})
	mustNoErr(t, err, "ScheduleKeyDeletion")

	run := func(args ...string) (string, string, int) {
		t.Helper()
		cmd := exec.Command(keyfortBinary(t), args...)
		var stdout, stderr strings.Builder
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatalf("run keyfort %v: %v", args, err)
		}
		return stdout.String(), stderr.String(), code
	}
	endpoint := "http://" + p.addr
	out, errOut, code := run("clock", "advance", "8d", "--endpoint", endpoint)
	if code != 0 || !strings.HasPrefix(out, "clock advanced by 8d: now ") || !strings.Contains(out, "8d ahead of real time") {
		t.Fatalf("keyfort clock advance 8d = exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	_, err = c.DescribeKey(ctxT(t), &kms.DescribeKeyInput{KeyId: k.KeyId})
	wantAPIError(t, err, "NotFoundException", "")

	out, errOut, code = run("clock", "show", "--endpoint", endpoint)
	if code != 0 || !strings.HasPrefix(out, "now ") || !strings.Contains(out, "8d ahead of real time") {
		t.Fatalf("keyfort clock show = exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	out, errOut, code = run("clock", "advance", "--endpoint", endpoint, "-1d")
	if code != 2 || out != "" || strings.Count(errOut, "\n") != 1 || !strings.Contains(errOut, "only moves forward") {
		t.Fatalf("keyfort clock advance -1d = exit %d, stdout %q, stderr %q, want exit 2 and one line", code, out, errOut)
	}
	out, errOut, code = run("clock", "advance", "1.5d", "--endpoint", endpoint)
	if code != 2 || out != "" || strings.Count(errOut, "\n") != 1 || !strings.Contains(errOut, "whole number") {
		t.Fatalf("keyfort clock advance 1.5d = exit %d, stdout %q, stderr %q, want exit 2 and one line", code, out, errOut)
	}
	p.stop(t)
	out, errOut, code = run("clock", "show", "--endpoint", endpoint)
	if code != 1 || out != "" || strings.Count(errOut, "\n") != 1 || !strings.Contains(errOut, "cannot reach") {
		t.Fatalf("keyfort clock show against a stopped server = exit %d, stdout %q, stderr %q, want exit 1 and one line", code, out, errOut)
	}
}

// TestClockOverTLSAndAuditTime: the clock moves over HTTPS on loopback
// (--tls-self-signed), and the audit trail follows it: LookupEvents over
// the hour before the new time finds the calls made after the advance and
// not those made 8 days earlier.
func TestClockOverTLSAndAuditTime(t *testing.T) {
	srv := keyfortest.Start(t, keyfortest.WithTLS())
	c := srv.KMS()
	before := createKey(t, c, &kms.CreateKeyInput{Description: aws.String("before")})
	_, err := c.ScheduleKeyDeletion(ctxT(t), &kms.ScheduleKeyDeletionInput{KeyId: before.KeyId, PendingWindowInDays: aws.Int32(7)})
	mustNoErr(t, err, "ScheduleKeyDeletion")
	st := srv.AdvanceClock(t, "8d")
	_, err = c.DescribeKey(ctxT(t), &kms.DescribeKeyInput{KeyId: before.KeyId})
	wantAPIError(t, err, "NotFoundException", "")
	after := createKey(t, c, &kms.CreateKeyInput{Description: aws.String("after")})

	out, err := srv.CloudTrail().LookupEvents(ctxT(t), &cloudtrail.LookupEventsInput{
		StartTime:        aws.Time(st.Now.Add(-time.Hour)),
		LookupAttributes: []cttypes.LookupAttribute{{AttributeKey: cttypes.LookupAttributeKeyEventName, AttributeValue: aws.String("CreateKey")}},
	})
	mustNoErr(t, err, "LookupEvents")
	if len(out.Events) != 1 || !strings.Contains(aws.ToString(out.Events[0].CloudTrailEvent), *after.KeyId) {
		t.Fatalf("LookupEvents(CreateKey, the last hour of the moved clock) = %d events, want only the CreateKey made after the advance", len(out.Events))
	}
	if et := *out.Events[0].EventTime; et.Before(st.Now.Add(-time.Minute)) {
		t.Fatalf("eventTime after the advance = %v, want the moved time %v", et, st.Now)
	}
}
