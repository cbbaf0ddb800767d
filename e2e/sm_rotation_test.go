package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"
	"github.com/aws/smithy-go"

	"github.com/keyfort/keyfort/internal/config"
	"github.com/keyfort/keyfort/internal/keyfortest"
)

const rotationLambda = "arn:aws:lambda:us-east-1:123456789012:function:keyfort-e2e-rotate"

// rotationHook is a real rotation webhook: an HTTP server on 127.0.0.1
// whose handler does the four rotation steps by calling Keyfort through the
// AWS SDK, as the AWS rotation function template does.
type rotationHook struct {
	ts *httptest.Server

	mu     sync.Mutex
	sm     *secretsmanager.Client
	failOn string
	steps  []string
}

func newRotationHook(t *testing.T) *rotationHook {
	h := &rotationHook{}
	h.ts = httptest.NewServer(http.HandlerFunc(h.serve))
	t.Cleanup(h.ts.Close)
	return h
}

func (h *rotationHook) setFail(step string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.failOn = step
}

func (h *rotationHook) stepsSeen() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.steps...)
}

func (h *rotationHook) serve(w http.ResponseWriter, r *http.Request) {
	var ev struct{ Step, SecretId, ClientRequestToken, RotationToken string }
	if err := json.NewDecoder(r.Body).Decode(&ev); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	h.mu.Lock()
	h.steps = append(h.steps, ev.Step)
	fail, c := h.failOn == ev.Step, h.sm
	h.mu.Unlock()
	if fail {
		http.Error(w, "step failed on purpose", http.StatusInternalServerError)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
	defer cancel()
	if err := rotationStep(ctx, c, ev.Step, ev.SecretId, ev.ClientRequestToken, ev.RotationToken); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.WriteHeader(http.StatusOK)
}

func rotationStep(ctx context.Context, c *secretsmanager.Client, step, arn, token, rotationToken string) error {
	d, err := c.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String(arn)})
	if err != nil {
		return err
	}
	if !aws.ToBool(d.RotationEnabled) {
		return errors.New("secret is not enabled for rotation")
	}
	stages, ok := d.VersionIdsToStages[token]
	if !ok {
		return errors.New("secret version has no stage for rotation")
	}
	has := func(list []string, s string) bool {
		for _, x := range list {
			if x == s {
				return true
			}
		}
		return false
	}
	if has(stages, "AWSCURRENT") {
		return nil // already current
	}
	if !has(stages, "AWSPENDING") {
		return errors.New("secret version not set as AWSPENDING for rotation")
	}
	switch step {
	case "createSecret":
		if _, err := c.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(arn), VersionStage: aws.String("AWSCURRENT")}); err != nil {
			return err
		}
		_, err := c.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(arn), VersionId: aws.String(token), VersionStage: aws.String("AWSPENDING")})
		var nf *types.ResourceNotFoundException
		if err == nil {
			return nil
		}
		if !errors.As(err, &nf) {
			return err
		}
		pw, err := c.GetRandomPassword(ctx, &secretsmanager.GetRandomPasswordInput{ExcludePunctuation: aws.Bool(true)})
		if err != nil {
			return err
		}
		_, err = c.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{SecretId: aws.String(arn), ClientRequestToken: aws.String(token),
			SecretString: aws.String("rotated:" + aws.ToString(pw.RandomPassword)), VersionStages: []string{"AWSPENDING"},
			RotationToken: aws.String(rotationToken)})
		return err
	case "setSecret":
		return nil
	case "testSecret":
		_, err := c.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(arn), VersionId: aws.String(token), VersionStage: aws.String("AWSPENDING")})
		var nf *types.ResourceNotFoundException
		if errors.As(err, &nf) {
			return nil // RotateImmediately=false tests an empty version
		}
		return err
	case "finishSecret":
		current := ""
		for id, st := range d.VersionIdsToStages {
			if has(st, "AWSCURRENT") {
				current = id
			}
		}
		_, err := c.UpdateSecretVersionStage(ctx, &secretsmanager.UpdateSecretVersionStageInput{SecretId: aws.String(arn),
			VersionStage: aws.String("AWSCURRENT"), MoveToVersionId: aws.String(token), RemoveFromVersionId: aws.String(current)})
		return err
	}
	return fmt.Errorf("unknown step %q", step)
}

// startRotation starts a server whose configuration maps rotationLambda to
// a real webhook.
func startRotation(t *testing.T, opts ...keyfortest.Option) (*keyfortest.Server, *secretsmanager.Client, *rotationHook) {
	t.Helper()
	h := newRotationHook(t)
	opts = append(opts, keyfortest.WithConfig(func(c *config.Config) {
		c.RotationWebhooks = map[string]string{rotationLambda: h.ts.URL + "/rotate"}
	}))
	srv, c := startSM(t, opts...)
	h.mu.Lock()
	h.sm = srv.SecretsManager()
	h.mu.Unlock()
	return srv, c, h
}

