package secretsmanager

import (
	"slices"
	"strings"
	"testing"
	"time"
	"unicode"

	"github.com/keyfort/keyfort/internal/kms/kmsapi"
	"github.com/keyfort/keyfort/internal/secretsmanager/smapi"
	"github.com/keyfort/keyfort/internal/storage"
)

func TestDeleteRestoreAndPurge(t *testing.T) {
	e := newEnv(t)
	out := e.create(t, "d", "v")
	now := e.clock.Now()

	tests := []struct {
		name string
		in   smapi.DeleteSecretInput
		code string
		msg  string
	}{
		{"both", smapi.DeleteSecretInput{SecretId: str("d"), RecoveryWindowInDays: ptr(int64(7)), ForceDeleteWithoutRecovery: ptr(true)}, codeInvalidParameter, "You can't use ForceDeleteWithoutRecovery in conjunction with RecoveryWindowInDays."},
		{"window 6", smapi.DeleteSecretInput{SecretId: str("d"), RecoveryWindowInDays: ptr(int64(6))}, codeInvalidParameter, "between 7 and 30"},
		{"window 31", smapi.DeleteSecretInput{SecretId: str("d"), RecoveryWindowInDays: ptr(int64(31))}, codeInvalidParameter, "between 7 and 30"},
		{"unknown", smapi.DeleteSecretInput{SecretId: str("nope")}, codeNotFound, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.sm.DeleteSecret(e.ctx, &tc.in)
			wantCode(t, err, tc.code, tc.msg)
		})
	}

	del, err := e.sm.DeleteSecret(e.ctx, &smapi.DeleteSecretInput{SecretId: str("d")})
	mustOK(t, err, "DeleteSecret")
	if want := now.Add(30 * day); !del.DeletionDate.Equal(want) || *del.ARN != *out.ARN {
		t.Fatalf("DeleteSecret = %v %s, want %v %s", del.DeletionDate, *del.ARN, want, *out.ARN)
	}
	d := e.describe(t, "d")
	if d.DeletedDate == nil || !d.DeletedDate.Equal(now) {
		t.Fatalf("DeletedDate = %v, want %v", d.DeletedDate, now)
	}
	for name, call := range map[string]func() error{
		"GetSecretValue": func() error {
			_, err := e.sm.GetSecretValue(e.ctx, &smapi.GetSecretValueInput{SecretId: str("d")})
			return err
		},
		"PutSecretValue": func() error {
			_, err := e.sm.PutSecretValue(e.ctx, &smapi.PutSecretValueInput{SecretId: str("d"), SecretString: secretString("x")})
			return err
		},
		"UpdateSecret": func() error {
			_, err := e.sm.UpdateSecret(e.ctx, &smapi.UpdateSecretInput{SecretId: str("d"), Description: str("x")})
			return err
		},
		"TagResource": func() error {
			_, err := e.sm.TagResource(e.ctx, &smapi.TagResourceInput{SecretId: str("d"), Tags: []smapi.Tag{{Key: str("k"), Value: str("v")}}})
			return err
		},
		"DeleteSecret": func() error {
			_, err := e.sm.DeleteSecret(e.ctx, &smapi.DeleteSecretInput{SecretId: str("d")})
			return err
		},
		"CreateSecret": func() error {
			_, err := e.sm.CreateSecret(e.ctx, &smapi.CreateSecretInput{Name: str("d")})
			return err
		},
	} {
		t.Run(name, func(t *testing.T) { wantCode(t, call(), codeInvalidRequest, "") })
	}
	ls, err := e.sm.ListSecrets(e.ctx, &smapi.ListSecretsInput{})
	mustOK(t, err, "ListSecrets")
	if len(ls.SecretList) != 0 {
		t.Fatalf("ListSecrets lists %d secrets, want 0 (scheduled for deletion)", len(ls.SecretList))
	}
	ls, err = e.sm.ListSecrets(e.ctx, &smapi.ListSecretsInput{IncludePlannedDeletion: ptr(true)})
	mustOK(t, err, "ListSecrets(IncludePlannedDeletion)")
	if len(ls.SecretList) != 1 {
		t.Fatalf("ListSecrets(IncludePlannedDeletion) lists %d secrets, want 1", len(ls.SecretList))
	}

	_, err = e.sm.RestoreSecret(e.ctx, &smapi.RestoreSecretInput{SecretId: str(*out.ARN)})
	mustOK(t, err, "RestoreSecret")
	if got := e.get(t, "d").SecretString.Reveal(); got != "v" {
		t.Fatalf("GetSecretValue after restore = %q, want %q", got, "v")
	}
	_, err = e.sm.RestoreSecret(e.ctx, &smapi.RestoreSecretInput{SecretId: str("d")})
	mustOK(t, err, "RestoreSecret of a live secret")

	// Schedule again with 7 days; the job purges only after the window.
	_, err = e.sm.DeleteSecret(e.ctx, &smapi.DeleteSecretInput{SecretId: str("d"), RecoveryWindowInDays: ptr(int64(7))})
	mustOK(t, err, "DeleteSecret(7)")
	e.clock.Add(7*day - time.Second)
	mustOK(t, e.sm.RunJobs(e.ctx), "RunJobs")
	e.describe(t, "d")
	e.clock.Add(time.Second)
	mustOK(t, e.sm.RunJobs(e.ctx), "RunJobs")
	_, err = e.sm.DescribeSecret(e.ctx, &smapi.DescribeSecretInput{SecretId: str("d")})
	wantCode(t, err, codeNotFound, "")
	cnt := 0
	mustOK(t, e.sm.store.View(e.ctx, func(r storage.Reader) error {
		var err error
		cnt, err = r.Count(e.ctx, kindVersion, scopeT(), "d")
		return err
	}), "count versions")
	if cnt != 0 {
		t.Fatalf("version records after purge = %d, want 0", cnt)
	}
	// The name is free again; the old full ARN does not name the new secret.
	e.create(t, "d", "new")
	_, err = e.sm.DescribeSecret(e.ctx, &smapi.DescribeSecretInput{SecretId: out.ARN})
	if err == nil {
		d := e.describe(t, "d")
		if *d.ARN == *out.ARN {
			t.Skip("the random ARN suffix repeated (1 in 62^6)")
		}
		t.Fatalf("DescribeSecret(old ARN %s) found the new secret %s", *out.ARN, *d.ARN)
	}
	wantCode(t, err, codeNotFound, "")
}

