package secretsmanager

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/keyfort/keyfort/internal/awserr"
	"github.com/keyfort/keyfort/internal/secretsmanager/smapi"
	"github.com/keyfort/keyfort/internal/sensitive"
)

const testLambda = "arn:aws:lambda:us-east-1:123456789012:function:rotate"

// fakeRotator implements the four rotation steps the way the AWS rotation
// template does, by calling the service, and records the events it got.
type fakeRotator struct {
	sm      *Service
	ctx     context.Context
	mu      sync.Mutex
	events  []rotationEvent
	failOn  string // a step that fails
	n       int
	badPuts []error // PutSecretValue errors with a wrong RotationToken
}

func (f *fakeRotator) CanInvoke(arn string) bool { return arn == testLambda }

func (f *fakeRotator) Invoke(_ context.Context, arn string, event []byte) error {
	var ev rotationEvent
	if err := json.Unmarshal(event, &ev); err != nil {
		return err
	}
	f.mu.Lock()
	f.events = append(f.events, ev)
	fail := f.failOn == ev.Step
	f.mu.Unlock()
	if fail {
		return errors.New("webhook: answered HTTP 500")
	}
	ctx, sm := f.ctx, f.sm
	switch ev.Step {
	case stepCreate:
		d, err := sm.DescribeSecret(ctx, &smapi.DescribeSecretInput{SecretId: &ev.SecretID})
		if err != nil {
			return err
		}
		if !deref(d.RotationEnabled) {
			return errors.New("secret is not enabled for rotation")
		}
		if st := d.VersionIdsToStages[ev.ClientRequestToken]; len(st) == 0 || !contains(st, stagePending) {
			return fmt.Errorf("version %s has stages %v, want AWSPENDING", ev.ClientRequestToken, st)
		}
		_, err = sm.GetSecretValue(ctx, &smapi.GetSecretValueInput{SecretId: &ev.SecretID, VersionId: &ev.ClientRequestToken, VersionStage: str(stagePending)})
		if err == nil {
			return nil // a reattempt: the value exists already
		}
		if !isNotFound(err) {
			return fmt.Errorf("GetSecretValue(AWSPENDING) before createSecret = %v, want ResourceNotFoundException", err)
		}
		_, err = sm.PutSecretValue(ctx, &smapi.PutSecretValueInput{SecretId: &ev.SecretID, ClientRequestToken: &ev.ClientRequestToken,
			SecretString: secretString("wrong"), VersionStages: []string{stagePending}, RotationToken: secretString("00000000-0000-4000-8000-000000000000")})
		f.mu.Lock()
		f.badPuts = append(f.badPuts, err)
		f.n++
		v := fmt.Sprintf("rotated-%d", f.n)
		f.mu.Unlock()
		_, err = sm.PutSecretValue(ctx, &smapi.PutSecretValueInput{SecretId: &ev.SecretID, ClientRequestToken: &ev.ClientRequestToken,
			SecretString: secretString(v), VersionStages: []string{stagePending}, RotationToken: secretString(ev.RotationToken)})
		return err
	case stepSet:
		return nil
	case stepTest:
		_, err := sm.GetSecretValue(ctx, &smapi.GetSecretValueInput{SecretId: &ev.SecretID, VersionId: &ev.ClientRequestToken, VersionStage: str(stagePending)})
		if err != nil && isNotFound(err) {
			return nil // RotateImmediately=false tests an empty version
		}
		return err
	case stepFinish:
		d, err := sm.DescribeSecret(ctx, &smapi.DescribeSecretInput{SecretId: &ev.SecretID})
		if err != nil {
			return err
		}
		cur := ""
		for id, st := range d.VersionIdsToStages {
			if contains(st, stageCurrent) {
				cur = id
			}
		}
		if cur == ev.ClientRequestToken {
			return nil
		}
		_, err = sm.UpdateSecretVersionStage(ctx, &smapi.UpdateSecretVersionStageInput{SecretId: &ev.SecretID, VersionStage: str(stageCurrent),
			MoveToVersionId: &ev.ClientRequestToken, RemoveFromVersionId: &cur})
		return err
	}
	return fmt.Errorf("unknown step %q", ev.Step)
}

