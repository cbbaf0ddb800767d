package e2e

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/cloudtrail"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	kmstypes "github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	smtypes "github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"

	"github.com/keyfort/keyfort/internal/awserr"
	ctsvc "github.com/keyfort/keyfort/internal/cloudtrail"
	"github.com/keyfort/keyfort/internal/config"
	"github.com/keyfort/keyfort/internal/keyfortest"
	kmssvc "github.com/keyfort/keyfort/internal/kms"
	"github.com/keyfort/keyfort/internal/kms/kmsapi"
	"github.com/keyfort/keyfort/internal/operation"
	smsvc "github.com/keyfort/keyfort/internal/secretsmanager"
	"github.com/keyfort/keyfort/internal/secretsmanager/smapi"
)

const strictAccount = "111122223333"

// teamPolicy is one identity policy for every member of a team (ABAC): a
// principal may use and manage the keys and secrets tagged with its own
// team, create them only with that tag, and list.
const teamPolicy = `{"Version":"2012-10-17","Statement":[
 {"Sid":"List","Effect":"Allow","Action":["kms:ListKeys","kms:ListAliases","secretsmanager:ListSecrets","secretsmanager:GetRandomPassword"],"Resource":"*"},
 {"Sid":"CreateTagged","Effect":"Allow","Action":["kms:CreateKey","kms:TagResource","secretsmanager:CreateSecret","secretsmanager:TagResource"],"Resource":"*",
  "Condition":{"StringEquals":{"aws:RequestTag/team":"${aws:PrincipalTag/team}"}}},
 {"Sid":"UseOwnTeam","Effect":"Allow","Action":["kms:*","secretsmanager:*"],"Resource":"*",
  "Condition":{"StringEquals":{"aws:ResourceTag/team":"${aws:PrincipalTag/team}"}}}
]}`

// strictCredentials are the principals of the strict-mode tests: the
// account root, alice (team blue), bob (team red, who may never delete a
// secret), and nobody (no policy at all).
const strictCredentials = `principals:
  - arn: arn:aws:iam::111122223333:root
    access_keys:
      - {id: AKIAROOT000000000001, secret: root-secret}
  - arn: arn:aws:iam::111122223333:user/alice
    access_keys:
      - {id: AKIAALICE0000000001, secret: alice-secret}
    tags: {team: blue}
    policies:
      - '` + teamPolicy + `'
  - arn: arn:aws:iam::111122223333:role/bob
    access_keys:
      - {id: AKIABOB00000000001, secret: bob-secret}
    tags: {team: red}
    policies:
      - '` + teamPolicy + `'
      - '{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":"secretsmanager:DeleteSecret","Resource":"*"}]}'
  - arn: arn:aws:iam::111122223333:user/nobody
    access_keys:
      - {id: AKIANOBODY000000001, secret: nobody-secret}
  - arn: arn:aws:iam::111122223333:user/svc
    access_keys:
      - {id: AKIASVC000000000001, secret: svc-secret}
    policies:
      - '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"secretsmanager:*","Resource":"*"},{"Effect":"Allow","Action":["kms:GenerateDataKey","kms:Decrypt"],"Resource":"*","Condition":{"StringLike":{"kms:ViaService":"secretsmanager.*.amazonaws.com"}}}]}'
  - arn: arn:aws:iam::111122223333:user/smonly
    access_keys:
      - {id: AKIASMONLY00000001, secret: smonly-secret}
    policies:
      - '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"secretsmanager:*","Resource":"*"}]}'
`

// startStrict starts a server in strict auth with the credentials file
// text.
func startStrict(t *testing.T, creds string, opts ...keyfortest.Option) *keyfortest.Server {
	t.Helper()
	path := filepath.Join(t.TempDir(), "credentials.yaml")
	if err := os.WriteFile(path, []byte(creds), 0o600); err != nil {
		t.Fatal(err)
	}
	opts = append(opts, keyfortest.WithConfig(func(c *config.Config) {
		c.Auth = config.AuthStrict
		c.Credentials = path
	}))
	return keyfortest.Start(t, opts...)
}

// signedConfig is an SDK configuration that signs with a real secret.
func signedConfig(srv *keyfortest.Server, id, secret string) aws.Config {
	cfg := srv.AWSConfig(id, "us-east-1")
	cfg.Credentials = credentials.NewStaticCredentialsProvider(id, secret, "")
	return cfg
}

func kmsFor(srv *keyfortest.Server, id, secret string) *kms.Client {
	return kms.NewFromConfig(signedConfig(srv, id, secret))
}

func smFor(srv *keyfortest.Server, id, secret string) *secretsmanager.Client {
	return secretsmanager.NewFromConfig(signedConfig(srv, id, secret))
}

func ctFor(srv *keyfortest.Server, id, secret string) *cloudtrail.Client {
	return cloudtrail.NewFromConfig(signedConfig(srv, id, secret))
}

func teamTag(team string) []kmstypes.Tag {
	return []kmstypes.Tag{{TagKey: aws.String("team"), TagValue: aws.String(team)}}
}