func TestForceDelete(t *testing.T) {
	e := newEnv(t)
	e.create(t, "f", "v")
	del, err := e.sm.DeleteSecret(e.ctx, &smapi.DeleteSecretInput{SecretId: str("f"), ForceDeleteWithoutRecovery: ptr(true)})
	mustOK(t, err, "DeleteSecret(force)")
	if !del.DeletionDate.Equal(e.clock.Now()) {
		t.Fatalf("DeletionDate = %v, want now %v", del.DeletionDate, e.clock.Now())
	}
	_, err = e.sm.GetSecretValue(e.ctx, &smapi.GetSecretValueInput{SecretId: str("f")})
	wantCode(t, err, codeNotFound, "")
	e.create(t, "f", "again")
}

// TestForceDeleteMissing checks AWS's documented rule: "If you forcibly
// delete an already deleted or nonexistent secret, the operation does not
// return ResourceNotFoundException." Without force it still does.
func TestForceDeleteMissing(t *testing.T) {
	e := newEnv(t)
	arnPrefixT := arnPrefix(scopeT())
	tests := []struct {
		name, id, wantName, wantARN string
	}{
		{"name", "never-was", "never-was", ""},
		{"full ARN", arnPrefixT + "never-was-AbCdEf", "never-was", arnPrefixT + "never-was-AbCdEf"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			del, err := e.sm.DeleteSecret(e.ctx, &smapi.DeleteSecretInput{SecretId: str(tc.id), ForceDeleteWithoutRecovery: ptr(true)})
			mustOK(t, err, "DeleteSecret(force, "+tc.id+")")
			if deref(del.Name) != tc.wantName || del.DeletionDate == nil || !del.DeletionDate.Equal(e.clock.Now()) {
				t.Fatalf("DeleteSecret(force, %q) = Name %v, DeletionDate %v, want %q and now", tc.id, del.Name, del.DeletionDate, tc.wantName)
			}
			if tc.wantARN != "" && deref(del.ARN) != tc.wantARN {
				t.Fatalf("DeleteSecret(force, %q) ARN = %v, want %s", tc.id, deref(del.ARN), tc.wantARN)
			}
			if !strings.HasPrefix(deref(del.ARN), arnPrefixT+tc.wantName+"-") {
				t.Fatalf("DeleteSecret(force, %q) ARN = %v, want a secret ARN for %s", tc.id, deref(del.ARN), tc.wantName)
			}
		})
	}
	_, err := e.sm.DeleteSecret(e.ctx, &smapi.DeleteSecretInput{SecretId: str("never-was")})
	wantCode(t, err, codeNotFound, "Secrets Manager can't find the specified secret.")
	_, err = e.sm.DescribeSecret(e.ctx, &smapi.DescribeSecretInput{SecretId: str("never-was")})
	wantCode(t, err, codeNotFound, "")
}