func (f *fakeRotator) steps() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, e := range f.events {
		out = append(out, e.Step)
	}
	return out
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func newRotationEnv(t *testing.T) (*env, *fakeRotator) {
	e := newEnv(t)
	f := &fakeRotator{sm: e.sm, ctx: e.ctx}
	e.sm.rotator = f
	return e, f
}

func (e *env) rotate(in *smapi.RotateSecretInput) (*smapi.RotateSecretOutput, error) {
	return e.sm.RotateSecret(e.ctx, in)
}

func stagesOf(t *testing.T, e *env, id string) map[string][]string {
	t.Helper()
	return e.describe(t, id).VersionIdsToStages
}

func TestRotateSecretImmediately(t *testing.T) {
	e, f := newRotationEnv(t)
	c := e.create(t, "db", "v1")
	out, err := e.rotate(&smapi.RotateSecretInput{SecretId: str("db"), RotationLambdaARN: str(testLambda),
		RotationRules: &smapi.RotationRulesType{AutomaticallyAfterDays: ptr(int64(30))}, ClientRequestToken: token("rot1")})
	mustOK(t, err, "RotateSecret")
	if *out.ARN != *c.ARN || *out.Name != "db" || *out.VersionId != *token("rot1") {
		t.Fatalf("RotateSecret = %+v, want ARN %s, Name db, VersionId %s", out, *c.ARN, *token("rot1"))
	}
	if got, want := fmt.Sprint(f.steps()), "[createSecret setSecret testSecret finishSecret]"; got != want {
		t.Fatalf("steps = %s, want %s", got, want)
	}
	for _, ev := range f.events {
		if ev.SecretID != *c.ARN || ev.ClientRequestToken != *out.VersionId || len(ev.RotationToken) != 36 {
			t.Fatalf("event %+v: want SecretId %s, ClientRequestToken %s and a 36-character RotationToken", ev, *c.ARN, *out.VersionId)
		}
	}
	wantCode(t, f.badPuts[0], codeInvalidRequest, "RotationToken")
	if got := e.get(t, "db"); got.SecretString.Reveal() != "rotated-1" || *got.VersionId != *out.VersionId {
		t.Fatalf("GetSecretValue after rotation = %q (version %s), want rotated-1 (version %s)", got.SecretString.Reveal(), *got.VersionId, *out.VersionId)
	}
	st := stagesOf(t, e, "db")
	if !contains(st[*c.VersionId], stagePrevious) || !contains(st[*out.VersionId], stageCurrent) {
		t.Fatalf("stages = %v, want old version AWSPREVIOUS and new AWSCURRENT", st)
	}
	d := e.describe(t, "db")
	now := e.clock.Now()
	wantNext := now.Truncate(day).Add(30*day + day - time.Second)
	if !deref(d.RotationEnabled) || deref(d.RotationLambdaARN) != testLambda || deref(d.RotationRules.AutomaticallyAfterDays) != 30 ||
		!d.LastRotatedDate.Equal(now) || !d.NextRotationDate.Equal(wantNext) {
		t.Fatalf("DescribeSecret = enabled %v, lambda %v, rules %+v, last %v, next %v; want true, %s, 30 days, %v, %v",
			deref(d.RotationEnabled), deref(d.RotationLambdaARN), d.RotationRules, d.LastRotatedDate, d.NextRotationDate, testLambda, now, wantNext)
	}

	// The RotationToken of a finished rotation is no longer valid.
	_, err = e.sm.PutSecretValue(e.ctx, &smapi.PutSecretValueInput{SecretId: str("db"), SecretString: secretString("x"),
		RotationToken: secretString(f.events[0].RotationToken)})
	wantCode(t, err, codeInvalidRequest, "RotationToken")

	// A retry with the same ClientRequestToken changes nothing.
	again, err := e.rotate(&smapi.RotateSecretInput{SecretId: str("db"), ClientRequestToken: token("rot1")})
	mustOK(t, err, "RotateSecret retry")
	if *again.VersionId != *out.VersionId || len(f.steps()) != 4 {
		t.Fatalf("retry = version %s after %d steps, want %s after 4", *again.VersionId, len(f.steps()), *out.VersionId)
	}

	// A second rotation uses the stored function and rules.
	e.clock.Add(time.Hour)
	out2, err := e.rotate(&smapi.RotateSecretInput{SecretId: str("db")})
	mustOK(t, err, "second RotateSecret")
	if got := e.get(t, "db"); got.SecretString.Reveal() != "rotated-2" || *got.VersionId != *out2.VersionId {
		t.Fatalf("after second rotation GetSecretValue = %q, want rotated-2", got.SecretString.Reveal())
	}
}

