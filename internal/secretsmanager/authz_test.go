package secretsmanager

import (
	"slices"
	"testing"
	"time"

	"github.com/keyfort/keyfort/internal/identity"
	"github.com/keyfort/keyfort/internal/secretsmanager/smapi"
)

// TestSMConditionKeys checks that every Secrets Manager condition key the
// service offers answers what the request and the secret say.
func TestSMConditionKeys(t *testing.T) {
	e := newEnv(t)
	_, err := e.sm.CreateSecret(e.ctx, &smapi.CreateSecretInput{Name: str("app/db"), SecretString: secretString("v"),
		Tags: []smapi.Tag{{Key: str("Team"), Value: str("blue")}}})
	mustOK(t, err, "CreateSecret")
	sec, err := resolveSecret(e.ctx, e.sm.store, scopeT(), "app/db")
	mustOK(t, err, "resolveSecret")
	in := &smapi.GetSecretValueInput{SecretId: str("app/db"), VersionStage: str("AWSCURRENT"), VersionId: str("v-1")}
	a := getValueAccess(in)
	a.tags = requestTags([]smapi.Tag{{Key: str("env"), Value: str("prod")}})
	c := &smContext{caller: identity.From(e.ctx), now: time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC), sec: sec, tags: sec.meta.Tags, a: a}
	tests := []struct {
		key  string
		want []string // nil: absent
	}{
		{"secretsmanager:secretid", []string{sec.meta.ARN}},
		{"secretsmanager:versionstage", []string{"AWSCURRENT"}},
		{"secretsmanager:versionid", []string{"v-1"}},
		{"secretsmanager:resourcetag/team", []string{"blue"}},
		{"aws:resourcetag/team", []string{"blue"}},
		{"aws:resourcetag/owner", nil},
		{"aws:requesttag/env", []string{"prod"}},
		{"aws:tagkeys", []string{"env"}},
		{"aws:resourceaccount", []string{testAccount}},
		{"secretsmanager:secretprimaryregion", nil},
		{"secretsmanager:resource/allowrotationlambdaarn", nil},
		{"aws:principalaccount", []string{testAccount}},
		{"aws:currenttime", []string{"2026-12-05T10:00:00Z"}},
	}
	for _, tc := range tests {
		got, ok := c.Value(tc.key)
		slices.Sort(got)
		if tc.want == nil {
			if ok {
				t.Errorf("%s = %v, want absent", tc.key, got)
			}
			continue
		}
		if !ok || !slices.Equal(got, tc.want) {
			t.Errorf("%s = %v (present %v), want %v", tc.key, got, ok, tc.want)
		}
	}
	// The request keys of the other operations.
	for _, tc := range []struct {
		a    *access
		key  string
		want string
	}{
		{deleteAccess(&smapi.DeleteSecretInput{RecoveryWindowInDays: ptr(int64(9))}), "secretsmanager:recoverywindowindays", "9"},
		{deleteAccess(&smapi.DeleteSecretInput{ForceDeleteWithoutRecovery: ptr(true)}), "secretsmanager:forcedeletewithoutrecovery", "true"},
		{updateAccess(&smapi.UpdateSecretInput{KmsKeyId: str("alias/k")}), "secretsmanager:kmskeyid", "alias/k"},
		{updateAccess(&smapi.UpdateSecretInput{Description: str("d")}), "secretsmanager:description", "d"},
		{rotateAccess(&smapi.RotateSecretInput{RotationLambdaARN: str("arn:l")}), "secretsmanager:rotationlambdaarn", "arn:l"},
		{rotateAccess(&smapi.RotateSecretInput{RotateImmediately: ptr(false)}), "secretsmanager:rotateimmediately", "false"},
		{rotateAccess(&smapi.RotateSecretInput{}), "secretsmanager:modifyrotationrules", "false"},
		{replicateAccess(&smapi.ReplicateSecretToRegionsInput{AddReplicaRegions: []smapi.ReplicaRegionType{{Region: str("eu-west-1")}}}), "secretsmanager:addreplicaregions", "eu-west-1"},
	} {
		got, ok := (&smContext{caller: identity.From(e.ctx), a: *tc.a}).Value(tc.key)
		if !ok || len(got) != 1 || got[0] != tc.want {
			t.Errorf("%s = %v (present %v), want %s", tc.key, got, ok, tc.want)
		}
	}
}