// TestInvalidSecretIdIsValidationException checks that a SecretId that is
// not an ARN and has characters no secret name can have is answered, on
// every operation that looks a secret up, with AWS's ValidationException
// (as recorded against AWS for CreateSecret, DeleteSecret, DescribeSecret,
// GetSecretValue, ListSecretVersionIds, PutSecretValue, TagResource,
// UntagResource, UpdateSecret and ValidateResourcePolicy).
func TestInvalidSecretIdIsValidationException(t *testing.T) {
	e := newEnv(t)
	const msg = "Invalid name. Must be a valid name containing alphanumeric characters, or any of the following: -/_+=.@!"
	for _, id := range []string{"Inv Name", " Inv*Name? ", "a!"} {
		calls := map[string]func() error{
			"DeleteSecret": func() error {
				_, err := e.sm.DeleteSecret(e.ctx, &smapi.DeleteSecretInput{SecretId: str(id), ForceDeleteWithoutRecovery: ptr(true)})
				return err
			},
			"DescribeSecret": func() error {
				_, err := e.sm.DescribeSecret(e.ctx, &smapi.DescribeSecretInput{SecretId: str(id)})
				return err
			},
			"GetSecretValue": func() error {
				_, err := e.sm.GetSecretValue(e.ctx, &smapi.GetSecretValueInput{SecretId: str(id)})
				return err
			},
			"ListSecretVersionIds": func() error {
				_, err := e.sm.ListSecretVersionIds(e.ctx, &smapi.ListSecretVersionIdsInput{SecretId: str(id)})
				return err
			},
			"PutSecretValue": func() error {
				_, err := e.sm.PutSecretValue(e.ctx, &smapi.PutSecretValueInput{SecretId: str(id), SecretString: secretString("v")})
				return err
			},
			"TagResource": func() error {
				_, err := e.sm.TagResource(e.ctx, &smapi.TagResourceInput{SecretId: str(id), Tags: []smapi.Tag{{Key: str("k"), Value: str("v")}}})
				return err
			},
			"UntagResource": func() error {
				_, err := e.sm.UntagResource(e.ctx, &smapi.UntagResourceInput{SecretId: str(id), TagKeys: []string{"k"}})
				return err
			},
			"UpdateSecret": func() error {
				_, err := e.sm.UpdateSecret(e.ctx, &smapi.UpdateSecretInput{SecretId: str(id), Description: str("d")})
				return err
			},
			"ValidateResourcePolicy": func() error {
				_, err := e.sm.ValidateResourcePolicy(e.ctx, &smapi.ValidateResourcePolicyInput{SecretId: str(id), ResourcePolicy: str(`{"Version":"2012-10-17","Statement":[]}`)})
				return err
			},
		}
		for op, call := range calls {
			t.Run(op+"/"+id, func(t *testing.T) {
				wantCode(t, call(), "ValidationException", msg)
			})
		}
	}
}

