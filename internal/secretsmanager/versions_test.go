package secretsmanager

import (
	"fmt"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/keyfort/keyfort/internal/secretsmanager/smapi"
	"github.com/keyfort/keyfort/internal/sensitive"
)

func TestPutSecretValueStages(t *testing.T) {
	e := newEnv(t)
	v1 := *e.create(t, "p", "one").VersionId
	put := func(value string, stages []string) string {
		t.Helper()
		out, err := e.sm.PutSecretValue(e.ctx, &smapi.PutSecretValueInput{SecretId: str("p"), SecretString: secretString(value), VersionStages: stages})
		mustOK(t, err, "PutSecretValue("+value+")")
		return *out.VersionId
	}
	v2 := put("two", nil)
	v3 := put("three", nil)
	v4 := put("pending", []string{"AWSPENDING"})
	stages := e.describe(t, "p").VersionIdsToStages
	want := map[string][]string{v2: {"AWSPREVIOUS"}, v3: {"AWSCURRENT"}, v4: {"AWSPENDING"}}
	if len(stages) != len(want) {
		t.Fatalf("VersionIdsToStages = %v, want %v (v1 %s is deprecated)", stages, want, v1)
	}
	for id, w := range want {
		if !slices.Equal(stages[id], w) {
			t.Fatalf("VersionIdsToStages[%s] = %v, want %v", id, stages[id], w)
		}
	}
	if got := e.get(t, "p").SecretString.Reveal(); got != "three" {
		t.Fatalf("AWSCURRENT = %q, want %q (AWSPENDING must not move AWSCURRENT)", got, "three")
	}

	// ListSecretVersionIds: deprecated versions only with IncludeDeprecated.
	lv, err := e.sm.ListSecretVersionIds(e.ctx, &smapi.ListSecretVersionIdsInput{SecretId: str("p")})
	mustOK(t, err, "ListSecretVersionIds")
	if len(lv.Versions) != 3 || *lv.Versions[0].VersionId != v4 {
		t.Fatalf("ListSecretVersionIds = %d versions (first %v), want 3 newest first", len(lv.Versions), lv.Versions[0].VersionId)
	}
	if !slices.Equal(lv.Versions[0].KmsKeyIds, []string{"DefaultEncryptionKey"}) {
		t.Fatalf("KmsKeyIds = %v, want [DefaultEncryptionKey] (the AWS managed key, as AWS names it)", lv.Versions[0].KmsKeyIds)
	}
	lv, err = e.sm.ListSecretVersionIds(e.ctx, &smapi.ListSecretVersionIdsInput{SecretId: str("p"), IncludeDeprecated: ptr(true)})
	mustOK(t, err, "ListSecretVersionIds(IncludeDeprecated)")
	if len(lv.Versions) != 4 || *lv.Versions[3].VersionId != v1 {
		t.Fatalf("ListSecretVersionIds(IncludeDeprecated) = %d versions, want 4 ending with %s", len(lv.Versions), v1)
	}
	// Paging.
	var seen []string
	var next *string
	for range 10 {
		page, err := e.sm.ListSecretVersionIds(e.ctx, &smapi.ListSecretVersionIdsInput{SecretId: str("p"), IncludeDeprecated: ptr(true), MaxResults: ptr(int32(3)), NextToken: next})
		mustOK(t, err, "ListSecretVersionIds page")
		for _, v := range page.Versions {
			seen = append(seen, *v.VersionId)
		}
		if next = page.NextToken; next == nil {
			break
		}
	}
	if !slices.Equal(seen, []string{v4, v3, v2, v1}) {
		t.Fatalf("paged versions = %v, want %v", seen, []string{v4, v3, v2, v1})
	}
	_, err = e.sm.ListSecretVersionIds(e.ctx, &smapi.ListSecretVersionIdsInput{SecretId: str("p"), NextToken: str("garbage")})
	wantCode(t, err, codeInvalidNextToken, "")
}

