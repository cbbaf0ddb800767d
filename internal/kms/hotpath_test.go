package kms

import (
	"encoding/hex"
	"reflect"
	"slices"
	"sync"
	"testing"

	"github.com/keyfort/keyfort/internal/awserr"
	"github.com/keyfort/keyfort/internal/iam"
	"github.com/keyfort/keyfort/internal/identity"
	"github.com/keyfort/keyfort/internal/kms/kmsapi"
	"github.com/keyfort/keyfort/internal/storage"
)

// TestMaterialHexMatchesEncodeToString checks key.materialHex against the
// hex.EncodeToString it replaces in decryptBlob, for a material the key
// lists (the answer is then the key's own string) and one it does not.
func TestMaterialHexMatchesEncodeToString(t *testing.T) {
	listed := [16]byte{0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef, 0xfe, 0xdc, 0xba, 0x98, 0x76, 0x54, 0x32, 0x10}
	other := [16]byte{0xff, 0xff, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}
	k := &key{meta: keyMeta{Materials: []materialRef{{ID: "00000000000000000000000000000000"}, {ID: hex.EncodeToString(listed[:])}}}}
	for _, id := range [][16]byte{listed, other, {}} {
		if got, want := k.materialHex(&id), hex.EncodeToString(id[:]); got != want {
			t.Errorf("materialHex(%x) = %q, want %q", id, got, want)
		}
	}
	if got := k.materialHex(&listed); got != k.meta.Materials[1].ID {
		t.Errorf("materialHex of a listed material = %q, want the key's %q", got, k.meta.Materials[1].ID)
	}
	if n := testing.AllocsPerRun(100, func() { k.materialHex(&listed) }); n != 0 {
		t.Errorf("materialHex of a listed material allocates %v times", n)
	}
}

// TestDisplayMaterialMatchesDisplayMaterialID checks the remembered
// KeyMaterialId of a key against displayMaterialID, as the material asked
// for changes back and forth.
func TestDisplayMaterialMatchesDisplayMaterialID(t *testing.T) {
	k := &key{}
	for _, id := range []string{
		"0123456789abcdef0123456789abcdef", "0123456789abcdef0123456789abcdef", "fedcba98765432100123456789abcdef",
		"0123456789abcdef0123456789abcdef", "", "zz", "fedcba98765432100123456789abcdef",
	} {
		if got, want := k.displayMaterial(id), displayMaterialID(id); got != want {
			t.Errorf("displayMaterial(%q) = %s, want %s", id, got, want)
		}
	}
}

// TestManagedKeyConditionValues checks kms:CallerAccount and kms:ViaService
// (the condition keys of AWS managed keys' policies) as iam sees them:
// right after other keys were asked for too, the same when asked again,
// without allocating; without a service call kms:ViaService is absent.
func TestManagedKeyConditionValues(t *testing.T) {
	caller := &identity.Caller{Account: "111122223333"}
	via := &identity.Via{Service: "secretsmanager.us-east-1.amazonaws.com"}
	c := &kmsContext{caller: caller, via: via, a: access{}}
	acct, ok1 := c.Value("kms:calleraccount")
	svc, ok2 := c.Value("kms:viaservice")
	acct2, _ := c.Value("kms:calleraccount")
	if !ok1 || !ok2 || !slices.Equal(acct, []string{"111122223333"}) || !slices.Equal(acct2, acct) ||
		!slices.Equal(svc, []string{"secretsmanager.us-east-1.amazonaws.com"}) {
		t.Errorf("values = %q %t, %q %t, %q", acct, ok1, svc, ok2, acct2)
	}
	if n := testing.AllocsPerRun(100, func() { c.Value("kms:calleraccount"); c.Value("kms:viaservice") }); n != 0 {
		t.Errorf("kms:CallerAccount and kms:ViaService allocate %v times", n)
	}
	direct := &kmsContext{caller: caller, a: access{}}
	if v, ok := direct.Value("kms:viaservice"); ok {
		t.Errorf("kms:viaservice without a service call = %q, want absent", v)
	}
}

// TestDefaultPoliciesPerAccountAndPartition checks the default key policy
// cache: one parsed policy per partition and account, the same on every
// later read (also when read concurrently with new accounts), equal to
// parsing the account's default policy, and read without allocating.
func TestDefaultPoliciesPerAccountAndPartition(t *testing.T) {
	var d defaultPolicies
	scopes := []storage.Scope{
		{Account: "111122223333", Region: "us-east-1"}, {Account: "111122223333", Region: "cn-north-1"},
		{Account: "444455556666", Region: "us-east-1"}, {Account: "444455556666", Region: "us-gov-west-1"},
	}
	var wg sync.WaitGroup
	got := make([][]*iam.Policy, 4)
	for g := range got {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, sc := range scopes {
				got[g] = append(got[g], d.get(sc))
			}
		}()
	}
	wg.Wait()
	for i, sc := range scopes {
		p := d.get(sc)
		for g := range got {
			if got[g][i] != p {
				t.Errorf("%v: reader %d got another policy", sc, g)
			}
		}
		want := iam.MustParse(defaultKeyPolicy(sc.Account, sc.Region), keyPolicyOptions)
		if !reflect.DeepEqual(p, want) {
			t.Errorf("%v: cached policy differs from the parsed default policy", sc)
		}
		if i > 0 && p == d.get(scopes[i-1]) {
			t.Errorf("%v shares the policy of %v", sc, scopes[i-1])
		}
	}
	if n := testing.AllocsPerRun(100, func() { d.get(scopes[1]) }); n != 0 {
		t.Errorf("a cached default policy allocates %v times", n)
	}
}

