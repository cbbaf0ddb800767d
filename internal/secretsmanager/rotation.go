package secretsmanager

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"time"

	"github.com/keyfort/keyfort/internal/awserr"
	"github.com/keyfort/keyfort/internal/secretsmanager/smapi"
	"github.com/keyfort/keyfort/internal/storage"
)

// Rotation, as AWS does it: RotateSecret stores the rotation configuration,
// adds an empty version labeled AWSPENDING whose id is the
// ClientRequestToken, and invokes the rotation function four times, with the
// steps createSecret, setSecret, testSecret and finishSecret. The function
// does the work by calling Secrets Manager itself: PutSecretValue with the
// ClientRequestToken and VersionStages ["AWSPENDING"], GetSecretValue, and
// UpdateSecretVersionStage to move AWSCURRENT in finishSecret.
//
// Keyfort cannot run Lambda functions: a RotationInvoker (the operator's
// mapping of Lambda ARNs to webhooks, package webhook) delivers each step.
// Steps run synchronously, outside any storage transaction. AWS runs them
// asynchronously after RotateSecret returns; Keyfort instead reports a
// failed step as the error of RotateSecret (see errStepFailed), leaving the
// AWSPENDING version in place as AWS does, so that the next RotateSecret
// answers "A previous rotation isn't complete" until the same
// ClientRequestToken reattempts it, the job reattempts it at the next
// window, or the caller removes AWSPENDING.

// RotationInvoker delivers rotation steps to rotation functions.
type RotationInvoker interface {
	// CanInvoke reports whether the invoker has a target for lambdaARN.
	CanInvoke(lambdaARN string) bool
	// Invoke delivers event (the JSON a rotation Lambda receives) to the
	// function and returns nil when the function succeeded. Errors must
	// not contain secret values.
	Invoke(ctx context.Context, lambdaARN string, event []byte) error
}

// Rotation steps, in order.
const (
	stepCreate = "createSecret"
	stepSet    = "setSecret"
	stepTest   = "testSecret"
	stepFinish = "finishSecret"
)

// rotationEvent is the event a rotation function receives.
type rotationEvent struct {
	Step               string `json:"Step"`
	SecretID           string `json:"SecretId"`
	ClientRequestToken string `json:"ClientRequestToken"`
	RotationToken      string `json:"RotationToken"`
}

func errRotationInProgress() error {
	return errInvalidRequest("A previous rotation isn't complete. That rotation will be reattempted.")
}

// errNoLambdaARN is AWS's answer to RotateSecret on a secret that has no
// rotation function when the call names none (LocalStack's AWS-validated
// test_first_rotate_secret_with_missing_lambda_arn).
func errNoLambdaARN() error {
	return errInvalidRequest("No Lambda rotation function ARN is associated with this secret.")
}

// errNoRotationFunction is Keyfort's answer to CancelRotateSecret on a
// secret that never had a rotation function.
func errNoRotationFunction() error {
	return errInvalidRequest("You tried to enable rotation on a secret that doesn't already have a Lambda function ARN configured and you didn't include such an ARN as a parameter in this call.")
}

// errCannotInvoke is what AWS answers when Secrets Manager may not invoke
// the rotation function (AccessDeniedException, HTTP 400); Keyfort answers
// it for a Lambda ARN that has no webhook in the configuration.
func errCannotInvoke() error {
	return awserr.WithStatus(400, awserr.CodeAccessDenied,
		"Secrets Manager cannot invoke the specified Lambda function. Ensure that the function policy grants access to the principal secretsmanager.amazonaws.com.")
}

// errStepFailed reports a rotation function that failed a step. AWS would
// report it only in CloudTrail (RotationFailed); it is a client error here
// so that SDKs do not retry it.
func errStepFailed(step, versionID string) error {
	return errInvalidRequest("The rotation function failed the " + step + " step. The version " + versionID +
		" keeps the staging label AWSPENDING: call RotateSecret with the same ClientRequestToken to reattempt the rotation, " +
		"or remove the label with UpdateSecretVersionStage.")
}

func errBadRotationToken() error {
	return errInvalidRequest("The RotationToken isn't valid for a rotation in progress of this secret.")
}

func hashToken(t string) string {
	h := sha256.Sum256([]byte(t))
	return hex.EncodeToString(h[:])
}

