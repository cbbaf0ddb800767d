package e2e

import (
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"

	"github.com/keyfort/keyfort/internal/keyfortest"
	"github.com/keyfort/keyfort/internal/storage/postgres/pgtest"
)

// Two accounts in development auth: a 12-digit access key is the root of
// that account.
const (
	acctA = "111111111111"
	acctB = "222222222222"
)

var grantIDRE = regexp.MustCompile(`^[0-9a-f]{64}$`)

// TestGrants drives the grant operations across two accounts: a grant lets
// another account use a key its policy does not open, under its
// constraint, from the moment CreateGrant answers until it is retired or
// revoked.
func TestGrants(t *testing.T) { testGrants(t) }

// TestGrantsOnPostgres runs TestGrants on the PostgreSQL store, and checks
// that deleting a key deletes its grants.
func TestGrantsOnPostgres(t *testing.T) {
	dsn := pgtest.DSN(t)
	testGrants(t, keyfortest.WithStore(dsn))
	clock := keyfortest.NewClock(time.Now())
	srv := keyfortest.Start(t, keyfortest.WithStore(dsn), keyfortest.WithClock(clock))
	a, b := srv.KMSAs(acctA, "us-east-1"), srv.KMSAs(acctB, "us-east-1")
	key := createKey(t, a, nil)
	_, err := a.CreateGrant(ctxT(t), &kms.CreateGrantInput{KeyId: key.KeyId, GranteePrincipal: aws.String("arn:aws:iam::" + acctB + ":root"),
		RetiringPrincipal: aws.String("arn:aws:iam::" + acctB + ":root"), Operations: []types.GrantOperation{types.GrantOperationDecrypt}})
	mustNoErr(t, err, "CreateGrant")
	_, err = a.ScheduleKeyDeletion(ctxT(t), &kms.ScheduleKeyDeletionInput{KeyId: key.KeyId, PendingWindowInDays: aws.Int32(7)})
	mustNoErr(t, err, "ScheduleKeyDeletion")
	clock.Advance(8 * 24 * time.Hour)
	srv.RunJobs(t)
	ret, err := b.ListRetirableGrants(ctxT(t), &kms.ListRetirableGrantsInput{RetiringPrincipal: aws.String("arn:aws:iam::" + acctB + ":root")})
	mustNoErr(t, err, "ListRetirableGrants")
	if len(ret.Grants) != 0 {
		t.Fatalf("the deleted key's grants remain: %+v", ret.Grants)
	}
}