func TestTags(t *testing.T) {
	e := newEnv(t)
	e.create(t, "t", "v")
	tag := func(kv ...string) error {
		var tags []smapi.Tag
		for i := 0; i < len(kv); i += 2 {
			tags = append(tags, smapi.Tag{Key: str(kv[i]), Value: str(kv[i+1])})
		}
		_, err := e.sm.TagResource(e.ctx, &smapi.TagResourceInput{SecretId: str("t"), Tags: tags})
		return err
	}
	mustOK(t, tag("b", "1", "a", "2"), "TagResource")
	mustOK(t, tag("b", "3"), "TagResource replace")
	got := e.describe(t, "t").Tags
	if len(got) != 2 || *got[0].Key != "a" || *got[1].Key != "b" || *got[1].Value != "3" {
		t.Fatalf("Tags = %v, want [a=2 b=3]", got)
	}
	wantCode(t, tag("aws:x", "1"), codeInvalidParameter, "aws:")
	var many []string
	for i := range 49 {
		many = append(many, strings.Repeat("k", i+2), "v")
	}
	wantCode(t, tag(many...), codeLimitExceeded, "")
	_, err := e.sm.UntagResource(e.ctx, &smapi.UntagResourceInput{SecretId: str("t"), TagKeys: []string{"a", "b", "missing"}})
	mustOK(t, err, "UntagResource")
	if got := e.describe(t, "t").Tags; got == nil || len(got) != 0 {
		t.Fatalf("Tags after removing all = %v, want an empty list", got)
	}
}

func TestUpdateSecret(t *testing.T) {
	e := newEnv(t)
	e.create(t, "up", "one")
	keyARN := e.createKey(t)
	out, err := e.sm.UpdateSecret(e.ctx, &smapi.UpdateSecretInput{SecretId: str("up"), Description: str("new"), KmsKeyId: str(keyARN)})
	mustOK(t, err, "UpdateSecret(description, key)")
	if out.VersionId != nil {
		t.Fatalf("UpdateSecret without a value made version %s", *out.VersionId)
	}
	d := e.describe(t, "up")
	if deref(d.Description) != "new" || deref(d.KmsKeyId) != keyARN {
		t.Fatalf("DescribeSecret = %v %v, want new %s", d.Description, d.KmsKeyId, keyARN)
	}
	out, err = e.sm.UpdateSecret(e.ctx, &smapi.UpdateSecretInput{SecretId: str("up"), SecretString: secretString("two")})
	mustOK(t, err, "UpdateSecret(value)")
	if got := e.get(t, "up"); got.SecretString.Reveal() != "two" || *got.VersionId != *out.VersionId {
		t.Fatalf("GetSecretValue = %s, want the new version %s", *got.VersionId, *out.VersionId)
	}
	lv, err := e.sm.ListSecretVersionIds(e.ctx, &smapi.ListSecretVersionIdsInput{SecretId: str("up")})
	mustOK(t, err, "ListSecretVersionIds")
	if !slices.Equal(lv.Versions[0].KmsKeyIds, []string{keyARN}) {
		t.Fatalf("new version KmsKeyIds = %v, want [%s]", lv.Versions[0].KmsKeyIds, keyARN)
	}
	if got := e.get(t, "up"); got.SecretString.Reveal() != "two" {
		t.Fatal("value changed")
	}
	prev, err := e.sm.GetSecretValue(e.ctx, &smapi.GetSecretValueInput{SecretId: str("up"), VersionStage: str("AWSPREVIOUS")})
	mustOK(t, err, "GetSecretValue(AWSPREVIOUS) under the old key")
	if prev.SecretString.Reveal() != "one" {
		t.Fatalf("AWSPREVIOUS = %q, want %q", prev.SecretString.Reveal(), "one")
	}
}

