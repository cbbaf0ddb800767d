package e2e

import (
	"bytes"
	"errors"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"
)

func TestSMCreateGetDescribe(t *testing.T) {
	srv, c := startSM(t)
	out := createSecret(t, c, "prod/db", "s3cr3t")
	arnRE := regexp.MustCompile(`^arn:aws:secretsmanager:us-east-1:123456789012:secret:prod/db-[A-Za-z0-9]{6}$`)
	if !arnRE.MatchString(aws.ToString(out.ARN)) {
		t.Fatalf("CreateSecret ARN = %q, want %s", aws.ToString(out.ARN), arnRE)
	}
	arn := aws.ToString(out.ARN)
	for _, id := range []string{"prod/db", arn, arn[:len(arn)-7]} {
		if got := secretValue(t, c, id); got != "s3cr3t" {
			t.Fatalf("GetSecretValue(%q) = %q, want %q", id, got, "s3cr3t")
		}
	}
	d, err := c.DescribeSecret(ctxT(t), &secretsmanager.DescribeSecretInput{SecretId: aws.String("prod/db")})
	mustNoErr(t, err, "DescribeSecret")
	if aws.ToString(d.ARN) != arn || aws.ToString(d.Name) != "prod/db" || d.Tags != nil || d.KmsKeyId != nil {
		t.Fatalf("DescribeSecret = %+v", d)
	}
	if st := d.VersionIdsToStages[aws.ToString(out.VersionId)]; !slices.Equal(st, []string{"AWSCURRENT"}) {
		t.Fatalf("VersionIdsToStages = %v, want %s: [AWSCURRENT]", d.VersionIdsToStages, aws.ToString(out.VersionId))
	}
	if d.CreatedDate == nil || time.Since(*d.CreatedDate) > time.Hour {
		t.Fatalf("CreatedDate = %v, want about now", d.CreatedDate)
	}
	// AWS names the AWS managed key aws/secretsmanager "DefaultEncryptionKey"
	// in ListSecretVersionIds.
	lv, err := c.ListSecretVersionIds(ctxT(t), &secretsmanager.ListSecretVersionIdsInput{SecretId: aws.String("prod/db")})
	mustNoErr(t, err, "ListSecretVersionIds")
	if len(lv.Versions) != 1 || !slices.Equal(lv.Versions[0].KmsKeyIds, []string{"DefaultEncryptionKey"}) {
		t.Fatalf("ListSecretVersionIds = %+v, want one version with KmsKeyIds [DefaultEncryptionKey]", lv.Versions)
	}

	bin := []byte{0, 0xff, 1}
	_, err = c.CreateSecret(ctxT(t), &secretsmanager.CreateSecretInput{Name: aws.String("bin"), SecretBinary: bin})
	mustNoErr(t, err, "CreateSecret(binary)")
	g, err := c.GetSecretValue(ctxT(t), &secretsmanager.GetSecretValueInput{SecretId: aws.String("bin")})
	mustNoErr(t, err, "GetSecretValue(binary)")
	if !bytes.Equal(g.SecretBinary, bin) || g.SecretString != nil {
		t.Fatalf("GetSecretValue(binary) = %x / %v, want %x", g.SecretBinary, g.SecretString, bin)
	}

	// Values and metadata survive a restart.
	srv.Restart(t)
	c = srv.SecretsManager()
	if got := secretValue(t, c, arn); got != "s3cr3t" {
		t.Fatalf("GetSecretValue after restart = %q", got)
	}
}