func versionStages(t *testing.T, c *secretsmanager.Client, id string) map[string][]string {
	t.Helper()
	d, err := c.DescribeSecret(ctxT(t), &secretsmanager.DescribeSecretInput{SecretId: aws.String(id)})
	mustNoErr(t, err, "DescribeSecret("+id+")")
	return d.VersionIdsToStages
}

func TestSMRotateSecretThroughWebhook(t *testing.T) {
	_, c, h := startRotation(t)
	created := createSecret(t, c, "rot/db", "initial")
	out, err := c.RotateSecret(ctxT(t), &secretsmanager.RotateSecretInput{SecretId: aws.String("rot/db"),
		RotationLambdaARN: aws.String(rotationLambda), RotationRules: &types.RotationRulesType{AutomaticallyAfterDays: aws.Int64(30)}})
	mustNoErr(t, err, "RotateSecret")
	if aws.ToString(out.ARN) != aws.ToString(created.ARN) || aws.ToString(out.VersionId) == "" {
		t.Fatalf("RotateSecret = ARN %s VersionId %q, want ARN %s and the new version", aws.ToString(out.ARN), aws.ToString(out.VersionId), aws.ToString(created.ARN))
	}
	if got, want := fmt.Sprint(h.stepsSeen()), "[createSecret setSecret testSecret finishSecret]"; got != want {
		t.Fatalf("webhook steps = %s, want %s", got, want)
	}
	got, err := c.GetSecretValue(ctxT(t), &secretsmanager.GetSecretValueInput{SecretId: aws.String("rot/db")})
	mustNoErr(t, err, "GetSecretValue")
	if v := aws.ToString(got.SecretString); len(v) != len("rotated:")+32 || v[:8] != "rotated:" || aws.ToString(got.VersionId) != aws.ToString(out.VersionId) {
		t.Fatalf("AWSCURRENT after rotation = %q in version %s, want the webhook's rotated:<32 characters> in %s", v, aws.ToString(got.VersionId), aws.ToString(out.VersionId))
	}
	prev, err := c.GetSecretValue(ctxT(t), &secretsmanager.GetSecretValueInput{SecretId: aws.String("rot/db"), VersionStage: aws.String("AWSPREVIOUS")})
	mustNoErr(t, err, "GetSecretValue(AWSPREVIOUS)")
	if aws.ToString(prev.SecretString) != "initial" || aws.ToString(prev.VersionId) != aws.ToString(created.VersionId) {
		t.Fatalf("AWSPREVIOUS = %q (%s), want initial (%s)", aws.ToString(prev.SecretString), aws.ToString(prev.VersionId), aws.ToString(created.VersionId))
	}
	d, err := c.DescribeSecret(ctxT(t), &secretsmanager.DescribeSecretInput{SecretId: aws.String("rot/db")})
	mustNoErr(t, err, "DescribeSecret")
	if !aws.ToBool(d.RotationEnabled) || aws.ToString(d.RotationLambdaARN) != rotationLambda || d.RotationRules == nil ||
		aws.ToInt64(d.RotationRules.AutomaticallyAfterDays) != 30 || d.LastRotatedDate == nil || d.NextRotationDate == nil {
		t.Fatalf("DescribeSecret = enabled %v lambda %q rules %+v last %v next %v, want rotation on with 30 days and both dates",
			aws.ToBool(d.RotationEnabled), aws.ToString(d.RotationLambdaARN), d.RotationRules, d.LastRotatedDate, d.NextRotationDate)
	}
	if want := d.LastRotatedDate.UTC().Truncate(24*time.Hour).AddDate(0, 0, 31).Add(-time.Second); !d.NextRotationDate.Equal(want) {
		t.Fatalf("NextRotationDate = %v, want the end of the UTC day 30 days after the rotation, %v", d.NextRotationDate, want)
	}
}

