package e2e

import (
	"bytes"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/keyfort/keyfort/internal/keyfortest"
)

// TestChinaPartition: in the China regions every ARN is of the partition
// aws-cn, as AWS writes them (arn:aws-cn:kms:cn-north-1:...): keys,
// aliases, grants, the default key policy's root principal and secrets;
// key and secret ARNs given back resolve; an ARN of the aws partition is
// InvalidArnException there (as an aws-cn ARN is elsewhere). us-east-1
// keeps arn:aws.
func TestChinaPartition(t *testing.T) {
	srv := keyfortest.Start(t)
	const acct = "123456789012"
	for _, region := range []string{"cn-north-1", "cn-northwest-1"} {
		c := srv.KMS(region)
		md := createKey(t, c, &kms.CreateKeyInput{})
		prefix := "arn:aws-cn:kms:" + region + ":" + acct + ":key/"
		if got := aws.ToString(md.Arn); got != prefix+aws.ToString(md.KeyId) {
			t.Fatalf("%s: key ARN %s, want %s<id>", region, got, prefix)
		}
		pol, err := c.GetKeyPolicy(ctxT(t), &kms.GetKeyPolicyInput{KeyId: md.Arn})
		mustNoErr(t, err, "GetKeyPolicy")
		if !strings.Contains(aws.ToString(pol.Policy), `"AWS" : "arn:aws-cn:iam::`+acct+`:root"`) {
			t.Errorf("%s: default key policy %s", region, aws.ToString(pol.Policy))
		}
		enc, err := c.Encrypt(ctxT(t), &kms.EncryptInput{KeyId: md.Arn, Plaintext: []byte("china")})
		mustNoErr(t, err, "Encrypt")
		if aws.ToString(enc.KeyId) != aws.ToString(md.Arn) {
			t.Errorf("%s: Encrypt KeyId %s", region, aws.ToString(enc.KeyId))
		}
		dec, err := c.Decrypt(ctxT(t), &kms.DecryptInput{CiphertextBlob: enc.CiphertextBlob, KeyId: md.Arn})
		mustNoErr(t, err, "Decrypt")
		if !bytes.Equal(dec.Plaintext, []byte("china")) || aws.ToString(dec.KeyId) != aws.ToString(md.Arn) {
			t.Errorf("%s: Decrypt = %q, %s", region, dec.Plaintext, aws.ToString(dec.KeyId))
		}
		awsARN := "arn:aws:kms:" + region + ":" + acct + ":key/" + aws.ToString(md.KeyId)
		_, err = c.DescribeKey(ctxT(t), &kms.DescribeKeyInput{KeyId: &awsARN})
		wantAPIError(t, err, "InvalidArnException", "")

		_, err = c.CreateAlias(ctxT(t), &kms.CreateAliasInput{AliasName: aws.String("alias/cn"), TargetKeyId: md.KeyId})
		mustNoErr(t, err, "CreateAlias")
		al, err := c.ListAliases(ctxT(t), &kms.ListAliasesInput{KeyId: md.KeyId})
		mustNoErr(t, err, "ListAliases")
		if len(al.Aliases) != 1 || aws.ToString(al.Aliases[0].AliasArn) != "arn:aws-cn:kms:"+region+":"+acct+":alias/cn" {
			t.Errorf("%s: aliases %+v", region, al.Aliases)
		}
		_, err = c.CreateGrant(ctxT(t), &kms.CreateGrantInput{KeyId: md.KeyId, GranteePrincipal: aws.String("arn:aws-cn:iam::" + acct + ":root"),
			Operations: []types.GrantOperation{types.GrantOperationDecrypt}})
		mustNoErr(t, err, "CreateGrant")
		gr, err := c.ListGrants(ctxT(t), &kms.ListGrantsInput{KeyId: md.KeyId})
		mustNoErr(t, err, "ListGrants")
		if len(gr.Grants) != 1 || aws.ToString(gr.Grants[0].IssuingAccount) != "arn:aws-cn:iam::"+acct+":root" ||
			aws.ToString(gr.Grants[0].KeyId) != aws.ToString(md.Arn) {
			t.Errorf("%s: grants %+v", region, gr.Grants)
		}

		sm := srv.SecretsManager(region)
		cs, err := sm.CreateSecret(ctxT(t), &secretsmanager.CreateSecretInput{Name: aws.String("cn/db"), SecretString: aws.String("s3cr3t")})
		mustNoErr(t, err, "CreateSecret")
		if !strings.HasPrefix(aws.ToString(cs.ARN), "arn:aws-cn:secretsmanager:"+region+":"+acct+":secret:cn/db-") {
			t.Errorf("%s: secret ARN %s", region, aws.ToString(cs.ARN))
		}
		v, err := sm.GetSecretValue(ctxT(t), &secretsmanager.GetSecretValueInput{SecretId: cs.ARN})
		mustNoErr(t, err, "GetSecretValue")
		if aws.ToString(v.SecretString) != "s3cr3t" || aws.ToString(v.ARN) != aws.ToString(cs.ARN) {
			t.Errorf("%s: GetSecretValue = %s, %s", region, aws.ToString(v.SecretString), aws.ToString(v.ARN))
		}
	}
	md := createKey(t, srv.KMS("us-east-1"), &kms.CreateKeyInput{})
	if !strings.HasPrefix(aws.ToString(md.Arn), "arn:aws:kms:us-east-1:"+acct+":key/") {
		t.Errorf("us-east-1 key ARN %s", aws.ToString(md.Arn))
	}
}