func TestPutSecretValueIdempotencyAndErrors(t *testing.T) {
	e := newEnv(t)
	e.create(t, "i", "one")
	tok := token("put")
	in := &smapi.PutSecretValueInput{SecretId: str("i"), ClientRequestToken: tok, SecretString: secretString("two")}
	first, err := e.sm.PutSecretValue(e.ctx, in)
	mustOK(t, err, "PutSecretValue")
	again, err := e.sm.PutSecretValue(e.ctx, in)
	mustOK(t, err, "PutSecretValue retry")
	if *again.VersionId != *first.VersionId || !slices.Equal(again.VersionStages, []string{"AWSCURRENT"}) {
		t.Fatalf("retry = %s %v, want %s [AWSCURRENT]", *again.VersionId, again.VersionStages, *first.VersionId)
	}
	lv, err := e.sm.ListSecretVersionIds(e.ctx, &smapi.ListSecretVersionIdsInput{SecretId: str("i"), IncludeDeprecated: ptr(true)})
	mustOK(t, err, "ListSecretVersionIds")
	if len(lv.Versions) != 2 {
		t.Fatalf("versions after an idempotent retry = %d, want 2", len(lv.Versions))
	}
	tests := []struct {
		name string
		in   smapi.PutSecretValueInput
		code string
		msg  string
	}{
		{"same token other value", smapi.PutSecretValueInput{SecretId: str("i"), ClientRequestToken: tok, SecretString: secretString("other")}, codeExists, "You can't use ClientRequestToken " + *tok + " because that value is already in use for a version of secret arn:aws:secretsmanager:us-east-1:123456789012:secret:i-"},
		{"no value", smapi.PutSecretValueInput{SecretId: str("i")}, codeInvalidRequest, "SecretString or SecretBinary"},
		{"both values", smapi.PutSecretValueInput{SecretId: str("i"), SecretString: secretString("a"), SecretBinary: sensitive.Bytes("b")}, codeInvalidParameter, "both"},
		{"unknown secret", smapi.PutSecretValueInput{SecretId: str("nope"), SecretString: secretString("a")}, codeNotFound, "Secrets Manager can't find the specified secret."},
		{"duplicate stages", smapi.PutSecretValueInput{SecretId: str("i"), SecretString: secretString("a"), VersionStages: []string{"X", "X"}}, codeInvalidParameter, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.sm.PutSecretValue(e.ctx, &tc.in)
			wantCode(t, err, tc.code, tc.msg)
		})
	}
}

// TestDeprecatedVersionsArePruned checks AWS's rule: past 100 versions the
// oldest unlabeled ones are removed, but never one created less than 24
// hours ago; with nothing to remove the new version is LimitExceeded.
func TestDeprecatedVersionsArePruned(t *testing.T) {
	e := newEnv(t)
	first := *e.create(t, "many", "v0").VersionId
	put := func(i int) error {
		_, err := e.sm.PutSecretValue(e.ctx, &smapi.PutSecretValueInput{SecretId: str("many"), SecretString: secretString(fmt.Sprint("v", i))})
		return err
	}
	for i := 1; i < maxVersions; i++ {
		mustOK(t, put(i), fmt.Sprint("PutSecretValue ", i))
	}
	// 100 versions, all younger than a day: the 101st does not fit.
	wantCode(t, put(maxVersions), codeLimitExceeded, "100")
	count := func() int {
		t.Helper()
		lv, err := e.sm.ListSecretVersionIds(e.ctx, &smapi.ListSecretVersionIdsInput{SecretId: str("many"), IncludeDeprecated: ptr(true)})
		mustOK(t, err, "ListSecretVersionIds")
		return len(lv.Versions)
	}
	if n := count(); n != maxVersions {
		t.Fatalf("versions after the refused put = %d, want %d", n, maxVersions)
	}
	// The refused put changed nothing: AWSCURRENT is still the 100th value.
	if got := e.get(t, "many").SecretString.Reveal(); got != fmt.Sprint("v", maxVersions-1) {
		t.Fatalf("AWSCURRENT = %q, want v%d", got, maxVersions-1)
	}

	// A day later the oldest unlabeled versions can go, one per new version.
	e.clock.Add(24 * time.Hour)
	for i := maxVersions; i < maxVersions+5; i++ {
		mustOK(t, put(i), fmt.Sprint("PutSecretValue ", i))
	}
	if n := count(); n != maxVersions {
		t.Fatalf("versions = %d, want %d", n, maxVersions)
	}
	_, err := e.sm.GetSecretValue(e.ctx, &smapi.GetSecretValueInput{SecretId: str("many"), VersionId: str(first)})
	wantCode(t, err, codeNotFound, "VersionId")
	// The newest version is the last put.
	lv, err := e.sm.ListSecretVersionIds(e.ctx, &smapi.ListSecretVersionIdsInput{SecretId: str("many"), IncludeDeprecated: ptr(true), MaxResults: ptr(int32(1))})
	mustOK(t, err, "ListSecretVersionIds")
	if got := *lv.Versions[0].CreatedDate; !got.Equal(e.clock.Now()) {
		t.Fatalf("newest version created %v, want %v", got, e.clock.Now())
	}
}

