package secretsmanager

import (
	"bytes"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/keyfort/keyfort/internal/awserr"
	"github.com/keyfort/keyfort/internal/kms/kmsapi"
	"github.com/keyfort/keyfort/internal/secretsmanager/smapi"
	"github.com/keyfort/keyfort/internal/sensitive"
)

func TestCreateSecretAndGetValue(t *testing.T) {
	e := newEnv(t)
	out := e.create(t, "app/db-password", "hunter2")
	arnRE := regexp.MustCompile(`^arn:aws:secretsmanager:us-east-1:123456789012:secret:app/db-password-[A-Za-z0-9]{6}$`)
	if !arnRE.MatchString(*out.ARN) {
		t.Fatalf("CreateSecret ARN = %q, want %s", *out.ARN, arnRE)
	}
	if out.VersionId == nil || len(*out.VersionId) != 36 {
		t.Fatalf("CreateSecret VersionId = %v, want a UUID", out.VersionId)
	}
	partial := strings.TrimSuffix(*out.ARN, (*out.ARN)[len(*out.ARN)-7:])
	for _, id := range []string{"app/db-password", *out.ARN, partial} {
		got := e.get(t, id)
		if got.SecretString == nil || got.SecretString.Reveal() != "hunter2" {
			t.Fatalf("GetSecretValue(%q) SecretString wrong", id)
		}
		if *got.ARN != *out.ARN || *got.Name != "app/db-password" || *got.VersionId != *out.VersionId {
			t.Fatalf("GetSecretValue(%q) = %s %s %s, want %s", id, *got.ARN, *got.Name, *got.VersionId, *out.ARN)
		}
		if len(got.VersionStages) != 1 || got.VersionStages[0] != "AWSCURRENT" {
			t.Fatalf("GetSecretValue(%q) VersionStages = %v, want [AWSCURRENT]", id, got.VersionStages)
		}
		if got.SecretBinary != nil {
			t.Fatalf("GetSecretValue(%q) has SecretBinary for a string secret", id)
		}
	}

	bin := []byte{0, 1, 2, 250}
	bout, err := e.sm.CreateSecret(e.ctx, &smapi.CreateSecretInput{Name: str("bin"), SecretBinary: sensitive.Bytes(bin)})
	mustOK(t, err, "CreateSecret(bin)")
	got := e.get(t, *bout.ARN)
	if !bytes.Equal(got.SecretBinary.Reveal(), bin) || got.SecretString != nil {
		t.Fatalf("GetSecretValue(bin) = %x / %v, want %x", got.SecretBinary.Reveal(), got.SecretString, bin)
	}
}

func TestCreateSecretErrors(t *testing.T) {
	e := newEnv(t)
	e.create(t, "taken", "v")
	long := strings.Repeat("a", 513)
	big := strings.Repeat("x", 65537)
	manyTags := make([]smapi.Tag, 51)
	for i := range manyTags {
		manyTags[i] = smapi.Tag{Key: str(strings.Repeat("k", i+1)), Value: str("v")}
	}
	// AWS answers a bad name with ValidationException (not
	// InvalidParameterException), with this text.
	const invalidNameMsg = "Invalid name. Must be a valid name containing alphanumeric characters, or any of the following: -/_+=.@!"
	tests := []struct {
		name string
		in   smapi.CreateSecretInput
		code string
		msg  string
	}{
		{"bad characters", smapi.CreateSecretInput{Name: str("a b")}, awserr.CodeValidation, invalidNameMsg},
		{"bang", smapi.CreateSecretInput{Name: str("a!")}, awserr.CodeValidation, invalidNameMsg},
		{"empty name", smapi.CreateSecretInput{Name: str("")}, awserr.CodeValidation, invalidNameMsg},
		{"too long", smapi.CreateSecretInput{Name: str(long)}, awserr.CodeValidation, invalidNameMsg},
		{"both values", smapi.CreateSecretInput{Name: str("x"), SecretString: secretString("a"), SecretBinary: sensitive.Bytes("b")}, codeInvalidParameter, "both"},
		{"too big", smapi.CreateSecretInput{Name: str("x"), SecretString: secretString(big)}, codeInvalidParameter, "65536"},
		{"name taken", smapi.CreateSecretInput{Name: str("taken"), SecretString: secretString("v")}, codeExists, "The operation failed because the secret taken already exists."},
		{"reserved tag", smapi.CreateSecretInput{Name: str("x"), Tags: []smapi.Tag{{Key: str("aws:x"), Value: str("v")}}}, codeInvalidParameter, "aws:"},
		{"tag key too long", smapi.CreateSecretInput{Name: str("x"), Tags: []smapi.Tag{{Key: str(strings.Repeat("k", 128)), Value: str("v")}}}, codeInvalidParameter, "127"},
		{"tag value too long", smapi.CreateSecretInput{Name: str("x"), Tags: []smapi.Tag{{Key: str("k"), Value: str(strings.Repeat("v", 256))}}}, codeInvalidParameter, "255"},
		{"duplicate tag", smapi.CreateSecretInput{Name: str("x"), Tags: []smapi.Tag{{Key: str("k"), Value: str("1")}, {Key: str("k"), Value: str("2")}}}, codeInvalidParameter, "more than once"},
		{"51 tags", smapi.CreateSecretInput{Name: str("x"), Tags: manyTags}, codeLimitExceeded, "50"},
		{"unknown kms key", smapi.CreateSecretInput{Name: str("x"), SecretString: secretString("v"), KmsKeyId: str("alias/nope")}, codeEncryption, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.sm.CreateSecret(e.ctx, &tc.in)
			wantCode(t, err, tc.code, tc.msg)
		})
	}
	// Nothing was created by the failed calls.
	_, err := e.sm.DescribeSecret(e.ctx, &smapi.DescribeSecretInput{SecretId: str("x")})
	wantCode(t, err, codeNotFound, "Secrets Manager can't find the specified secret.")
}

