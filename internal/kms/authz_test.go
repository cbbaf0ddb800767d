package kms

import (
	"context"
	"crypto/rand"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/keyfort/keyfort/internal/awserr"
	"github.com/keyfort/keyfort/internal/envelope"
	"github.com/keyfort/keyfort/internal/iam"
	"github.com/keyfort/keyfort/internal/identity"
	"github.com/keyfort/keyfort/internal/kms/kmsapi"
	"github.com/keyfort/keyfort/internal/storage"
	"github.com/keyfort/keyfort/internal/storage/sqlite"
)

// openTestStore opens a SQLite store in a temporary directory, closed
// when the test ends.
func openTestStore(tb testing.TB) *sqlite.Store {
	tb.Helper()
	store, err := sqlite.Open(tb.Context(), filepath.Join(tb.TempDir(), "db"), sqlite.Options{})
	if err != nil {
		tb.Fatalf("sqlite.Open: %v", err)
	}
	tb.Cleanup(func() { _ = store.Close() })
	return store
}

func newAuthzService(t *testing.T) (*Service, context.Context) {
	t.Helper()
	store := openTestStore(t)
	root, err := envelope.GenerateRootKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s := New(Config{Store: store, Sealer: envelope.NewSealer(nil, root)})
	return s, identity.With(t.Context(), withReq(identity.Root("111122223333", "us-east-1", "")))
}

func wantCode(t *testing.T, err error, code, msgPart string) {
	t.Helper()
	e, ok := awserr.As(err)
	if !ok || e.Code != code || !strings.Contains(e.Message, msgPart) {
		t.Fatalf("error = %v, want %s containing %q", err, code, msgPart)
	}
}

// TestGrantLimit checks the per-key grant quota and its error, with the
// quota lowered so the test need not make 50,000 grants; a named retry of
// an existing grant is not a new grant and passes at the limit.
func TestGrantLimit(t *testing.T) {
	s, ctx := newAuthzService(t)
	s.maxGrants = 3
	out, err := s.CreateKey(ctx, &kmsapi.CreateKeyInput{})
	mustOK(t, err, "CreateKey")
	grant := func(name string) (*kmsapi.CreateGrantOutput, error) {
		in := &kmsapi.CreateGrantInput{KeyId: out.KeyMetadata.KeyId, GranteePrincipal: ptr("arn:aws:iam::111122223333:user/u"),
			Operations: []kmsapi.GrantOperation{"Decrypt"}}
		if name != "" {
			in.Name = ptr(name)
		}
		return s.CreateGrant(ctx, in)
	}
	first, err := grant("named")
	mustOK(t, err, "grant 1")
	for i := 2; i <= 3; i++ {
		_, err := grant("")
		mustOK(t, err, "grant")
	}
	_, err = grant("")
	wantCode(t, err, codeLimitExceeded, "already has 3 grants")
	again, err := grant("named")
	mustOK(t, err, "named retry at the limit")
	if deref(again.GrantId) != deref(first.GrantId) {
		t.Fatalf("named retry made grant %s, want %s", deref(again.GrantId), deref(first.GrantId))
	}
}