// TestDecryptRequestAlias checks kms:RequestAlias on Decrypt, which
// decryptBlob takes from the KeyId lookup: a key policy that denies Decrypt
// unless the request names alias/app lets a decrypt through that alias
// (name or ARN) only, and the key of the ciphertext is still checked
// against the KeyId.
func TestDecryptRequestAlias(t *testing.T) {
	s, ctx := newAuthzService(t)
	pol := `{"Version":"2012-10-17","Statement":[
{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":"kms:*","Resource":"*"},
{"Effect":"Deny","Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":"kms:Decrypt","Resource":"*",
 "Condition":{"StringNotEquals":{"kms:RequestAlias":"alias/app"}}}]}`
	k, err := s.CreateKey(ctx, &kmsapi.CreateKeyInput{Policy: ptr(pol)})
	mustOK(t, err, "CreateKey")
	other, err := s.CreateKey(ctx, &kmsapi.CreateKeyInput{})
	mustOK(t, err, "CreateKey other")
	for _, a := range []struct{ name, key string }{{"alias/app", *k.KeyMetadata.KeyId}, {"alias/x", *k.KeyMetadata.KeyId}, {"alias/other", *other.KeyMetadata.KeyId}} {
		_, err := s.CreateAlias(ctx, &kmsapi.CreateAliasInput{AliasName: ptr(a.name), TargetKeyId: ptr(a.key)})
		mustOK(t, err, "CreateAlias "+a.name)
	}
	enc, err := s.Encrypt(ctx, &kmsapi.EncryptInput{KeyId: k.KeyMetadata.KeyId, Plaintext: []byte("data")})
	mustOK(t, err, "Encrypt")
	decrypt := func(keyID *string) (*kmsapi.DecryptOutput, error) {
		return s.Decrypt(ctx, &kmsapi.DecryptInput{CiphertextBlob: enc.CiphertextBlob, KeyId: keyID})
	}
	for _, ok := range []string{"alias/app", "arn:aws:kms:us-east-1:111122223333:alias/app"} {
		out, err := decrypt(ptr(ok))
		mustOK(t, err, "Decrypt via "+ok)
		if string(out.Plaintext.Reveal()) != "data" || *out.KeyId != *k.KeyMetadata.Arn {
			t.Errorf("Decrypt via %s = %q under %s", ok, out.Plaintext.Reveal(), *out.KeyId)
		}
	}
	for _, denied := range []*string{k.KeyMetadata.KeyId, k.KeyMetadata.Arn, ptr("alias/x")} {
		_, err := decrypt(denied)
		wantCode(t, err, awserr.CodeAccessDenied, "is not authorized to perform: kms:Decrypt on resource: "+*k.KeyMetadata.Arn)
	}
	_, err = decrypt(nil)
	wantCode(t, err, awserr.CodeAccessDenied, "on the resource associated with this ciphertext")
	_, err = decrypt(ptr("alias/other"))
	wantCode(t, err, codeIncorrectKey, "The key ID in the request does not identify a CMK that can perform this operation.")
}

// TestCurrentHeaderMatchesHeader checks the header remembered on a key
// against header(k, k.meta.Material), also when the material of the same
// loaded key changes (a rotation in a transaction) and for a malformed id.
func TestCurrentHeaderMatchesHeader(t *testing.T) {
	k := &key{rec: &storage.Record{ID: "0f1e2d3c-4b5a-4978-8796-a5b4c3d2e1f0"}}
	for _, mat := range []string{"0123456789abcdef0123456789abcdef", "0123456789abcdef0123456789abcdef", "fedcba98765432100123456789abcdef", "0123456789abcdef0123456789abcdef", "zz"} {
		k.meta.Material = mat
		got, gotErr := k.currentHeader()
		want, wantErr := header(k, mat)
		if got != want || (gotErr == nil) != (wantErr == nil) {
			t.Errorf("material %s: currentHeader = %+v, %v; header = %+v, %v", mat, got, gotErr, want, wantErr)
		}
	}
	k.meta.Material = "0123456789abcdef0123456789abcdef"
	if n := testing.AllocsPerRun(100, func() { _, _ = k.currentHeader() }); n != 0 {
		t.Errorf("currentHeader of the same material allocates %v times", n)
	}
}
