package secretsmanager

import (
	"fmt"
	"sync"
	"testing"

	"github.com/keyfort/keyfort/internal/kms/kmsapi"
	"github.com/keyfort/keyfort/internal/secretsmanager/smapi"
)

// TestReadCacheNeverStale reads through the record cache after each kind of
// change and checks the read sees it; a disabled KMS key stops reads at once.
func TestReadCacheNeverStale(t *testing.T) {
	e := newEnv(t)
	key := e.createKey(t)
	_, err := e.sm.CreateSecret(e.ctx, &smapi.CreateSecretInput{Name: str("cached"), SecretString: secretString("one"), KmsKeyId: str(key)})
	mustOK(t, err, "CreateSecret")
	if got := e.get(t, "cached").SecretString.Reveal(); got != "one" {
		t.Fatalf("GetSecretValue = %q, want %q", got, "one")
	}
	_, err = e.sm.PutSecretValue(e.ctx, &smapi.PutSecretValueInput{SecretId: str("cached"), SecretString: secretString("two")})
	mustOK(t, err, "PutSecretValue")
	if got := e.get(t, "cached").SecretString.Reveal(); got != "two" {
		t.Fatalf("GetSecretValue after PutSecretValue = %q, want %q", got, "two")
	}
	_, err = e.sm.TagResource(e.ctx, &smapi.TagResourceInput{SecretId: str("cached"), Tags: []smapi.Tag{{Key: str("k"), Value: str("v")}}})
	mustOK(t, err, "TagResource")
	if d := e.describe(t, "cached"); len(d.Tags) != 1 || *d.Tags[0].Key != "k" {
		t.Fatalf("DescribeSecret after TagResource: Tags = %v, want [k=v]", d.Tags)
	}

	_, err = e.kms.DisableKey(e.ctx, &kmsapi.DisableKeyInput{KeyId: str(key)})
	mustOK(t, err, "DisableKey")
	_, err = e.sm.GetSecretValue(e.ctx, &smapi.GetSecretValueInput{SecretId: str("cached")})
	wantCode(t, err, codeDecryption, "")
	_, err = e.kms.EnableKey(e.ctx, &kmsapi.EnableKeyInput{KeyId: str(key)})
	mustOK(t, err, "EnableKey")
	if got := e.get(t, "cached").SecretString.Reveal(); got != "two" {
		t.Fatalf("GetSecretValue after EnableKey = %q, want %q", got, "two")
	}

	_, err = e.sm.DeleteSecret(e.ctx, &smapi.DeleteSecretInput{SecretId: str("cached")})
	mustOK(t, err, "DeleteSecret")
	_, err = e.sm.GetSecretValue(e.ctx, &smapi.GetSecretValueInput{SecretId: str("cached")})
	wantCode(t, err, codeInvalidRequest, "marked for deletion")
	_, err = e.sm.DeleteSecret(e.ctx, &smapi.DeleteSecretInput{SecretId: str("cached"), ForceDeleteWithoutRecovery: ptr(true)})
	mustOK(t, err, "DeleteSecret(force)")
	_, err = e.sm.DescribeSecret(e.ctx, &smapi.DescribeSecretInput{SecretId: str("cached")})
	wantCode(t, err, codeNotFound, "")
	e.create(t, "cached", "three")
	if got := e.get(t, "cached").SecretString.Reveal(); got != "three" {
		t.Fatalf("GetSecretValue of the re-created secret = %q, want %q", got, "three")
	}
}

// TestReadCacheConcurrent has each goroutine write its own secret and read
// it back at once, while the others do the same: every read must return the
// value just written.
func TestReadCacheConcurrent(t *testing.T) {
	e := newEnv(t)
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for w := range 4 {
		name := fmt.Sprintf("conc-%d", w)
		e.create(t, name, "v0")
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 1; i <= 20; i++ {
				want := fmt.Sprintf("v%d", i)
				if _, err := e.sm.PutSecretValue(e.ctx, &smapi.PutSecretValueInput{SecretId: str(name), SecretString: secretString(want)}); err != nil {
					errs <- fmt.Errorf("PutSecretValue(%s): %w", name, err)
					return
				}
				out, err := e.sm.GetSecretValue(e.ctx, &smapi.GetSecretValueInput{SecretId: str(name)})
				if err != nil {
					errs <- fmt.Errorf("GetSecretValue(%s): %w", name, err)
					return
				}
				if got := out.SecretString.Reveal(); got != want {
					errs <- fmt.Errorf("GetSecretValue(%s) = %q, want %q", name, got, want)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
