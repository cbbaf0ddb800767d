package e2e

import (
	"crypto/rand"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	smtypes "github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"

	"github.com/keyfort/keyfort/internal/config"
	"github.com/keyfort/keyfort/internal/keyfortest"
	"github.com/keyfort/keyfort/internal/storage/postgres/pgtest"
)

// TestNodesReadEachOthersWrites: two nodes on one PostgreSQL database, each
// with its read caches and list indexes. Every write answered by one node is
// seen by the very next request to the other: no cached key, alias, tag,
// secret, version or list page is stale. Several workers do this at once,
// so that cache fills race with other nodes' changes.
func TestNodesReadEachOthersWrites(t *testing.T) {
	dsn := pgtest.DSN(t)
	t.Run("caches", func(t *testing.T) { testNodesReadEachOthersWrites(t, dsn) })
	// --store-read-through (for a pooler that does not deliver
	// notifications): no caches, no Sync, every request reads the store.
	t.Run("read-through", func(t *testing.T) {
		testNodesReadEachOthersWrites(t, dsn, keyfortest.WithConfig(func(c *config.Config) { c.StoreReadThrough = true }))
	})
}

func testNodesReadEachOthersWrites(t *testing.T, dsn string, opts ...keyfortest.Option) {
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	a := keyfortest.Start(t, append([]keyfortest.Option{keyfortest.WithStore(dsn), keyfortest.WithRootKey(key)}, opts...)...)
	b := keyfortest.Start(t, append([]keyfortest.Option{keyfortest.WithNodeOf(a), keyfortest.WithRootKey(key)}, opts...)...)
	nodes := []*keyfortest.Server{a, b}

	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Worker w writes on one node and reads on the other, and
			// swaps every round.
			for round := range 6 {
				wr, rd := nodes[(w+round)%2], nodes[(w+round+1)%2]
				if !checkKMSRound(t, wr.KMS(), rd.KMS(), w, round) || !checkSMRound(t, wr.SecretsManager(), rd.SecretsManager(), w, round) {
					return
				}
			}
		}()
	}
	wg.Wait()
}

// checkKMSRound: tags, aliases and key state written on wr are what rd
// answers at once.
func checkKMSRound(t *testing.T, wr, rd *kms.Client, w, round int) bool {
	t.Helper()
	ctx := ctxT(t)
	out, err := wr.CreateKey(ctx, &kms.CreateKeyInput{})
	if err != nil {
		t.Errorf("CreateKey: %v", err)
		return false
	}
	md := out.KeyMetadata
	// Read it through rd's cache first, so that what follows must
	// invalidate it there.
	if _, err := rd.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: md.KeyId}); err != nil {
		t.Errorf("worker %d round %d: DescribeKey on the other node just after CreateKey: %v", w, round, err)
		return false
	}
	for i := range 3 {
		v := fmt.Sprintf("v%d", i)
		if _, err := wr.TagResource(ctx, &kms.TagResourceInput{KeyId: md.KeyId, Tags: []types.Tag{tg("t", v)}}); err != nil {
			t.Errorf("TagResource: %v", err)
			return false
		}
		got, err := rd.ListResourceTags(ctx, &kms.ListResourceTagsInput{KeyId: md.KeyId})
		if err != nil {
			t.Errorf("ListResourceTags: %v", err)
			return false
		}
		if len(got.Tags) != 1 || aws.ToString(got.Tags[0].TagValue) != v {
			var seen []string
			for _, tag := range got.Tags {
				seen = append(seen, aws.ToString(tag.TagKey)+"="+aws.ToString(tag.TagValue))
			}
			t.Errorf("worker %d round %d: ListResourceTags on the other node = %v, want t=%s (stale)", w, round, seen, v)
			return false
		}
	}
	alias := fmt.Sprintf("alias/w%d-r%d", w, round)
	if _, err := wr.CreateAlias(ctx, &kms.CreateAliasInput{AliasName: aws.String(alias), TargetKeyId: md.KeyId}); err != nil {
		t.Errorf("CreateAlias: %v", err)
		return false
	}
	if _, err := rd.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String(alias), Plaintext: []byte("x")}); err != nil {
		t.Errorf("worker %d round %d: Encrypt by a new alias on the other node: %v", w, round, err)
		return false
	}
	page, err := rd.ListAliases(ctx, &kms.ListAliasesInput{KeyId: md.KeyId})
	if err != nil || len(page.Aliases) != 1 || aws.ToString(page.Aliases[0].AliasName) != alias {
		t.Errorf("worker %d round %d: ListAliases on the other node = %+v, %v; want %s", w, round, page, err, alias)
		return false
	}
	if _, err := wr.DisableKey(ctx, &kms.DisableKeyInput{KeyId: md.KeyId}); err != nil {
		t.Errorf("DisableKey: %v", err)
		return false
	}
	_, err = rd.Encrypt(ctx, &kms.EncryptInput{KeyId: md.KeyId, Plaintext: []byte("x")})
	if errCode(err) != "DisabledException" {
		t.Errorf("worker %d round %d: Encrypt on the other node after DisableKey = %v, want DisabledException (stale key)", w, round, err)
		return false
	}
	keys, err := rd.ListKeys(ctx, &kms.ListKeysInput{Limit: aws.Int32(1000)})
	if err != nil || !slices.ContainsFunc(keys.Keys, func(k types.KeyListEntry) bool { return aws.ToString(k.KeyId) == aws.ToString(md.KeyId) }) {
		t.Errorf("worker %d round %d: ListKeys on the other node misses %s (err %v)", w, round, aws.ToString(md.KeyId), err)
		return false
	}
	return true
}