// TestStrictTeamsABAC is the README's walk-through: two principals with
// the same policy and different tags; tagging a key or secret opens and
// closes access at once; a secret's tags cannot be changed so as to lock
// the caller out.
func TestStrictTeamsABAC(t *testing.T) {
	srv := startStrict(t, strictCredentials)
	alice, bob := kmsFor(srv, "AKIAALICE0000000001", "alice-secret"), kmsFor(srv, "AKIABOB00000000001", "bob-secret")
	aliceARN := "arn:aws:iam::" + strictAccount + ":user/alice"

	// A key may be created only with one's own team tag.
	_, err := alice.CreateKey(ctxT(t), &kms.CreateKeyInput{})
	wantAPIError(t, err, "AccessDeniedException",
		"User: "+aliceARN+" is not authorized to perform: kms:CreateKey because no identity-based policy allows the kms:CreateKey action")
	_, err = alice.CreateKey(ctxT(t), &kms.CreateKeyInput{Tags: teamTag("red")})
	wantAPIError(t, err, "AccessDeniedException", "kms:CreateKey")
	key := createKey(t, alice, &kms.CreateKeyInput{Tags: teamTag("blue")})

	ct, err := alice.Encrypt(ctxT(t), &kms.EncryptInput{KeyId: key.KeyId, Plaintext: []byte("blue data")})
	mustNoErr(t, err, "alice Encrypt")
	_, err = bob.Encrypt(ctxT(t), &kms.EncryptInput{KeyId: key.KeyId, Plaintext: []byte("x")})
	wantAPIError(t, err, "AccessDeniedException",
		"User: arn:aws:sts::"+strictAccount+":assumed-role/bob/AKIABOB00000000001 is not authorized to perform: kms:Encrypt on resource: "+aws.ToString(key.Arn)+" because no identity-based policy allows the kms:Encrypt action")

	// Tagging a KMS key can allow or deny permission to it, at once: alice
	// may re-tag her team's key (kms:* on it), which hands it to team red,
	// and KMS does not stop her locking herself out.
	_, err = alice.TagResource(ctxT(t), &kms.TagResourceInput{KeyId: key.KeyId, Tags: teamTag("red")})
	mustNoErr(t, err, "alice TagResource")
	_, err = alice.Decrypt(ctxT(t), &kms.DecryptInput{CiphertextBlob: ct.CiphertextBlob})
	wantAPIError(t, err, "AccessDeniedException", "User: "+aliceARN+" is not authorized to perform: kms:Decrypt on the resource associated with this ciphertext because no identity-based policy allows the kms:Decrypt action")
	pt, err := bob.Decrypt(ctxT(t), &kms.DecryptInput{CiphertextBlob: ct.CiphertextBlob})
	mustNoErr(t, err, "bob Decrypt after the retag")
	if string(pt.Plaintext) != "blue data" {
		t.Fatalf("bob Decrypt = %q", pt.Plaintext)
	}
	_, err = bob.UntagResource(ctxT(t), &kms.UntagResourceInput{KeyId: key.KeyId, TagKeys: []string{"team"}})
	mustNoErr(t, err, "bob UntagResource")
	_, err = bob.Decrypt(ctxT(t), &kms.DecryptInput{CiphertextBlob: ct.CiphertextBlob})
	wantAPIError(t, err, "AccessDeniedException", "kms:Decrypt")
	// The account root is allowed by the default key policy whatever the
	// tags.
	root := kmsFor(srv, "AKIAROOT000000000001", "root-secret")
	_, err = root.TagResource(ctxT(t), &kms.TagResourceInput{KeyId: key.KeyId, Tags: teamTag("blue")})
	mustNoErr(t, err, "root TagResource")
	_, err = alice.Decrypt(ctxT(t), &kms.DecryptInput{CiphertextBlob: ct.CiphertextBlob})
	mustNoErr(t, err, "alice Decrypt after the root gave the key back")

	// Secrets: the same rules, and the lockout refusal.
	as, bs := smFor(srv, "AKIAALICE0000000001", "alice-secret"), smFor(srv, "AKIABOB00000000001", "bob-secret")
	_, err = as.CreateSecret(ctxT(t), &secretsmanager.CreateSecretInput{Name: aws.String("blue/db"), SecretString: aws.String("pw")})
	wantAPIError(t, err, "AccessDeniedException", "secretsmanager:CreateSecret on resource: arn:aws:secretsmanager:us-east-1:"+strictAccount+":secret:blue/db-")
	sec, err := as.CreateSecret(ctxT(t), &secretsmanager.CreateSecretInput{Name: aws.String("blue/db"), SecretString: aws.String("pw"),
		Tags: []smtypes.Tag{{Key: aws.String("team"), Value: aws.String("blue")}, {Key: aws.String("env"), Value: aws.String("prod")}}})
	mustNoErr(t, err, "alice CreateSecret with her team's tag")
	if got := secretValue(t, as, "blue/db"); got != "pw" {
		t.Fatalf("alice GetSecretValue = %q", got)
	}
	_, err = bs.GetSecretValue(ctxT(t), &secretsmanager.GetSecretValueInput{SecretId: aws.String("blue/db")})
	wantAPIError(t, err, "AccessDeniedException",
		"is not authorized to perform: secretsmanager:GetSecretValue on resource: blue/db because no identity-based policy allows the secretsmanager:GetSecretValue action")
	// A caller without permission cannot tell a missing secret from one it
	// may not read.
	_, err = bs.GetSecretValue(ctxT(t), &secretsmanager.GetSecretValueInput{SecretId: aws.String("no/such")})
	wantAPIError(t, err, "AccessDeniedException", "on resource: no/such because no identity-based policy allows")

	// Removing or changing the team tag would lock alice out: refused, and
	// the tags stay as they were. Other tags may change.
	_, err = as.UntagResource(ctxT(t), &secretsmanager.UntagResourceInput{SecretId: aws.String("blue/db"), TagKeys: []string{"team"}})
	wantAPIError(t, err, "AccessDeniedException", "User: "+aliceARN+" is not authorized to perform: secretsmanager:UntagResource on resource: blue/db")
	_, err = as.TagResource(ctxT(t), &secretsmanager.TagResourceInput{SecretId: aws.String("blue/db"), Tags: []smtypes.Tag{{Key: aws.String("team"), Value: aws.String("blue")}, {Key: aws.String("env"), Value: aws.String("dev")}}})
	mustNoErr(t, err, "alice TagResource keeping her access")
	_, err = as.UntagResource(ctxT(t), &secretsmanager.UntagResourceInput{SecretId: aws.String("blue/db"), TagKeys: []string{"env"}})
	mustNoErr(t, err, "alice UntagResource of another tag")
	d, err := as.DescribeSecret(ctxT(t), &secretsmanager.DescribeSecretInput{SecretId: sec.ARN})
	mustNoErr(t, err, "DescribeSecret")
	if len(d.Tags) != 1 || aws.ToString(d.Tags[0].Key) != "team" || aws.ToString(d.Tags[0].Value) != "blue" {
		t.Fatalf("tags after the refused changes = %+v", d.Tags)
	}

	// An explicit deny in bob's identity policies wins over his team's
	// allow.
	_, err = bs.CreateSecret(ctxT(t), &secretsmanager.CreateSecretInput{Name: aws.String("red/app"), SecretString: aws.String("r"),
		Tags: []smtypes.Tag{{Key: aws.String("team"), Value: aws.String("red")}}})
	mustNoErr(t, err, "bob CreateSecret")
	_, err = bs.DeleteSecret(ctxT(t), &secretsmanager.DeleteSecretInput{SecretId: aws.String("red/app")})
	wantAPIError(t, err, "AccessDeniedException", "secretsmanager:DeleteSecret on resource: red/app with an explicit deny in an identity-based policy")

	// A resource policy lets bob read alice's secret without any identity
	// policy allowing it (same account).
	rp := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::` + strictAccount + `:role/bob"},"Action":"secretsmanager:GetSecretValue","Resource":"*"}]}`
	_, err = as.PutResourcePolicy(ctxT(t), &secretsmanager.PutResourcePolicyInput{SecretId: aws.String("blue/db"), ResourcePolicy: aws.String(rp)})
	mustNoErr(t, err, "PutResourcePolicy")
	if got := secretValue(t, bs, "blue/db"); got != "pw" {
		t.Fatalf("bob GetSecretValue through the resource policy = %q", got)
	}
}