func TestSMRotateSecretFailingStep(t *testing.T) {
	_, c, h := startRotation(t)
	created := createSecret(t, c, "rot/fail", "initial")
	h.setFail("testSecret")
	tok := "11111111-2222-4333-8444-555555555555"
	_, err := c.RotateSecret(ctxT(t), &secretsmanager.RotateSecretInput{SecretId: aws.String("rot/fail"),
		RotationLambdaARN: aws.String(rotationLambda), ClientRequestToken: aws.String(tok)})
	wantAPIError(t, err, "InvalidRequestException", "testSecret")
	st := versionStages(t, c, "rot/fail")
	if fmt.Sprint(st[tok]) != "[AWSPENDING]" || fmt.Sprint(st[aws.ToString(created.VersionId)]) != "[AWSCURRENT]" {
		t.Fatalf("stages after the failed step = %v, want %s AWSPENDING and the original AWSCURRENT", st, tok)
	}
	if v := secretValue(t, c, "rot/fail"); v != "initial" {
		t.Fatalf("AWSCURRENT after the failed rotation = %q, want initial", v)
	}
	_, err = c.RotateSecret(ctxT(t), &secretsmanager.RotateSecretInput{SecretId: aws.String("rot/fail")})
	wantAPIError(t, err, "InvalidRequestException", "A previous rotation isn't complete. That rotation will be reattempted.")

	// CancelRotateSecret reports the unfinished version and turns rotation off.
	cancelled, err := c.CancelRotateSecret(ctxT(t), &secretsmanager.CancelRotateSecretInput{SecretId: aws.String("rot/fail")})
	mustNoErr(t, err, "CancelRotateSecret")
	if aws.ToString(cancelled.VersionId) != tok {
		t.Fatalf("CancelRotateSecret VersionId = %q, want %s", aws.ToString(cancelled.VersionId), tok)
	}
	d, err := c.DescribeSecret(ctxT(t), &secretsmanager.DescribeSecretInput{SecretId: aws.String("rot/fail")})
	mustNoErr(t, err, "DescribeSecret")
	if aws.ToBool(d.RotationEnabled) || aws.ToString(d.RotationLambdaARN) != rotationLambda || d.NextRotationDate != nil {
		t.Fatalf("after cancel: enabled %v lambda %q next %v, want false, the function kept, no next date",
			aws.ToBool(d.RotationEnabled), aws.ToString(d.RotationLambdaARN), d.NextRotationDate)
	}

	// Removing AWSPENDING, as AWS's documentation says, allows a new rotation.
	_, err = c.UpdateSecretVersionStage(ctxT(t), &secretsmanager.UpdateSecretVersionStageInput{SecretId: aws.String("rot/fail"),
		VersionStage: aws.String("AWSPENDING"), RemoveFromVersionId: aws.String(tok)})
	mustNoErr(t, err, "UpdateSecretVersionStage(remove AWSPENDING)")
	h.setFail("")
	out, err := c.RotateSecret(ctxT(t), &secretsmanager.RotateSecretInput{SecretId: aws.String("rot/fail")})
	mustNoErr(t, err, "RotateSecret after cleanup")
	got, err := c.GetSecretValue(ctxT(t), &secretsmanager.GetSecretValueInput{SecretId: aws.String("rot/fail")})
	mustNoErr(t, err, "GetSecretValue")
	if aws.ToString(got.VersionId) != aws.ToString(out.VersionId) || aws.ToString(got.SecretString) == "initial" {
		t.Fatalf("after the new rotation AWSCURRENT is version %s, want %s with a new value", aws.ToString(got.VersionId), aws.ToString(out.VersionId))
	}
}

func TestSMScheduledRotation(t *testing.T) {
	clock := keyfortest.NewClock(time.Date(2026, 5, 4, 9, 30, 0, 0, time.UTC))
	srv, c, h := startRotation(t, keyfortest.WithClock(clock))
	createSecret(t, c, "rot/sched", "initial")
	out, err := c.RotateSecret(ctxT(t), &secretsmanager.RotateSecretInput{SecretId: aws.String("rot/sched"),
		RotationLambdaARN: aws.String(rotationLambda), RotateImmediately: aws.Bool(false),
		RotationRules: &types.RotationRulesType{ScheduleExpression: aws.String("cron(0 16 * * ? *)"), Duration: aws.String("2h")}})
	mustNoErr(t, err, "RotateSecret(RotateImmediately=false)")
	if out.VersionId != nil {
		t.Fatalf("RotateSecret(RotateImmediately=false) VersionId = %q, want none", aws.ToString(out.VersionId))
	}
	if got := fmt.Sprint(h.stepsSeen()); got != "[testSecret]" {
		t.Fatalf("steps with RotateImmediately=false = %s, want [testSecret]", got)
	}
	d, err := c.DescribeSecret(ctxT(t), &secretsmanager.DescribeSecretInput{SecretId: aws.String("rot/sched")})
	mustNoErr(t, err, "DescribeSecret")
	if want := time.Date(2026, 5, 4, 17, 59, 59, 0, time.UTC); d.NextRotationDate == nil || !d.NextRotationDate.Equal(want) || len(d.VersionIdsToStages) != 1 {
		t.Fatalf("NextRotationDate = %v with versions %v, want %v and only the AWSCURRENT version", d.NextRotationDate, d.VersionIdsToStages, want)
	}
	srv.RunJobs(t)
	if v := secretValue(t, c, "rot/sched"); v != "initial" {
		t.Fatalf("before the window the value is %q, want initial", v)
	}
	clock.Advance(7 * time.Hour) // 16:30, inside the window
	srv.RunJobs(t)
	if v := secretValue(t, c, "rot/sched"); v == "initial" {
		t.Fatal("after the window opened and RunJobs ran the value is still initial, want a rotated value")
	}
	d, err = c.DescribeSecret(ctxT(t), &secretsmanager.DescribeSecretInput{SecretId: aws.String("rot/sched")})
	mustNoErr(t, err, "DescribeSecret")
	if !d.LastRotatedDate.Equal(clock.Now()) || !d.NextRotationDate.Equal(time.Date(2026, 5, 5, 17, 59, 59, 0, time.UTC)) {
		t.Fatalf("after the scheduled rotation last %v next %v, want %v and 2026-05-05T17:59:59Z", d.LastRotatedDate, d.NextRotationDate, clock.Now())
	}
	if n := len(h.stepsSeen()); n != 5 {
		t.Fatalf("webhook saw %d steps, want 5 (the test, then one rotation)", n)
	}
}