func TestRotateSecretStepFailure(t *testing.T) {
	e, f := newRotationEnv(t)
	c := e.create(t, "db", "v1")
	f.failOn = stepTest
	_, err := e.rotate(&smapi.RotateSecretInput{SecretId: str("db"), RotationLambdaARN: str(testLambda), ClientRequestToken: token("bad")})
	wantCode(t, err, codeInvalidRequest, "testSecret")
	if got, want := fmt.Sprint(f.steps()), "[createSecret setSecret testSecret]"; got != want {
		t.Fatalf("steps = %s, want %s", got, want)
	}
	st := stagesOf(t, e, "db")
	if !contains(st[*token("bad")], stagePending) || !contains(st[*c.VersionId], stageCurrent) {
		t.Fatalf("stages after failure = %v, want the new version AWSPENDING and the old AWSCURRENT", st)
	}
	if got := e.get(t, "db"); got.SecretString.Reveal() != "v1" {
		t.Fatalf("GetSecretValue after failed rotation = %q, want v1", got.SecretString.Reveal())
	}
	if d := e.describe(t, "db"); d.LastRotatedDate != nil {
		t.Fatalf("LastRotatedDate after failure = %v, want none", d.LastRotatedDate)
	}
	_, err = e.rotate(&smapi.RotateSecretInput{SecretId: str("db"), ClientRequestToken: token("other")})
	wantCode(t, err, codeInvalidRequest, "A previous rotation isn't complete. That rotation will be reattempted.")

	// The same ClientRequestToken reattempts the rotation.
	f.failOn = ""
	out, err := e.rotate(&smapi.RotateSecretInput{SecretId: str("db"), ClientRequestToken: token("bad")})
	mustOK(t, err, "RotateSecret reattempt")
	if got := e.get(t, "db"); *got.VersionId != *out.VersionId || got.SecretString.Reveal() != "rotated-1" {
		t.Fatalf("after reattempt GetSecretValue = %q (version %s), want rotated-1 (version %s)", got.SecretString.Reveal(), *got.VersionId, *out.VersionId)
	}
}

func TestRotateSecretFailingCreateLeavesEmptyPendingVersion(t *testing.T) {
	e, f := newRotationEnv(t)
	e.create(t, "db", "v1")
	f.failOn = stepCreate
	_, err := e.rotate(&smapi.RotateSecretInput{SecretId: str("db"), RotationLambdaARN: str(testLambda), ClientRequestToken: token("p")})
	wantCode(t, err, codeInvalidRequest, "createSecret")
	_, err = e.sm.GetSecretValue(e.ctx, &smapi.GetSecretValueInput{SecretId: str("db"), VersionStage: str(stagePending)})
	wantCode(t, err, codeNotFound, "")
	out, err := e.sm.CancelRotateSecret(e.ctx, &smapi.CancelRotateSecretInput{SecretId: str("db")})
	mustOK(t, err, "CancelRotateSecret")
	if deref(out.VersionId) != *token("p") {
		t.Fatalf("CancelRotateSecret VersionId = %v, want the pending version %s", deref(out.VersionId), *token("p"))
	}
	// Changing the KMS key re-encrypts the labeled versions and skips the
	// empty one.
	_, err = e.sm.UpdateSecret(e.ctx, &smapi.UpdateSecretInput{SecretId: str("db"), KmsKeyId: str(e.createKey(t))})
	mustOK(t, err, "UpdateSecret(KmsKeyId) with an empty pending version")
}