func TestCreateSecretIdempotency(t *testing.T) {
	e := newEnv(t)
	tok := token("tok-1")
	in := &smapi.CreateSecretInput{Name: str("idem"), ClientRequestToken: tok, SecretString: secretString("same")}
	first, err := e.sm.CreateSecret(e.ctx, in)
	mustOK(t, err, "CreateSecret")
	if *first.VersionId != *tok {
		t.Fatalf("VersionId = %q, want the ClientRequestToken %q", *first.VersionId, *tok)
	}
	again, err := e.sm.CreateSecret(e.ctx, in)
	mustOK(t, err, "CreateSecret retry")
	if *again.ARN != *first.ARN || *again.VersionId != *first.VersionId {
		t.Fatalf("retry = %s %s, want %s %s", *again.ARN, *again.VersionId, *first.ARN, *first.VersionId)
	}
	_, err = e.sm.CreateSecret(e.ctx, &smapi.CreateSecretInput{Name: str("idem"), ClientRequestToken: tok, SecretString: secretString("different")})
	wantCode(t, err, codeExists, "")
	_, err = e.sm.CreateSecret(e.ctx, &smapi.CreateSecretInput{Name: str("idem"), ClientRequestToken: tok, SecretBinary: sensitive.Bytes("same")})
	wantCode(t, err, codeExists, "")
	if got := e.get(t, "idem").SecretString.Reveal(); got != "same" {
		t.Fatalf("value after retries = %q, want %q", got, "same")
	}
}

func TestCreateSecretWithoutValue(t *testing.T) {
	e := newEnv(t)
	out, err := e.sm.CreateSecret(e.ctx, &smapi.CreateSecretInput{Name: str("empty"), Description: str("d")})
	mustOK(t, err, "CreateSecret")
	if out.VersionId != nil {
		t.Fatalf("VersionId = %q, want none", *out.VersionId)
	}
	_, err = e.sm.GetSecretValue(e.ctx, &smapi.GetSecretValueInput{SecretId: str("empty")})
	wantCode(t, err, codeNotFound, "Secrets Manager can't find the specified secret value for staging label: AWSCURRENT")
	d := e.describe(t, "empty")
	if d.VersionIdsToStages != nil {
		t.Fatalf("VersionIdsToStages = %v, want absent", d.VersionIdsToStages)
	}
}

