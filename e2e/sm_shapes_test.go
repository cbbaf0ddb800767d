package e2e

// Secrets Manager response shapes checked against AWS's recorded answers:
// LocalStack's AWS-validated snapshot tests
// (tests/aws/services/secretsmanager/test_secretsmanager.snapshot.json).
// Their transformers sort VersionStages and Versions, so list order is not
// checked here; which members are present is.

import (
	"context"
	"errors"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/smithy-go"
)

const (
	smTok1 = "00000000-0000-4000-8000-000000000001"
	smTok2 = "00000000-0000-4000-8000-000000000002"
	smTok3 = "00000000-0000-4000-8000-000000000003"
	smTok4 = "00000000-0000-4000-8000-000000000004"
)

// TestSMShapesLifecycle follows test_create_and_update_secret,
// test_update_secret_description, test_update_secret_version_stages_return_type,
// test_update_secret_version_stages_current_previous, test_secret_restore and
// test_call_lists_secrets_multiple_times_snapshots.
func TestSMShapesLifecycle(t *testing.T) {
	srv, _ := startSM(t)
	sm := func(op, body string) map[string]any { return shapeCall(t, srv, "secretsmanager", op, body) }

	cr := sm("CreateSecret", `{"Name":"shape/s1","Description":"Testing secret creation.","SecretString":"my_secret","ClientRequestToken":"`+smTok1+`"}`)
	wantMembers(t, "CreateSecret", cr, "ARN", "Name", "VersionId")
	wantValue(t, "CreateSecret", cr, "VersionId", smTok1)

	// Never read: no LastAccessedDate; no rotation, tags or key members.
	d := sm("DescribeSecret", `{"SecretId":"shape/s1"}`)
	wantMembers(t, "DescribeSecret(new)", d, "ARN", "CreatedDate", "Description", "LastChangedDate", "Name", "VersionIdsToStages")
	wantValue(t, "DescribeSecret(new)", d, "VersionIdsToStages", map[string][]string{smTok1: {"AWSCURRENT"}})

	g := sm("GetSecretValue", `{"SecretId":"shape/s1"}`)
	wantMembers(t, "GetSecretValue", g, "ARN", "CreatedDate", "Name", "SecretString", "VersionId", "VersionStages")
	wantValue(t, "GetSecretValue", g, "VersionStages", []string{"AWSCURRENT"})

	d = sm("DescribeSecret", `{"SecretId":"shape/s1"}`)
	wantMembers(t, "DescribeSecret(read)", d, "ARN", "CreatedDate", "Description", "LastAccessedDate", "LastChangedDate", "Name", "VersionIdsToStages")

	p := sm("PutSecretValue", `{"SecretId":"shape/s1","SecretString":"new_secret","ClientRequestToken":"`+smTok2+`"}`)
	wantMembers(t, "PutSecretValue", p, "ARN", "Name", "VersionId", "VersionStages")
	wantValue(t, "PutSecretValue", p, "VersionStages", []string{"AWSCURRENT"})

	u := sm("UpdateSecret", `{"SecretId":"shape/s1","SecretString":"third","ClientRequestToken":"`+smTok3+`"}`)
	wantMembers(t, "UpdateSecret(value)", u, "ARN", "Name", "VersionId")
	wantValue(t, "UpdateSecret(value)", u, "VersionId", smTok3)
	u = sm("UpdateSecret", `{"SecretId":"shape/s1","Description":"MyNewDescription","ClientRequestToken":"`+smTok4+`"}`)
	wantMembers(t, "UpdateSecret(description)", u, "ARN", "Name")

	p = sm("PutSecretValue", `{"SecretId":"shape/s1","SecretString":"S4","VersionStages":["AWSPENDING"],"ClientRequestToken":"`+smTok4+`"}`)
	wantValue(t, "PutSecretValue(AWSPENDING)", p, "VersionStages", []string{"AWSPENDING"})
	us := sm("UpdateSecretVersionStage", `{"SecretId":"shape/s1","VersionStage":"AWSCURRENT","MoveToVersionId":"`+smTok4+`","RemoveFromVersionId":"`+smTok3+`"}`)
	wantMembers(t, "UpdateSecretVersionStage", us, "ARN", "Name")

	lv := sm("ListSecretVersionIds", `{"SecretId":"shape/s1"}`)
	wantMembers(t, "ListSecretVersionIds", lv, "ARN", "Name", "Versions")
	for _, v := range lv["Versions"].([]any) {
		e := obj(t, v)
		if e["VersionId"] == smTok1 {
			t.Errorf("ListSecretVersionIds lists the deprecated version %s without IncludeDeprecated", smTok1)
		}
		want := []string{"CreatedDate", "KmsKeyIds", "VersionId", "VersionStages"}
		if e["VersionId"] == smTok1 {
			want = append(want, "LastAccessedDate")
		}
		wantMembers(t, "ListSecretVersionIds entry "+e["VersionId"].(string), e, want...)
		wantValue(t, "ListSecretVersionIds entry", e, "KmsKeyIds", []string{"DefaultEncryptionKey"})
	}

	ls := sm("ListSecrets", `{"Filters":[{"Key":"name","Values":["shape/s1"]}]}`)
	list := ls["SecretList"].([]any)
	if len(list) != 1 {
		t.Fatalf("ListSecrets = %v, want one entry", ls)
	}
	wantMembers(t, "ListSecrets entry", obj(t, list[0]), "ARN", "CreatedDate", "Description", "LastAccessedDate", "LastChangedDate", "Name", "SecretVersionsToStages")

	del := sm("DeleteSecret", `{"SecretId":"shape/s1"}`)
	wantMembers(t, "DeleteSecret", del, "ARN", "DeletionDate", "Name")
	rs := sm("RestoreSecret", `{"SecretId":"shape/s1"}`)
	wantMembers(t, "RestoreSecret", rs, "ARN", "Name")
	del = sm("DeleteSecret", `{"SecretId":"shape/s1","ForceDeleteWithoutRecovery":true}`)
	wantMembers(t, "DeleteSecret(force)", del, "ARN", "DeletionDate", "Name")
}