func TestListSecrets(t *testing.T) {
	e := newEnv(t)
	names := []string{"prod/db", "prod/api", "dev/db", "dev/api", "other"}
	for _, n := range names {
		e.create(t, n, "v")
		e.clock.Add(time.Minute)
	}
	_, err := e.sm.UpdateSecret(e.ctx, &smapi.UpdateSecretInput{SecretId: str("other"), Description: str("The Payments Key")})
	mustOK(t, err, "UpdateSecret")
	_, err = e.sm.TagResource(e.ctx, &smapi.TagResourceInput{SecretId: str("dev/db"), Tags: []smapi.Tag{{Key: str("team"), Value: str("blue")}}})
	mustOK(t, err, "TagResource")

	list := func(in *smapi.ListSecretsInput) []string {
		t.Helper()
		var got []string
		for range 20 {
			out, err := e.sm.ListSecrets(e.ctx, in)
			mustOK(t, err, "ListSecrets")
			for _, s := range out.SecretList {
				got = append(got, *s.Name)
			}
			if out.NextToken == nil {
				return got
			}
			in.NextToken = out.NextToken
		}
		t.Fatal("ListSecrets did not finish")
		return nil
	}
	f := func(key smapi.FilterNameStringType, values ...string) []smapi.Filter {
		return []smapi.Filter{{Key: key, Values: values}}
	}
	tests := []struct {
		name string
		in   smapi.ListSecretsInput
		want []string
	}{
		{"default oldest first", smapi.ListSecretsInput{}, names},
		{"asc paged", smapi.ListSecretsInput{SortOrder: smapi.SortOrderTypeAsc, MaxResults: ptr(int32(2))}, names},
		{"desc newest first", smapi.ListSecretsInput{SortOrder: smapi.SortOrderTypeDesc, MaxResults: ptr(int32(3))}, []string{"other", "dev/api", "dev/db", "prod/api", "prod/db"}},
		{"by name desc", smapi.ListSecretsInput{SortBy: smapi.SortByTypeName, SortOrder: smapi.SortOrderTypeDesc}, []string{"prod/db", "prod/api", "other", "dev/db", "dev/api"}},
		{"by name", smapi.ListSecretsInput{SortBy: smapi.SortByTypeName, SortOrder: smapi.SortOrderTypeAsc, MaxResults: ptr(int32(1))}, []string{"dev/api", "dev/db", "other", "prod/api", "prod/db"}},
		{"name prefix", smapi.ListSecretsInput{Filters: f("name", "prod/"), SortBy: smapi.SortByTypeName}, []string{"prod/api", "prod/db"}},
		{"name two values", smapi.ListSecretsInput{Filters: f("name", "prod/db", "dev/db"), SortBy: smapi.SortByTypeName}, []string{"dev/db", "prod/db"}},
		{"name negated", smapi.ListSecretsInput{Filters: f("name", "!prod/"), SortBy: smapi.SortByTypeName, SortOrder: smapi.SortOrderTypeAsc}, []string{"dev/api", "dev/db", "other"}},
		{"name is case sensitive", smapi.ListSecretsInput{Filters: f("name", "PROD")}, nil},
		{"tag key", smapi.ListSecretsInput{Filters: f("tag-key", "te")}, []string{"dev/db"}},
		{"tag value", smapi.ListSecretsInput{Filters: f("tag-value", "blue")}, []string{"dev/db"}},
		{"description words", smapi.ListSecretsInput{Filters: f("description", "paym")}, []string{"other"}},
		{"all", smapi.ListSecretsInput{Filters: f("all", "BLUE")}, []string{"dev/db"}},
		{"and of filters", smapi.ListSecretsInput{Filters: []smapi.Filter{{Key: "name", Values: []string{"dev/"}}, {Key: "tag-key", Values: []string{"team"}}}}, []string{"dev/db"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := tc.in
			if got := list(&in); !slices.Equal(got, tc.want) {
				t.Fatalf("ListSecrets = %v, want %v", got, tc.want)
			}
		})
	}
	out, err := e.sm.ListSecrets(e.ctx, &smapi.ListSecretsInput{MaxResults: ptr(int32(1))})
	mustOK(t, err, "ListSecrets")
	_, err = e.sm.ListSecrets(e.ctx, &smapi.ListSecretsInput{MaxResults: ptr(int32(1)), NextToken: out.NextToken, SortOrder: smapi.SortOrderTypeDesc})
	wantCode(t, err, codeInvalidNextToken, "")
	_, err = e.sm.ListSecrets(e.ctx, &smapi.ListSecretsInput{NextToken: str("!!")})
	wantCode(t, err, codeInvalidNextToken, "")
	entry := out.SecretList[0]
	if entry.SecretVersionsToStages == nil || entry.CreatedDate == nil || entry.ARN == nil {
		t.Fatalf("SecretListEntry = %+v, want versions, dates and ARN", entry)
	}
}