// TestStrictSecretUnderCustomerKey checks that a secret under a customer
// managed key also needs that key, through Secrets Manager: a principal
// allowed kms:GenerateDataKey and kms:Decrypt only via the service uses the
// secret (and cannot use the key directly); one allowed only Secrets
// Manager uses secrets under the AWS managed key but not under this one.
func TestStrictSecretUnderCustomerKey(t *testing.T) {
	srv := startStrict(t, strictCredentials)
	root := kmsFor(srv, "AKIAROOT000000000001", "root-secret")
	key := createKey(t, root, nil)
	other := createKey(t, root, nil)
	svc, smonly := smFor(srv, "AKIASVC000000000001", "svc-secret"), smFor(srv, "AKIASMONLY00000001", "smonly-secret")

	_, err := svc.CreateSecret(ctxT(t), &secretsmanager.CreateSecretInput{Name: aws.String("cmk"), SecretString: aws.String("v1"), KmsKeyId: key.Arn})
	mustNoErr(t, err, "svc CreateSecret under the key")
	if got := secretValue(t, svc, "cmk"); got != "v1" {
		t.Fatalf("svc GetSecretValue = %q", got)
	}
	_, err = svc.UpdateSecret(ctxT(t), &secretsmanager.UpdateSecretInput{SecretId: aws.String("cmk"), KmsKeyId: other.KeyId})
	mustNoErr(t, err, "svc UpdateSecret to another key")
	if got := secretValue(t, svc, "cmk"); got != "v1" {
		t.Fatalf("svc GetSecretValue after the key change = %q", got)
	}
	_, err = kmsFor(srv, "AKIASVC000000000001", "svc-secret").GenerateDataKey(ctxT(t), &kms.GenerateDataKeyInput{KeyId: key.KeyId, NumberOfBytes: aws.Int32(32)})
	wantAPIError(t, err, "AccessDeniedException", "user/svc is not authorized to perform: kms:GenerateDataKey on resource: "+aws.ToString(key.Arn)+" because no identity-based policy allows")

	_, err = smonly.GetSecretValue(ctxT(t), &secretsmanager.GetSecretValueInput{SecretId: aws.String("cmk")})
	wantAPIError(t, err, "AccessDeniedException", "Access to KMS is not allowed")
	_, err = smonly.CreateSecret(ctxT(t), &secretsmanager.CreateSecretInput{Name: aws.String("cmk2"), SecretString: aws.String("x"), KmsKeyId: key.Arn})
	wantAPIError(t, err, "AccessDeniedException", "Access to KMS is not allowed")
	_, err = svc.DescribeSecret(ctxT(t), &secretsmanager.DescribeSecretInput{SecretId: aws.String("cmk2")})
	wantAPIError(t, err, "ResourceNotFoundException", "") // the refused CreateSecret left nothing
	_, err = smonly.CreateSecret(ctxT(t), &secretsmanager.CreateSecretInput{Name: aws.String("default"), SecretString: aws.String("d")})
	mustNoErr(t, err, "smonly CreateSecret under the AWS managed key")
	if got := secretValue(t, smonly, "default"); got != "d" {
		t.Fatalf("smonly GetSecretValue = %q", got)
	}
}