func TestSMRotateSecretErrors(t *testing.T) {
	_, c, _ := startRotation(t)
	createSecret(t, c, "rot/err", "v")
	// A secret that never had a rotation function, and none in the call
	// (LocalStack's AWS-validated test_first_rotate_secret_with_missing_lambda_arn).
	const noLambda = "No Lambda rotation function ARN is associated with this secret."
	_, err := c.RotateSecret(ctxT(t), &secretsmanager.RotateSecretInput{SecretId: aws.String("rot/err"),
		RotationRules: &types.RotationRulesType{AutomaticallyAfterDays: aws.Int64(1)}})
	wantExactAPIError(t, err, "InvalidRequestException", noLambda)
	_, err = c.RotateSecret(ctxT(t), &secretsmanager.RotateSecretInput{SecretId: aws.String("rot/err")})
	wantExactAPIError(t, err, "InvalidRequestException", noLambda)

	_, err = c.RotateSecret(ctxT(t), &secretsmanager.RotateSecretInput{SecretId: aws.String("rot/err"),
		RotationLambdaARN: aws.String("arn:aws:lambda:us-east-1:123456789012:function:not-mapped")})
	var ae smithy.APIError
	if !errors.As(err, &ae) || ae.ErrorCode() != "AccessDeniedException" ||
		ae.ErrorMessage() != "Secrets Manager cannot invoke the specified Lambda function. Ensure that the function policy grants access to the principal secretsmanager.amazonaws.com." {
		t.Fatalf("RotateSecret(unmapped function) = %v, want AccessDeniedException with AWS's message", err)
	}

	rules := []struct {
		name  string
		rules types.RotationRulesType
		code  string
	}{
		{"days 0", types.RotationRulesType{AutomaticallyAfterDays: aws.Int64(0)}, "ValidationException"},
		{"days and schedule", types.RotationRulesType{AutomaticallyAfterDays: aws.Int64(3), ScheduleExpression: aws.String("rate(3 days)")}, "InvalidParameterException"},
		{"rate 2 hours", types.RotationRulesType{ScheduleExpression: aws.String("rate(2 hours)")}, "InvalidParameterException"},
		{"cron minutes", types.RotationRulesType{ScheduleExpression: aws.String("cron(15 10 * * ? *)")}, "InvalidParameterException"},
		{"bad duration", types.RotationRulesType{ScheduleExpression: aws.String("rate(4 hours)"), Duration: aws.String("6h")}, "InvalidParameterException"},
		{"duration pattern", types.RotationRulesType{ScheduleExpression: aws.String("rate(4 hours)"), Duration: aws.String("6m")}, "ValidationException"},
	}
	for _, tt := range rules {
		t.Run(tt.name, func(t *testing.T) {
			_, err := c.RotateSecret(ctxT(t), &secretsmanager.RotateSecretInput{SecretId: aws.String("rot/err"),
				RotationLambdaARN: aws.String(rotationLambda), RotationRules: &tt.rules})
			wantAPIError(t, err, tt.code, "")
		})
	}
	if d, err := c.DescribeSecret(ctxT(t), &secretsmanager.DescribeSecretInput{SecretId: aws.String("rot/err")}); err != nil || d.RotationEnabled != nil {
		t.Fatalf("after rejected RotateSecret calls DescribeSecret = %v (RotationEnabled %v), want rotation never configured", err, d.RotationEnabled)
	}

	_, err = c.RotateSecret(ctxT(t), &secretsmanager.RotateSecretInput{SecretId: aws.String("rot/missing"), RotationLambdaARN: aws.String(rotationLambda)})
	wantAPIError(t, err, "ResourceNotFoundException", "Secrets Manager can't find the specified secret.")
	_, err = c.CancelRotateSecret(ctxT(t), &secretsmanager.CancelRotateSecretInput{SecretId: aws.String("rot/err")})
	wantAPIError(t, err, "InvalidRequestException", "")
}