func TestGetRandomPassword(t *testing.T) {
	e := newEnv(t)
	gen := func(in smapi.GetRandomPasswordInput) string {
		t.Helper()
		out, err := e.sm.GetRandomPassword(e.ctx, &in)
		mustOK(t, err, "GetRandomPassword")
		return out.RandomPassword.Reveal()
	}
	if got := gen(smapi.GetRandomPasswordInput{}); len(got) != 32 {
		t.Fatalf("default length = %d, want 32", len(got))
	}
	tests := []struct {
		name  string
		in    smapi.GetRandomPasswordInput
		check func(rune) bool
	}{
		{"no lowercase", smapi.GetRandomPasswordInput{ExcludeLowercase: ptr(true)}, unicode.IsLower},
		{"no uppercase", smapi.GetRandomPasswordInput{ExcludeUppercase: ptr(true)}, unicode.IsUpper},
		{"no numbers", smapi.GetRandomPasswordInput{ExcludeNumbers: ptr(true)}, unicode.IsDigit},
		{"no punctuation", smapi.GetRandomPasswordInput{ExcludePunctuation: ptr(true)}, func(r rune) bool { return strings.ContainsRune(punctuationChars, r) }},
		{"excluded chars", smapi.GetRandomPasswordInput{ExcludeCharacters: str("abcABC012!@")}, func(r rune) bool { return strings.ContainsRune("abcABC012!@", r) }},
		{"no space by default", smapi.GetRandomPasswordInput{PasswordLength: ptr(int64(4096))}, unicode.IsSpace},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for range 20 {
				if pw := gen(tc.in); strings.IndexFunc(pw, tc.check) >= 0 {
					t.Fatalf("GetRandomPassword = %q contains an excluded character", pw)
				}
			}
		})
	}
	for range 50 {
		pw := gen(smapi.GetRandomPasswordInput{PasswordLength: ptr(int64(4))})
		if !strings.ContainsAny(pw, lowerChars) || !strings.ContainsAny(pw, upperChars) || !strings.ContainsAny(pw, digitChars) || !strings.ContainsAny(pw, punctuationChars) {
			t.Fatalf("GetRandomPassword(4) = %q, want one character of each type", pw)
		}
	}
	if pw := gen(smapi.GetRandomPasswordInput{PasswordLength: ptr(int64(2000)), IncludeSpace: ptr(true)}); !strings.Contains(pw, " ") {
		t.Fatalf("IncludeSpace: no space in 2000 characters")
	}
	_, err := e.sm.GetRandomPassword(e.ctx, &smapi.GetRandomPasswordInput{PasswordLength: ptr(int64(3))})
	wantCode(t, err, codeInvalidParameter, "too short")
	_, err = e.sm.GetRandomPassword(e.ctx, &smapi.GetRandomPasswordInput{PasswordLength: ptr(int64(4097))})
	wantCode(t, err, codeInvalidParameter, "")
	_, err = e.sm.GetRandomPassword(e.ctx, &smapi.GetRandomPasswordInput{ExcludeLowercase: ptr(true), ExcludeUppercase: ptr(true), ExcludeNumbers: ptr(true), ExcludePunctuation: ptr(true)})
	wantCode(t, err, codeInvalidParameter, "")
	if pw := gen(smapi.GetRandomPasswordInput{PasswordLength: ptr(int64(3)), RequireEachIncludedType: ptr(false)}); len(pw) != 3 {
		t.Fatalf("RequireEachIncludedType=false length = %d, want 3", len(pw))
	}
}

