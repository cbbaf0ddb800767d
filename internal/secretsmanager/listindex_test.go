package secretsmanager

import (
	"context"
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

// listPages returns every page of a listing, as its entries' JSON (what a
// client receives) per page.
func listPages(t *testing.T, e *env, s *Service, in smapi.ListSecretsInput) [][]string {
	t.Helper()
	var pages [][]string
	for range 1000 {
		out, err := s.ListSecrets(e.ctx, &in)
		mustOK(t, err, "ListSecrets")
		if out.SecretList == nil {
			t.Fatalf("ListSecrets(%+v): SecretList is nil, want a list (possibly empty)", in)
		}
		var entries []string
		for _, se := range out.SecretList {
			entries = append(entries, string(se.AppendJSON(nil)))
		}
		pages = append(pages, entries)
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
		{MaxResults: ptr(int32(5)), Filters: []smapi.Filter{{Key: smapi.FilterNameStringTypeAll, Values: []string{"prod", "db"}}}},
		{MaxResults: ptr(int32(4)), Filters: []smapi.Filter{{Key: smapi.FilterNameStringTypeAll, Values: []string{"!Round 3", "x0"}}}},
		{Filters: []smapi.Filter{{Key: smapi.FilterNameStringTypeDescription, Values: []string{"r 2"}}}, SortOrder: smapi.SortOrderTypeDesc},
		{Filters: []smapi.Filter{{Key: smapi.FilterNameStringTypePrimaryRegion, Values: []string{"!eu"}}, {Key: smapi.FilterNameStringTypeName, Values: []string{"x"}}}},
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
				// Oldest first: the secret just created is the last one.
				if len(out.SecretList) != i+1 || *out.SecretList[i].Name != name {
					var got []string
					for _, s := range out.SecretList {
						got = append(got, *s.Name)
					}
					errs <- fmt.Errorf("ListSecrets(name=w%d/) after creating %s = %v, want %d secrets, the last %s",
						w, name, got, i+1, name)
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

// TestIndexedEntryMatchesListEntry checks that the list index's copy of a
// secret gives the SecretListEntry that listEntry gives from the decoded
// metadata, byte for byte on the wire, for every field an entry shows.
func TestIndexedEntryMatchesListEntry(t *testing.T) {
	scope := storage.Scope{Account: testAccount, Region: testRegion}
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 123456789, time.UTC)
	at := func(d time.Duration) *time.Time { v := t0.Add(d); return &v }
	base := func() secretMeta {
		return secretMeta{
			ARN: arnPrefix(scope) + "app/db-AbCdEf", Name: "app/db",
			Created: t0, LastChanged: t0.Add(time.Hour),
			Versions: map[string]*versionMeta{
				"v1": {Seq: 1, Stages: []string{stageCurrent}, KMSKeyARNs: []string{"k"}},
				"v0": {Seq: 0, Stages: []string{stagePrevious}},
				"vx": {Seq: 2}, // deprecated: not shown
			},
		}
	}
	cases := map[string]func(m *secretMeta){
		"minimal":        func(m *secretMeta) {},
		"no versions":    func(m *secretMeta) { m.Versions = nil },
		"only unlabeled": func(m *secretMeta) { m.Versions = map[string]*versionMeta{"a": {}} },
		"several labels": func(m *secretMeta) {
			m.Versions["v2"] = &versionMeta{Stages: []string{stagePending, "custom", "other"}}
		},
		"description": func(m *secretMeta) { m.Description = str("the \"db\" password\n") },
		"empty desc":  func(m *secretMeta) { m.Description = str("") },
		"type":        func(m *secretMeta) { m.Type = str("x") },
		"kms key":     func(m *secretMeta) { m.KmsKeyID = "alias/mine" },
		"tags empty":  func(m *secretMeta) { m.Tags = []tag{} },
		"tags":        func(m *secretMeta) { m.Tags = []tag{{"env", "prod"}, {"team", ""}} },
		"accessed":    func(m *secretMeta) { m.LastAccessed = at(48 * time.Hour) },
		"deleted":     func(m *secretMeta) { m.Deleted = at(time.Minute); m.Deletion = at(30 * 24 * time.Hour) },
		"rotation": func(m *secretMeta) {
			m.RotationEnabled = true
			m.RotationLambdaARN = "arn:aws:lambda:f"
			m.RotationDays = 7
		},
		"rotation off":   func(m *secretMeta) { m.RotationLambdaARN = "arn:aws:lambda:f"; m.RotationSchedule = "rate(4 hours)" },
		"rotation rules": func(m *secretMeta) { m.RotationDuration = "2h" },
		"rotated":        func(m *secretMeta) { m.LastRotated = at(time.Second); m.NextRotation = at(7 * 24 * time.Hour) },
		"primary":        func(m *secretMeta) { m.PrimaryRegion = "eu-west-1" },
		"other arn":      func(m *secretMeta) { m.ARN = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:app/db-AbCdEf" },
		"zero dates": func(m *secretMeta) {
			m.Created = time.Time{}
			m.LastChanged = time.Time{}
			m.LastAccessed = &time.Time{}
		},
		"old dates":       func(m *secretMeta) { m.Created = time.Date(1960, 1, 1, 0, 0, 0, 999999, time.UTC) },
		"local time zone": func(m *secretMeta) { m.LastChanged = t0.In(time.FixedZone("x", 3600)) },
	}
	for name, change := range cases {
		m := base()
		change(&m)
		want := listEntry(&m)
		got := indexMeta(scope, &m).entry(arnPrefix(scope), &entryBuf{})
		if g, w := string(got.AppendJSON(nil)), string(want.AppendJSON(nil)); g != w {
			t.Errorf("%s: indexed entry = %s, want (listEntry) %s", name, g, w)
		}
	}
}

// TestListIndexFollowsEveryChange makes each kind of change a secret can
// have (metadata, value and stages, tags, rotation, replication, deletion,
// access) in two regions and an other account, and checks after each that
// every scope's listing, entry for entry, is the one read from the store.
func TestListIndexFollowsEveryChange(t *testing.T) {
	e, _ := newRotationEnv(t)
	ref := New(Config{Store: hiddenNotifier{e.sm.store}, KMS: e.kms, Now: e.clock.Now})
	scopes := map[string]context.Context{
		"us-east-1":     e.ctx,
		replRegion:      e.in(replRegion),
		"other account": asCaller(e.ctx, "210987654321", testRegion),
	}
	inputs := []smapi.ListSecretsInput{
		{},
		{MaxResults: ptr(int32(2)), SortBy: smapi.SortByTypeName, IncludePlannedDeletion: ptr(true)},
		{SortBy: smapi.SortByTypeLastAccessedDate, SortOrder: smapi.SortOrderTypeAsc},
		{SortBy: smapi.SortByTypeLastChangedDate, Filters: []smapi.Filter{{Key: smapi.FilterNameStringTypePrimaryRegion, Values: []string{"us"}}}},
	}
	check := func(step string) {
		t.Helper()
		for sname, ctx := range scopes {
			for _, in := range inputs {
				got, want := listAll(t, ctx, e.sm, in), listAll(t, ctx, ref, in)
				if !reflect.DeepEqual(got, want) {
					t.Fatalf("after %s, in %s: ListSecrets(%+v) = %v, want (reading every secret) %v", step, sname, in, got, want)
				}
			}
		}
	}
	key := e.createKey(t)
	steps := []struct {
		name string
		do   func() error
	}{
		{"create", func() error {
			_, err := e.sm.CreateSecret(e.ctx, &smapi.CreateSecretInput{Name: str("db"), SecretString: secretString("v1"),
				Description: str("the db"), Tags: []smapi.Tag{{Key: str("env"), Value: str("prod")}}})
			return err
		}},
		{"create in the other account", func() error {
			_, err := e.sm.CreateSecret(scopes["other account"], &smapi.CreateSecretInput{Name: str("db"), SecretString: secretString("x")})
			return err
		}},
		{"create with a KMS key", func() error {
			_, err := e.sm.CreateSecret(e.ctx, &smapi.CreateSecretInput{Name: str("keyed"), SecretString: secretString("v"), KmsKeyId: str(key)})
			return err
		}},
		{"update description", func() error {
			_, err := e.sm.UpdateSecret(e.ctx, &smapi.UpdateSecretInput{SecretId: str("db"), Description: str("")})
			return err
		}},
		{"update KMS key", func() error {
			_, err := e.sm.UpdateSecret(e.ctx, &smapi.UpdateSecretInput{SecretId: str("db"), KmsKeyId: str(key)})
			return err
		}},
		{"put value", func() error {
			_, err := e.sm.PutSecretValue(e.ctx, &smapi.PutSecretValueInput{SecretId: str("db"), SecretString: secretString("v2")})
			return err
		}},
		{"put value with custom stages", func() error {
			_, err := e.sm.PutSecretValue(e.ctx, &smapi.PutSecretValueInput{SecretId: str("db"), SecretString: secretString("v3"),
				VersionStages: []string{"blue", "green"}})
			return err
		}},
		{"read", func() error {
			_, err := e.sm.GetSecretValue(e.ctx, &smapi.GetSecretValueInput{SecretId: str("keyed")})
			return err
		}},
		{"untag to no tags", func() error {
			_, err := e.sm.UntagResource(e.ctx, &smapi.UntagResourceInput{SecretId: str("db"), TagKeys: []string{"env"}})
			return err
		}},
		{"tag", func() error {
			_, err := e.sm.TagResource(e.ctx, &smapi.TagResourceInput{SecretId: str("keyed"), Tags: []smapi.Tag{{Key: str("a"), Value: str("")}}})
			return err
		}},
		{"rotate", func() error {
			_, err := e.rotate(&smapi.RotateSecretInput{SecretId: str("db"), RotationLambdaARN: str(testLambda),
				RotationRules: &smapi.RotationRulesType{AutomaticallyAfterDays: ptr(int64(30))}, ClientRequestToken: token("rot1")})
			return err
		}},
		{"cancel rotation", func() error {
			_, err := e.sm.CancelRotateSecret(e.ctx, &smapi.CancelRotateSecretInput{SecretId: str("db")})
			return err
		}},
		{"replicate", func() error {
			_, err := e.sm.ReplicateSecretToRegions(e.ctx, &smapi.ReplicateSecretToRegionsInput{SecretId: str("db"),
				AddReplicaRegions: []smapi.ReplicaRegionType{{Region: str(replRegion)}}})
			return err
		}},
		{"read the replica", func() error {
			_, err := e.sm.GetSecretValue(scopes[replRegion], &smapi.GetSecretValueInput{SecretId: str("db")})
			return err
		}},
		{"remove the replica", func() error {
			_, err := e.sm.RemoveRegionsFromReplication(e.ctx, &smapi.RemoveRegionsFromReplicationInput{SecretId: str("db"), RemoveReplicaRegions: []string{replRegion}})
			return err
		}},
		{"delete", func() error {
			_, err := e.sm.DeleteSecret(e.ctx, &smapi.DeleteSecretInput{SecretId: str("keyed"), RecoveryWindowInDays: ptr(int64(7))})
			return err
		}},
		{"restore", func() error {
			_, err := e.sm.RestoreSecret(e.ctx, &smapi.RestoreSecretInput{SecretId: str("keyed")})
			return err
		}},
		{"force delete", func() error {
			_, err := e.sm.DeleteSecret(e.ctx, &smapi.DeleteSecretInput{SecretId: str("db"), ForceDeleteWithoutRecovery: ptr(true)})
			return err
		}},
	}
	check("nothing")
	for _, st := range steps {
		e.clock.Add(25 * time.Hour)
		if err := st.do(); err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		check(st.name)
	}
}

// listAll returns every entry of a listing, as JSON, one page after another.
func listAll(t *testing.T, ctx context.Context, s *Service, in smapi.ListSecretsInput) []string {
	t.Helper()
	var all []string
	for range 100 {
		out, err := s.ListSecrets(ctx, &in)
		mustOK(t, err, "ListSecrets")
		for _, se := range out.SecretList {
			all = append(all, string(se.AppendJSON(nil)))
		}
		if out.NextToken == nil {
			return all
		}
		in.NextToken = out.NextToken
	}
	t.Fatal("ListSecrets did not end within 100 pages")
	return nil
}
