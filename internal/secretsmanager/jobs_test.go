package secretsmanager

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keyfort/keyfort/internal/envelope"
	"github.com/keyfort/keyfort/internal/kms"
	"github.com/keyfort/keyfort/internal/kms/kmsapi"
	"github.com/keyfort/keyfort/internal/secretsmanager/smapi"
	"github.com/keyfort/keyfort/internal/storage"
)

// node is one Keyfort node's services over a shared store: its own KMS
// and Secrets Manager services (own caches), the cluster's root key and
// clock, and a rotation function that counts what it is asked.
type node struct {
	*env
	rot *fakeRotator
}

// twoNodes returns two nodes sharing store, one root key and one clock.
func twoNodes(t *testing.T, store storage.Store, wrap func(RotationInvoker) RotationInvoker) [2]*node {
	t.Helper()
	root, err := envelope.GenerateRootKey(rand.Reader)
	if err != nil {
		t.Fatalf("GenerateRootKey: %v", err)
	}
	c := &clock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
	var nodes [2]*node
	for i := range nodes {
		k := kms.New(kms.Config{Store: store, Sealer: envelope.NewSealer(nil, root), Now: c.Now})
		e := &env{kms: k, clock: c, ctx: asCaller(t.Context(), testAccount, testRegion)}
		e.sm = New(Config{Store: store, KMS: k, Now: c.Now})
		f := &fakeRotator{sm: e.sm, ctx: e.ctx}
		e.sm.rotator = f
		if wrap != nil {
			e.sm.rotator = wrap(f)
		}
		nodes[i] = &node{env: e, rot: f}
	}
	return nodes
}

// stepsOf returns, per step, the ClientRequestTokens both nodes' rotation
// functions got for secret arn.
func stepsOf(nodes [2]*node, arn string) map[string][]string {
	out := map[string][]string{}
	for _, n := range nodes {
		n.rot.mu.Lock()
		for _, ev := range n.rot.events {
			if ev.SecretID == arn {
				out[ev.Step] = append(out[ev.Step], ev.ClientRequestToken)
			}
		}
		n.rot.mu.Unlock()
	}
	return out
}