func TestGetSecretValueVersionSelection(t *testing.T) {
	e := newEnv(t)
	v1 := *e.create(t, "s", "one").VersionId
	p, err := e.sm.PutSecretValue(e.ctx, &smapi.PutSecretValueInput{SecretId: str("s"), SecretString: secretString("two")})
	mustOK(t, err, "PutSecretValue")
	v2 := *p.VersionId
	tests := []struct {
		name      string
		versionID *string
		stage     *string
		want      string
		code, msg string
	}{
		{name: "default", want: "two"},
		{name: "current", stage: str("AWSCURRENT"), want: "two"},
		{name: "previous", stage: str("AWSPREVIOUS"), want: "one"},
		{name: "by id", versionID: str(v1), want: "one"},
		{name: "id and matching stage", versionID: str(v1), stage: str("AWSPREVIOUS"), want: "one"},
		{name: "id and other stage", versionID: str(v1), stage: str("AWSCURRENT"), code: codeInvalidRequest, msg: "You provided a VersionStage that is not associated to the provided VersionId."},
		{name: "unknown id", versionID: str("00000000-0000-4000-8000-000000000000"), code: codeNotFound, msg: "VersionId: 00000000-0000-4000-8000-000000000000"},
		{name: "unknown stage", stage: str("NOPE"), code: codeNotFound, msg: "staging label: NOPE"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, err := e.sm.GetSecretValue(e.ctx, &smapi.GetSecretValueInput{SecretId: str("s"), VersionId: tc.versionID, VersionStage: tc.stage})
			if tc.code != "" {
				wantCode(t, err, tc.code, tc.msg)
				return
			}
			mustOK(t, err, "GetSecretValue")
			if got := out.SecretString.Reveal(); got != tc.want {
				t.Fatalf("GetSecretValue = %q, want %q", got, tc.want)
			}
		})
	}
	d := e.describe(t, "s")
	want := map[string]string{v1: "AWSPREVIOUS", v2: "AWSCURRENT"}
	if len(d.VersionIdsToStages) != 2 {
		t.Fatalf("VersionIdsToStages = %v, want %v", d.VersionIdsToStages, want)
	}
	for id, st := range want {
		if got := d.VersionIdsToStages[id]; len(got) != 1 || got[0] != st {
			t.Fatalf("VersionIdsToStages[%s] = %v, want [%s]", id, got, st)
		}
	}
}

func TestSecretIDResolution(t *testing.T) {
	e := newEnv(t)
	out := e.create(t, "name-with-AbCdEf", "v") // a name that itself looks suffixed
	arn := *out.ARN
	tests := []struct {
		name string
		id   string
		ok   bool
	}{
		{"name", "name-with-AbCdEf", true},
		{"full arn", arn, true},
		{"partial arn", arnPrefix(scopeT()) + "name-with-AbCdEf", true},
		{"wrong suffix", arnPrefix(scopeT()) + "name-with-AbCdEf-zzzzzz", false},
		{"other region", strings.Replace(arn, "us-east-1", "eu-west-1", 1), false},
		{"not an sm arn", "arn:aws:kms:us-east-1:123456789012:key/x", false},
		{"unknown name", "nope", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.sm.DescribeSecret(e.ctx, &smapi.DescribeSecretInput{SecretId: str(tc.id)})
			if tc.ok {
				mustOK(t, err, "DescribeSecret("+tc.id+")")
				return
			}
			wantCode(t, err, codeNotFound, "Secrets Manager can't find the specified secret.")
		})
	}
	// Another account's ARN is looked up there, and a caller its resource
	// policy does not let in is refused, whether the secret exists or not.
	_, err := e.sm.DescribeSecret(e.ctx, &smapi.DescribeSecretInput{SecretId: str(strings.Replace(arn, "123456789012", "210987654321", 1))})
	wantCode(t, err, "AccessDeniedException", "because no resource-based policy allows the secretsmanager:DescribeSecret action")
	// The same name in another region is another secret.
	other := asCaller(t.Context(), testAccount, "eu-west-1")
	_, err = e.sm.GetSecretValue(other, &smapi.GetSecretValueInput{SecretId: str("name-with-AbCdEf")})
	wantCode(t, err, codeNotFound, "")
}