// checkSMRound: a secret's value, stages and listing written on wr are what
// rd answers at once.
func checkSMRound(t *testing.T, wr, rd *secretsmanager.Client, w, round int) bool {
	t.Helper()
	ctx := ctxT(t)
	name := fmt.Sprintf("nodes/w%d/r%d", w, round)
	if _, err := wr.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String(name), SecretString: aws.String("v0")}); err != nil {
		t.Errorf("CreateSecret: %v", err)
		return false
	}
	list, err := rd.ListSecrets(ctx, &secretsmanager.ListSecretsInput{MaxResults: aws.Int32(100),
		Filters: []smtypes.Filter{{Key: "name", Values: []string{name}}}})
	if err != nil || len(list.SecretList) != 1 {
		t.Errorf("worker %d round %d: ListSecrets on the other node just after CreateSecret: %d entries, %v", w, round, len(list.SecretList), err)
		return false
	}
	for i := 1; i <= 3; i++ {
		v := fmt.Sprintf("v%d", i)
		if _, err := rd.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(name)}); err != nil {
			t.Errorf("GetSecretValue: %v", err)
			return false
		}
		if _, err := wr.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{SecretId: aws.String(name), SecretString: aws.String(v)}); err != nil {
			t.Errorf("PutSecretValue: %v", err)
			return false
		}
		got, err := rd.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(name)})
		if err != nil || aws.ToString(got.SecretString) != v {
			t.Errorf("worker %d round %d: GetSecretValue on the other node = %q, %v; want %q (stale)", w, round, aws.ToString(got.SecretString), err, v)
			return false
		}
	}
	if _, err := wr.DeleteSecret(ctx, &secretsmanager.DeleteSecretInput{SecretId: aws.String(name), ForceDeleteWithoutRecovery: aws.Bool(true)}); err != nil {
		t.Errorf("DeleteSecret: %v", err)
		return false
	}
	_, err = rd.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(name)})
	if errCode(err) != "ResourceNotFoundException" {
		t.Errorf("worker %d round %d: GetSecretValue on the other node after a forced delete = %v, want ResourceNotFoundException", w, round, err)
		return false
	}
	return true
}