func TestRotateSecretErrors(t *testing.T) {
	e, _ := newRotationEnv(t)
	e.create(t, "db", "v1")
	e.create(t, "gone", "v1")
	_, err := e.sm.DeleteSecret(e.ctx, &smapi.DeleteSecretInput{SecretId: str("gone")})
	mustOK(t, err, "DeleteSecret")

	_, err = e.rotate(&smapi.RotateSecretInput{SecretId: str("db")})
	wantCode(t, err, codeInvalidRequest, "No Lambda rotation function ARN is associated with this secret.")

	_, err = e.rotate(&smapi.RotateSecretInput{SecretId: str("db"), RotationLambdaARN: str("arn:aws:lambda:us-east-1:123456789012:function:unmapped")})
	if e2, ok := awserr.As(err); !ok || e2.Code != awserr.CodeAccessDenied || e2.Status != 400 ||
		e2.Message != "Secrets Manager cannot invoke the specified Lambda function. Ensure that the function policy grants access to the principal secretsmanager.amazonaws.com." {
		t.Fatalf("RotateSecret(unmapped function) = %v, want AccessDeniedException (400) with AWS's message", err)
	}
	if d := e.describe(t, "db"); d.RotationEnabled != nil || d.RotationLambdaARN != nil {
		t.Fatalf("after AccessDeniedException DescribeSecret shows rotation %v / %v, want no change", d.RotationEnabled, d.RotationLambdaARN)
	}

	_, err = e.rotate(&smapi.RotateSecretInput{SecretId: str("gone"), RotationLambdaARN: str(testLambda)})
	wantCode(t, err, codeInvalidRequest, "marked for deletion")
	_, err = e.rotate(&smapi.RotateSecretInput{SecretId: str("nope"), RotationLambdaARN: str(testLambda)})
	wantCode(t, err, codeNotFound, "")

	e.sm.rotator = nil
	_, err = e.rotate(&smapi.RotateSecretInput{SecretId: str("db"), RotationLambdaARN: str(testLambda)})
	if e2, ok := awserr.As(err); !ok || e2.Code != awserr.CodeAccessDenied {
		t.Fatalf("RotateSecret without webhooks = %v, want AccessDeniedException", err)
	}

	_, err = e.sm.CancelRotateSecret(e.ctx, &smapi.CancelRotateSecretInput{SecretId: str("db")})
	wantCode(t, err, codeInvalidRequest, "Lambda function ARN")
	_, err = e.sm.CancelRotateSecret(e.ctx, &smapi.CancelRotateSecretInput{SecretId: str("gone")})
	wantCode(t, err, codeInvalidRequest, "marked for deletion")
}