// TestJobsOnceOnTwoNodes: two nodes run RunJobs at once, several times,
// over many due keys and secrets; every deletion, purge and rotation
// happens exactly once.
func TestJobsOnceOnTwoNodes(t *testing.T) {
	for name, store := range openBackends(t) {
		t.Run(name, func(t *testing.T) {
			const perJob = 12
			nodes := twoNodes(t, store, nil)
			e := nodes[0]
			var deleteKeys, rotateKeys, deleteSecrets, rotateSecrets []string
			for i := range perJob {
				k, err := e.kms.CreateKey(e.ctx, &kmsapi.CreateKeyInput{})
				mustOK(t, err, "CreateKey")
				_, err = e.kms.ScheduleKeyDeletion(e.ctx, &kmsapi.ScheduleKeyDeletionInput{KeyId: k.KeyMetadata.KeyId, PendingWindowInDays: ptr(int32(7))})
				mustOK(t, err, "ScheduleKeyDeletion")
				deleteKeys = append(deleteKeys, *k.KeyMetadata.KeyId)
				k, err = e.kms.CreateKey(e.ctx, &kmsapi.CreateKeyInput{})
				mustOK(t, err, "CreateKey")
				_, err = e.kms.EnableKeyRotation(e.ctx, &kmsapi.EnableKeyRotationInput{KeyId: k.KeyMetadata.KeyId, RotationPeriodInDays: ptr(int32(90))})
				mustOK(t, err, "EnableKeyRotation")
				rotateKeys = append(rotateKeys, *k.KeyMetadata.KeyId)

				s := e.create(t, fmt.Sprintf("delete-%02d", i), "v")
				_, err = e.sm.DeleteSecret(e.ctx, &smapi.DeleteSecretInput{SecretId: s.ARN, RecoveryWindowInDays: ptr(int64(7))})
				mustOK(t, err, "DeleteSecret")
				deleteSecrets = append(deleteSecrets, *s.ARN)
				s = e.create(t, fmt.Sprintf("rotate-%02d", i), "v")
				_, err = e.sm.RotateSecret(e.ctx, &smapi.RotateSecretInput{SecretId: s.ARN, RotationLambdaARN: str(testLambda),
					RotateImmediately: ptr(false), RotationRules: &smapi.RotationRulesType{AutomaticallyAfterDays: ptr(int64(100))}})
				mustOK(t, err, "RotateSecret(RotateImmediately=false)")
				rotateSecrets = append(rotateSecrets, *s.ARN)
			}
			e.clock.Add(101 * day)
			var wg sync.WaitGroup
			errs := make([]error, 8)
			for i := range errs {
				n := nodes[i%2]
				wg.Go(func() {
					if err := n.kms.RunJobs(n.ctx); err != nil {
						errs[i] = err
						return
					}
					errs[i] = n.sm.RunJobs(n.ctx)
				})
			}
			wg.Wait()
			for i, err := range errs {
				mustOK(t, err, fmt.Sprint("RunJobs ", i))
			}
			for _, id := range deleteKeys {
				_, err := nodes[1].kms.DescribeKey(e.ctx, &kmsapi.DescribeKeyInput{KeyId: ptr(id)})
				if err == nil {
					t.Errorf("key %s still exists after its deletion date", id)
				}
			}
			for _, id := range rotateKeys {
				out, err := nodes[1].kms.ListKeyRotations(e.ctx, &kmsapi.ListKeyRotationsInput{KeyId: ptr(id)})
				mustOK(t, err, "ListKeyRotations")
				if len(out.Rotations) != 1 || out.Rotations[0].RotationType != "AUTOMATIC" {
					t.Errorf("key %s: rotations %+v, want exactly one AUTOMATIC", id, out.Rotations)
				}
			}
			for _, arn := range deleteSecrets {
				_, err := nodes[1].sm.DescribeSecret(e.ctx, &smapi.DescribeSecretInput{SecretId: ptr(arn)})
				wantCode(t, err, codeNotFound, "")
			}
			for _, arn := range rotateSecrets {
				calls := stepsOf(nodes, arn)
				if len(calls[stepCreate]) != 1 || len(calls[stepSet]) != 1 || len(calls[stepFinish]) != 1 || len(calls[stepTest]) != 2 {
					t.Errorf("secret %s: steps %v, want createSecret, setSecret, finishSecret once, testSecret twice", arn, calls)
					continue
				}
				d := nodes[1].describe(t, arn)
				if st := d.VersionIdsToStages[calls[stepCreate][0]]; !contains(st, stageCurrent) || d.LastRotatedDate == nil {
					t.Errorf("secret %s: rotated version has stages %v, LastRotatedDate %v; want AWSCURRENT and a date", arn, st, d.LastRotatedDate)
				}
			}
		})
	}
}

// dyingRotator does what its function does, but the first createSecret
// of either node, once its value is stored, never answers: it reports the
// call's ClientRequestToken on stuck and waits for the caller's context to
// end (its node dies).
type dyingRotator struct {
	RotationInvoker
	died  *atomic.Bool // shared by the nodes: one death
	stuck chan<- string
}

func (d *dyingRotator) Invoke(ctx context.Context, arn string, event []byte) error {
	var ev rotationEvent
	if err := json.Unmarshal(event, &ev); err != nil {
		return err
	}
	err := d.RotationInvoker.Invoke(ctx, arn, event)
	if err != nil || ev.Step != stepCreate || !d.died.CompareAndSwap(false, true) {
		return err
	}
	d.stuck <- ev.ClientRequestToken
	<-ctx.Done()
	return ctx.Err()
}

