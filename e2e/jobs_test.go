package e2e

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	kmstypes "github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"

	"github.com/keyfort/keyfort/internal/config"
	"github.com/keyfort/keyfort/internal/keyfortest"
	"github.com/keyfort/keyfort/internal/storage/postgres/pgtest"
)

// countingHook is a rotation webhook (rotationStep's four steps, through
// the SDK) that counts the calls per secret, step and ClientRequestToken.
type countingHook struct {
	ts *httptest.Server
	sm *secretsmanager.Client

	mu    sync.Mutex
	calls map[string]map[string][]string // secret ARN -> step -> tokens, in call order
	errs  []error
}

func newCountingHook(t *testing.T) *countingHook {
	h := &countingHook{calls: map[string]map[string][]string{}}
	h.ts = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var ev struct{ Step, SecretId, ClientRequestToken, RotationToken string }
		if err := json.NewDecoder(r.Body).Decode(&ev); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		h.mu.Lock()
		if h.calls[ev.SecretId] == nil {
			h.calls[ev.SecretId] = map[string][]string{}
		}
		h.calls[ev.SecretId][ev.Step] = append(h.calls[ev.SecretId][ev.Step], ev.ClientRequestToken)
		c := h.sm
		h.mu.Unlock()
		ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
		defer cancel()
		if err := rotationStep(ctx, c, ev.Step, ev.SecretId, ev.ClientRequestToken, ev.RotationToken); err != nil {
			h.mu.Lock()
			h.errs = append(h.errs, fmt.Errorf("%s %s: %w", ev.SecretId, ev.Step, err))
			h.mu.Unlock()
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(h.ts.Close)
	return h
}

func (h *countingHook) config(c *config.Config) {
	c.RotationWebhooks = map[string]string{rotationLambda: h.ts.URL + "/rotate"}
}

// TestJobsRunOnceOnTwoNodes: two servers share one PostgreSQL store and
// one clock; when keys' deletion windows and rotation periods and secrets'
// recovery windows and rotation windows have passed, both run their jobs
// at once, several times (their tickers too). Every job runs exactly once:
// each key rotates once (ListKeyRotations), each rotation webhook step is
// called once per secret with one ClientRequestToken, which becomes
// AWSCURRENT, and every deleted key and secret is gone.
func TestJobsRunOnceOnTwoNodes(t *testing.T) {
	dsn := pgtest.DSN(t)
	const perJob = 15
	clock := keyfortest.NewClock(time.Date(2026, 5, 4, 9, 30, 0, 0, time.UTC))
	root := make([]byte, 32)
	_, _ = rand.Read(root)
	hook := newCountingHook(t)
	a := keyfortest.Start(t, keyfortest.WithStore(dsn), keyfortest.WithRootKey(root), keyfortest.WithClock(clock), keyfortest.WithConfig(hook.config))
	b := keyfortest.Start(t, keyfortest.WithNodeOf(a), keyfortest.WithRootKey(root), keyfortest.WithClock(clock), keyfortest.WithConfig(hook.config))
	hook.mu.Lock()
	hook.sm = b.SecretsManager()
	hook.mu.Unlock()
	ctx := ctxT(t)
	km, sm := a.KMS(), a.SecretsManager()

	var deleteKeys, rotateKeys, deleteSecrets, rotateSecrets []string
	for i := range perJob {
		k, err := km.CreateKey(ctx, &kms.CreateKeyInput{})
		mustNoErr(t, err, "CreateKey")
		_, err = km.ScheduleKeyDeletion(ctx, &kms.ScheduleKeyDeletionInput{KeyId: k.KeyMetadata.KeyId, PendingWindowInDays: aws.Int32(7)})
		mustNoErr(t, err, "ScheduleKeyDeletion")
		deleteKeys = append(deleteKeys, aws.ToString(k.KeyMetadata.KeyId))

		k, err = km.CreateKey(ctx, &kms.CreateKeyInput{})
		mustNoErr(t, err, "CreateKey")
		_, err = km.EnableKeyRotation(ctx, &kms.EnableKeyRotationInput{KeyId: k.KeyMetadata.KeyId, RotationPeriodInDays: aws.Int32(90)})
		mustNoErr(t, err, "EnableKeyRotation")
		rotateKeys = append(rotateKeys, aws.ToString(k.KeyMetadata.KeyId))

		s := createSecret(t, sm, fmt.Sprintf("jobs/delete-%02d", i), "v")
		_, err = sm.DeleteSecret(ctx, &secretsmanager.DeleteSecretInput{SecretId: s.ARN, RecoveryWindowInDays: aws.Int64(7)})
		mustNoErr(t, err, "DeleteSecret")
		deleteSecrets = append(deleteSecrets, aws.ToString(s.ARN))

		s = createSecret(t, sm, fmt.Sprintf("jobs/rotate-%02d", i), "v")
		_, err = sm.RotateSecret(ctx, &secretsmanager.RotateSecretInput{SecretId: s.ARN, RotationLambdaARN: aws.String(rotationLambda),
			RotateImmediately: aws.Bool(false), RotationRules: &types.RotationRulesType{AutomaticallyAfterDays: aws.Int64(100)}})
		mustNoErr(t, err, "RotateSecret(RotateImmediately=false)")
		rotateSecrets = append(rotateSecrets, aws.ToString(s.ARN))
	}

	// Everything falls due: deletions after 7 days, key rotations after
	// 90, secret rotations after 100.
	clock.Advance(101 * 24 * time.Hour)
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for i := range 8 {
		srv := []*keyfortest.Server{a, b}[i%2]
		wg.Go(func() {
			if err := srv.App.RunJobs(ctx); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("RunJobs: %v", err)
	}
	a.RunJobs(t) // whatever a run left (none should be left) is done by now
	b.RunJobs(t)

	for _, id := range deleteKeys {
		_, err := b.KMS().DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String(id)})
		wantAPIError(t, err, "NotFoundException", "")
	}
	for _, id := range rotateKeys {
		out, err := b.KMS().ListKeyRotations(ctx, &kms.ListKeyRotationsInput{KeyId: aws.String(id)})
		mustNoErr(t, err, "ListKeyRotations")
		if len(out.Rotations) != 1 || out.Rotations[0].RotationType != kmstypes.RotationTypeAutomatic {
			t.Errorf("key %s: %d rotations %+v, want exactly one AUTOMATIC", id, len(out.Rotations), out.Rotations)
		}
	}
	for _, arn := range deleteSecrets {
		_, err := b.SecretsManager().DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String(arn)})
		wantAPIError(t, err, "ResourceNotFoundException", "")
	}
	hook.mu.Lock()
	defer hook.mu.Unlock()
	for _, err := range hook.errs {
		t.Errorf("webhook step failed: %v", err)
	}
	for _, arn := range rotateSecrets {
		calls := hook.calls[arn]
		// testSecret once for RotateImmediately=false (on its own empty
		// version), then each step once for the scheduled rotation.
		rotation := calls["createSecret"]
		if len(rotation) != 1 || len(calls["setSecret"]) != 1 || len(calls["finishSecret"]) != 1 || len(calls["testSecret"]) != 2 {
			t.Errorf("secret %s: webhook calls %v, want createSecret, setSecret, finishSecret once and testSecret twice", arn, calls)
			continue
		}
		token := rotation[0]
		for _, step := range []string{"setSecret", "finishSecret"} {
			if calls[step][0] != token {
				t.Errorf("secret %s: %s got ClientRequestToken %s, createSecret %s", arn, step, calls[step][0], token)
			}
		}
		d, err := b.SecretsManager().DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String(arn)})
		mustNoErr(t, err, "DescribeSecret")
		if st := d.VersionIdsToStages[token]; !slices.Contains(st, "AWSCURRENT") || d.LastRotatedDate == nil || !d.LastRotatedDate.Equal(clock.Now()) {
			t.Errorf("secret %s: version %s has stages %v, LastRotatedDate %v; want AWSCURRENT, %v", arn, token, st, d.LastRotatedDate, clock.Now())
		}
	}
}