func TestRotationRulesValidation(t *testing.T) {
	e, _ := newRotationEnv(t)
	e.create(t, "db", "v1")
	days := func(n int64) *int64 { return &n }
	tests := []struct {
		name  string
		rules smapi.RotationRulesType
		ok    bool
	}{
		{"days", smapi.RotationRulesType{AutomaticallyAfterDays: days(30)}, true},
		{"days 1000", smapi.RotationRulesType{AutomaticallyAfterDays: days(1000)}, true},
		{"days 0", smapi.RotationRulesType{AutomaticallyAfterDays: days(0)}, false},
		{"days 1001", smapi.RotationRulesType{AutomaticallyAfterDays: days(1001)}, false},
		{"days and schedule", smapi.RotationRulesType{AutomaticallyAfterDays: days(3), ScheduleExpression: str("rate(3 days)")}, false},
		{"empty", smapi.RotationRulesType{}, false},
		{"duration only", smapi.RotationRulesType{Duration: str("3h")}, false},
		{"rate 4 hours", smapi.RotationRulesType{ScheduleExpression: str("rate(4 hours)")}, true},
		{"rate 1 day", smapi.RotationRulesType{ScheduleExpression: str("rate(1 day)")}, true},
		{"rate 999 days", smapi.RotationRulesType{ScheduleExpression: str("rate(999 days)")}, true},
		{"rate 3 hours", smapi.RotationRulesType{ScheduleExpression: str("rate(3 hours)")}, false},
		{"rate 24 hours", smapi.RotationRulesType{ScheduleExpression: str("rate(24 hours)")}, false},
		{"rate 1000 days", smapi.RotationRulesType{ScheduleExpression: str("rate(1000 days)")}, false},
		{"rate minutes", smapi.RotationRulesType{ScheduleExpression: str("rate(300 minutes)")}, false},
		{"rate no unit", smapi.RotationRulesType{ScheduleExpression: str("rate(5)")}, false},
		{"cron twice a month", smapi.RotationRulesType{ScheduleExpression: str("cron(0 16 1,15 * ? *)")}, true},
		{"cron every 8 hours", smapi.RotationRulesType{ScheduleExpression: str("cron(0 8/8 * * ? *)")}, true},
		{"cron first sunday", smapi.RotationRulesType{ScheduleExpression: str("cron(0 0 ? * SUN#1 *)")}, true},
		{"cron last day", smapi.RotationRulesType{ScheduleExpression: str("cron(0 16 L * ? *)")}, true},
		{"cron last friday", smapi.RotationRulesType{ScheduleExpression: str("cron(0 4 ? * 6L *)")}, true},
		{"cron weekdays", smapi.RotationRulesType{ScheduleExpression: str("cron(0 10 ? * MON-FRI *)")}, true},
		{"cron minutes", smapi.RotationRulesType{ScheduleExpression: str("cron(30 16 1 * ? *)")}, false},
		{"cron year", smapi.RotationRulesType{ScheduleExpression: str("cron(0 16 1 * ? 2027)")}, false},
		{"cron five fields", smapi.RotationRulesType{ScheduleExpression: str("cron(0 16 1 * ?)")}, false},
		{"cron both days", smapi.RotationRulesType{ScheduleExpression: str("cron(0 16 1 * MON *)")}, false},
		{"cron neither day", smapi.RotationRulesType{ScheduleExpression: str("cron(0 16 ? * ? *)")}, false},
		{"cron every 2 hours", smapi.RotationRulesType{ScheduleExpression: str("cron(0 0/2 * * ? *)")}, false},
		{"cron hour 24", smapi.RotationRulesType{ScheduleExpression: str("cron(0 24 * * ? *)")}, false},
		{"cron never", smapi.RotationRulesType{ScheduleExpression: str("cron(0 0 31 FEB ? *)")}, false},
		{"not an expression", smapi.RotationRulesType{ScheduleExpression: str("every day")}, false},
		{"window 3h", smapi.RotationRulesType{ScheduleExpression: str("rate(10 days)"), Duration: str("3h")}, true},
		{"window 24h", smapi.RotationRulesType{ScheduleExpression: str("rate(10 days)"), Duration: str("24h")}, true},
		{"window 25h", smapi.RotationRulesType{ScheduleExpression: str("rate(10 days)"), Duration: str("25h")}, false},
		{"window 0h", smapi.RotationRulesType{ScheduleExpression: str("rate(10 days)"), Duration: str("0h")}, false},
		{"window past next", smapi.RotationRulesType{ScheduleExpression: str("rate(4 hours)"), Duration: str("5h")}, false},
		{"window past midnight", smapi.RotationRulesType{ScheduleExpression: str("cron(0 22 * * ? *)"), Duration: str("3h")}, false},
		{"window fits", smapi.RotationRulesType{ScheduleExpression: str("cron(0 20 * * ? *)"), Duration: str("4h")}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := e.rotate(&smapi.RotateSecretInput{SecretId: str("db"), RotationLambdaARN: str(testLambda),
				RotationRules: &tt.rules, RotateImmediately: ptr(false)})
			if tt.ok {
				mustOK(t, err, "RotateSecret")
				return
			}
			wantCode(t, err, codeInvalidParameter, "")
		})
	}
}