func testGrants(t *testing.T, opts ...keyfortest.Option) {
	srv := keyfortest.Start(t, opts...)
	a, b := srv.KMSAs(acctA, "us-east-1"), srv.KMSAs(acctB, "us-east-1")
	key := createKey(t, a, nil)
	keyARN := aws.ToString(key.Arn)
	ec := map[string]string{"app": "billing"}

	// Without a grant the other account cannot use the key, and is not told
	// whether it exists.
	_, err := b.Encrypt(ctxT(t), &kms.EncryptInput{KeyId: key.Arn, Plaintext: []byte("x"), EncryptionContext: ec})
	wantAPIError(t, err, "AccessDeniedException", "User: arn:aws:iam::"+acctB+":root is not authorized to perform: kms:Encrypt on this resource because the resource does not exist in this Region")
	_, err = b.Encrypt(ctxT(t), &kms.EncryptInput{KeyId: aws.String("arn:aws:kms:us-east-1:" + acctA + ":key/00000000-0000-4000-8000-000000000000"), Plaintext: []byte("x")})
	wantAPIError(t, err, "AccessDeniedException", "on this resource because the resource does not exist in this Region")

	granted, err := a.CreateGrant(ctxT(t), &kms.CreateGrantInput{
		KeyId:             key.KeyId,
		GranteePrincipal:  aws.String("arn:aws:iam::" + acctB + ":root"),
		RetiringPrincipal: aws.String("arn:aws:iam::" + acctB + ":root"),
		Operations:        []types.GrantOperation{types.GrantOperationEncrypt, types.GrantOperationDecrypt, types.GrantOperationDescribeKey},
		Constraints:       &types.GrantConstraints{EncryptionContextSubset: ec},
		Name:              aws.String("billing-app"),
	})
	mustNoErr(t, err, "CreateGrant")
	if !grantIDRE.MatchString(aws.ToString(granted.GrantId)) || aws.ToString(granted.GrantToken) == "" {
		t.Fatalf("CreateGrant = %q / %q", aws.ToString(granted.GrantId), aws.ToString(granted.GrantToken))
	}

	// The grant works at once, within its operations and constraint.
	ct, err := b.Encrypt(ctxT(t), &kms.EncryptInput{KeyId: key.Arn, Plaintext: []byte("secret"), EncryptionContext: map[string]string{"app": "billing", "extra": "ok"}})
	mustNoErr(t, err, "Encrypt through the grant")
	pt, err := b.Decrypt(ctxT(t), &kms.DecryptInput{KeyId: key.Arn, CiphertextBlob: ct.CiphertextBlob, EncryptionContext: map[string]string{"app": "billing", "extra": "ok"}, GrantTokens: []string{aws.ToString(granted.GrantToken)}})
	mustNoErr(t, err, "Decrypt through the grant with its token")
	if string(pt.Plaintext) != "secret" {
		t.Fatalf("Decrypt = %q", pt.Plaintext)
	}
	_, err = b.Encrypt(ctxT(t), &kms.EncryptInput{KeyId: key.Arn, Plaintext: []byte("x"), EncryptionContext: map[string]string{"app": "payroll"}})
	wantAPIError(t, err, "AccessDeniedException", "kms:Encrypt")
	_, err = b.GenerateDataKey(ctxT(t), &kms.GenerateDataKeyInput{KeyId: key.Arn, KeySpec: types.DataKeySpecAes256, EncryptionContext: ec})
	wantAPIError(t, err, "AccessDeniedException", "kms:GenerateDataKey")
	d, err := b.DescribeKey(ctxT(t), &kms.DescribeKeyInput{KeyId: key.Arn})
	mustNoErr(t, err, "DescribeKey through the grant")
	if aws.ToString(d.KeyMetadata.Arn) != keyARN {
		t.Fatalf("DescribeKey = %s", aws.ToString(d.KeyMetadata.Arn))
	}
	// Management operations are not cross-account, whatever the grants.
	_, err = b.ScheduleKeyDeletion(ctxT(t), &kms.ScheduleKeyDeletionInput{KeyId: key.Arn})
	wantAPIError(t, err, "NotFoundException", "")

	// A retry with the same name and properties is the same grant.
	again, err := a.CreateGrant(ctxT(t), &kms.CreateGrantInput{
		KeyId:             key.Arn,
		GranteePrincipal:  aws.String("arn:aws:iam::" + acctB + ":root"),
		RetiringPrincipal: aws.String("arn:aws:iam::" + acctB + ":root"),
		Operations:        []types.GrantOperation{types.GrantOperationDescribeKey, types.GrantOperationDecrypt, types.GrantOperationEncrypt},
		Constraints:       &types.GrantConstraints{EncryptionContextSubset: ec},
		Name:              aws.String("billing-app"),
	})
	mustNoErr(t, err, "CreateGrant retry")
	if aws.ToString(again.GrantId) != aws.ToString(granted.GrantId) || aws.ToString(again.GrantToken) == aws.ToString(granted.GrantToken) {
		t.Fatalf("retry: grant %s token new=%v, want the same grant with a new token", aws.ToString(again.GrantId), aws.ToString(again.GrantToken) != aws.ToString(granted.GrantToken))
	}
	second, err := a.CreateGrant(ctxT(t), &kms.CreateGrantInput{
		KeyId:            key.KeyId,
		GranteePrincipal: aws.String("arn:aws:iam::" + acctA + ":role/ops"),
		Operations:       []types.GrantOperation{types.GrantOperationGenerateDataKey},
	})
	mustNoErr(t, err, "CreateGrant second")

	// ListGrants shows both, in AWS's form, and filters.
	list, err := a.ListGrants(ctxT(t), &kms.ListGrantsInput{KeyId: key.KeyId})
	mustNoErr(t, err, "ListGrants")
	if len(list.Grants) != 2 || list.Truncated {
		t.Fatalf("ListGrants = %d grants, truncated %v", len(list.Grants), list.Truncated)
	}
	var g types.GrantListEntry
	for _, e := range list.Grants {
		if aws.ToString(e.GrantId) == aws.ToString(granted.GrantId) {
			g = e
		}
	}
	if aws.ToString(g.KeyId) != keyARN || aws.ToString(g.Name) != "billing-app" || aws.ToString(g.IssuingAccount) != "arn:aws:iam::"+acctA+":root" ||
		aws.ToString(g.GranteePrincipal) != "arn:aws:iam::"+acctB+":root" || aws.ToString(g.RetiringPrincipal) != "arn:aws:iam::"+acctB+":root" ||
		len(g.Operations) != 3 || g.CreationDate == nil || g.Constraints == nil || g.Constraints.EncryptionContextSubset["app"] != "billing" {
		t.Fatalf("grant entry = %+v", g)
	}
	one, err := a.ListGrants(ctxT(t), &kms.ListGrantsInput{KeyId: key.KeyId, GranteePrincipal: aws.String("arn:aws:iam::" + acctA + ":role/ops")})
	mustNoErr(t, err, "ListGrants by grantee")
	if len(one.Grants) != 1 || aws.ToString(one.Grants[0].GrantId) != aws.ToString(second.GrantId) {
		t.Fatalf("ListGrants by grantee = %+v", one.Grants)
	}
	page, err := a.ListGrants(ctxT(t), &kms.ListGrantsInput{KeyId: key.KeyId, Limit: aws.Int32(1)})
	mustNoErr(t, err, "ListGrants page 1")
	if len(page.Grants) != 1 || !page.Truncated || page.NextMarker == nil {
		t.Fatalf("ListGrants page 1 = %d truncated %v", len(page.Grants), page.Truncated)
	}
	page2, err := a.ListGrants(ctxT(t), &kms.ListGrantsInput{KeyId: key.KeyId, Limit: aws.Int32(1), Marker: page.NextMarker})
	mustNoErr(t, err, "ListGrants page 2")
	if len(page2.Grants) != 1 || page2.Truncated || aws.ToString(page2.Grants[0].GrantId) == aws.ToString(page.Grants[0].GrantId) {
		t.Fatalf("ListGrants page 2 = %+v", page2)
	}
	_, err = a.ListGrants(ctxT(t), &kms.ListGrantsInput{KeyId: key.KeyId, GrantId: aws.String("not-a-grant")})
	wantAPIError(t, err, "InvalidGrantIdException", "")
	// The grantee's account lists what it may retire, on the other
	// account's key; another account may not list for it.
	ret, err := b.ListRetirableGrants(ctxT(t), &kms.ListRetirableGrantsInput{RetiringPrincipal: aws.String("arn:aws:iam::" + acctB + ":root")})
	mustNoErr(t, err, "ListRetirableGrants")
	if len(ret.Grants) != 1 || aws.ToString(ret.Grants[0].KeyId) != keyARN {
		t.Fatalf("ListRetirableGrants = %+v", ret.Grants)
	}
	_, err = a.ListRetirableGrants(ctxT(t), &kms.ListRetirableGrantsInput{RetiringPrincipal: aws.String("arn:aws:iam::" + acctB + ":root")})
	wantAPIError(t, err, "AccessDeniedException", "kms:ListRetirableGrants")

	// Grants and their tokens survive a restart.
	srv.Restart(t)
	a, b = srv.KMSAs(acctA, "us-east-1"), srv.KMSAs(acctB, "us-east-1")
	_, err = b.Encrypt(ctxT(t), &kms.EncryptInput{KeyId: key.Arn, Plaintext: []byte("x"), EncryptionContext: ec, GrantTokens: []string{aws.ToString(again.GrantToken)}})
	mustNoErr(t, err, "Encrypt through the grant after restart")

	// Bad tokens are refused, not ignored.
	_, err = b.Encrypt(ctxT(t), &kms.EncryptInput{KeyId: key.Arn, Plaintext: []byte("x"), EncryptionContext: ec, GrantTokens: []string{"AQpAnot-a-token"}})
	wantAPIError(t, err, "InvalidGrantTokenException", "")
	tooMany := make([]string, 11)
	for i := range tooMany {
		tooMany[i] = aws.ToString(granted.GrantToken)
	}
	_, err = b.Encrypt(ctxT(t), &kms.EncryptInput{KeyId: key.Arn, Plaintext: []byte("x"), EncryptionContext: ec, GrantTokens: tooMany})
	wantAPIError(t, err, "ValidationException", "grantTokens")

	// The retiring principal retires the grant with its token; the access
	// ends at once.
	_, err = b.RetireGrant(ctxT(t), &kms.RetireGrantInput{GrantToken: granted.GrantToken})
	mustNoErr(t, err, "RetireGrant")
	_, err = b.Encrypt(ctxT(t), &kms.EncryptInput{KeyId: key.Arn, Plaintext: []byte("x"), EncryptionContext: ec})
	wantAPIError(t, err, "AccessDeniedException", "kms:Encrypt")
	_, err = b.RetireGrant(ctxT(t), &kms.RetireGrantInput{GrantToken: granted.GrantToken})
	wantAPIError(t, err, "NotFoundException", "")

	// The key's account revokes the other grant.
	_, err = a.RevokeGrant(ctxT(t), &kms.RevokeGrantInput{KeyId: key.KeyId, GrantId: second.GrantId})
	mustNoErr(t, err, "RevokeGrant")
	_, err = a.RevokeGrant(ctxT(t), &kms.RevokeGrantInput{KeyId: key.KeyId, GrantId: second.GrantId})
	wantAPIError(t, err, "NotFoundException", "")
	_, err = a.RevokeGrant(ctxT(t), &kms.RevokeGrantInput{KeyId: key.KeyId, GrantId: aws.String("xyz")})
	wantAPIError(t, err, "InvalidGrantIdException", "")
	list, err = a.ListGrants(ctxT(t), &kms.ListGrantsInput{KeyId: key.KeyId})
	mustNoErr(t, err, "ListGrants after")
	if len(list.Grants) != 0 {
		t.Fatalf("ListGrants after retire and revoke = %d grants", len(list.Grants))
	}
}