func TestSMErrors(t *testing.T) {
	_, c := startSM(t)
	createSecret(t, c, "taken", "v")
	_, err := c.GetSecretValue(ctxT(t), &secretsmanager.GetSecretValueInput{SecretId: aws.String("missing")})
	var nf *types.ResourceNotFoundException
	if !errors.As(err, &nf) {
		t.Fatalf("GetSecretValue(missing) error = %v, want ResourceNotFoundException", err)
	}
	wantAPIError(t, err, "ResourceNotFoundException", "Secrets Manager can't find the specified secret.")

	_, err = c.CreateSecret(ctxT(t), &secretsmanager.CreateSecretInput{Name: aws.String("taken"), SecretString: aws.String("v")})
	var ex *types.ResourceExistsException
	if !errors.As(err, &ex) {
		t.Fatalf("CreateSecret(taken) error = %v, want ResourceExistsException", err)
	}
	// AWS answers a bad name, and a SecretId that could not be a name, with
	// ValidationException.
	const invalidName = "Invalid name. Must be a valid name containing alphanumeric characters, or any of the following: -/_+=.@!"
	_, err = c.CreateSecret(ctxT(t), &secretsmanager.CreateSecretInput{Name: aws.String("bad name")})
	wantAPIError(t, err, "ValidationException", invalidName)
	_, err = c.GetSecretValue(ctxT(t), &secretsmanager.GetSecretValueInput{SecretId: aws.String("bad name")})
	wantAPIError(t, err, "ValidationException", invalidName)
	_, err = c.CreateSecret(ctxT(t), &secretsmanager.CreateSecretInput{Name: aws.String("both"), SecretString: aws.String("a"), SecretBinary: []byte("b")})
	wantAPIError(t, err, "InvalidParameterException", "")
	_, err = c.GetSecretValue(ctxT(t), &secretsmanager.GetSecretValueInput{SecretId: aws.String("taken"), VersionStage: aws.String("AWSPREVIOUS")})
	wantAPIError(t, err, "ResourceNotFoundException", "staging label: AWSPREVIOUS")
	_, err = c.CreateSecret(ctxT(t), &secretsmanager.CreateSecretInput{Name: aws.String("big"), SecretString: aws.String(strings.Repeat("x", 65537))})
	if err == nil {
		t.Fatal("CreateSecret with a 65537-byte value succeeded")
	}
}

func TestSMIdempotentCreateAndPut(t *testing.T) {
	_, c := startSM(t)
	tok := "11111111-2222-4333-8444-555555555555"
	in := &secretsmanager.CreateSecretInput{Name: aws.String("idem"), ClientRequestToken: aws.String(tok), SecretString: aws.String("v1")}
	a, err := c.CreateSecret(ctxT(t), in)
	mustNoErr(t, err, "CreateSecret")
	b, err := c.CreateSecret(ctxT(t), in)
	mustNoErr(t, err, "CreateSecret retry")
	if aws.ToString(a.VersionId) != tok || aws.ToString(b.VersionId) != tok || aws.ToString(a.ARN) != aws.ToString(b.ARN) {
		t.Fatalf("CreateSecret retry = %v %v, want both version %s", a.VersionId, b.VersionId, tok)
	}
	// A token in use with another value: ResourceExistsException naming the
	// token and the secret's ARN, in CreateSecret, PutSecretValue and
	// UpdateSecret alike (AWS's text, as issue 12 records it; moto answers
	// it too, with the CreateSecret cases validated against AWS in
	// getmoto/moto#9741).
	inUse := func(token string) string {
		return "You can't use ClientRequestToken " + token + " because that value is already in use for a version of secret " + aws.ToString(a.ARN) + "."
	}
	_, err = c.CreateSecret(ctxT(t), &secretsmanager.CreateSecretInput{Name: aws.String("idem"), ClientRequestToken: aws.String(tok), SecretString: aws.String("other")})
	wantExactAPIError(t, err, "ResourceExistsException", inUse(tok))
	_, err = c.CreateSecret(ctxT(t), &secretsmanager.CreateSecretInput{Name: aws.String("idem"), ClientRequestToken: aws.String(tok), SecretBinary: []byte("v1")})
	wantExactAPIError(t, err, "ResourceExistsException", inUse(tok))
	// Another token on a name in use is the name's error.
	_, err = c.CreateSecret(ctxT(t), &secretsmanager.CreateSecretInput{Name: aws.String("idem"), SecretString: aws.String("v1")})
	wantExactAPIError(t, err, "ResourceExistsException", "The operation failed because the secret idem already exists.")

	ptok := "22222222-2222-4333-8444-555555555555"
	p1, err := c.PutSecretValue(ctxT(t), &secretsmanager.PutSecretValueInput{SecretId: aws.String("idem"), ClientRequestToken: aws.String(ptok), SecretString: aws.String("v2")})
	mustNoErr(t, err, "PutSecretValue")
	p2, err := c.PutSecretValue(ctxT(t), &secretsmanager.PutSecretValueInput{SecretId: aws.String("idem"), ClientRequestToken: aws.String(ptok), SecretString: aws.String("v2")})
	mustNoErr(t, err, "PutSecretValue retry")
	if aws.ToString(p1.VersionId) != ptok || aws.ToString(p2.VersionId) != ptok {
		t.Fatalf("PutSecretValue versions = %v %v, want %s", p1.VersionId, p2.VersionId, ptok)
	}
	_, err = c.PutSecretValue(ctxT(t), &secretsmanager.PutSecretValueInput{SecretId: aws.String("idem"), ClientRequestToken: aws.String(ptok), SecretString: aws.String("v3")})
	wantExactAPIError(t, err, "ResourceExistsException", inUse(ptok))
	_, err = c.PutSecretValue(ctxT(t), &secretsmanager.PutSecretValueInput{SecretId: aws.String("idem"), ClientRequestToken: aws.String(tok), SecretString: aws.String("v3")})
	wantExactAPIError(t, err, "ResourceExistsException", inUse(tok))
	_, err = c.UpdateSecret(ctxT(t), &secretsmanager.UpdateSecretInput{SecretId: aws.String("idem"), ClientRequestToken: aws.String(ptok), SecretString: aws.String("v3")})
	wantExactAPIError(t, err, "ResourceExistsException", inUse(ptok))
	u, err := c.UpdateSecret(ctxT(t), &secretsmanager.UpdateSecretInput{SecretId: aws.String("idem"), ClientRequestToken: aws.String(ptok), SecretString: aws.String("v2")})
	mustNoErr(t, err, "UpdateSecret with a token in use and the same value")
	if aws.ToString(u.VersionId) != ptok {
		t.Fatalf("UpdateSecret retry VersionId = %s, want %s", aws.ToString(u.VersionId), ptok)
	}
	prev, err := c.GetSecretValue(ctxT(t), &secretsmanager.GetSecretValueInput{SecretId: aws.String("idem"), VersionStage: aws.String("AWSPREVIOUS")})
	mustNoErr(t, err, "GetSecretValue(AWSPREVIOUS)")
	if aws.ToString(prev.SecretString) != "v1" || aws.ToString(prev.VersionId) != tok {
		t.Fatalf("AWSPREVIOUS = %q (%s), want v1 (%s)", aws.ToString(prev.SecretString), aws.ToString(prev.VersionId), tok)
	}
}