// rotationTokenValid reports whether token is the RotationToken of the
// secret's rotation in progress.
func (m *secretMeta) rotationTokenValid(token string) bool {
	return m.RotationTokenHash != "" &&
		subtle.ConstantTimeCompare([]byte(hashToken(token)), []byte(m.RotationTokenHash)) == 1
}

// rotationDue reports whether the background job should rotate the secret.
func (s *secret) rotationDue(now time.Time) bool {
	m := &s.meta
	return m.RotationEnabled && !s.deleted() && m.RotationDue != nil && !m.RotationDue.After(now)
}

// rotationRun is one rotation to invoke, prepared in a transaction.
type rotationRun struct {
	scope     storage.Scope
	name, arn string
	lambda    string
	versionID string
	token     string // the RotationToken, known only here and to the function
	steps     []string
}

// beginRotation prepares a rotation of cur in its transaction: the empty
// AWSPENDING version versionID (or the pending one when reattempting) and a
// new RotationToken. The caller saves cur.
func (s *Service) beginRotation(cur *secret, versionID string, reattempt bool, now time.Time) (rotationRun, error) {
	m := &cur.meta
	if !reattempt {
		m.NextSeq++
		m.Versions[versionID] = &versionMeta{Seq: m.NextSeq, Created: now, Stages: []string{}, NoValue: true}
		if err := moveStage(m, stagePending, versionID); err != nil {
			return rotationRun{}, err
		}
	}
	token, err := newUUID(s.rand)
	if err != nil {
		return rotationRun{}, err
	}
	m.RotationTokenHash = hashToken(token)
	return rotationRun{
		scope: cur.rec.Scope, name: cur.rec.ID, arn: m.ARN,
		lambda: m.RotationLambdaARN, versionID: versionID, token: token,
	}, nil
}

// scheduleNext sets the next rotation window of m after t.
func scheduleNext(m *secretMeta, t time.Time) {
	m.NextRotation, m.RotationDue = nil, nil
	sch := scheduleOf(m, t)
	if sch == nil {
		return
	}
	// AWS counts a new AWSCURRENT value as a rotation: intervals in days
	// run from the later of the last rotation and that value's creation.
	var base time.Time
	if cur := m.holder(stageCurrent); cur != "" {
		base = m.Versions[cur].Created
	}
	if m.LastRotated != nil && m.LastRotated.After(base) {
		base = *m.LastRotated
	}
	if base.IsZero() {
		base = t
	}
	if start, last, ok := sch.windowAfter(base, t); ok {
		m.RotationDue, m.NextRotation = ptr(start), ptr(last)
	}
}

// invoke delivers the steps of run in order and returns the first that
// failed, or "".
func (s *Service) invoke(ctx context.Context, run rotationRun) (string, error) {
	for _, step := range run.steps {
		ev, err := json.Marshal(rotationEvent{Step: step, SecretID: run.arn, ClientRequestToken: run.versionID, RotationToken: run.token})
		if err != nil {
			return step, wrap("rotation event", err)
		}
		if err := s.rotator.Invoke(ctx, run.lambda, ev); err != nil {
			return step, err
		}
	}
	return "", nil
}

// finishRotation records the end of run: after a successful rotation the
// rotation date and the next window; after RotateImmediately=false's test,
// the removal of the test's empty version. The RotationToken stops being
// valid unless the rotation failed (the AWSPENDING version then stays, and
// so does its token, until a reattempt replaces it).
func (s *Service) finishRotation(ctx context.Context, run rotationRun, rotated, failed bool) error {
	var after syncAfter
	err := s.store.Update(ctx, func(tx storage.Tx) error {
		cur, err := getSecret(ctx, tx, run.scope, run.name)
		if err != nil {
			return err
		}
		m := &cur.meta
		if m.ARN != run.arn || !m.rotationTokenValid(run.token) {
			return nil // replaced, cancelled or superseded meanwhile
		}
		now := s.now().UTC()
		if !rotated {
			if v, ok := m.Versions[run.versionID]; ok {
				v.removeStage(stagePending)
				if v.NoValue && len(v.Stages) == 0 {
					delete(m.Versions, run.versionID)
				}
			}
			m.RotationTokenHash = ""
			return s.saveChange(ctx, tx, cur, &after)
		}
		if failed {
			return nil
		}
		m.RotationTokenHash = ""
		m.LastRotated = ptr(now)
		if sch := scheduleOf(m, now); sch != nil && m.RotationSchedule != "" {
			m.RotationDays = sch.intervalDays(now)
		}
		scheduleNext(m, now)
		return s.saveChange(ctx, tx, cur, &after)
	})
	if err != nil {
		return err
	}
	s.syncNow(ctx, after)
	return nil
}

