package e2e

import (
	"regexp"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/keyfort/keyfort/internal/keyfortest"
)

// TestSTSGetCallerIdentityDev calls STS GetCallerIdentity through the SDK's
// STS client (AWS Query protocol, signing name sts) in dev auth: the caller
// is the root of the account the access key names.
func TestSTSGetCallerIdentityDev(t *testing.T) {
	srv := keyfortest.Start(t)
	ctx := ctxT(t)
	for _, c := range []struct{ key, account string }{
		{keyfortest.DefaultAccessKey, "123456789012"},
		{"210987654321", "210987654321"},
	} {
		out, err := sts.NewFromConfig(srv.AWSConfig(c.key, "eu-west-1")).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
		mustNoErr(t, err, "GetCallerIdentity")
		if aws.ToString(out.Account) != c.account || aws.ToString(out.Arn) != "arn:aws:iam::"+c.account+":root" ||
			aws.ToString(out.UserId) != c.account {
			t.Errorf("%s: Account %s Arn %s UserId %s", c.key, aws.ToString(out.Account), aws.ToString(out.Arn), aws.ToString(out.UserId))
		}
	}
	// China regions: the partition is aws-cn.
	out, err := sts.NewFromConfig(srv.AWSConfig(keyfortest.DefaultAccessKey, "cn-north-1")).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	mustNoErr(t, err, "GetCallerIdentity cn-north-1")
	if got := aws.ToString(out.Arn); got != "arn:aws-cn:iam::123456789012:root" {
		t.Errorf("cn-north-1 Arn = %s", got)
	}

	client := sts.NewFromConfig(srv.AWSConfig(keyfortest.DefaultAccessKey, "us-east-1"))
	_, err = client.AssumeRole(ctx, &sts.AssumeRoleInput{RoleArn: aws.String("arn:aws:iam::123456789012:role/r"), RoleSessionName: aws.String("s")})
	wantAPIError(t, err, "InvalidAction", "Keyfort serves only the STS action GetCallerIdentity; AssumeRole is not supported")
	wantStatus400(t, err)
	_, err = client.GetSessionToken(ctx, &sts.GetSessionTokenInput{})
	wantAPIError(t, err, "InvalidAction", "GetSessionToken is not supported")
}

// TestSTSGetCallerIdentityStrict: in strict auth the answer is the
// principal of the access key (root, IAM user, role session), whatever its
// policies (GetCallerIdentity needs no permission); a wrong secret or an
// unknown key is refused with STS's codes.
func TestSTSGetCallerIdentityStrict(t *testing.T) {
	srv := startStrict(t, strictCredentials)
	ctx := ctxT(t)
	stsFor := func(id, secret string) *sts.Client { return sts.NewFromConfig(signedConfig(srv, id, secret)) }
	for _, c := range []struct {
		id, secret, arn string
		userID          *regexp.Regexp
	}{
		{"AKIAROOT000000000001", "root-secret", "arn:aws:iam::111122223333:root", regexp.MustCompile(`^111122223333$`)},
		{"AKIAALICE0000000001", "alice-secret", "arn:aws:iam::111122223333:user/alice", regexp.MustCompile(`^AIDA[A-Z2-7]{16}$`)},
		{"AKIANOBODY000000001", "nobody-secret", "arn:aws:iam::111122223333:user/nobody", regexp.MustCompile(`^AIDA[A-Z2-7]{16}$`)},
		{"AKIABOB00000000001", "bob-secret", "arn:aws:sts::111122223333:assumed-role/bob/AKIABOB00000000001",
			regexp.MustCompile(`^AROA[A-Z2-7]{16}:AKIABOB00000000001$`)},
	} {
		out, err := stsFor(c.id, c.secret).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
		mustNoErr(t, err, "GetCallerIdentity "+c.id)
		if aws.ToString(out.Account) != strictAccount || aws.ToString(out.Arn) != c.arn || !c.userID.MatchString(aws.ToString(out.UserId)) {
			t.Errorf("%s: Account %s Arn %s UserId %s", c.id, aws.ToString(out.Account), aws.ToString(out.Arn), aws.ToString(out.UserId))
		}
	}
	_, err := stsFor("AKIAALICE0000000001", "wrong").GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	wantAPIError(t, err, "SignatureDoesNotMatch", "")
	_, err = stsFor("AKIAUNKNOWN00000001", "x").GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	wantAPIError(t, err, "InvalidClientTokenId", "")
}