// TestSMFirstVersionIsCurrent checks that PutSecretValue on a secret
// without versions makes the new version AWSCURRENT whatever VersionStages
// says: "If this operation creates the first version for the secret, then
// Secrets Manager automatically attaches the staging label AWSCURRENT to
// it" (PutSecretValue in the API reference).
func TestSMFirstVersionIsCurrent(t *testing.T) {
	_, c := startSM(t)
	_, err := c.CreateSecret(ctxT(t), &secretsmanager.CreateSecretInput{Name: aws.String("empty")})
	mustNoErr(t, err, "CreateSecret without a value")
	p, err := c.PutSecretValue(ctxT(t), &secretsmanager.PutSecretValueInput{SecretId: aws.String("empty"), SecretString: aws.String("first"), VersionStages: []string{"AWSPENDING"}})
	mustNoErr(t, err, "PutSecretValue(AWSPENDING) of the first version")
	v1 := aws.ToString(p.VersionId)
	if got := slices.Sorted(slices.Values(p.VersionStages)); !slices.Equal(got, []string{"AWSCURRENT", "AWSPENDING"}) {
		t.Fatalf("PutSecretValue(AWSPENDING) of the first version: VersionStages = %v, want AWSCURRENT and AWSPENDING", p.VersionStages)
	}
	g, err := c.GetSecretValue(ctxT(t), &secretsmanager.GetSecretValueInput{SecretId: aws.String("empty")})
	mustNoErr(t, err, "GetSecretValue(AWSCURRENT)")
	if aws.ToString(g.SecretString) != "first" || aws.ToString(g.VersionId) != v1 {
		t.Fatalf("AWSCURRENT = %q (%s), want first (%s)", aws.ToString(g.SecretString), aws.ToString(g.VersionId), v1)
	}
	// A later version with only AWSPENDING leaves AWSCURRENT where it is.
	p2, err := c.PutSecretValue(ctxT(t), &secretsmanager.PutSecretValueInput{SecretId: aws.String("empty"), SecretString: aws.String("second"), VersionStages: []string{"AWSPENDING"}})
	mustNoErr(t, err, "PutSecretValue(AWSPENDING) of the second version")
	if !slices.Equal(p2.VersionStages, []string{"AWSPENDING"}) {
		t.Fatalf("second PutSecretValue(AWSPENDING): VersionStages = %v, want [AWSPENDING]", p2.VersionStages)
	}
	d, err := c.DescribeSecret(ctxT(t), &secretsmanager.DescribeSecretInput{SecretId: aws.String("empty")})
	mustNoErr(t, err, "DescribeSecret")
	want := map[string][]string{v1: {"AWSCURRENT"}, aws.ToString(p2.VersionId): {"AWSPENDING"}}
	if len(d.VersionIdsToStages) != 2 || !slices.Equal(d.VersionIdsToStages[v1], want[v1]) ||
		!slices.Equal(d.VersionIdsToStages[aws.ToString(p2.VersionId)], []string{"AWSPENDING"}) {
		t.Fatalf("VersionIdsToStages = %v, want %v", d.VersionIdsToStages, want)
	}

	// Any first version: custom labels too.
	_, err = c.CreateSecret(ctxT(t), &secretsmanager.CreateSecretInput{Name: aws.String("empty2")})
	mustNoErr(t, err, "CreateSecret without a value")
	p, err = c.PutSecretValue(ctxT(t), &secretsmanager.PutSecretValueInput{SecretId: aws.String("empty2"), SecretString: aws.String("x"), VersionStages: []string{"blue"}})
	mustNoErr(t, err, "PutSecretValue(blue) of the first version")
	if got := slices.Sorted(slices.Values(p.VersionStages)); !slices.Equal(got, []string{"AWSCURRENT", "blue"}) {
		t.Fatalf("PutSecretValue(blue) of the first version: VersionStages = %v, want AWSCURRENT and blue", p.VersionStages)
	}
}