func TestUpdateSecretReencryptsLabeledVersions(t *testing.T) {
	e := newEnv(t)
	keyA, keyB := e.createKey(t), e.createKey(t)
	_, err := e.sm.CreateSecret(e.ctx, &smapi.CreateSecretInput{Name: str("re"), KmsKeyId: str(keyA), SecretString: secretString("one")})
	mustOK(t, err, "CreateSecret")
	put := func(v string) string {
		out, err := e.sm.PutSecretValue(e.ctx, &smapi.PutSecretValueInput{SecretId: str("re"), SecretString: secretString(v)})
		mustOK(t, err, "PutSecretValue")
		return *out.VersionId
	}
	put("two")
	put("three") // "one" is now deprecated (no label)
	_, err = e.sm.UpdateSecret(e.ctx, &smapi.UpdateSecretInput{SecretId: str("re"), KmsKeyId: str(keyB)})
	mustOK(t, err, "UpdateSecret(KmsKeyId)")
	lv, err := e.sm.ListSecretVersionIds(e.ctx, &smapi.ListSecretVersionIdsInput{SecretId: str("re"), IncludeDeprecated: ptr(true)})
	mustOK(t, err, "ListSecretVersionIds")
	want := [][]string{{keyB, keyA}, {keyB, keyA}, {keyA}} // current, previous, deprecated
	for i, v := range lv.Versions {
		if !slices.Equal(v.KmsKeyIds, want[i]) {
			t.Fatalf("version %d (%v) KmsKeyIds = %v, want %v", i, v.VersionStages, v.KmsKeyIds, want[i])
		}
	}
	disable := func(k string) {
		_, err := e.kms.DisableKey(e.ctx, &kmsapi.DisableKeyInput{KeyId: str(k)})
		mustOK(t, err, "DisableKey")
	}
	enable := func(k string) {
		_, err := e.kms.EnableKey(e.ctx, &kmsapi.EnableKeyInput{KeyId: str(k)})
		mustOK(t, err, "EnableKey")
	}
	disable(keyA)
	if got := e.get(t, "re").SecretString.Reveal(); got != "three" {
		t.Fatalf("AWSCURRENT with only the new key = %q, want three", got)
	}
	_, err = e.sm.GetSecretValue(e.ctx, &smapi.GetSecretValueInput{SecretId: str("re"), VersionId: lv.Versions[2].VersionId})
	wantCode(t, err, codeDecryption, "")
	enable(keyA)
	disable(keyB)
	if got := e.get(t, "re").SecretString.Reveal(); got != "three" {
		t.Fatalf("AWSCURRENT with only the old key = %q, want three", got)
	}
	// New versions use the new key.
	_, err = e.sm.PutSecretValue(e.ctx, &smapi.PutSecretValueInput{SecretId: str("re"), SecretString: secretString("four")})
	wantCode(t, err, codeEncryption, "")
	// Switching back to the managed key ("") re-encrypts under it.
	_, err = e.sm.UpdateSecret(e.ctx, &smapi.UpdateSecretInput{SecretId: str("re"), KmsKeyId: str("")})
	mustOK(t, err, "UpdateSecret(KmsKeyId \"\")")
	if d := e.describe(t, "re"); d.KmsKeyId != nil {
		t.Fatalf("KmsKeyId = %q, want absent (managed key)", *d.KmsKeyId)
	}
	disable(keyA)
	if got := e.get(t, "re").SecretString.Reveal(); got != "three" {
		t.Fatalf("AWSCURRENT under the managed key = %q, want three", got)
	}
	_, err = e.sm.UpdateSecret(e.ctx, &smapi.UpdateSecretInput{SecretId: str("re"), KmsKeyId: str("alias/missing")})
	wantCode(t, err, codeEncryption, "")
}