// TestSMShapesDeprecatedVersions follows test_deprecated_secret_version_stage:
// with IncludeDeprecated, a version without staging labels has no
// VersionStages member (not an empty list).
func TestSMShapesDeprecatedVersions(t *testing.T) {
	srv, _ := startSM(t)
	sm := func(op, body string) map[string]any { return shapeCall(t, srv, "secretsmanager", op, body) }
	sm("CreateSecret", `{"Name":"shape/dep","SecretString":"v1","ClientRequestToken":"`+smTok1+`"}`)
	sm("PutSecretValue", `{"SecretId":"shape/dep","SecretString":"v2","ClientRequestToken":"`+smTok2+`"}`)
	sm("PutSecretValue", `{"SecretId":"shape/dep","SecretString":"v3","ClientRequestToken":"`+smTok3+`"}`)

	lv := sm("ListSecretVersionIds", `{"SecretId":"shape/dep","IncludeDeprecated":true}`)
	stages := map[string]any{}
	for _, v := range lv["Versions"].([]any) {
		e := obj(t, v)
		id := e["VersionId"].(string)
		if id == smTok1 {
			wantMembers(t, "deprecated version", e, "CreatedDate", "KmsKeyIds", "VersionId")
		} else {
			wantMembers(t, "version "+id, e, "CreatedDate", "KmsKeyIds", "VersionId", "VersionStages")
		}
		stages[id] = e["VersionStages"]
	}
	if len(stages) != 3 {
		t.Fatalf("ListSecretVersionIds(IncludeDeprecated) = %v, want 3 versions", lv)
	}
	wantValue(t, "stages", stages, smTok2, []string{"AWSPREVIOUS"})
	wantValue(t, "stages", stages, smTok3, []string{"AWSCURRENT"})
}

// TestSMShapesEmptySecretAndTags follows test_create_secret_version_from_empty_secret
// and test_secret_tags: a secret created without a value has no VersionId and
// no VersionIdsToStages; Tags is absent until the secret is tagged, and an
// empty list once every tag is removed.
func TestSMShapesEmptySecretAndTags(t *testing.T) {
	srv, _ := startSM(t)
	sm := func(op, body string) map[string]any { return shapeCall(t, srv, "secretsmanager", op, body) }
	cr := sm("CreateSecret", `{"Name":"shape/empty","ClientRequestToken":"`+smTok1+`"}`)
	wantMembers(t, "CreateSecret(no value)", cr, "ARN", "Name")
	d := sm("DescribeSecret", `{"SecretId":"shape/empty"}`)
	wantMembers(t, "DescribeSecret(no value)", d, "ARN", "CreatedDate", "LastChangedDate", "Name")

	p := sm("PutSecretValue", `{"SecretId":"shape/empty","SecretString":"x","ClientRequestToken":"`+smTok2+`"}`)
	wantMembers(t, "PutSecretValue(first)", p, "ARN", "Name", "VersionId", "VersionStages")
	wantValue(t, "PutSecretValue(first)", p, "VersionStages", []string{"AWSCURRENT"})

	tr := sm("TagResource", `{"SecretId":"shape/empty","Tags":[{"Key":"tag1","Value":"value1"}]}`)
	wantMembers(t, "TagResource", tr)
	d = sm("DescribeSecret", `{"SecretId":"shape/empty"}`)
	wantValue(t, "DescribeSecret(tagged)", d, "Tags", []map[string]string{{"Key": "tag1", "Value": "value1"}})
	ur := sm("UntagResource", `{"SecretId":"shape/empty","TagKeys":["tag1"]}`)
	wantMembers(t, "UntagResource", ur)
	d = sm("DescribeSecret", `{"SecretId":"shape/empty"}`)
	wantValue(t, "DescribeSecret(untagged)", d, "Tags", []string{})
}