func TestSMRotationStages(t *testing.T) {
	_, c := startSM(t)
	v1 := aws.ToString(createSecret(t, c, "rot", "old").VersionId)
	p, err := c.PutSecretValue(ctxT(t), &secretsmanager.PutSecretValueInput{SecretId: aws.String("rot"), SecretString: aws.String("new"), VersionStages: []string{"AWSPENDING"}})
	mustNoErr(t, err, "PutSecretValue(AWSPENDING)")
	v2 := aws.ToString(p.VersionId)
	if got := secretValue(t, c, "rot"); got != "old" {
		t.Fatalf("AWSCURRENT after AWSPENDING put = %q, want old", got)
	}
	_, err = c.UpdateSecretVersionStage(ctxT(t), &secretsmanager.UpdateSecretVersionStageInput{SecretId: aws.String("rot"), VersionStage: aws.String("AWSCURRENT"), MoveToVersionId: aws.String(v2)})
	wantAPIError(t, err, "InvalidParameterException", "RemoveFromVersionId")
	_, err = c.UpdateSecretVersionStage(ctxT(t), &secretsmanager.UpdateSecretVersionStageInput{SecretId: aws.String("rot"), VersionStage: aws.String("AWSCURRENT"), MoveToVersionId: aws.String(v2), RemoveFromVersionId: aws.String(v1)})
	mustNoErr(t, err, "UpdateSecretVersionStage")
	if got := secretValue(t, c, "rot"); got != "new" {
		t.Fatalf("AWSCURRENT after the move = %q, want new", got)
	}
	lv, err := c.ListSecretVersionIds(ctxT(t), &secretsmanager.ListSecretVersionIdsInput{SecretId: aws.String("rot")})
	mustNoErr(t, err, "ListSecretVersionIds")
	stages := map[string][]string{}
	for _, v := range lv.Versions {
		stages[aws.ToString(v.VersionId)] = v.VersionStages
	}
	if !slices.Equal(stages[v1], []string{"AWSPREVIOUS"}) || !slices.Contains(stages[v2], "AWSCURRENT") {
		t.Fatalf("stages = %v, want %s AWSPREVIOUS and %s AWSCURRENT", stages, v1, v2)
	}
}

