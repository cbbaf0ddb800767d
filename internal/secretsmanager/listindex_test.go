package secretsmanager

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/keyfort/keyfort/internal/secretsmanager/smapi"
	"github.com/keyfort/keyfort/internal/storage"
)

// hiddenNotifier is the store without its storage.ChangeNotifier, so that a
// Service over it lists by reading every secret (the reference).
type hiddenNotifier struct{ storage.Store }

// listPages returns every page of a listing, as entries' names per page.
func listPages(t *testing.T, e *env, s *Service, in smapi.ListSecretsInput) [][]string {
	t.Helper()
	var pages [][]string
	for range 1000 {
		out, err := s.ListSecrets(e.ctx, &in)
		mustOK(t, err, "ListSecrets")
		var names []string
		for _, se := range out.SecretList {
			names = append(names, *se.Name)
		}
		pages = append(pages, names)
		if out.NextToken == nil {
			return pages
		}
		in.NextToken = out.NextToken
	}
	t.Fatalf("ListSecrets did not end within 1000 pages")
	return nil
}

// TestListIndexMatchesScan drives random changes through a Service with the
// in-memory list index and checks, after each round, that every listing
// (each sort, order, page size and some filters) is page for page the one a
// Service reading every secret gives over the same store.
func TestListIndexMatchesScan(t *testing.T) {
	e := newEnv(t)
	if e.sm.lists == nil {
		t.Fatal("the SQLite store is a ChangeNotifier; the service has no list index")
	}
	ref := New(Config{Store: hiddenNotifier{e.sm.store}, KMS: e.kms, Now: e.clock.Now})
	if ref.lists != nil {
		t.Fatal("reference service has a list index")
	}
	rng := rand.New(rand.NewPCG(1, 2))
	var names []string
	inputs := []smapi.ListSecretsInput{
		{},
		{MaxResults: ptr(int32(7))},
		{MaxResults: ptr(int32(5)), SortOrder: smapi.SortOrderTypeAsc},
		{MaxResults: ptr(int32(6)), SortBy: smapi.SortByTypeName},
		{MaxResults: ptr(int32(4)), SortBy: smapi.SortByTypeName, SortOrder: smapi.SortOrderTypeDesc},
		{MaxResults: ptr(int32(9)), SortBy: smapi.SortByTypeLastChangedDate},
		{MaxResults: ptr(int32(3)), SortBy: smapi.SortByTypeLastAccessedDate, SortOrder: smapi.SortOrderTypeAsc},
		{MaxResults: ptr(int32(4)), IncludePlannedDeletion: ptr(true)},
		{MaxResults: ptr(int32(2)), Filters: []smapi.Filter{{Key: smapi.FilterNameStringTypeName, Values: []string{"app/"}}}},
		{MaxResults: ptr(int32(3)), Filters: []smapi.Filter{{Key: smapi.FilterNameStringTypeTagKey, Values: []string{"env"}}}},
		{MaxResults: ptr(int32(3)), Filters: []smapi.Filter{{Key: smapi.FilterNameStringTypeTagValue, Values: []string{"!prod"}}}},
		{Filters: []smapi.Filter{{Key: smapi.FilterNameStringTypeDescription, Values: []string{"round"}}}},
	}
	for round := range 8 {
		for i := range 12 {
			switch op := rng.IntN(8); {
			case op <= 2 || len(names) == 0:
				name := fmt.Sprintf("%s%02d-%02d", []string{"app/", "db/", "x"}[rng.IntN(3)], round, i)
				_, err := e.sm.CreateSecret(e.ctx, &smapi.CreateSecretInput{Name: str(name), SecretString: secretString("v"),
					Description: str(fmt.Sprintf("round %d", round))})
				mustOK(t, err, "CreateSecret")
				names = append(names, name)
			case op == 3:
				name := names[rng.IntN(len(names))]
				_, err := e.sm.TagResource(e.ctx, &smapi.TagResourceInput{SecretId: str(name),
					Tags: []smapi.Tag{{Key: str("env"), Value: str([]string{"prod", "dev"}[rng.IntN(2)])}}})
				if err != nil && !isCode(err, codeInvalidRequest) && !isNotFound(err) {
					t.Fatalf("TagResource(%s): %v", name, err)
				}
			case op == 4:
				name := names[rng.IntN(len(names))]
				_, err := e.sm.DeleteSecret(e.ctx, &smapi.DeleteSecretInput{SecretId: str(name)})
				if err != nil && !isCode(err, codeInvalidRequest) && !isNotFound(err) {
					t.Fatalf("DeleteSecret(%s): %v", name, err)
				}
			case op == 5:
				name := names[rng.IntN(len(names))]
				_, err := e.sm.RestoreSecret(e.ctx, &smapi.RestoreSecretInput{SecretId: str(name)})
				if err != nil && !isNotFound(err) {
					t.Fatalf("RestoreSecret(%s): %v", name, err)
				}
			case op == 6:
				name := names[rng.IntN(len(names))]
				_, err := e.sm.DeleteSecret(e.ctx, &smapi.DeleteSecretInput{SecretId: str(name), ForceDeleteWithoutRecovery: ptr(true)})
				if err != nil && !isNotFound(err) {
					t.Fatalf("DeleteSecret(%s, force): %v", name, err)
				}
			default:
				name := names[rng.IntN(len(names))]
				_, err := e.sm.GetSecretValue(e.ctx, &smapi.GetSecretValueInput{SecretId: str(name)})
				if err != nil && !isCode(err, codeInvalidRequest) && !isNotFound(err) {
					t.Fatalf("GetSecretValue(%s): %v", name, err)
				}
			}
			e.clock.Add(time.Duration(rng.IntN(3)) * 13 * time.Hour)
		}
		for _, in := range inputs {
			got := listPages(t, e, e.sm, in)
			want := listPages(t, e, ref, in)
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("round %d: ListSecrets(%+v) pages = %v, want (reading every secret) %v", round, in, got, want)
			}
		}
	}
}

// TestListIndexReadsOwnWrites lists from several goroutines while they create
// secrets: each must find the secret it just created.
func TestListIndexReadsOwnWrites(t *testing.T) {
	e := newEnv(t)
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 15 {
				name := fmt.Sprintf("w%d/s%02d", w, i)
				if _, err := e.sm.CreateSecret(e.ctx, &smapi.CreateSecretInput{Name: str(name), SecretString: secretString("v")}); err != nil {
					errs <- fmt.Errorf("CreateSecret(%s): %w", name, err)
					return
				}
				out, err := e.sm.ListSecrets(e.ctx, &smapi.ListSecretsInput{Filters: []smapi.Filter{{Key: smapi.FilterNameStringTypeName, Values: []string{fmt.Sprintf("w%d/", w)}}}})
				if err != nil {
					errs <- fmt.Errorf("ListSecrets: %w", err)
					return
				}
				if len(out.SecretList) != i+1 || *out.SecretList[0].Name != name {
					errs <- fmt.Errorf("ListSecrets(name=w%d/) after creating %s = %d secrets, first %v; want %d, first %s",
						w, name, len(out.SecretList), out.SecretList[0].Name, i+1, name)
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