// TestKMSConditionKeys checks that every KMS condition key the service
// offers answers what the request and the key say.
func TestKMSConditionKeys(t *testing.T) {
	s, ctx := newAuthzService(t)
	out, err := s.CreateKey(ctx, &kmsapi.CreateKeyInput{Tags: []kmsapi.Tag{{TagKey: ptr("Team"), TagValue: ptr("blue")}}})
	mustOK(t, err, "CreateKey")
	id := deref(out.KeyMetadata.KeyId)
	for _, alias := range []string{"alias/b", "alias/a"} {
		_, err := s.CreateAlias(ctx, &kmsapi.CreateAliasInput{AliasName: ptr(alias), TargetKeyId: ptr(id)})
		mustOK(t, err, "CreateAlias")
	}
	k, err := s.lookupKey(ctx, storage.Scope{Account: "111122223333", Region: "us-east-1"}, id, refKeyOnly, nil)
	mustOK(t, err, "lookupKey")
	caller := identity.From(ctx)
	caller.SourceIP = "203.0.113.7"
	via := &identity.Via{Service: "secretsmanager.us-east-1.amazonaws.com", Region: "us-east-1", InvokedBy: "secretsmanager.amazonaws.com"}
	a := &access{
		action: "kms:CreateGrant", ec: map[string]string{"Purpose": "test"}, hasEC: true, alg: "SYMMETRIC_DEFAULT",
		requestAlias: "alias/a", tags: requestTags([]kmsapi.Tag{{TagKey: ptr("env"), TagValue: ptr("prod")}}),
		grant: &grantFacts{operations: []string{"Decrypt", "Encrypt"}, grantee: "arn:aws:iam::1:user/g", retiring: "arn:aws:iam::1:user/r", constraint: "EncryptionContextSubset"},
		extra: iam.MapContext{"kms:bypasspolicylockoutsafetycheck": {"false"}},
	}
	now := time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC)
	c := &kmsContext{ctx: ctx, s: s, caller: caller, via: via, now: now, k: k, a: *a}
	tests := []struct {
		key  string
		want []string // nil: absent
	}{
		{"kms:calleraccount", []string{"111122223333"}},
		{"kms:viaservice", []string{"secretsmanager.us-east-1.amazonaws.com"}},
		{"kms:keyspec", []string{"SYMMETRIC_DEFAULT"}},
		{"kms:keyusage", []string{"ENCRYPT_DECRYPT"}},
		{"kms:keyorigin", []string{"AWS_KMS"}},
		{"kms:multiregion", []string{"false"}},
		{"kms:encryptioncontext:purpose", []string{"test"}}, // the key is matched case-insensitively
		{"kms:encryptioncontext:other", nil},
		{"kms:encryptioncontextkeys", []string{"Purpose"}},
		{"kms:encryptionalgorithm", []string{"SYMMETRIC_DEFAULT"}},
		{"kms:requestalias", []string{"alias/a"}},
		{"kms:resourcealiases", []string{"alias/a", "alias/b"}},
		{"kms:grantoperations", []string{"Decrypt", "Encrypt"}},
		{"kms:granteeprincipal", []string{"arn:aws:iam::1:user/g"}},
		{"kms:retiringprincipal", []string{"arn:aws:iam::1:user/r"}},
		{"kms:grantconstrainttype", []string{"EncryptionContextSubset"}},
		{"kms:grantisforawsresource", []string{"true"}},
		{"kms:bypasspolicylockoutsafetycheck", []string{"false"}},
		{"aws:resourcetag/team", []string{"blue"}},
		{"aws:requesttag/env", []string{"prod"}},
		{"aws:tagkeys", []string{"env"}},
		{"aws:resourceaccount", []string{"111122223333"}},
		{"aws:principalarn", []string{"arn:aws:iam::111122223333:root"}},
		{"aws:principalaccount", []string{"111122223333"}},
		{"aws:principaltype", []string{"Account"}},
		{"aws:sourceip", []string{"203.0.113.7"}},
		{"aws:currenttime", []string{"2026-12-05T10:00:00Z"}},
		{"aws:epochtime", []string{"1796464800"}},
		{"aws:securetransport", []string{"false"}},
		{"aws:viaawsservice", []string{"true"}},
		{"aws:calledvia", []string{"secretsmanager.amazonaws.com"}},
		{"aws:requestedregion", []string{"us-east-1"}},
		{"aws:username", nil}, // the root has no user name
	}
	for _, tc := range tests {
		got, ok := c.Value(tc.key)
		slices.Sort(got)
		if tc.want == nil {
			if ok {
				t.Errorf("%s = %v, want absent", tc.key, got)
			}
			continue
		}
		if !ok || !slices.Equal(got, tc.want) {
			t.Errorf("%s = %v (present %v), want %v", tc.key, got, ok, tc.want)
		}
	}
}

// BenchmarkEncryptAuthorization is Encrypt at the service for the account
// root under the default key policy, and for an IAM user whose identity
// policy allows on the key's team tag (ABAC), to show what evaluating
// policies costs on the hot path.
func BenchmarkEncryptAuthorization(b *testing.B) {
	store, err := sqlite.Open(b.Context(), filepath.Join(b.TempDir(), "db"), sqlite.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer store.Close()
	root, _ := envelope.GenerateRootKey(rand.Reader)
	s := New(Config{Store: store, Sealer: envelope.NewSealer(nil, root)})
	rootCtx := identity.With(b.Context(), identity.Root("111122223333", "us-east-1", ""))
	out, err := s.CreateKey(rootCtx, &kmsapi.CreateKeyInput{Tags: []kmsapi.Tag{{TagKey: ptr("team"), TagValue: ptr("blue")}}})
	if err != nil {
		b.Fatal(err)
	}
	pol := iam.MustParse(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["kms:Encrypt","kms:Decrypt"],"Resource":"arn:aws:kms:*:111122223333:key/*","Condition":{"StringEquals":{"aws:ResourceTag/team":"${aws:PrincipalTag/team}"}}}]}`,
		iam.ParseOptions{Kind: iam.IdentityPolicy})
	arn := "arn:aws:iam::111122223333:user/app"
	user := &identity.Caller{Account: "111122223333", Region: "us-east-1", ARN: arn, Type: identity.TypeIAMUser, UserName: "app",
		Principal: iam.Principal{ARN: arn, PrincipalARN: arn, Account: "111122223333", UserID: "AIDAAPP"},
		Tags:      map[string]string{"team": "blue"}, Policies: []*iam.Policy{pol}}
	in := &kmsapi.EncryptInput{KeyId: out.KeyMetadata.KeyId, Plaintext: make([]byte, 64)}
	for _, bc := range []struct {
		name string
		ctx  context.Context
	}{{"root", rootCtx}, {"abac-user", identity.With(b.Context(), user)}} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := s.Encrypt(bc.ctx, in); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