func TestDescribeSecretFields(t *testing.T) {
	e := newEnv(t)
	keyARN := e.createKey(t)
	out, err := e.sm.CreateSecret(e.ctx, &smapi.CreateSecretInput{
		Name: str("desc"), Description: str("my secret"), KmsKeyId: str(keyARN),
		SecretString: secretString("v"),
	})
	mustOK(t, err, "CreateSecret")
	d := e.describe(t, "desc")
	if *d.ARN != *out.ARN || *d.Name != "desc" || deref(d.Description) != "my secret" || deref(d.KmsKeyId) != keyARN {
		t.Fatalf("DescribeSecret = %+v", d)
	}
	if d.Tags != nil {
		t.Fatalf("Tags = %v, want absent for a never-tagged secret", d.Tags)
	}
	if d.CreatedDate == nil || !d.CreatedDate.Equal(e.clock.Now()) || d.LastChangedDate == nil {
		t.Fatalf("CreatedDate = %v, LastChangedDate = %v, want %v", d.CreatedDate, d.LastChangedDate, e.clock.Now())
	}
	if d.LastAccessedDate != nil || d.DeletedDate != nil || d.RotationEnabled != nil {
		t.Fatalf("DescribeSecret has fields a fresh secret does not have: %+v", d)
	}
	e.get(t, "desc")
	d = e.describe(t, "desc")
	wantDay := e.clock.Now().Truncate(24 * time.Hour)
	if d.LastAccessedDate == nil || !d.LastAccessedDate.Equal(wantDay) {
		t.Fatalf("LastAccessedDate = %v, want %v", d.LastAccessedDate, wantDay)
	}
	// The default key is not shown.
	e.create(t, "default-key", "v")
	if d := e.describe(t, "default-key"); d.KmsKeyId != nil {
		t.Fatalf("KmsKeyId = %q, want absent for the default key", *d.KmsKeyId)
	}
}

func TestKMSKeyStateFailures(t *testing.T) {
	e := newEnv(t)
	keyARN := e.createKey(t)
	_, err := e.sm.CreateSecret(e.ctx, &smapi.CreateSecretInput{Name: str("k"), KmsKeyId: str(keyARN), SecretString: secretString("v")})
	mustOK(t, err, "CreateSecret")
	_, err = e.kms.DisableKey(e.ctx, &kmsapi.DisableKeyInput{KeyId: str(keyARN)})
	mustOK(t, err, "DisableKey")
	_, err = e.sm.GetSecretValue(e.ctx, &smapi.GetSecretValueInput{SecretId: str("k")})
	wantCode(t, err, codeDecryption, "can't decrypt")
	_, err = e.sm.PutSecretValue(e.ctx, &smapi.PutSecretValueInput{SecretId: str("k"), SecretString: secretString("v2")})
	wantCode(t, err, codeEncryption, "can't encrypt")
	_, err = e.kms.EnableKey(e.ctx, &kmsapi.EnableKeyInput{KeyId: str(keyARN)})
	mustOK(t, err, "EnableKey")
	if got := e.get(t, "k").SecretString.Reveal(); got != "v" {
		t.Fatalf("GetSecretValue after EnableKey = %q, want %q", got, "v")
	}
}

func TestValueNeverStoredInPlaintext(t *testing.T) {
	e := newEnv(t)
	const marker = "PLAINTEXT-MARKER-6f1c2b"
	e.create(t, "leak", marker)
	_, err := e.sm.PutSecretValue(e.ctx, &smapi.PutSecretValueInput{SecretId: str("leak"), SecretBinary: sensitive.Bytes(marker + "-bin")})
	mustOK(t, err, "PutSecretValue")
	for _, suffix := range []string{"", "-wal"} {
		b, err := os.ReadFile(e.path + suffix)
		if err != nil {
			continue
		}
		if bytes.Contains(b, []byte(marker)) {
			t.Fatalf("database file %s contains the plaintext", e.path+suffix)
		}
	}
}

func TestSealedValueBoundToVersion(t *testing.T) {
	e := newEnv(t)
	a := e.create(t, "a", "value-a")
	b := e.create(t, "b", "value-b")
	recA, err := e.sm.store.Get(e.ctx, kindVersion, scopeT(), versionRecordID("a", *a.VersionId))
	mustOK(t, err, "get a")
	// Opening a's sealed value as b's version must fail, not return a's value.
	_, err = e.sm.open(e.ctx, *b.ARN, *b.VersionId, encryptionContext(*b.ARN, *b.VersionId), nil, recA.Sealed)
	if err == nil {
		t.Fatalf("open(a's value as b) succeeded, want an error")
	}
	for _, bad := range [][]byte{nil, []byte("KSV1"), append([]byte("KSV1\x01\x01\x00\x05"), 1, 2), []byte("XXXX\x01\x01\x00\x01abcdefghijklmnopqrstuvwxyzabcd"), append(recA.Sealed, 0), recA.Sealed[:len(recA.Sealed)-1]} {
		if _, err := parseSealed(bad); err == nil {
			t.Fatalf("parseSealed(%q) succeeded, want an error", bad)
		}
	}
}