// TestJobsNodeDiesMidRotation: the node that claimed a scheduled rotation
// dies during createSecret, after the function stored the new value. The
// other node leaves the rotation alone while the lease holds, then
// reattempts it with the same ClientRequestToken: the value the first
// attempt stored becomes AWSCURRENT, and each step after createSecret runs
// once.
func TestJobsNodeDiesMidRotation(t *testing.T) {
	for name, store := range openBackends(t) {
		t.Run(name, func(t *testing.T) {
			stuck := make(chan string, 1)
			var died atomic.Bool
			nodes := twoNodes(t, store, func(r RotationInvoker) RotationInvoker {
				return &dyingRotator{RotationInvoker: r, died: &died, stuck: stuck}
			})
			a, b := nodes[0], nodes[1]
			s := a.create(t, "db", "v1")
			arn := *s.ARN
			_, err := a.sm.RotateSecret(a.ctx, &smapi.RotateSecretInput{SecretId: s.ARN, RotationLambdaARN: str(testLambda),
				RotateImmediately: ptr(false), RotationRules: &smapi.RotationRulesType{AutomaticallyAfterDays: ptr(int64(1))}})
			mustOK(t, err, "RotateSecret(RotateImmediately=false)")
			a.clock.Add(2 * day) // the window has opened

			ctxA, die := context.WithCancel(a.ctx)
			defer die()
			doneA := make(chan error, 1)
			go func() { doneA <- a.sm.RunJobs(ctxA) }()
			var token string
			select {
			case token = <-stuck:
			case err := <-doneA:
				t.Fatalf("node A's RunJobs = %v before its rotation got stuck", err)
			case <-time.After(30 * time.Second):
				t.Fatal("node A's rotation never reached createSecret")
			}
			mustOK(t, b.sm.RunJobs(b.ctx), "node B's RunJobs while A holds the rotation")
			die() // node A dies mid-rotation
			select {
			case err := <-doneA:
				if err == nil {
					t.Error("node A's RunJobs = nil after its context ended mid-rotation, want an error")
				}
			case <-time.After(30 * time.Second):
				t.Fatal("node A's RunJobs did not return after its context ended")
			}
			pending, err := b.sm.GetSecretValue(b.ctx, &smapi.GetSecretValueInput{SecretId: &arn, VersionId: &token, VersionStage: str(stagePending)})
			mustOK(t, err, "GetSecretValue(AWSPENDING) stored by the dead attempt")
			b.clock.Add(DefaultRotationLease - time.Second)
			mustOK(t, b.sm.RunJobs(b.ctx), "node B's RunJobs before the lease ends")
			if calls := stepsOf(nodes, arn); len(calls[stepCreate]) != 1 || len(calls[stepFinish]) != 0 {
				t.Fatalf("steps while the dead node's lease holds: %v, want only its createSecret", calls)
			}

			b.clock.Add(time.Second) // the lease has run out
			mustOK(t, b.sm.RunJobs(b.ctx), "node B's RunJobs after the lease")
			calls := stepsOf(nodes, arn)
			want := map[string]int{stepCreate: 2, stepSet: 1, stepTest: 2, stepFinish: 1} // testSecret: RotateImmediately=false's too
			for step, n := range want {
				if len(calls[step]) != n || calls[step][n-1] != token {
					t.Errorf("%s: ClientRequestTokens %v, want %d calls, the last with %s", step, calls[step], n, token)
				}
			}
			if calls[stepCreate][0] != token {
				t.Errorf("reattempt's createSecret token %s, first attempt's %s: want the same", calls[stepCreate][1], token)
			}
			cur := b.get(t, arn)
			if *cur.VersionId != token || cur.SecretString.Reveal() != pending.SecretString.Reveal() {
				t.Errorf("AWSCURRENT = version %s, want %s with the value the dead attempt stored", *cur.VersionId, token)
			}
			if d := b.describe(t, arn); d.LastRotatedDate == nil || !d.LastRotatedDate.Equal(b.clock.Now()) {
				t.Errorf("LastRotatedDate = %v, want %v", d.LastRotatedDate, b.clock.Now())
			}
			mustOK(t, a.sm.RunJobs(a.ctx), "RunJobs once more")
			if n := len(stepsOf(nodes, arn)[stepCreate]); n != 2 {
				t.Errorf("createSecret called %d times after the rotation finished, want 2", n)
			}
		})
	}
}