// TestSMShapesResourcePolicy follows test_resource_policy.
func TestSMShapesResourcePolicy(t *testing.T) {
	srv, _ := startSM(t)
	sm := func(op, body string) map[string]any { return shapeCall(t, srv, "secretsmanager", op, body) }
	sm("CreateSecret", `{"Name":"shape/pol","SecretString":"v","ClientRequestToken":"`+smTok1+`"}`)
	const policy = `{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\",\"Principal\":\"*\",\"Action\":\"secretsmanager:GetSecretValue\",\"Resource\":\"*\"}]}`
	put := sm("PutResourcePolicy", `{"SecretId":"shape/pol","ResourcePolicy":"`+policy+`"}`)
	wantMembers(t, "PutResourcePolicy", put, "ARN", "Name")
	get := sm("GetResourcePolicy", `{"SecretId":"shape/pol"}`)
	wantMembers(t, "GetResourcePolicy", get, "ARN", "Name", "ResourcePolicy")
	rnd := sm("GetRandomPassword", `{"PasswordLength":12}`)
	wantMembers(t, "GetRandomPassword", rnd, "RandomPassword")
	if s, _ := rnd["RandomPassword"].(string); len(s) != 12 {
		t.Errorf("GetRandomPassword(12) = %q", s)
	}
}

// TestSMShapesRotation follows test_rotate_secret_with_lambda_success and
// test_rotate_secret_invalid_lambda_arn.
func TestSMShapesRotation(t *testing.T) {
	srv, c, _ := startRotation(t)
	sm := func(op, body string) map[string]any { return shapeCall(t, srv, "secretsmanager", op, body) }
	sm("CreateSecret", `{"Name":"shape/rot","Description":"testing rotation of secrets","SecretString":"my_secret","ClientRequestToken":"`+smTok1+`"}`)
	r := sm("RotateSecret", `{"SecretId":"shape/rot","RotationLambdaARN":"`+rotationLambda+`","RotationRules":{"AutomaticallyAfterDays":1},"ClientRequestToken":"`+smTok2+`"}`)
	wantMembers(t, "RotateSecret", r, "ARN", "Name", "VersionId")
	wantValue(t, "RotateSecret", r, "VersionId", smTok2)
	d := sm("DescribeSecret", `{"SecretId":"shape/rot"}`)
	wantMembers(t, "DescribeSecret(rotated)", d, "ARN", "CreatedDate", "Description", "LastAccessedDate", "LastChangedDate",
		"LastRotatedDate", "Name", "NextRotationDate", "RotationEnabled", "RotationLambdaARN", "RotationRules", "VersionIdsToStages")
	wantValue(t, "DescribeSecret(rotated)", d, "RotationEnabled", true)
	wantValue(t, "DescribeSecret(rotated)", d, "RotationRules", map[string]int{"AutomaticallyAfterDays": 1})

	// A function Secrets Manager cannot invoke: refused, and nothing about
	// rotation is stored.
	sm("CreateSecret", `{"Name":"shape/rot-denied","SecretString":"x","ClientRequestToken":"`+smTok3+`"}`)
	_, err := c.RotateSecret(context.WithoutCancel(ctxT(t)), &secretsmanager.RotateSecretInput{SecretId: aws.String("shape/rot-denied"),
		RotationLambdaARN: aws.String("arn:aws:lambda:us-east-1:123456789012:function:not-mapped")})
	var ae smithy.APIError
	if !errors.As(err, &ae) || ae.ErrorCode() != "AccessDeniedException" {
		t.Fatalf("RotateSecret(unmapped function) = %v, want AccessDeniedException", err)
	}
	d = sm("DescribeSecret", `{"SecretId":"shape/rot-denied"}`)
	wantMembers(t, "DescribeSecret(rotation refused)", d, "ARN", "CreatedDate", "LastChangedDate", "Name", "VersionIdsToStages")
}