// TestStrictGrantsToPrincipals grants a principal without any policy the use
// of a key, and lets it retire its own grant.
func TestStrictGrantsToPrincipals(t *testing.T) {
	srv := startStrict(t, strictCredentials)
	root, nobody := kmsFor(srv, "AKIAROOT000000000001", "root-secret"), kmsFor(srv, "AKIANOBODY000000001", "nobody-secret")
	key := createKey(t, root, nil)
	_, err := nobody.GenerateDataKey(ctxT(t), &kms.GenerateDataKeyInput{KeyId: key.KeyId, NumberOfBytes: aws.Int32(16)})
	wantAPIError(t, err, "AccessDeniedException", "kms:GenerateDataKey")
	g, err := root.CreateGrant(ctxT(t), &kms.CreateGrantInput{KeyId: key.KeyId,
		GranteePrincipal: aws.String("arn:aws:iam::" + strictAccount + ":user/nobody"),
		Operations:       []kmstypes.GrantOperation{kmstypes.GrantOperationGenerateDataKey, kmstypes.GrantOperationRetireGrant}})
	mustNoErr(t, err, "CreateGrant")
	_, err = nobody.GenerateDataKey(ctxT(t), &kms.GenerateDataKeyInput{KeyId: key.KeyId, NumberOfBytes: aws.Int32(16)})
	mustNoErr(t, err, "GenerateDataKey through the grant")
	_, err = nobody.Encrypt(ctxT(t), &kms.EncryptInput{KeyId: key.KeyId, Plaintext: []byte("x")})
	wantAPIError(t, err, "AccessDeniedException", "kms:Encrypt")
	_, err = nobody.RetireGrant(ctxT(t), &kms.RetireGrantInput{KeyId: key.Arn, GrantId: g.GrantId})
	mustNoErr(t, err, "the grantee retires its grant")
	_, err = nobody.GenerateDataKey(ctxT(t), &kms.GenerateDataKeyInput{KeyId: key.KeyId, NumberOfBytes: aws.Int32(16)})
	wantAPIError(t, err, "AccessDeniedException", "kms:GenerateDataKey")
}