// TestPutSecretValueAfterRotationDropsPending checks what AWS does when a
// new value takes AWSCURRENT from a version that also has AWSPENDING (the
// state a finished rotation leaves): AWSPENDING goes too, so the next
// rotation does not find one "in progress". Recorded against AWS in
// LocalStack's test_update_secret_version_stages_current_pending.
func TestPutSecretValueAfterRotationDropsPending(t *testing.T) {
	e := newEnv(t)
	v0 := *e.create(t, "r", "one").VersionId
	out, err := e.sm.PutSecretValue(e.ctx, &smapi.PutSecretValueInput{SecretId: str("r"), SecretString: secretString("two"), VersionStages: []string{stagePending}})
	mustOK(t, err, "PutSecretValue(AWSPENDING)")
	v1 := *out.VersionId
	_, err = e.sm.UpdateSecretVersionStage(e.ctx, &smapi.UpdateSecretVersionStageInput{SecretId: str("r"), VersionStage: str(stageCurrent), MoveToVersionId: &v1, RemoveFromVersionId: &v0})
	mustOK(t, err, "UpdateSecretVersionStage")
	if got := e.describe(t, "r").VersionIdsToStages[v1]; !slices.Equal(got, []string{stagePending, stageCurrent}) {
		t.Fatalf("stages of %s = %v, want [AWSPENDING AWSCURRENT]", v1, got)
	}
	out, err = e.sm.PutSecretValue(e.ctx, &smapi.PutSecretValueInput{SecretId: str("r"), SecretString: secretString("three")})
	mustOK(t, err, "PutSecretValue")
	v2 := *out.VersionId
	want := map[string][]string{v1: {stagePrevious}, v2: {stageCurrent}}
	if got := e.describe(t, "r").VersionIdsToStages; !reflect.DeepEqual(got, want) {
		t.Fatalf("VersionIdsToStages = %v, want %v", got, want)
	}
}

func TestUpdateSecretVersionStage(t *testing.T) {
	e := newEnv(t)
	v1 := *e.create(t, "u", "one").VersionId
	p, err := e.sm.PutSecretValue(e.ctx, &smapi.PutSecretValueInput{SecretId: str("u"), SecretString: secretString("two"), VersionStages: []string{"AWSPENDING"}})
	mustOK(t, err, "PutSecretValue")
	v2 := *p.VersionId
	upd := func(stage string, move, remove *string) error {
		_, err := e.sm.UpdateSecretVersionStage(e.ctx, &smapi.UpdateSecretVersionStageInput{SecretId: str("u"), VersionStage: str(stage), MoveToVersionId: move, RemoveFromVersionId: remove})
		return err
	}
	wantCode(t, upd("AWSCURRENT", str(v2), nil), codeInvalidParameter, "RemoveFromVersionId can't be empty")
	wantCode(t, upd("AWSCURRENT", str(v2), str(v2)), codeInvalidParameter, "not attached")
	wantCode(t, upd("AWSCURRENT", str("nope"), str(v1)), codeInvalidParameter, "Not a valid version")
	wantCode(t, upd("AWSCURRENT", nil, str(v1)), codeInvalidParameter, "AWSCURRENT")
	wantCode(t, upd("X", nil, nil), codeInvalidParameter, "")

	// Rotation's finishSecret step: move AWSCURRENT to the pending version.
	mustOK(t, upd("AWSCURRENT", str(v2), str(v1)), "move AWSCURRENT")
	mustOK(t, upd("AWSPENDING", nil, str(v2)), "remove AWSPENDING")
	stages := e.describe(t, "u").VersionIdsToStages
	if !slices.Equal(stages[v2], []string{"AWSCURRENT"}) || !slices.Equal(stages[v1], []string{"AWSPREVIOUS"}) {
		t.Fatalf("VersionIdsToStages = %v, want %s:[AWSCURRENT] %s:[AWSPREVIOUS]", stages, v2, v1)
	}
	if got := e.get(t, "u").SecretString.Reveal(); got != "two" {
		t.Fatalf("GetSecretValue = %q, want %q", got, "two")
	}
	// A custom label moves freely when it is not attached anywhere.
	mustOK(t, upd("MINE", str(v1), nil), "attach MINE")
	out, err := e.sm.GetSecretValue(e.ctx, &smapi.GetSecretValueInput{SecretId: str("u"), VersionStage: str("MINE")})
	mustOK(t, err, "GetSecretValue(MINE)")
	if out.SecretString.Reveal() != "one" {
		t.Fatalf("GetSecretValue(MINE) = %q, want %q", out.SecretString.Reveal(), "one")
	}
}