func TestScheduleWindows(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 30, 0, 0, time.UTC) // a Sunday
	tests := []struct {
		expr, dur   string
		start, last string
	}{
		{"rate(4 hours)", "", "2026-03-01T16:00:00Z", "2026-03-01T16:59:59Z"},
		{"rate(6 hours)", "2h", "2026-03-01T18:00:00Z", "2026-03-01T19:59:59Z"},
		{"rate(10 days)", "", "2026-03-11T00:00:00Z", "2026-03-11T23:59:59Z"},
		{"cron(0 16 1,15 * ? *)", "", "2026-03-01T16:00:00Z", "2026-03-01T23:59:59Z"},
		{"cron(0 10 1,15 * ? *)", "3h", "2026-03-15T10:00:00Z", "2026-03-15T12:59:59Z"},
		{"cron(0 0 ? * SUN#1 *)", "", "2026-04-05T00:00:00Z", "2026-04-05T23:59:59Z"},
		{"cron(0 16 L * ? *)", "", "2026-03-31T16:00:00Z", "2026-03-31T23:59:59Z"},
		{"cron(0 4 ? * 6L *)", "", "2026-03-27T04:00:00Z", "2026-03-27T23:59:59Z"},
		{"cron(0 8/8 * * ? *)", "", "2026-03-01T16:00:00Z", "2026-03-01T16:59:59Z"},
	}
	for _, tt := range tests {
		t.Run(tt.expr+tt.dur, func(t *testing.T) {
			r := &smapi.RotationRulesType{ScheduleExpression: str(tt.expr)}
			if tt.dur != "" {
				r.Duration = str(tt.dur)
			}
			sch, err := parseRules(r, now)
			mustOK(t, err, "parseRules("+tt.expr+")")
			start, last, ok := sch.windowAfter(now, now)
			if !ok || start.Format(time.RFC3339) != tt.start || last.Format(time.RFC3339) != tt.last {
				t.Fatalf("windowAfter = %v..%v (%v), want %s..%s", start, last, ok, tt.start, tt.last)
			}
		})
	}
}

func TestScheduledRotation(t *testing.T) {
	e, f := newRotationEnv(t)
	e.create(t, "db", "v1")
	e.create(t, "other", "o1")
	_, err := e.rotate(&smapi.RotateSecretInput{SecretId: str("db"), RotationLambdaARN: str(testLambda),
		RotationRules: &smapi.RotationRulesType{ScheduleExpression: str("rate(2 days)")}, RotateImmediately: ptr(false)})
	mustOK(t, err, "RotateSecret(RotateImmediately=false)")
	if got := fmt.Sprint(f.steps()); got != "[testSecret]" {
		t.Fatalf("steps with RotateImmediately=false = %s, want [testSecret]", got)
	}
	if st := stagesOf(t, e, "db"); len(st) != 1 {
		t.Fatalf("stages after the test = %v, want only the AWSCURRENT version (the test's version is removed)", st)
	}
	d := e.describe(t, "db")
	wantNext := time.Date(2026, 3, 3, 23, 59, 59, 0, time.UTC)
	if d.LastRotatedDate != nil || d.NextRotationDate == nil || !d.NextRotationDate.Equal(wantNext) || deref(d.RotationRules.AutomaticallyAfterDays) != 2 {
		t.Fatalf("DescribeSecret = last %v, next %v, rules %+v; want no last rotation, next %v, AutomaticallyAfterDays 2",
			d.LastRotatedDate, d.NextRotationDate, d.RotationRules, wantNext)
	}

	mustOK(t, e.sm.RunJobs(e.ctx), "RunJobs")
	if got := e.get(t, "db"); got.SecretString.Reveal() != "v1" {
		t.Fatalf("before the window GetSecretValue = %q, want v1", got.SecretString.Reveal())
	}
	e.clock.Add(36 * time.Hour) // 2026-03-03T00:00Z: the window opens
	mustOK(t, e.sm.RunJobs(e.ctx), "RunJobs")
	if got := e.get(t, "db"); got.SecretString.Reveal() != "rotated-1" {
		t.Fatalf("after the window opened GetSecretValue = %q, want rotated-1", got.SecretString.Reveal())
	}
	d = e.describe(t, "db")
	if !d.LastRotatedDate.Equal(e.clock.Now()) || !d.NextRotationDate.Equal(time.Date(2026, 3, 5, 23, 59, 59, 0, time.UTC)) {
		t.Fatalf("after scheduled rotation last %v next %v, want %v and 2026-03-05T23:59:59Z", d.LastRotatedDate, d.NextRotationDate, e.clock.Now())
	}
	mustOK(t, e.sm.RunJobs(e.ctx), "RunJobs again")
	if n := len(f.steps()); n != 5 {
		t.Fatalf("a second RunJobs in the same window invoked %d steps in all, want 5", n)
	}
	if got := e.get(t, "other"); got.SecretString.Reveal() != "o1" {
		t.Fatalf("a secret without rotation changed: %q", got.SecretString.Reveal())
	}

	// A secret scheduled for deletion is not rotated, and is still purged.
	_, err = e.sm.DeleteSecret(e.ctx, &smapi.DeleteSecretInput{SecretId: str("db"), RecoveryWindowInDays: ptr(int64(7))})
	mustOK(t, err, "DeleteSecret")
	e.clock.Add(3 * day)
	mustOK(t, e.sm.RunJobs(e.ctx), "RunJobs")
	if n := len(f.steps()); n != 5 {
		t.Fatalf("a secret scheduled for deletion was rotated (%d steps)", n)
	}
	e.clock.Add(5 * day)
	mustOK(t, e.sm.RunJobs(e.ctx), "RunJobs")
	_, err = e.sm.DescribeSecret(e.ctx, &smapi.DescribeSecretInput{SecretId: str("db")})
	wantCode(t, err, codeNotFound, "")
}