func TestSMDeleteRestore(t *testing.T) {
	_, c := startSM(t)
	createSecret(t, c, "gone", "v")
	_, err := c.DeleteSecret(ctxT(t), &secretsmanager.DeleteSecretInput{SecretId: aws.String("gone"), RecoveryWindowInDays: aws.Int64(3)})
	wantAPIError(t, err, "InvalidParameterException", "RecoveryWindowInDays")
	_, err = c.DeleteSecret(ctxT(t), &secretsmanager.DeleteSecretInput{SecretId: aws.String("gone"), RecoveryWindowInDays: aws.Int64(7), ForceDeleteWithoutRecovery: aws.Bool(true)})
	wantAPIError(t, err, "InvalidParameterException", "ForceDeleteWithoutRecovery")
	del, err := c.DeleteSecret(ctxT(t), &secretsmanager.DeleteSecretInput{SecretId: aws.String("gone"), RecoveryWindowInDays: aws.Int64(7)})
	mustNoErr(t, err, "DeleteSecret")
	if d := time.Until(aws.ToTime(del.DeletionDate)); d < 6*24*time.Hour || d > 8*24*time.Hour {
		t.Fatalf("DeletionDate = %v, want in about 7 days", del.DeletionDate)
	}
	_, err = c.GetSecretValue(ctxT(t), &secretsmanager.GetSecretValueInput{SecretId: aws.String("gone")})
	var ir *types.InvalidRequestException
	if !errors.As(err, &ir) {
		t.Fatalf("GetSecretValue(deleted) error = %v, want InvalidRequestException", err)
	}
	_, err = c.RestoreSecret(ctxT(t), &secretsmanager.RestoreSecretInput{SecretId: aws.String("gone")})
	mustNoErr(t, err, "RestoreSecret")
	if got := secretValue(t, c, "gone"); got != "v" {
		t.Fatalf("GetSecretValue after restore = %q", got)
	}
	_, err = c.DeleteSecret(ctxT(t), &secretsmanager.DeleteSecretInput{SecretId: aws.String("gone"), ForceDeleteWithoutRecovery: aws.Bool(true)})
	mustNoErr(t, err, "DeleteSecret(force)")
	_, err = c.DescribeSecret(ctxT(t), &secretsmanager.DescribeSecretInput{SecretId: aws.String("gone")})
	wantAPIError(t, err, "ResourceNotFoundException", "")
	// Forcing the deletion of a secret that no longer exists is not
	// ResourceNotFoundException on AWS; without force it is.
	forced, err := c.DeleteSecret(ctxT(t), &secretsmanager.DeleteSecretInput{SecretId: aws.String("gone"), ForceDeleteWithoutRecovery: aws.Bool(true)})
	mustNoErr(t, err, "DeleteSecret(force) of a deleted secret")
	if aws.ToString(forced.Name) != "gone" || forced.DeletionDate == nil {
		t.Fatalf("DeleteSecret(force, gone) = Name %v, DeletionDate %v, want gone and a date", forced.Name, forced.DeletionDate)
	}
	_, err = c.DeleteSecret(ctxT(t), &secretsmanager.DeleteSecretInput{SecretId: aws.String("gone")})
	wantAPIError(t, err, "ResourceNotFoundException", "Secrets Manager can't find the specified secret.")
}