// TestStrictEveryOperationDenies calls every KMS, Secrets Manager and
// CloudTrail operation as a principal without any policy, on resources that
// exist, and checks that each is refused with AccessDeniedException and
// changes nothing. Operations Keyfort does not implement yet must answer
// NotImplementedException (CloudTrail's, its UnsupportedOperationException);
// when one is built it must be added here.
func TestStrictEveryOperationDenies(t *testing.T) {
	srv := startStrict(t, strictCredentials)
	root, nobody := kmsFor(srv, "AKIAROOT000000000001", "root-secret"), kmsFor(srv, "AKIANOBODY000000001", "nobody-secret")
	rootSM, nobodySM := smFor(srv, "AKIAROOT000000000001", "root-secret"), smFor(srv, "AKIANOBODY000000001", "nobody-secret")
	key := createKey(t, root, &kms.CreateKeyInput{Tags: teamTag("blue")})
	other := createKey(t, root, nil)
	_, err := root.CreateAlias(ctxT(t), &kms.CreateAliasInput{AliasName: aws.String("alias/app"), TargetKeyId: key.KeyId})
	mustNoErr(t, err, "CreateAlias")
	ct, err := root.Encrypt(ctxT(t), &kms.EncryptInput{KeyId: key.KeyId, Plaintext: []byte("x")})
	mustNoErr(t, err, "Encrypt")
	grant, err := root.CreateGrant(ctxT(t), &kms.CreateGrantInput{KeyId: key.KeyId, GranteePrincipal: aws.String("arn:aws:iam::" + strictAccount + ":user/alice"),
		Operations: []kmstypes.GrantOperation{kmstypes.GrantOperationDecrypt}})
	mustNoErr(t, err, "CreateGrant")
	hmacKey := createKey(t, root, &kms.CreateKeyInput{KeySpec: kmstypes.KeySpecHmac256, KeyUsage: kmstypes.KeyUsageTypeGenerateVerifyMac})
	signKey := createKey(t, root, &kms.CreateKeyInput{KeySpec: kmstypes.KeySpecEccNistP256, KeyUsage: kmstypes.KeyUsageTypeSignVerify})
	sig, err := root.Sign(ctxT(t), &kms.SignInput{KeyId: signKey.KeyId, Message: []byte("m"), SigningAlgorithm: kmstypes.SigningAlgorithmSpecEcdsaSha256})
	mustNoErr(t, err, "Sign")
	agreeKey := createKey(t, root, &kms.CreateKeyInput{KeySpec: kmstypes.KeySpecEccNistP256, KeyUsage: kmstypes.KeyUsageTypeKeyAgreement})
	agreePub, err := root.GetPublicKey(ctxT(t), &kms.GetPublicKeyInput{KeyId: agreeKey.KeyId})
	mustNoErr(t, err, "GetPublicKey")
	mac, err := root.GenerateMac(ctxT(t), &kms.GenerateMacInput{KeyId: hmacKey.KeyId, Message: []byte("m"), MacAlgorithm: kmstypes.MacAlgorithmSpecHmacSha256})
	mustNoErr(t, err, "GenerateMac")
	sec := createSecret(t, rootSM, "app/db", "v")
	_, err = rootSM.PutResourcePolicy(ctxT(t), &secretsmanager.PutResourcePolicyInput{SecretId: sec.ARN,
		ResourcePolicy: aws.String(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::` + strictAccount + `:user/alice"},"Action":"secretsmanager:GetSecretValue","Resource":"*"}]}`)})
	mustNoErr(t, err, "PutResourcePolicy")
	vid := aws.ToString(sec.VersionId)
	lambda := aws.String("arn:aws:lambda:us-east-1:" + strictAccount + ":function:rotate")

	k, kid, karn := key.KeyId, aws.ToString(key.KeyId), key.Arn
	kmsCalls := map[string]func() error{
		"CreateKey":   func() error { _, err := nobody.CreateKey(ctxT(t), &kms.CreateKeyInput{}); return err },
		"DescribeKey": func() error { _, err := nobody.DescribeKey(ctxT(t), &kms.DescribeKeyInput{KeyId: k}); return err },
		"ListKeys":    func() error { _, err := nobody.ListKeys(ctxT(t), &kms.ListKeysInput{}); return err },
		"EnableKey":   func() error { _, err := nobody.EnableKey(ctxT(t), &kms.EnableKeyInput{KeyId: k}); return err },
		"DisableKey":  func() error { _, err := nobody.DisableKey(ctxT(t), &kms.DisableKeyInput{KeyId: k}); return err },
		"ScheduleKeyDeletion": func() error {
			_, err := nobody.ScheduleKeyDeletion(ctxT(t), &kms.ScheduleKeyDeletionInput{KeyId: k})
			return err
		},
		"CancelKeyDeletion": func() error {
			_, err := nobody.CancelKeyDeletion(ctxT(t), &kms.CancelKeyDeletionInput{KeyId: k})
			return err
		},
		"ReplicateKey": func() error {
			_, err := nobody.ReplicateKey(ctxT(t), &kms.ReplicateKeyInput{KeyId: k, ReplicaRegion: aws.String("eu-west-1")})
			return err
		},
		"UpdatePrimaryRegion": func() error {
			_, err := nobody.UpdatePrimaryRegion(ctxT(t), &kms.UpdatePrimaryRegionInput{KeyId: k, PrimaryRegion: aws.String("eu-west-1")})
			return err
		},
		"UpdateKeyDescription": func() error {
			_, err := nobody.UpdateKeyDescription(ctxT(t), &kms.UpdateKeyDescriptionInput{KeyId: k, Description: aws.String("x")})
			return err
		},
		"CreateAlias": func() error {
			_, err := nobody.CreateAlias(ctxT(t), &kms.CreateAliasInput{AliasName: aws.String("alias/new"), TargetKeyId: k})
			return err
		},
		"UpdateAlias": func() error {
			_, err := nobody.UpdateAlias(ctxT(t), &kms.UpdateAliasInput{AliasName: aws.String("alias/app"), TargetKeyId: other.KeyId})
			return err
		},
		"DeleteAlias": func() error {
			_, err := nobody.DeleteAlias(ctxT(t), &kms.DeleteAliasInput{AliasName: aws.String("alias/app")})
			return err
		},
		"ListAliases": func() error { _, err := nobody.ListAliases(ctxT(t), &kms.ListAliasesInput{}); return err },
		"GetParametersForImport": func() error {
			_, err := nobody.GetParametersForImport(ctxT(t), &kms.GetParametersForImportInput{KeyId: k,
				WrappingAlgorithm: kmstypes.AlgorithmSpecRsaesOaepSha256, WrappingKeySpec: kmstypes.WrappingKeySpecRsa2048})
			return err
		},
		"ImportKeyMaterial": func() error {
			_, err := nobody.ImportKeyMaterial(ctxT(t), &kms.ImportKeyMaterialInput{KeyId: k, ImportToken: []byte("t"), EncryptedKeyMaterial: []byte("m"),
				ExpirationModel: kmstypes.ExpirationModelTypeKeyMaterialDoesNotExpire})
			return err
		},
		"DeleteImportedKeyMaterial": func() error {
			_, err := nobody.DeleteImportedKeyMaterial(ctxT(t), &kms.DeleteImportedKeyMaterialInput{KeyId: k})
			return err
		},
		"DescribeCustomKeyStores": func() error {
			_, err := nobody.DescribeCustomKeyStores(ctxT(t), &kms.DescribeCustomKeyStoresInput{})
			return err
		},
		"ConnectCustomKeyStore": func() error {
			_, err := nobody.ConnectCustomKeyStore(ctxT(t), &kms.ConnectCustomKeyStoreInput{CustomKeyStoreId: aws.String("cks-1234567890abcdef0")})
			return err
		},
		"DisconnectCustomKeyStore": func() error {
			_, err := nobody.DisconnectCustomKeyStore(ctxT(t), &kms.DisconnectCustomKeyStoreInput{CustomKeyStoreId: aws.String("cks-1234567890abcdef0")})
			return err
		},
		"UpdateCustomKeyStore": func() error {
			_, err := nobody.UpdateCustomKeyStore(ctxT(t), &kms.UpdateCustomKeyStoreInput{CustomKeyStoreId: aws.String("cks-1234567890abcdef0"),
				NewCustomKeyStoreName: aws.String("renamed")})
			return err
		},
		"DeleteCustomKeyStore": func() error {
			_, err := nobody.DeleteCustomKeyStore(ctxT(t), &kms.DeleteCustomKeyStoreInput{CustomKeyStoreId: aws.String("cks-1234567890abcdef0")})
			return err
		},
		"CreateCustomKeyStore": func() error {
			_, err := nobody.CreateCustomKeyStore(ctxT(t), &kms.CreateCustomKeyStoreInput{CustomKeyStoreName: aws.String("xks"),
				CustomKeyStoreType: kmstypes.CustomKeyStoreTypeExternalKeyStore, XksProxyConnectivity: kmstypes.XksProxyConnectivityTypePublicEndpoint,
				XksProxyUriEndpoint: aws.String("https://xks.example.com"), XksProxyUriPath: aws.String("/kms/xks/v1"),
				XksProxyAuthenticationCredential: &kmstypes.XksProxyAuthenticationCredentialType{AccessKeyId: aws.String("ABCDEFGHIJKLMNOPQRST"), RawSecretAccessKey: aws.String("sssssssssssssssssssssssssssssssssssssssssss")}})
			return err
		},
		"TagResource": func() error {
			_, err := nobody.TagResource(ctxT(t), &kms.TagResourceInput{KeyId: k, Tags: teamTag("red")})
			return err
		},
		"UntagResource": func() error {
			_, err := nobody.UntagResource(ctxT(t), &kms.UntagResourceInput{KeyId: k, TagKeys: []string{"team"}})
			return err
		},
		"ListResourceTags": func() error {
			_, err := nobody.ListResourceTags(ctxT(t), &kms.ListResourceTagsInput{KeyId: k})
			return err
		},
		"Encrypt": func() error {
			_, err := nobody.Encrypt(ctxT(t), &kms.EncryptInput{KeyId: k, Plaintext: []byte("x")})
			return err
		},
		"Decrypt": func() error {
			_, err := nobody.Decrypt(ctxT(t), &kms.DecryptInput{CiphertextBlob: ct.CiphertextBlob})
			return err
		},
		"ReEncrypt": func() error {
			_, err := nobody.ReEncrypt(ctxT(t), &kms.ReEncryptInput{CiphertextBlob: ct.CiphertextBlob, DestinationKeyId: k})
			return err
		},
		"GenerateDataKey": func() error {
			_, err := nobody.GenerateDataKey(ctxT(t), &kms.GenerateDataKeyInput{KeyId: k, NumberOfBytes: aws.Int32(16)})
			return err
		},
		"GenerateDataKeyWithoutPlaintext": func() error {
			_, err := nobody.GenerateDataKeyWithoutPlaintext(ctxT(t), &kms.GenerateDataKeyWithoutPlaintextInput{KeyId: k, NumberOfBytes: aws.Int32(16)})
			return err
		},
		"GenerateRandom": func() error {
			_, err := nobody.GenerateRandom(ctxT(t), &kms.GenerateRandomInput{NumberOfBytes: aws.Int32(8)})
			return err
		},
		"EnableKeyRotation": func() error {
			_, err := nobody.EnableKeyRotation(ctxT(t), &kms.EnableKeyRotationInput{KeyId: k})
			return err
		},
		"DisableKeyRotation": func() error {
			_, err := nobody.DisableKeyRotation(ctxT(t), &kms.DisableKeyRotationInput{KeyId: k})
			return err
		},
		"GetKeyRotationStatus": func() error {
			_, err := nobody.GetKeyRotationStatus(ctxT(t), &kms.GetKeyRotationStatusInput{KeyId: k})
			return err
		},
		"GetKeyLastUsage": func() error {
			_, err := nobody.GetKeyLastUsage(ctxT(t), &kms.GetKeyLastUsageInput{KeyId: k})
			return err
		},
		"RotateKeyOnDemand": func() error {
			_, err := nobody.RotateKeyOnDemand(ctxT(t), &kms.RotateKeyOnDemandInput{KeyId: k})
			return err
		},
		"ListKeyRotations": func() error {
			_, err := nobody.ListKeyRotations(ctxT(t), &kms.ListKeyRotationsInput{KeyId: k})
			return err
		},
		"GetKeyPolicy": func() error { _, err := nobody.GetKeyPolicy(ctxT(t), &kms.GetKeyPolicyInput{KeyId: k}); return err },
		"PutKeyPolicy": func() error {
			_, err := nobody.PutKeyPolicy(ctxT(t), &kms.PutKeyPolicyInput{KeyId: k, Policy: aws.String(`{"Statement":[{"Effect":"Allow","Principal":"*","Action":"kms:*","Resource":"*"}]}`)})
			return err
		},
		"ListKeyPolicies": func() error {
			_, err := nobody.ListKeyPolicies(ctxT(t), &kms.ListKeyPoliciesInput{KeyId: k})
			return err
		},
		"CreateGrant": func() error {
			_, err := nobody.CreateGrant(ctxT(t), &kms.CreateGrantInput{KeyId: k, GranteePrincipal: aws.String("arn:aws:iam::" + strictAccount + ":user/nobody"),
				Operations: []kmstypes.GrantOperation{kmstypes.GrantOperationEncrypt}})
			return err
		},
		"ListGrants": func() error { _, err := nobody.ListGrants(ctxT(t), &kms.ListGrantsInput{KeyId: k}); return err },
		"ListRetirableGrants": func() error {
			_, err := nobody.ListRetirableGrants(ctxT(t), &kms.ListRetirableGrantsInput{RetiringPrincipal: aws.String("arn:aws:iam::" + strictAccount + ":user/alice")})
			return err
		},
		"RetireGrant": func() error {
			_, err := nobody.RetireGrant(ctxT(t), &kms.RetireGrantInput{KeyId: karn, GrantId: grant.GrantId})
			return err
		},
		"GenerateMac": func() error {
			_, err := nobody.GenerateMac(ctxT(t), &kms.GenerateMacInput{KeyId: hmacKey.KeyId, Message: []byte("m"), MacAlgorithm: kmstypes.MacAlgorithmSpecHmacSha256})
			return err
		},
		"Sign": func() error {
			_, err := nobody.Sign(ctxT(t), &kms.SignInput{KeyId: signKey.KeyId, Message: []byte("m"), SigningAlgorithm: kmstypes.SigningAlgorithmSpecEcdsaSha256})
			return err
		},
		"Verify": func() error {
			_, err := nobody.Verify(ctxT(t), &kms.VerifyInput{KeyId: signKey.KeyId, Message: []byte("m"), Signature: sig.Signature, SigningAlgorithm: kmstypes.SigningAlgorithmSpecEcdsaSha256})
			return err
		},
		"GetPublicKey": func() error {
			_, err := nobody.GetPublicKey(ctxT(t), &kms.GetPublicKeyInput{KeyId: signKey.KeyId})
			return err
		},
		"VerifyMac": func() error {
			_, err := nobody.VerifyMac(ctxT(t), &kms.VerifyMacInput{KeyId: hmacKey.KeyId, Message: []byte("m"), Mac: mac.Mac, MacAlgorithm: kmstypes.MacAlgorithmSpecHmacSha256})
			return err
		},
		"DeriveSharedSecret": func() error {
			_, err := nobody.DeriveSharedSecret(ctxT(t), &kms.DeriveSharedSecretInput{KeyId: agreeKey.KeyId, KeyAgreementAlgorithm: kmstypes.KeyAgreementAlgorithmSpecEcdh, PublicKey: agreePub.PublicKey})
			return err
		},
		"GenerateDataKeyPair": func() error {
			_, err := nobody.GenerateDataKeyPair(ctxT(t), &kms.GenerateDataKeyPairInput{KeyId: k, KeyPairSpec: kmstypes.DataKeyPairSpecEccNistP256})
			return err
		},
		"GenerateDataKeyPairWithoutPlaintext": func() error {
			_, err := nobody.GenerateDataKeyPairWithoutPlaintext(ctxT(t), &kms.GenerateDataKeyPairWithoutPlaintextInput{KeyId: k, KeyPairSpec: kmstypes.DataKeyPairSpecEccNistP256})
			return err
		},
		"RevokeGrant": func() error {
			_, err := nobody.RevokeGrant(ctxT(t), &kms.RevokeGrantInput{KeyId: k, GrantId: grant.GrantId})
			return err
		},
	}
	id := aws.String("app/db")
	smCalls := map[string]func() error{
		"BatchGetSecretValue": func() error {
			_, err := nobodySM.BatchGetSecretValue(ctxT(t), &secretsmanager.BatchGetSecretValueInput{SecretIdList: []string{"app/db"}})
			return err
		},
		"CancelRotateSecret": func() error {
			_, err := nobodySM.CancelRotateSecret(ctxT(t), &secretsmanager.CancelRotateSecretInput{SecretId: id})
			return err
		},
		"CreateSecret": func() error {
			_, err := nobodySM.CreateSecret(ctxT(t), &secretsmanager.CreateSecretInput{Name: aws.String("new")})
			return err
		},
		"DeleteResourcePolicy": func() error {
			_, err := nobodySM.DeleteResourcePolicy(ctxT(t), &secretsmanager.DeleteResourcePolicyInput{SecretId: id})
			return err
		},
		"DeleteSecret": func() error {
			_, err := nobodySM.DeleteSecret(ctxT(t), &secretsmanager.DeleteSecretInput{SecretId: id})
			return err
		},
		"DescribeSecret": func() error {
			_, err := nobodySM.DescribeSecret(ctxT(t), &secretsmanager.DescribeSecretInput{SecretId: id})
			return err
		},
		"GetRandomPassword": func() error {
			_, err := nobodySM.GetRandomPassword(ctxT(t), &secretsmanager.GetRandomPasswordInput{})
			return err
		},
		"GetResourcePolicy": func() error {
			_, err := nobodySM.GetResourcePolicy(ctxT(t), &secretsmanager.GetResourcePolicyInput{SecretId: id})
			return err
		},
		"GetSecretValue": func() error {
			_, err := nobodySM.GetSecretValue(ctxT(t), &secretsmanager.GetSecretValueInput{SecretId: id})
			return err
		},
		"ListSecretVersionIds": func() error {
			_, err := nobodySM.ListSecretVersionIds(ctxT(t), &secretsmanager.ListSecretVersionIdsInput{SecretId: id})
			return err
		},
		"ListSecrets": func() error { _, err := nobodySM.ListSecrets(ctxT(t), &secretsmanager.ListSecretsInput{}); return err },
		"PutResourcePolicy": func() error {
			_, err := nobodySM.PutResourcePolicy(ctxT(t), &secretsmanager.PutResourcePolicyInput{SecretId: id,
				ResourcePolicy: aws.String(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"111122223333"},"Action":"secretsmanager:*","Resource":"*"}]}`)})
			return err
		},
		"PutSecretValue": func() error {
			_, err := nobodySM.PutSecretValue(ctxT(t), &secretsmanager.PutSecretValueInput{SecretId: id, SecretString: aws.String("hacked")})
			return err
		},
		"RemoveRegionsFromReplication": func() error {
			_, err := nobodySM.RemoveRegionsFromReplication(ctxT(t), &secretsmanager.RemoveRegionsFromReplicationInput{SecretId: id, RemoveReplicaRegions: []string{"eu-west-1"}})
			return err
		},
		"ReplicateSecretToRegions": func() error {
			_, err := nobodySM.ReplicateSecretToRegions(ctxT(t), &secretsmanager.ReplicateSecretToRegionsInput{SecretId: id,
				AddReplicaRegions: []smtypes.ReplicaRegionType{{Region: aws.String("eu-west-1")}}})
			return err
		},
		"RestoreSecret": func() error {
			_, err := nobodySM.RestoreSecret(ctxT(t), &secretsmanager.RestoreSecretInput{SecretId: id})
			return err
		},
		"RotateSecret": func() error {
			_, err := nobodySM.RotateSecret(ctxT(t), &secretsmanager.RotateSecretInput{SecretId: id, RotationLambdaARN: lambda})
			return err
		},
		"StopReplicationToReplica": func() error {
			_, err := nobodySM.StopReplicationToReplica(ctxT(t), &secretsmanager.StopReplicationToReplicaInput{SecretId: id})
			return err
		},
		"TagResource": func() error {
			_, err := nobodySM.TagResource(ctxT(t), &secretsmanager.TagResourceInput{SecretId: id, Tags: []smtypes.Tag{{Key: aws.String("a"), Value: aws.String("b")}}})
			return err
		},
		"UntagResource": func() error {
			_, err := nobodySM.UntagResource(ctxT(t), &secretsmanager.UntagResourceInput{SecretId: id, TagKeys: []string{"a"}})
			return err
		},
		"UpdateSecret": func() error {
			_, err := nobodySM.UpdateSecret(ctxT(t), &secretsmanager.UpdateSecretInput{SecretId: id, Description: aws.String("x")})
			return err
		},
		"UpdateSecretVersionStage": func() error {
			_, err := nobodySM.UpdateSecretVersionStage(ctxT(t), &secretsmanager.UpdateSecretVersionStageInput{SecretId: id, VersionStage: aws.String("X"), MoveToVersionId: aws.String(vid)})
			return err
		},
		"ValidateResourcePolicy": func() error {
			_, err := nobodySM.ValidateResourcePolicy(ctxT(t), &secretsmanager.ValidateResourcePolicyInput{SecretId: id,
				ResourcePolicy: aws.String(`{"Version":"2012-10-17","Statement":[]}`)})
			return err
		},
	}

	ctCalls := map[string]func() error{
		"LookupEvents": func() error {
			_, err := ctFor(srv, "AKIANOBODY000000001", "nobody-secret").LookupEvents(ctxT(t), &cloudtrail.LookupEventsInput{})
			return err
		},
	}
	_, err = ctFor(srv, "AKIAROOT000000000001", "root-secret").LookupEvents(ctxT(t), &cloudtrail.LookupEventsInput{})
	mustNoErr(t, err, "root LookupEvents")

	// The deny cases are exactly the implemented operations.
	for _, tc := range []struct {
		service string
		ops     []operation.Operation
		calls   map[string]func() error
	}{
		{"kms", kmsapi.Operations(&kmssvc.Service{}), kmsCalls},
		{"secretsmanager", smapi.Operations(&smsvc.Service{}), smCalls},
		{"cloudtrail", ctsvc.Operations(&ctsvc.Service{}), ctCalls},
	} {
		implemented := implementedOps(tc.ops)
		var cases []string
		for op := range tc.calls {
			cases = append(cases, op)
		}
		slices.Sort(cases)
		if !slices.Equal(implemented, cases) {
			t.Fatalf("%s: implemented operations %v, deny cases %v: every implemented operation needs one", tc.service, implemented, cases)
		}
		for _, op := range cases {
			t.Run(tc.service+"/"+op, func(t *testing.T) {
				wantAPIError(t, tc.calls[op](), "AccessDeniedException", "User: arn:aws:iam::"+strictAccount+":user/nobody is not authorized to perform: ")
			})
		}
	}

	// A refused DescribeKey of a predefined AWS alias does not create the
	// AWS managed key.
	_, err = nobody.DescribeKey(ctxT(t), &kms.DescribeKeyInput{KeyId: aws.String("alias/aws/ebs")})
	wantAPIError(t, err, "AccessDeniedException", "kms:DescribeKey")
	aliases, err := root.ListAliases(ctxT(t), &kms.ListAliasesInput{})
	mustNoErr(t, err, "ListAliases")
	for _, al := range aliases.Aliases {
		if aws.ToString(al.AliasName) == "alias/aws/ebs" && al.TargetKeyId != nil {
			t.Fatalf("a refused DescribeKey created the AWS managed key %s", aws.ToString(al.TargetKeyId))
		}
	}

	// Nothing changed.
	d, err := root.DescribeKey(ctxT(t), &kms.DescribeKeyInput{KeyId: aws.String("alias/app")})
	mustNoErr(t, err, "DescribeKey")
	if aws.ToString(d.KeyMetadata.KeyId) != kid || d.KeyMetadata.KeyState != kmstypes.KeyStateEnabled || aws.ToString(d.KeyMetadata.Description) != "" {
		t.Fatalf("key after the refused calls = %+v", d.KeyMetadata)
	}
	tags, err := root.ListResourceTags(ctxT(t), &kms.ListResourceTagsInput{KeyId: k})
	mustNoErr(t, err, "ListResourceTags")
	if len(tags.Tags) != 1 || aws.ToString(tags.Tags[0].TagValue) != "blue" {
		t.Fatalf("tags after the refused calls = %+v", tags.Tags)
	}
	grants, err := root.ListGrants(ctxT(t), &kms.ListGrantsInput{KeyId: k})
	mustNoErr(t, err, "ListGrants")
	if len(grants.Grants) != 1 {
		t.Fatalf("%d grants after the refused calls", len(grants.Grants))
	}
	if got := secretValue(t, rootSM, "app/db"); got != "v" {
		t.Fatalf("secret after the refused calls = %q", got)
	}
	ds, err := rootSM.DescribeSecret(ctxT(t), &secretsmanager.DescribeSecretInput{SecretId: id})
	mustNoErr(t, err, "DescribeSecret")
	if ds.DeletedDate != nil || ds.Description != nil || len(ds.Tags) != 0 || ds.RotationEnabled != nil && *ds.RotationEnabled {
		t.Fatalf("secret metadata after the refused calls = %+v", ds)
	}
}

// implementedOps returns, sorted, the operations of a table bound to a zero
// service value that answer neither NotImplementedException nor CloudTrail's
// UnsupportedOperationException for the operations Keyfort does not serve:
// an implemented method fails otherwise (or panics) without a caller in its
// context.
func implementedOps(ops []operation.Operation) []string {
	var out []string
	for _, op := range ops {
		func() {
			defer func() {
				if recover() != nil {
					out = append(out, op.Name)
				}
			}()
			_, err := op.Invoke(context.Background(), op.NewInput())
			if e, ok := awserr.As(err); !ok || e.Code != "NotImplementedException" && *e != *ctsvc.Unsupported(op.Name) {
				out = append(out, op.Name)
			}
		}()
	}
	slices.Sort(out)
	return out
}