// TestCreateGrantErrors checks CreateGrant's refusals.
func TestCreateGrantErrors(t *testing.T) {
	srv := keyfortest.Start(t)
	c := srv.KMS()
	key := createKey(t, c, nil)
	grantee := aws.String("arn:aws:iam::123456789012:user/alice")
	tests := []struct {
		name string
		in   *kms.CreateGrantInput
		code string
		msg  string
	}{
		{"only CreateGrant", &kms.CreateGrantInput{KeyId: key.KeyId, GranteePrincipal: grantee, Operations: []types.GrantOperation{types.GrantOperationCreateGrant}},
			"ValidationException", "Grants must not contain only the CreateGrant operation."},
		{"two constraints", &kms.CreateGrantInput{KeyId: key.KeyId, GranteePrincipal: grantee, Operations: []types.GrantOperation{types.GrantOperationDecrypt},
			Constraints: &types.GrantConstraints{EncryptionContextEquals: map[string]string{"a": "b"}, EncryptionContextSubset: map[string]string{"a": "b"}}},
			"ValidationException", "More than one constraint supplied"},
		{"sign on a symmetric key", &kms.CreateGrantInput{KeyId: key.KeyId, GranteePrincipal: grantee, Operations: []types.GrantOperation{types.GrantOperationSign}},
			"ValidationException", "cannot allow the Sign operation"},
		{"alias", &kms.CreateGrantInput{KeyId: aws.String("alias/x"), GranteePrincipal: grantee, Operations: []types.GrantOperation{types.GrantOperationDecrypt}},
			"InvalidArnException", "Key Aliases are not supported for this operation."},
		{"bad grantee", &kms.CreateGrantInput{KeyId: key.KeyId, GranteePrincipal: aws.String("alice"), Operations: []types.GrantOperation{types.GrantOperationDecrypt}},
			"InvalidArnException", ""},
		{"unknown key", &kms.CreateGrantInput{KeyId: aws.String("00000000-0000-4000-8000-000000000000"), GranteePrincipal: grantee, Operations: []types.GrantOperation{types.GrantOperationDecrypt}},
			"NotFoundException", "does not exist"},
		{"dry run", &kms.CreateGrantInput{KeyId: key.KeyId, GranteePrincipal: grantee, Operations: []types.GrantOperation{types.GrantOperationDecrypt}, DryRun: aws.Bool(true)},
			"DryRunOperationException", "The request would have succeeded, but the DryRun option is set."},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := c.CreateGrant(ctxT(t), tc.in)
			wantAPIError(t, err, tc.code, tc.msg)
		})
	}
	// A disabled key takes no grants; the dry run above created none.
	list, err := c.ListGrants(ctxT(t), &kms.ListGrantsInput{KeyId: key.KeyId})
	mustNoErr(t, err, "ListGrants")
	if len(list.Grants) != 0 {
		t.Fatalf("refused CreateGrant calls left %d grants", len(list.Grants))
	}
	_, err = c.DisableKey(ctxT(t), &kms.DisableKeyInput{KeyId: key.KeyId})
	mustNoErr(t, err, "DisableKey")
	_, err = c.CreateGrant(ctxT(t), &kms.CreateGrantInput{KeyId: key.KeyId, GranteePrincipal: grantee, Operations: []types.GrantOperation{types.GrantOperationDecrypt}})
	wantAPIError(t, err, "DisabledException", "is disabled.")
}