// RotateSecret configures rotation (RotationLambdaARN, RotationRules) and,
// with RotateImmediately (the default), rotates the secret now by invoking
// the four steps of the rotation function. With RotateImmediately=false it
// runs only testSecret against an AWSPENDING version it then removes, and
// the secret rotates at its next window (RunJobs).
func (s *Service) RotateSecret(ctx context.Context, in *smapi.RotateSecretInput) (*smapi.RotateSecretOutput, error) {
	const op = "RotateSecret"
	scope, err := secretScope(ctx, in.SecretId)
	if err != nil {
		return nil, err
	}
	a := rotateAccess(in)
	if len(in.ExternalSecretRotationMetadata) > 0 || in.ExternalSecretRotationRoleArn != nil {
		return nil, awserr.WithStatus(501, awserr.CodeNotImplemented,
			"Keyfort does not implement rotation of managed external secrets")
	}
	now := s.now().UTC()
	var rules *schedule
	if in.RotationRules != nil {
		if rules, err = parseRules(in.RotationRules, now); err != nil {
			return nil, err
		}
	}
	sec, err := s.secretFor(ctx, s.store, scope, deref(in.SecretId), a)
	if err != nil {
		return nil, err
	}
	if sec.deleted() {
		return nil, errMarkedForDeletion()
	}
	lambda := deref(in.RotationLambdaARN)
	if lambda == "" {
		lambda = sec.meta.RotationLambdaARN
	}
	if lambda == "" {
		return nil, errNoLambdaARN()
	}
	if s.rotator == nil || !s.rotator.CanInvoke(lambda) {
		return nil, errCannotInvoke()
	}
	immediately := in.RotateImmediately == nil || *in.RotateImmediately
	versionID := deref(in.ClientRequestToken)
	if versionID == "" {
		if versionID, err = newUUID(s.rand); err != nil {
			return nil, err
		}
	}
	out := &smapi.RotateSecretOutput{ARN: ptr(sec.meta.ARN), Name: ptr(sec.meta.Name)}
	if immediately {
		out.VersionId = ptr(versionID)
	}

	var run rotationRun
	done := false
	var after syncAfter
	err = s.store.Update(ctx, func(tx storage.Tx) error {
		done = false
		cur, err := getSecret(ctx, tx, scope, sec.rec.ID)
		if err != nil {
			return err
		}
		if cur.meta.ARN != sec.meta.ARN {
			return errSecretNotFound()
		}
		if cur.deleted() {
			return errMarkedForDeletion()
		}
		m := &cur.meta
		pending, current := m.holder(stagePending), m.holder(stageCurrent)
		reattempt := false
		switch {
		case pending != "" && pending != current:
			if pending != versionID || !immediately {
				return errRotationInProgress()
			}
			reattempt = true
		case m.Versions[versionID] != nil:
			done = true // a retry of a rotation that made this version
			return nil
		}
		m.RotationLambdaARN = lambda
		if in.RotationRules != nil {
			m.RotationDays, m.RotationSchedule, m.RotationDuration = int64(rules.days), "", deref(in.RotationRules.Duration)
			if in.RotationRules.ScheduleExpression != nil {
				m.RotationSchedule = *in.RotationRules.ScheduleExpression
				m.RotationDays = rules.intervalDays(now)
			}
		}
		m.RotationEnabled = true
		m.LastChanged = now
		scheduleNext(m, now)
		run, err = s.beginRotation(cur, versionID, reattempt, now)
		if err != nil {
			return err
		}
		if err := pruneVersions(ctx, tx, cur, now); err != nil {
			return err
		}
		return s.saveChange(ctx, tx, cur, &after)
	})
	if err != nil {
		return nil, err
	}
	s.syncNow(ctx, after)
	if done {
		return out, nil
	}
	run.steps = []string{stepCreate, stepSet, stepTest, stepFinish}
	if !immediately {
		run.steps = []string{stepTest}
	}
	failedStep, stepErr := s.invoke(ctx, run)
	if stepErr != nil {
		s.log.WarnContext(ctx, "secretsmanager: rotation step failed", "secret", run.arn, "step", failedStep, "err", stepErr)
	}
	if err := s.finishRotation(ctx, run, immediately, stepErr != nil); err != nil {
		return nil, err
	}
	if stepErr != nil {
		return nil, errStepFailed(failedStep, versionID)
	}
	return out, nil
}