func TestSMDisabledKMSKey(t *testing.T) {
	srv, c := startSM(t)
	k := srv.KMS()
	key, err := k.CreateKey(ctxT(t), &kms.CreateKeyInput{})
	mustNoErr(t, err, "kms.CreateKey")
	_, err = c.CreateSecret(ctxT(t), &secretsmanager.CreateSecretInput{Name: aws.String("cmk"), KmsKeyId: key.KeyMetadata.Arn, SecretString: aws.String("v")})
	mustNoErr(t, err, "CreateSecret with a customer managed key")
	_, err = k.DisableKey(ctxT(t), &kms.DisableKeyInput{KeyId: key.KeyMetadata.KeyId})
	mustNoErr(t, err, "DisableKey")
	_, err = c.GetSecretValue(ctxT(t), &secretsmanager.GetSecretValueInput{SecretId: aws.String("cmk")})
	var df *types.DecryptionFailure
	if !errors.As(err, &df) {
		t.Fatalf("GetSecretValue with a disabled key: error = %v, want DecryptionFailure", err)
	}
	_, err = c.PutSecretValue(ctxT(t), &secretsmanager.PutSecretValueInput{SecretId: aws.String("cmk"), SecretString: aws.String("v2")})
	var ef *types.EncryptionFailure
	if !errors.As(err, &ef) {
		t.Fatalf("PutSecretValue with a disabled key: error = %v, want EncryptionFailure", err)
	}
}

// TestSMReadsAskKMSEachTime: once a value was read (its data key opened and
// kept by the server), every later read still asks KMS, as on AWS: a
// disabled key, a key pending deletion and a key policy that denies
// Secrets Manager's Decrypt each fail the next read at once, each read is
// a KMS Decrypt event, and the reads work again once the key does.
func TestSMReadsAskKMSEachTime(t *testing.T) {
	srv := startAudited(t)
	c, k := srv.SecretsManager(), srv.KMS()
	ctx := ctxT(t)
	key, err := k.CreateKey(ctx, &kms.CreateKeyInput{})
	mustNoErr(t, err, "kms.CreateKey")
	keyID, keyARN := key.KeyMetadata.KeyId, aws.ToString(key.KeyMetadata.Arn)
	_, err = c.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String("asks"), KmsKeyId: key.KeyMetadata.Arn, SecretString: aws.String("kept-in-kms")})
	mustNoErr(t, err, "CreateSecret")
	reads := 0
	read := func(step, wantCode, wantMsg string) {
		t.Helper()
		reads++
		out, err := c.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String("asks")})
		if wantCode == "" {
			mustNoErr(t, err, "GetSecretValue "+step)
			if aws.ToString(out.SecretString) != "kept-in-kms" {
				t.Fatalf("GetSecretValue %s = %q, want the value", step, aws.ToString(out.SecretString))
			}
			return
		}
		wantAPIError(t, err, wantCode, wantMsg)
	}
	read("first", "", "")
	read("second", "", "")

	_, err = k.DisableKey(ctx, &kms.DisableKeyInput{KeyId: keyID})
	mustNoErr(t, err, "DisableKey")
	read("with the key disabled", "DecryptionFailure", "Secrets Manager can't decrypt the protected secret text using the provided KMS key.")
	_, err = k.EnableKey(ctx, &kms.EnableKeyInput{KeyId: keyID})
	mustNoErr(t, err, "EnableKey")
	read("with the key enabled again", "", "")

	_, err = k.ScheduleKeyDeletion(ctx, &kms.ScheduleKeyDeletionInput{KeyId: keyID, PendingWindowInDays: aws.Int32(7)})
	mustNoErr(t, err, "ScheduleKeyDeletion")
	read("with the key pending deletion", "DecryptionFailure", "Secrets Manager can't decrypt the protected secret text using the provided KMS key.")
	_, err = k.CancelKeyDeletion(ctx, &kms.CancelKeyDeletionInput{KeyId: keyID})
	mustNoErr(t, err, "CancelKeyDeletion")
	_, err = k.EnableKey(ctx, &kms.EnableKeyInput{KeyId: keyID})
	mustNoErr(t, err, "EnableKey after CancelKeyDeletion")
	read("after the deletion was cancelled", "", "")

	acct := strings.Split(keyARN, ":")[4]
	region := strings.Split(keyARN, ":")[3]
	deny := `{"Version":"2012-10-17","Statement":[` +
		`{"Sid":"root","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::` + acct + `:root"},"Action":"kms:*","Resource":"*"},` +
		`{"Sid":"not-through-secrets-manager","Effect":"Deny","Principal":{"AWS":"*"},"Action":"kms:Decrypt","Resource":"*",` +
		`"Condition":{"StringEquals":{"kms:ViaService":"secretsmanager.` + region + `.amazonaws.com"}}}]}`
	_, err = k.PutKeyPolicy(ctx, &kms.PutKeyPolicyInput{KeyId: keyID, Policy: aws.String(deny)})
	mustNoErr(t, err, "PutKeyPolicy(deny Decrypt via Secrets Manager)")
	read("with Decrypt through Secrets Manager denied", "AccessDeniedException", "Access to KMS is not allowed")
	allow := `{"Version":"2012-10-17","Statement":[` +
		`{"Sid":"root","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::` + acct + `:root"},"Action":"kms:*","Resource":"*"}]}`
	_, err = k.PutKeyPolicy(ctx, &kms.PutKeyPolicyInput{KeyId: keyID, Policy: aws.String(allow)})
	mustNoErr(t, err, "PutKeyPolicy(allow)")
	read("with the policy allowing it again", "", "")

	// Every read was a KMS Decrypt of the secret's data key, with KMS's
	// answer: DisabledException, KMSInvalidStateException,
	// AccessDeniedException.
	var got []string
	for _, e := range readAudit(t, srv) {
		if e.EventSource == "kms.amazonaws.com" && e.EventName == "Decrypt" && e.UserIdentity.InvokedBy == "secretsmanager.amazonaws.com" {
			if e.ErrorCode == "" && (len(e.Resources) != 1 || e.Resources[0].ARN != keyARN) {
				t.Errorf("Decrypt event resources = %+v, want the key %s", e.Resources, keyARN)
			}
			got = append(got, e.ErrorCode)
		}
	}
	want := []string{"", "", "DisabledException", "", "KMSInvalidStateException", "", "AccessDeniedException", ""}
	if len(want) != reads || !slices.Equal(got, want) {
		t.Errorf("Decrypt events of %d reads: error codes %q, want %q", reads, got, want)
	}
}

