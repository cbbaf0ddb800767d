package e2e

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudtrail"
	cttypes "github.com/aws/aws-sdk-go-v2/service/cloudtrail/types"
	"github.com/aws/aws-sdk-go-v2/service/kms"
)

// TestAuditAssumedRoleSessionContext: in strict auth, the CloudTrail event
// of a call made with a role's session credentials names the role in
// userIdentity.sessionContext, as AWS records a role session: sessionIssuer
// (type Role, the role's unique id, ARN, account and name) and attributes
// (when the credentials were issued, here when the credentials file was
// loaded, and mfaAuthenticated "false"). An IAM user's event has none.
func TestAuditAssumedRoleSessionContext(t *testing.T) {
	before := time.Now().UTC().Truncate(time.Second)
	srv := startStrict(t, `principals:
  - arn: arn:aws:iam::111122223333:role/ops/deployer
    access_keys:
      - {id: ASIADEPLOYER000001, secret: deployer-secret, session_token: deployer-token}
    policies:
      - '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["kms:*","cloudtrail:LookupEvents"],"Resource":"*"}]}'
  - arn: arn:aws:iam::111122223333:user/alice
    access_keys:
      - {id: AKIAALICE000000001, secret: alice-secret}
    policies:
      - '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["kms:*","cloudtrail:LookupEvents"],"Resource":"*"}]}'
`)
	role := srv.AWSConfigFor("ASIADEPLOYER000001", "deployer-secret", "deployer-token", "us-east-1")
	user := srv.AWSConfigFor("AKIAALICE000000001", "alice-secret", "", "us-east-1")
	ctx := ctxT(t)
	_, err := kms.NewFromConfig(role).ListKeys(ctx, &kms.ListKeysInput{})
	mustNoErr(t, err, "ListKeys as the role session")
	_, err = kms.NewFromConfig(user).ListKeys(ctx, &kms.ListKeysInput{})
	mustNoErr(t, err, "ListKeys as the user")

	type identityJSON struct {
		Type           string `json:"type"`
		PrincipalID    string `json:"principalId"`
		ARN            string `json:"arn"`
		SessionContext *struct {
			SessionIssuer map[string]string `json:"sessionIssuer"`
			Attributes    map[string]string `json:"attributes"`
		} `json:"sessionContext"`
	}
	identityOf := func(key string) identityJSON {
		t.Helper()
		out, err := cloudtrail.NewFromConfig(user).LookupEvents(ctx, &cloudtrail.LookupEventsInput{
			LookupAttributes: []cttypes.LookupAttribute{{AttributeKey: cttypes.LookupAttributeKeyAccessKeyId, AttributeValue: aws.String(key)}}})
		mustNoErr(t, err, "LookupEvents")
		for _, e := range out.Events {
			if aws.ToString(e.EventName) != "ListKeys" {
				continue
			}
			var rec struct {
				UserIdentity identityJSON `json:"userIdentity"`
			}
			if err := json.Unmarshal([]byte(aws.ToString(e.CloudTrailEvent)), &rec); err != nil {
				t.Fatalf("CloudTrailEvent: %v", err)
			}
			return rec.UserIdentity
		}
		t.Fatalf("no ListKeys event of %s among %d events", key, len(out.Events))
		return identityJSON{}
	}

	got := identityOf("ASIADEPLOYER000001")
	if got.Type != "AssumedRole" || got.ARN != "arn:aws:sts::111122223333:assumed-role/deployer/ASIADEPLOYER000001" || got.SessionContext == nil {
		t.Fatalf("role session userIdentity = %+v", got)
	}
	issuer := got.SessionContext.SessionIssuer
	roleID := got.PrincipalID[:len(got.PrincipalID)-len(":ASIADEPLOYER000001")]
	want := map[string]string{"type": "Role", "principalId": roleID, "arn": "arn:aws:iam::111122223333:role/ops/deployer",
		"accountId": "111122223333", "userName": "deployer"}
	for k, v := range want {
		if issuer[k] != v {
			t.Errorf("sessionIssuer.%s = %q, want %q (all: %v)", k, issuer[k], v, issuer)
		}
	}
	if len(roleID) != 20 || roleID[:4] != "AROA" {
		t.Errorf("principalId %q: want AROA<16>:<session>", got.PrincipalID)
	}
	attrs := got.SessionContext.Attributes
	issued, err := time.Parse("2006-01-02T15:04:05Z", attrs["creationDate"])
	if err != nil || issued.Before(before) || issued.After(time.Now()) || attrs["mfaAuthenticated"] != "false" {
		t.Errorf("sessionContext.attributes = %v: want the credentials' load time (between %s and now) and mfaAuthenticated false", attrs, before)
	}
	if u := identityOf("AKIAALICE000000001"); u.Type != "IAMUser" || u.SessionContext != nil {
		t.Errorf("IAM user's userIdentity = %+v, want no sessionContext", u)
	}
}