// TestChinaPartitionStrict: in strict auth, principals of the aws-cn
// partition are authorized in cn-north-1 through the default key policy
// (root principal arn:aws-cn:iam::<account>:root): the root itself, and a
// user whose identity policy allows; a user without one is denied with
// its aws-cn ARN in the message. Keys work only in their principal's
// partition: elsewhere UnrecognizedClientException.
func TestChinaPartitionStrict(t *testing.T) {
	srv := startStrict(t, `principals:
  - arn: arn:aws-cn:iam::111122223333:root
    access_keys:
      - {id: AKIACNROOT00000001, secret: root-secret}
  - arn: arn:aws-cn:iam::111122223333:user/alice
    access_keys:
      - {id: AKIACNALICE0000001, secret: alice-secret}
    policies:
      - '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"kms:*","Resource":"arn:aws-cn:kms:cn-north-1:111122223333:key/*"}]}'
  - arn: arn:aws-cn:iam::111122223333:user/nobody
    access_keys:
      - {id: AKIACNNOBODY000001, secret: nobody-secret}
  - arn: arn:aws:iam::111122223333:user/global
    access_keys:
      - {id: AKIAGLOBAL00000001, secret: global-secret}
    policies:
      - '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"kms:*","Resource":"*"}]}'
`)
	client := func(id, secret, region string) *kms.Client {
		cfg := srv.AWSConfig(id, region)
		cfg.Credentials = credentials.NewStaticCredentialsProvider(id, secret, "")
		return kms.NewFromConfig(cfg)
	}
	cn := func(id, secret string) *kms.Client { return client(id, secret, "cn-north-1") }

	// A principal's access keys exist in its own partition only: an aws
	// user's key signed for a China region, or an aws-cn key signed for
	// us-east-1, is a key AWS does not know there.
	_, err := client("AKIAGLOBAL00000001", "global-secret", "us-east-1").ListKeys(ctxT(t), &kms.ListKeysInput{})
	mustNoErr(t, err, "aws user's ListKeys in us-east-1")
	for _, tc := range []struct{ who, id, secret, region string }{
		{"aws user in cn-north-1", "AKIAGLOBAL00000001", "global-secret", "cn-north-1"},
		{"aws-cn root in us-east-1", "AKIACNROOT00000001", "root-secret", "us-east-1"},
		{"aws-cn root in us-gov-west-1", "AKIACNROOT00000001", "root-secret", "us-gov-west-1"},
	} {
		_, err := client(tc.id, tc.secret, tc.region).ListKeys(ctxT(t), &kms.ListKeysInput{})
		wantExactAPIError(t, err, "UnrecognizedClientException", "The security token included in the request is invalid.")
	}

	root, alice, nobody := cn("AKIACNROOT00000001", "root-secret"), cn("AKIACNALICE0000001", "alice-secret"), cn("AKIACNNOBODY000001", "nobody-secret")
	md := createKey(t, root, &kms.CreateKeyInput{})
	if !strings.HasPrefix(aws.ToString(md.Arn), "arn:aws-cn:kms:cn-north-1:111122223333:key/") {
		t.Fatalf("key ARN %s", aws.ToString(md.Arn))
	}
	for name, c := range map[string]*kms.Client{"root": root, "alice": alice} {
		enc, err := c.Encrypt(ctxT(t), &kms.EncryptInput{KeyId: md.KeyId, Plaintext: []byte("x")})
		mustNoErr(t, err, name+" Encrypt")
		_, err = c.Decrypt(ctxT(t), &kms.DecryptInput{CiphertextBlob: enc.CiphertextBlob})
		mustNoErr(t, err, name+" Decrypt")
	}
	_, err = nobody.Encrypt(ctxT(t), &kms.EncryptInput{KeyId: md.KeyId, Plaintext: []byte("x")})
	wantAPIError(t, err, "AccessDeniedException", "User: arn:aws-cn:iam::111122223333:user/nobody is not authorized to perform: kms:Encrypt on resource: "+aws.ToString(md.Arn))
}