func TestSMTagsListAndPassword(t *testing.T) {
	_, c := startSM(t)
	createSecret(t, c, "a/one", "v")
	createSecret(t, c, "b/two", "v")
	_, err := c.TagResource(ctxT(t), &secretsmanager.TagResourceInput{SecretId: aws.String("a/one"), Tags: []types.Tag{{Key: aws.String("team"), Value: aws.String("red")}}})
	mustNoErr(t, err, "TagResource")
	ls, err := c.ListSecrets(ctxT(t), &secretsmanager.ListSecretsInput{Filters: []types.Filter{{Key: types.FilterNameStringTypeTagKey, Values: []string{"team"}}}})
	mustNoErr(t, err, "ListSecrets(tag-key)")
	if len(ls.SecretList) != 1 || aws.ToString(ls.SecretList[0].Name) != "a/one" {
		t.Fatalf("ListSecrets(tag-key team) = %d secrets, want a/one", len(ls.SecretList))
	}
	var names []string
	p := secretsmanager.NewListSecretsPaginator(c, &secretsmanager.ListSecretsInput{MaxResults: aws.Int32(1), SortOrder: types.SortOrderTypeAsc})
	for i := 0; p.HasMorePages() && i < 10; i++ {
		page, err := p.NextPage(ctxT(t))
		mustNoErr(t, err, "ListSecrets page")
		for _, s := range page.SecretList {
			names = append(names, aws.ToString(s.Name))
		}
	}
	if !slices.Equal(names, []string{"a/one", "b/two"}) {
		t.Fatalf("paged ListSecrets = %v, want [a/one b/two]", names)
	}
	_, err = c.ListSecrets(ctxT(t), &secretsmanager.ListSecretsInput{NextToken: aws.String("forged")})
	wantAPIError(t, err, "InvalidNextTokenException", "")

	pw, err := c.GetRandomPassword(ctxT(t), &secretsmanager.GetRandomPasswordInput{PasswordLength: aws.Int64(20), ExcludePunctuation: aws.Bool(true)})
	mustNoErr(t, err, "GetRandomPassword")
	if s := aws.ToString(pw.RandomPassword); len(s) != 20 || strings.ContainsAny(s, "!#$%&()*+,-./:;<=>?@[]^_`{|}~") {
		t.Fatalf("GetRandomPassword = %q, want 20 characters without punctuation", s)
	}
}