func TestScheduledRotationReattemptsAFailedOne(t *testing.T) {
	e, f := newRotationEnv(t)
	e.create(t, "db", "v1")
	f.failOn = stepSet
	_, err := e.rotate(&smapi.RotateSecretInput{SecretId: str("db"), RotationLambdaARN: str(testLambda),
		RotationRules: &smapi.RotationRulesType{AutomaticallyAfterDays: ptr(int64(1))}, ClientRequestToken: token("first")})
	wantCode(t, err, codeInvalidRequest, "setSecret")
	f.failOn = ""
	e.clock.Add(day)
	mustOK(t, e.sm.RunJobs(e.ctx), "RunJobs")
	got := e.get(t, "db")
	if *got.VersionId != *token("first") || got.SecretString.Reveal() != "rotated-1" {
		t.Fatalf("after the scheduled reattempt GetSecretValue = %q (version %s), want rotated-1 in version %s",
			got.SecretString.Reveal(), *got.VersionId, *token("first"))
	}
}

func TestCancelRotateSecret(t *testing.T) {
	e, f := newRotationEnv(t)
	e.create(t, "db", "v1")
	_, err := e.rotate(&smapi.RotateSecretInput{SecretId: str("db"), RotationLambdaARN: str(testLambda),
		RotationRules: &smapi.RotationRulesType{AutomaticallyAfterDays: ptr(int64(1))}})
	mustOK(t, err, "RotateSecret")
	out, err := e.sm.CancelRotateSecret(e.ctx, &smapi.CancelRotateSecretInput{SecretId: str("db")})
	mustOK(t, err, "CancelRotateSecret")
	if deref(out.Name) != "db" || out.VersionId != nil {
		t.Fatalf("CancelRotateSecret = %+v, want Name db and no VersionId (no rotation in progress)", out)
	}
	d := e.describe(t, "db")
	if deref(d.RotationEnabled) || deref(d.RotationLambdaARN) != testLambda || deref(d.RotationRules.AutomaticallyAfterDays) != 1 || d.NextRotationDate != nil {
		t.Fatalf("after cancel DescribeSecret = enabled %v lambda %v rules %+v next %v; want false, the function and rules kept, no next date",
			deref(d.RotationEnabled), deref(d.RotationLambdaARN), d.RotationRules, d.NextRotationDate)
	}
	e.clock.Add(3 * day)
	mustOK(t, e.sm.RunJobs(e.ctx), "RunJobs")
	if n := len(f.steps()); n != 4 {
		t.Fatalf("a cancelled rotation ran again: %d steps, want 4", n)
	}
	// RotateSecret turns rotation on again with the stored configuration.
	_, err = e.rotate(&smapi.RotateSecretInput{SecretId: str("db")})
	mustOK(t, err, "RotateSecret after cancel")
	if d := e.describe(t, "db"); !deref(d.RotationEnabled) || d.NextRotationDate == nil {
		t.Fatalf("after RotateSecret rotation enabled %v next %v, want true and a date", deref(d.RotationEnabled), d.NextRotationDate)
	}
}

func TestPutSecretValueRotationToken(t *testing.T) {
	e, _ := newRotationEnv(t)
	e.create(t, "db", "v1")
	_, err := e.sm.PutSecretValue(e.ctx, &smapi.PutSecretValueInput{SecretId: str("db"), SecretString: secretString("x"),
		RotationToken: ptr(sensitive.String("11111111-1111-4111-8111-111111111111"))})
	wantCode(t, err, codeInvalidRequest, "RotationToken")
}