// TestKeyPolicyDecides shows key policies deciding for the account root in
// development auth: another account let in by the policy, an explicit
// deny, and condition keys.
func TestKeyPolicyDecides(t *testing.T) {
	srv := keyfortest.Start(t)
	a, b := srv.KMSAs(acctA, "us-east-1"), srv.KMSAs(acctB, "us-east-1")
	root := "arn:aws:iam::" + acctA + ":root"
	policy := `{"Version":"2012-10-17","Statement":[
	 {"Sid":"owner","Effect":"Allow","Principal":{"AWS":"` + root + `"},"Action":"kms:*","Resource":"*"},
	 {"Sid":"partner","Effect":"Allow","Principal":{"AWS":"` + acctB + `"},"Action":["kms:Encrypt","kms:DescribeKey"],"Resource":"*"},
	 {"Sid":"no decrypt without purpose","Effect":"Deny","Principal":"*","Action":"kms:Decrypt","Resource":"*",
	  "Condition":{"StringNotEquals":{"kms:EncryptionContext:purpose":"audit"}}},
	 {"Sid":"only from loopback","Effect":"Deny","Principal":"*","Action":"kms:GenerateDataKey*","Resource":"*",
	  "Condition":{"NotIpAddress":{"aws:SourceIp":"127.0.0.0/8"}}}
	]}`
	key := createKey(t, a, &kms.CreateKeyInput{Policy: aws.String(policy)})

	// The partner account uses the key by ARN, within the policy.
	ct, err := b.Encrypt(ctxT(t), &kms.EncryptInput{KeyId: key.Arn, Plaintext: []byte("x"), EncryptionContext: map[string]string{"purpose": "audit"}})
	mustNoErr(t, err, "partner Encrypt")
	_, err = b.Decrypt(ctxT(t), &kms.DecryptInput{KeyId: key.Arn, CiphertextBlob: ct.CiphertextBlob, EncryptionContext: map[string]string{"purpose": "audit"}})
	wantAPIError(t, err, "AccessDeniedException", "on this resource because the resource does not exist in this Region")
	_, err = b.Encrypt(ctxT(t), &kms.EncryptInput{KeyId: key.KeyId, Plaintext: []byte("x")})
	wantAPIError(t, err, "NotFoundException", "does not exist") // a key id is looked up in the caller's account

	// The explicit deny binds the owner too, unless the condition is met.
	_, err = a.Decrypt(ctxT(t), &kms.DecryptInput{CiphertextBlob: ct.CiphertextBlob, EncryptionContext: map[string]string{"purpose": "audit"}})
	mustNoErr(t, err, "owner Decrypt with the purpose")
	ct2, err := a.Encrypt(ctxT(t), &kms.EncryptInput{KeyId: key.KeyId, Plaintext: []byte("y")})
	mustNoErr(t, err, "owner Encrypt")
	_, err = a.Decrypt(ctxT(t), &kms.DecryptInput{CiphertextBlob: ct2.CiphertextBlob})
	wantAPIError(t, err, "AccessDeniedException",
		"User: "+root+" is not authorized to perform: kms:Decrypt on the resource associated with this ciphertext with an explicit deny in a resource-based policy")
	_, err = a.Decrypt(ctxT(t), &kms.DecryptInput{KeyId: key.Arn, CiphertextBlob: ct2.CiphertextBlob})
	wantAPIError(t, err, "AccessDeniedException",
		"User: "+root+" is not authorized to perform: kms:Decrypt on resource: "+aws.ToString(key.Arn)+" with an explicit deny in a resource-based policy")
	_, err = a.GenerateDataKey(ctxT(t), &kms.GenerateDataKeyInput{KeyId: key.KeyId, KeySpec: types.DataKeySpecAes256})
	mustNoErr(t, err, "GenerateDataKey from loopback")

	// Tightening the policy takes effect on the next request.
	tight := strings.Replace(policy, `"Action":["kms:Encrypt","kms:DescribeKey"]`, `"Action":["kms:DescribeKey"]`, 1)
	_, err = a.PutKeyPolicy(ctxT(t), &kms.PutKeyPolicyInput{KeyId: key.KeyId, Policy: aws.String(tight)})
	mustNoErr(t, err, "PutKeyPolicy")
	_, err = b.Encrypt(ctxT(t), &kms.EncryptInput{KeyId: key.Arn, Plaintext: []byte("x")})
	wantAPIError(t, err, "AccessDeniedException", "kms:Encrypt")
	_, err = b.DescribeKey(ctxT(t), &kms.DescribeKeyInput{KeyId: key.Arn})
	mustNoErr(t, err, "partner DescribeKey")

	// The lockout check is the caller's: a policy for the partner only is
	// refused for the owner.
	partnerOnly := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"` + acctB + `"},"Action":"kms:*","Resource":"*"}]}`
	_, err = a.PutKeyPolicy(ctxT(t), &kms.PutKeyPolicyInput{KeyId: key.KeyId, Policy: aws.String(partnerOnly)})
	wantAPIError(t, err, "MalformedPolicyDocumentException", "The new key policy will not allow you to update the key policy in the future.")
	_, err = a.CreateKey(ctxT(t), &kms.CreateKeyInput{Policy: aws.String(partnerOnly)})
	wantAPIError(t, err, "MalformedPolicyDocumentException", "The new key policy will not allow you to update the key policy in the future.")
}