// CancelRotateSecret turns off automatic rotation. The rotation function
// and rules are kept (RotateSecret turns rotation on again with them); a
// rotation in progress is cancelled, its AWSPENDING version stays and is
// returned as VersionId, as on AWS.
func (s *Service) CancelRotateSecret(ctx context.Context, in *smapi.CancelRotateSecretInput) (*smapi.CancelRotateSecretOutput, error) {
	const op = "CancelRotateSecret"
	scope, err := secretScope(ctx, in.SecretId)
	if err != nil {
		return nil, err
	}
	a := act(in.IAMAction())
	var out *smapi.CancelRotateSecretOutput
	var after syncAfter
	err = s.store.Update(ctx, func(tx storage.Tx) error {
		sec, err := s.secretFor(ctx, tx, scope, deref(in.SecretId), a)
		if err != nil {
			return err
		}
		if sec.deleted() {
			return errMarkedForDeletion()
		}
		m := &sec.meta
		if m.RotationLambdaARN == "" {
			return errNoRotationFunction()
		}
		out = &smapi.CancelRotateSecretOutput{ARN: ptr(m.ARN), Name: ptr(m.Name)}
		if p := m.holder(stagePending); p != "" && p != m.holder(stageCurrent) {
			out.VersionId = ptr(p)
		}
		m.RotationEnabled = false
		m.NextRotation, m.RotationDue = nil, nil
		m.RotationTokenHash = ""
		m.LastChanged = s.now().UTC()
		return s.saveChange(ctx, tx, sec, &after)
	})
	if err != nil {
		return nil, err
	}
	s.syncNow(ctx, after)
	return out, nil
}

// rotateDue starts the rotations whose window has opened: each is claimed
// in a transaction (its next window is set, so no other node or later run
// starts it again), then its steps are invoked outside it. A pending
// rotation (a failed one) is reattempted with its own version id. It
// returns how many secrets it handled.
func (s *Service) rotateDue(ctx context.Context) (int, error) {
	now := s.now().UTC()
	var runs []rotationRun
	var syncs []syncAfter
	handled := 0
	err := s.store.Update(ctx, func(tx storage.Tx) error {
		runs, syncs, handled = runs[:0], syncs[:0], 0
		recs, err := tx.Due(ctx, kindSecret, now.Unix(), 50)
		if err != nil {
			return wrap("due secrets", err)
		}
		for _, rec := range recs {
			sec, err := decodeSecret(rec)
			if err != nil {
				return err
			}
			if !sec.rotationDue(now) {
				continue
			}
			handled++
			m := &sec.meta
			scheduleNext(m, now)
			if s.rotator == nil || !s.rotator.CanInvoke(m.RotationLambdaARN) {
				s.log.WarnContext(ctx, "secretsmanager: scheduled rotation skipped: no webhook for the rotation function",
					"secret", m.ARN, "function", m.RotationLambdaARN)
				var after syncAfter
				if err := s.saveChange(ctx, tx, sec, &after); err != nil {
					return err
				}
				syncs = append(syncs, after)
				continue
			}
			pending, current := m.holder(stagePending), m.holder(stageCurrent)
			reattempt := pending != "" && pending != current
			vid := pending
			if !reattempt {
				if vid, err = newUUID(s.rand); err != nil {
					return err
				}
			}
			run, err := s.beginRotation(sec, vid, reattempt, now)
			if err != nil {
				return err
			}
			if err := pruneVersions(ctx, tx, sec, now); err != nil {
				return err
			}
			var after syncAfter
			if err := s.saveChange(ctx, tx, sec, &after); err != nil {
				return err
			}
			syncs = append(syncs, after)
			run.steps = []string{stepCreate, stepSet, stepTest, stepFinish}
			runs = append(runs, run)
		}
		return nil
	})
	if err != nil {
		return 0, wrap("rotate due secrets", err)
	}
	for _, after := range syncs {
		s.syncNow(ctx, after)
	}
	var errs []error
	for _, run := range runs {
		step, stepErr := s.invoke(ctx, run)
		if stepErr != nil {
			s.log.WarnContext(ctx, "secretsmanager: scheduled rotation failed", "secret", run.arn, "step", step, "err", stepErr)
		}
		if err := s.finishRotation(ctx, run, true, stepErr != nil); err != nil {
			errs = append(errs, wrap("finish rotation", err))
		}
	}
	return handled, errors.Join(errs...)
}
